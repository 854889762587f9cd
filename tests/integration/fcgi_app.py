"""A scriptable FastCGI responder for the fastcgi module's protocol tests
(Python 3 standard library only).

PHP-FPM (peers.PhpFpm) shows that real applications work; this one shows
what verbd sends and how it copes with what an application may send
wrong.  It listens on a Unix socket in a temporary directory, serves each
connection in a thread, reads records strictly (FastCGI 1.0) and records
every request: its BEGIN_REQUEST flags, PARAMS, STDIN, whether an
ABORT_REQUEST came, and on which connection.

    app = FcgiApp(handler)          # handler(app_request) writes the answer
    app.start(); ... "fastcgi unix:%s;" % app.socket ...; app.stop()
    app.requests, app.accepted, app.errors

A handler gets a `Request` with .params (dict of str), .stdin (bytes),
.keep_conn, and calls .stdout(bytes), .stderr(bytes), .end(status=0),
.raw(bytes) (anything on the wire), .close() (the connection, at once).
"""

import os
import shutil
import socket
import struct
import tempfile
import threading
import time

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7


def record(rtype, rid, content=b"", padding=0):
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), padding) + content + b"\0" * padding


def stream(rtype, rid, data):
    out = b""
    for i in range(0, len(data), 65535):
        out += record(rtype, rid, data[i:i + 65535])
    return out


def parse_pairs(data):
    params, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] & 0x80:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(data[i])
                i += 1
        name = data[i:i + lens[0]].decode("latin-1")
        i += lens[0]
        params[name] = data[i:i + lens[1]].decode("latin-1")
        i += lens[1]
    return params


class Request:
    def __init__(self, app, conn, rid, keep_conn, conn_no):
        self.app, self.conn, self.id = app, conn, rid
        self.keep_conn = keep_conn
        self.connection = conn_no
        self.params = {}
        self.stdin = b""
        self.aborted = False
        self.closed = False

    def raw(self, data):
        try:
            self.conn.sendall(data)
        except OSError:
            self.closed = True

    def stdout(self, data):
        self.raw(stream(STDOUT, self.id, data))

    def stderr(self, data):
        self.raw(stream(STDERR, self.id, data))

    def end(self, app_status=0):
        self.raw(record(STDOUT, self.id) + record(END_REQUEST, self.id,
                                                    struct.pack(">IB3x", app_status, 0)))

    def close(self):
        self.closed = True
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def wait_abort(self, timeout):
        """Reads on until an ABORT_REQUEST or the connection's end: True if
        either came within timeout."""
        self.conn.settimeout(timeout)
        try:
            while True:
                head = self.app._read(self.conn, 8)
                if head is None:
                    return True
                _, rtype, _, n, pad = struct.unpack(">BBHHBx", head)
                self.app._read(self.conn, n + pad)
                if rtype == ABORT_REQUEST:
                    self.aborted = True
                    return True
        except OSError:
            return False


def echo(req):
    """The params and body back as text, one NAME=VALUE line each."""
    body = "".join("%s=%s\n" % kv for kv in sorted(req.params.items())).encode()
    body += b"\nstdin=" + req.stdin
    req.stdout(b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    req.end()


class FcgiApp:
    def __init__(self, handler=echo):
        self.handler = handler
        self.dir = tempfile.mkdtemp(prefix="verbd-fcgi-")
        self.socket = os.path.join(self.dir, "app.sock")
        self.requests, self.errors = [], []
        self.accepted = 0
        self.lock = threading.Lock()
        self.threads = []
        self.sock = None
        self.stopping = False

    def start(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.socket)
        self.sock.listen(64)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        shutil.rmtree(self.dir, True)

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                n = self.accepted
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            t.start()

    @staticmethod
    def _read(c, n):
        data = b""
        while len(data) < n:
            part = c.recv(n - len(data))
            if not part:
                return None
            data += part
        return data

    def _serve(self, c, conn_no):
        c.settimeout(30)
        try:
            while True:
                req = self._read_request(c, conn_no)
                if req is None:
                    return
                with self.lock:
                    self.requests.append(req)
                self.handler(req)
                if req.closed or not req.keep_conn:
                    c.close()
                    return
        except OSError:
            pass
        except Exception as e:  # a protocol error by verbd
            self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _read_request(self, c, conn_no):
        req, params, got_params_end = None, b"", False
        while True:
            head = self._read(c, 8)
            if head is None:
                if req is not None:
                    raise ValueError("connection closed mid-request")
                return None
            version, rtype, rid, n, pad = struct.unpack(">BBHHBx", head)
            if version != 1:
                raise ValueError("version %d" % version)
            content = self._read(c, n + pad)
            if content is None:
                raise ValueError("connection closed mid-record")
            content = content[:n]
            if rtype == BEGIN_REQUEST:
                if req is not None or n != 8:
                    raise ValueError("BEGIN_REQUEST twice or malformed")
                role, flags = struct.unpack(">HB5x", content)
                if role != 1:
                    raise ValueError("role %d" % role)
                req = Request(self, c, rid, bool(flags & 1), conn_no)
            elif req is None or rid != req.id:
                raise ValueError("record %d before BEGIN_REQUEST or for request %d" % (rtype, rid))
            elif rtype == PARAMS:
                if got_params_end:
                    raise ValueError("PARAMS after its end")
                if n == 0:
                    got_params_end = True
                    req.params = parse_pairs(params)
                params += content
            elif rtype == STDIN:
                if not got_params_end:
                    raise ValueError("STDIN before the end of PARAMS")
                if n == 0:
                    return req
                req.stdin += content
            elif rtype == ABORT_REQUEST:
                req.aborted = True
                return req
            else:
                raise ValueError("record type %d" % rtype)


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()
