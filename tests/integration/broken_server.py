#!/usr/bin/env python3
"""A deliberately broken HTTP/1.1 server for testing `verbd probe`.

usage: broken_server.py MODE [--log FILE]

Listens on 127.0.0.1:0 and prints "listening on http://127.0.0.1:PORT/".
Every request is appended to FILE as one JSON line (method, target,
headers, body bytes) so that tests can check what the probe sent.  It never
changes anything: whatever a request asks, the server only answers.

Modes (the same behaviour for every path):

  broken   every inconsistency the probe knows, in one run:
           OPTIONS      200, Allow: GET, HEAD, OPTIONS, POST, DELETE, TRACE
           OPTIONS *    400
           GET          200 with ETag/Content-Type/Last-Modified/Content-Length
           HEAD         200 with different values of all four, and a body
           VERBDPROBE   200 (a made-up method accepted)
           POST         501 with Retry-After (and listed in Allow)
           DELETE       405 with an Allow that disagrees with OPTIONS and
                        does not list DELETE ... listed in OPTIONS' Allow
           PUT          201 (so that --unsafe has its scratch resource; the
                        server still writes nothing)
           PROPPATCH    405 without Allow
           PATCH        200 (not in Allow)
           PROPFIND     malformed head (obs-fold)
           MKCOL        Transfer-Encoding and Content-Length together
           COPY         malformed chunked body
           MOVE         closes before the Content-Length is complete
           LOCK         closes without answering
           TRACE        echoes the request, Cookie included
           QUERY        204 with content
  nohead   GET works, HEAD is 501 although listed in Allow; the made-up
           method gets 405 (a SHOULD, reported as a note)
  good     consistent: GET/HEAD/OPTIONS, PUT answers 412 to an If-Match
           and 500 otherwise (it never writes), everything else 501
  auth     like good, but 401 without "Authorization: Bearer s3cret"
  endless-header   a header section that never ends
  endless-body     a 200 whose body never ends (no Content-Length)
  trickle  a head sent one byte every 0.2 s, forever
  garbage  answers with something that is not HTTP
  silent   accepts, reads the request, closes without a word
"""

import json
import socket
import sys
import threading
import time

MODES = ("broken", "nohead", "good", "auth", "endless-header", "endless-body", "trickle",
         "garbage", "silent")
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


def resp(status, reason, headers=(), body=b"", length=True):
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Date: " + DATE, "Server: broken/1.0"]
    lines += ["%s: %s" % h for h in headers]
    if length:
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Request:
    def __init__(self, head, body):
        first, *rest = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = first.split(" ", 2)
        self.headers = []
        for line in rest:
            if line:
                k, v = line.split(":", 1)
                self.headers.append((k.strip(), v.strip()))
        self.head = head
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    head, rest = data.split(b"\r\n\r\n", 1)
    req = Request(head, b"")
    n = int(req.header("Content-Length") or 0)
    conn.settimeout(0.05)
    body = rest
    try:
        while len(body) < n:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        # Anything beyond the declared length is logged too.
        chunk = conn.recv(65536) if len(body) >= n else b""
        body += chunk
    except socket.timeout:
        pass
    req.body = body
    return req


