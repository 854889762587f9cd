#!/usr/bin/env python3
"""A throwaway HTTP/1.1 server that applies every method it gets, for
testing that `verbd probe` changes nothing it was not allowed to.

usage: apply_server.py ROOT [--log FILE]

Listens on 127.0.0.1:0, prints "listening on http://127.0.0.1:PORT/", and
serves the directory ROOT.  Like many real servers it ignores every
precondition (If-Match, If, If-None-Match, Overwrite) and acts on whatever
it is sent, even with no content:

  GET, HEAD      the file (or a listing of a directory); 404 if missing
  OPTIONS        204, Allow: every method below, DAV: 1, 2, Accept-Patch
  TRACE          200, the request echoed
  PROPFIND       207 with the names of the target (and its members)
  PUT            writes the body (201 new, 204 replaced)
  POST, PATCH    appends the body and a line naming the method (creates)
  PROPPATCH      writes TARGET.props; LOCK writes TARGET.lock, UNLOCK
                 removes it
  DELETE         removes the file or the whole directory (and TARGET.props,
                 TARGET.lock)
  MKCOL          creates the directory
  COPY, MOVE     to the path of Destination (400 without one)
  anything else  501

Every request is appended to FILE as one JSON line (method, target,
headers, body length).
"""

import json
import os
import shutil
import socket
import sys
import threading
import urllib.parse

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "COPY", "LOCK",
           "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "UNLOCK"]


def resp(status, reason, headers=(), body=b"", head_only=False):
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Server: apply/1.0", "Connection: close"]
    lines += ["%s: %s" % h for h in headers]
    if status not in (204, 304):
        lines.append("Content-Length: %d" % len(body))
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head_only or status in (204, 304) else out + body


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    first, *rest = head.decode("latin-1").split("\r\n")
    method, target, _ = first.split(" ", 2)
    headers = []
    for line in rest:
        k, v = line.split(":", 1)
        headers.append((k.strip(), v.strip()))
    n = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
    while len(body) < n:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, target, headers, head, body[:n]


class Applier:
    def __init__(self, root):
        self.root = os.path.realpath(root)

    def fs(self, target):
        if target.startswith("http://"):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        path = urllib.parse.unquote(target.split("?", 1)[0])
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if full != self.root and not full.startswith(self.root + os.sep):
            raise PermissionError(target)
        return full

    def handle(self, method, target, headers, head, body):
        h = dict((k.lower(), v) for k, v in headers)
        if method == "OPTIONS":
            return resp(204, "No Content", [("Allow", ", ".join(METHODS)), ("DAV", "1, 2"),
                                            ("Accept-Patch", "text/plain")])
        if method not in METHODS:
            return resp(501, "Not Implemented", body=b"not implemented\n")
        if method == "TRACE":
            return resp(200, "OK", [("Content-Type", "message/http")], head + b"\r\n\r\n")
        p = self.fs(target)
        exists = os.path.lexists(p)
        if method in ("GET", "HEAD"):
            if not exists:
                return resp(404, "Not Found", body=b"missing\n", head_only=method == "HEAD")
            data = ("\n".join(sorted(os.listdir(p))) + "\n").encode() if os.path.isdir(p) \
                else open(p, "rb").read()
            return resp(200, "OK", [("Content-Type", "application/octet-stream")], data,
                        head_only=method == "HEAD")
        if method == "PROPFIND":
            if not exists:
                return resp(404, "Not Found", body=b"missing\n")
            xml = b'<?xml version="1.0"?><multistatus xmlns="DAV:"/>'
            return resp(207, "Multi-Status", [("Content-Type", "application/xml")], xml)
        if method == "PUT":
            with open(p, "wb") as f:
                f.write(body)
            return resp(204 if exists else 201, "No Content" if exists else "Created")
        if method in ("POST", "PATCH"):
            with open(p, "ab") as f:
                f.write(body + method.encode() + b"\n")
            return resp(200, "OK", body=b"done\n")
        if method == "PROPPATCH":
            with open(p + ".props", "ab") as f:
                f.write(body + b"PROPPATCH\n")
            return resp(207, "Multi-Status", body=b"<multistatus xmlns='DAV:'/>")
        if method == "LOCK":
            with open(p + ".lock", "wb") as f:
                f.write(b"locked\n")
            return resp(200, "OK", [("Lock-Token", "<urn:uuid:apply>")], b"<prop/>")
        if method == "UNLOCK":
            if os.path.exists(p + ".lock"):
                os.unlink(p + ".lock")
            return resp(204, "No Content")
        if method == "DELETE":
            if not exists:
                return resp(404, "Not Found", body=b"missing\n")
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
            for side in (p + ".props", p + ".lock"):  # its properties and lock go with it
                if os.path.exists(side):
                    os.unlink(side)
            return resp(204, "No Content")
        if method == "MKCOL":
            if exists:
                return resp(405, "Method Not Allowed", [("Allow", ", ".join(METHODS))])
            os.mkdir(p)
            return resp(201, "Created")
        if method in ("COPY", "MOVE"):
            if "destination" not in h:
                return resp(400, "Bad Request", body=b"no Destination\n")
            if not exists:
                return resp(404, "Not Found", body=b"missing\n")
            d = self.fs(h["destination"])
            new = not os.path.lexists(d)
            if os.path.isdir(p):
                shutil.copytree(p, d, dirs_exist_ok=True)
            else:
                shutil.copyfile(p, d)
            if method == "MOVE":
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
            return resp(201 if new else 204, "Created" if new else "No Content")
        return resp(501, "Not Implemented")


def serve(conn, app, log, lock):
    try:
        conn.settimeout(10)
        req = read_request(conn)
        if req is None:
            return
        method, target, headers, head, body = req
        with lock:
            log.write(json.dumps({"method": method, "target": target, "headers": headers,
                                  "body_bytes": len(body)}) + "\n")
            log.flush()
            try:
                out = app.handle(*req)
            except PermissionError:
                out = resp(403, "Forbidden", body=b"outside the root\n")
            except FileNotFoundError:
                out = resp(409, "Conflict", body=b"no parent\n")
            except OSError as e:
                out = resp(500, "Internal Server Error", body=str(e).encode() + b"\n")
        conn.sendall(out)
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def main(argv):
    if not argv or not os.path.isdir(argv[0]):
        sys.stderr.write("usage: apply_server.py ROOT [--log FILE]\n")
        return 2
    app = Applier(argv[0])
    log = open(argv[argv.index("--log") + 1] if "--log" in argv else os.devnull, "a")
    lock = threading.Lock()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening on http://127.0.0.1:%d/" % srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, app, log, lock), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