def handle_broken(req):
    m = req.method
    if m == "OPTIONS" and req.target == "*":
        return resp(400, "Bad Request", body=b"no\n")
    if m == "OPTIONS":
        return resp(200, "OK", [("Allow", "GET, HEAD, OPTIONS, POST, DELETE, TRACE")])
    if m == "GET":
        return resp(200, "OK", [("ETag", '"a"'), ("Content-Type", "text/plain"),
                                ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")], b"hello")
    if m == "HEAD":
        return resp(200, "OK", [("ETag", '"b"'), ("Content-Type", "text/html"),
                                ("Last-Modified", "Tue, 02 Jan 2024 00:00:00 GMT"),
                                ("Content-Length", "6")], length=False) + b"hello!"
    if m == "VERBDPROBE":
        return resp(200, "OK", body=b"sure\n")
    if m == "POST":
        return resp(501, "Not Implemented", [("Retry-After", "120")], b"later\n")
    if m == "DELETE":
        return resp(405, "Method Not Allowed", [("Allow", "GET, HEAD")], b"no\n")
    if m == "PUT":
        return resp(201, "Created", body=b"created (not really)\n")
    if m == "PROPPATCH":
        return resp(405, "Method Not Allowed", body=b"no\n")
    if m == "PATCH":
        return resp(200, "OK", body=b"patched (not really)\n")
    if m == "PROPFIND":
        return (b"HTTP/1.1 207 Multi-Status\r\nX-Folded: a\r\n  b\r\n"
                b"Content-Length: 0\r\n\r\n")
    if m == "MKCOL":
        return (b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")
    if m == "COPY":
        return (b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    if m == "MOVE":
        return (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n"
                b"Connection: close\r\n\r\nonly ten..")
    if m == "LOCK":
        return b""
    if m == "TRACE":
        return resp(200, "OK", [("Content-Type", "message/http")], req.head + b"\r\n\r\n")
    if m == "QUERY":
        return resp(204, "No Content", length=False) + b"surprise"
    return resp(501, "Not Implemented", body=b"?\n")


def handle_nohead(req):
    m = req.method
    if m == "OPTIONS":
        return resp(204, "No Content", [("Allow", "GET, HEAD, OPTIONS")], length=False)
    if m == "GET":
        return resp(200, "OK", [("Content-Type", "text/plain")], b"hello")
    if m == "VERBDPROBE":
        return resp(405, "Method Not Allowed", [("Allow", "GET, HEAD, OPTIONS")], b"no\n")
    return resp(501, "Not Implemented", body=b"" if m == "HEAD" else b"no\n")


def handle_good(req):
    m = req.method
    if m == "OPTIONS":
        return resp(204, "No Content", [("Allow", "GET, HEAD, OPTIONS, PUT")], length=False)
    fields = [("ETag", '"v1"'), ("Content-Type", "text/plain"),
              ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]
    if m == "GET":
        return resp(200, "OK", fields, b"hello")
    if m == "HEAD":
        return resp(200, "OK", fields + [("Content-Length", "5")], length=False)
    if m == "PUT":
        if req.header("If-Match") not in (None, '"v1"', "*"):
            return resp(412, "Precondition Failed", body=b"etag mismatch\n")
        return resp(500, "Internal Server Error", body=b"the test server never writes\n")
    return resp(501, "Not Implemented", body=b"not here\n")


def handle_auth(req):
    if req.header("Authorization") != "Bearer s3cret":
        return resp(401, "Unauthorized", [("WWW-Authenticate", 'Bearer realm="test"')],
                    b"" if req.method == "HEAD" else b"who?\n")
    return handle_good(req)


def stream(conn, first, piece, delay=0.0, limit=60.0):
    """Sends `first`, then `piece` again and again until the peer goes away."""
    end = time.monotonic() + limit
    try:
        conn.sendall(first)
        while time.monotonic() < end:
            conn.sendall(piece)
            if delay:
                time.sleep(delay)
    except OSError:
        pass


def serve(conn, mode, log, lock):
    try:
        conn.settimeout(10)
        req = read_request(conn)
        if req is None:
            return
        with lock:
            log.write(json.dumps({"method": req.method, "target": req.target,
                                  "headers": req.headers,
                                  "body": req.body.decode("latin-1")}) + "\n")
            log.flush()
        conn.settimeout(10)
        if mode == "endless-header":
            stream(conn, b"HTTP/1.1 200 OK\r\n", b"X-Filler: " + b"a" * 100 + b"\r\n")
        elif mode == "endless-body":
            stream(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
                   b"x" * 16384)
        elif mode == "trickle":
            data = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: yes\r\n" * 1000
            for i in range(len(data)):
                try:
                    conn.sendall(data[i:i + 1])
                except OSError:
                    break
                time.sleep(0.2)
        elif mode == "garbage":
            conn.sendall(b"<html><body>hello</body></html>\n")
        elif mode == "silent":
            pass
        else:
            out = {"broken": handle_broken, "nohead": handle_nohead, "good": handle_good,
                   "auth": handle_auth}[mode](req)
            if out:
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
    if not argv or argv[0] not in MODES:
        sys.stderr.write("usage: broken_server.py {%s} [--log FILE]\n" % ",".join(MODES))
        return 2
    mode = argv[0]
    log_path = argv[argv.index("--log") + 1] if "--log" in argv else "/dev/null"
    log = open(log_path, "a")
    lock = threading.Lock()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening on http://127.0.0.1:%d/" % srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode, log, lock), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
