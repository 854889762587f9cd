"""A scriptable upstream HTTP/1.1 server for the reverse-proxy tests
(Python 3 standard library only).

The proxy tests put verbd in front of an `Upstream` and check, from both
sides, what crossed the gateway.  An Upstream listens on 127.0.0.1 (a free
port) or on a Unix socket in a temporary directory, serves every accepted
connection in a thread of its own, and records everything it received:

    up = Upstream(echo())                      # default behaviour: echo
    up.on("PATCH", None, respond(501))         # PATCH: 501, any path
    up.on(None, "/slow/", slow_body(4096, 512, 0.05))
    up.start()                                 # or `with Upstream(...) as up:`
    ... point verbd at up.server ("127.0.0.1:PORT" or "unix:/path") ...
    up.accepted                   # connections accepted
    up.requests                   # every Request, in arrival order
    up.connections                # every Connection (each with .requests)
    up.errors                     # framing mistakes by the client, handler
                                  # failures: a proxy test asserts it is empty
    up.stop()                     # closes everything, joins every thread

Behaviour is chosen per request: first a handler queued with `queue()`
(consumed once each), then the first route added with `on(method, path,
handler)` that matches, then the default handler given to the
constructor (`echo()` when none).  A handler is a function of one
argument, the `Exchange`, which reads the request body at its own pace and
writes the answer: `respond()`, `interim()`, `send_head()` + `send()` /
`send_chunk()` / `end_chunks()`, raw bytes with `send()`, `reset()` (an
RST: SO_LINGER 0 and close), `close()`, `sleep()`.  The functions below
(`respond`, `echo`, `methods`, `refuse_405`, `options_star`, `slow_body`,
`stall`, `stall_mid_body`, `download`, `reset_mid_head`, `reset_mid_body`,
`close_mid_body`, `close_without_answer`, `reset_without_answer`, `raw`,
`continue_then`, `final_without_continue`, `early_hints`,
`websocket_echo`, `read_slowly`) build the canned ones.

Requests are parsed strictly (RFC 9112): a bad request line, a bare CR or
LF, obs-fold, a field name or value that is not valid, Content-Length and
Transfer-Encoding together, differing or duplicate Content-Lengths, a
malformed chunk, bytes after a body that do not begin a request (a body
longer than its Content-Length) and bytes sent on a connection after it
was to be closed are each recorded in `errors`; the connection then gets a
400 (when no answer had begun) and is closed.

After a handler returns, the connection is kept for the next request
unless the handler closed or reset it, the request asked to close
(`Connection: close`, HTTP/1.0 without keep-alive), the response said
`Connection: close` or was delimited by the close, `close_after_each` is
set, or the request body was still unread behind an `Expect:
100-continue` that got no 100.  A body the handler left unread is read
(and checked) before the next request.
"""

import base64
import hashlib
import http
import json
import os
import re
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
import traceback

from harness import Conn, Headers

TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REQUEST_LINE_RE = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) (HTTP/[0-9]\.[0-9])$")
# A field value: no CTL except HTAB (obs-text allowed), RFC 9110 §5.5.
BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOK = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QSTR = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# chunk = chunk-size [ chunk-ext ] CRLF, chunk-ext with BWS (RFC 9112 §7.1.1).
CHUNK_LINE_RE = re.compile(rb"^([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*" + _TOK + rb"(?:[ \t]*=[ \t]*(?:"
                           + _TOK + rb"|" + _QSTR + rb"))?)*)$")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
              "trailer", "proxy-authenticate", "proxy-authorization")


class FramingError(Exception):
    """The client (the proxy under test) sent something that is not valid
    HTTP/1.1; recorded in Upstream.errors."""


class Gone(Exception):
    """The peer went away, or the Upstream is stopping."""


def reason_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status %d" % status


def pattern(offset, n):
    """n bytes of a deterministic body pattern starting at `offset` (each
    byte is its offset modulo 251), so that long streamed bodies can be
    checked without keeping them."""
    start = offset % 251
    base = bytes(range(251))
    reps = (start + n) // 251 + 1
    return (base * reps)[start:start + n]


def _field_list(headers):
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def _has(fields, name):
    name = name.lower()
    return any(k.lower() == name for k, _ in fields)


def _tokens(values):
    out = []
    for v in values:
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

class Request:
    """One request as received.  Body fields fill in while the handler (or
    the server, after it) reads the body."""

    def __init__(self, conn, index):
        self.conn = conn                  # the Connection it came on
        self.index = index                # 0 for the first on its connection
        self.started = time.monotonic()
        self.method = self.target = self.version = None
        self.fields = []                  # [(name, value)] as received
        self.raw_head = b""
        self.chunked = False              # body came with chunked framing
        self.content_length = None        # the declared length, if any
        self.body = bytearray()           # the first Upstream.keep_body bytes
        self.body_length = 0              # every body byte received
        self.body_sha256 = hashlib.sha256()
        self.body_complete = False
        self.chunks = 0                   # data chunks received (chunked)
        self.chunk_extensions = []        # the extensions as received
        self.trailers = []                # [(name, value)]
        self.progress = []                # [(seconds since the head, body bytes so far)]
        self.errors = []                  # framing mistakes in this request
        self.interims = []                # statuses of 1xx sent
        self.status = None                # the final status sent
        self.response_head = b""          # the final head as sent
        self.response_bytes = 0           # every byte sent for this request
        self.ws_messages = []             # [(opcode, payload)] received (WebSocket)

    @property
    def headers(self):
        return Headers(self.fields)

    @property
    def path(self):
        return (self.target or "").split("?", 1)[0]

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def header_all(self, name):
        return self.headers.get_all(name)

    def names(self):
        return [k for k, _ in self.fields]

    def connection_tokens(self):
        return _tokens(self.header_all("Connection"))

    def digest(self):
        return self.body_sha256.hexdigest()

    def __repr__(self):
        return "<Request #%d.%d %s %s %s fields=%r body=%d%s status=%s>" % (
            self.conn.id, self.index, self.method, self.target, self.version, self.fields,
            self.body_length, " chunked" if self.chunked else "", self.status)


class Connection:
    """One accepted connection."""

    def __init__(self, cid, peer):
        self.id = cid
        self.peer = peer
        self.opened = time.monotonic()
        self.closed = None                # time.monotonic() when closed
        self.end = None                   # how it ended (see Upstream docs)
        self.requests = []
        self.after_close = b""            # bytes received after it was to close

    def __repr__(self):
        return "<Connection #%d %d requests end=%s>" % (self.id, len(self.requests), self.end)


# --------------------------------------------------------------------------
# The wire: strict reading
# --------------------------------------------------------------------------

class _Wire:
    def __init__(self, sock, up):
        self.sock = sock
        self.up = up
        self.buf = b""
        self.eof = False

    def fill(self, max_n=65536):
        """Reads once into buf; returns the number of bytes (0 at EOF)."""
        if self.eof:
            return 0
        if self.up._stopping.is_set():
            raise Gone("stopping")
        try:
            data = self.sock.recv(max_n)
        except socket.timeout:
            raise Gone("read timed out") from None
        except OSError as e:
            raise Gone("read failed: %s" % e) from None
        if not data:
            self.eof = True
            return 0
        self.buf += data
        return len(data)

    def line(self, what, limit):
        """A CRLF-terminated line (without it); a bare CR or LF is an error."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                break
            if len(self.buf) > limit:
                raise FramingError("%s longer than %d bytes" % (what, limit))
            if self.fill() == 0:
                raise FramingError("connection closed inside %s: %r" % (what, self.buf[:200]))
        if i == 0 or self.buf[i - 1:i] != b"\r":
            raise FramingError("bare LF in %s: %r" % (what, self.buf[:i + 1][:200]))
        line, self.buf = self.buf[:i - 1], self.buf[i + 1:]
        if b"\r" in line:
            raise FramingError("bare CR in %s: %r" % (what, line[:200]))
        return line

    def exact(self, n, what):
        while len(self.buf) < n:
            if self.fill(max(65536, n - len(self.buf))) == 0:
                raise FramingError("connection closed inside %s (%d of %d bytes)" % (what, len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Gone("send timed out") from None
        except OSError as e:
            raise Gone("send failed: %s" % e) from None


def _parse_fields(lines, what):
    fields = []
    for ln in lines:
        if ln[:1] in (b" ", b"\t"):
            raise FramingError("obs-fold in %s: %r" % (what, ln[:200]))
        if b":" not in ln:
            raise FramingError("%s line without a colon: %r" % (what, ln[:200]))
        name, value = ln.split(b":", 1)
        if not TOKEN_RE.match(name):
            raise FramingError("bad field name in %s: %r" % (what, name[:200]))
        value = value.strip(b" \t")
        if BAD_VALUE_RE.search(value):
            raise FramingError("control character in the %s field %r" % (what, name))
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return fields


# --------------------------------------------------------------------------
# The handler's view of one exchange
# --------------------------------------------------------------------------

class Exchange:
    """One request and its answer, given to the handler.

    Reading: `body()` (everything), `read_body(n)` (at most n bytes, b""
    at the end; reads the socket no faster than asked), `body_done`.
    Writing: `respond()`, `interim()`, `send_head()`, `send()`,
    `send_chunk()`, `end_chunks()`.  Connection: `reset()`, `close()`,
    `close_after = True`, `tunnel` (set by handlers that take the
    connection over, e.g. after a 101).  `sleep(s)` waits, returning early
    (with Gone) when the Upstream stops."""

    def __init__(self, up, wire, conn, req):
        self.up = up
        self.wire = wire
        self.conn = conn
        self.request = req
        self.final_sent = False
        self.continue_sent = False
        self.ended = False             # the connection is gone (reset/close)
        self.tunnel = False
        self.close_after = up.close_after_each
        self._body_left = 0            # left in the current chunk / the CL body
        self._chunk_open = False
        self._chunk_started = False
        if req.chunked:
            self._body_left = 0
        elif req.content_length:
            self._body_left = req.content_length
        else:
            req.body_complete = True

    # -- convenience --
    @property
    def method(self):
        return self.request.method

    @property
    def path(self):
        return self.request.path

    def header(self, name, default=None):
        return self.request.header(name, default)

    @property
    def client_wants_close(self):
        req = self.request
        toks = req.connection_tokens()
        if "close" in toks:
            return True
        return req.version == "HTTP/1.0" and "keep-alive" not in toks

    @property
    def will_close(self):
        return self.close_after or self.client_wants_close

    @property
    def expects_continue(self):
        return (self.request.header("Expect") or "").strip().lower() == "100-continue"

    def sleep(self, seconds):
        if self.up._stopping.wait(seconds):
            raise Gone("stopping")

    # -- reading the body --
    @property
    def body_done(self):
        return self.request.body_complete

    def _record(self, data):
        req = self.request
        if not data:
            return
        room = self.up.keep_body - len(req.body)
        if room > 0:
            req.body += data[:room]
        req.body_length += len(data)
        req.body_sha256.update(data)
        req.progress.append((time.monotonic() - req.started, req.body_length))

    def _take(self, n):
        """At most n bytes of the current CL body or chunk; recv only as
        much as asked, so that a slow reader applies backpressure."""
        n = min(n, self._body_left)
        if not self.wire.buf:
            if self.wire.fill(n) == 0:
                raise FramingError("connection closed inside the request body (%d bytes received, %d missing)"
                                   % (self.request.body_length, self._body_left))
        data, self.wire.buf = self.wire.buf[:n], self.wire.buf[n:]
        self._body_left -= len(data)
        return data

    def read_body(self, n=65536):
        """At most n bytes of the request body; b"" when it is complete."""
        req = self.request
        if req.body_complete:
            return b""
        try:
            if not req.chunked:
                data = self._take(n)
                self._record(data)
                if self._body_left == 0:
                    req.body_complete = True
                return data
            while True:
                if self._chunk_open and self._body_left > 0:
                    data = self._take(n)
                    self._record(data)
                    if self._body_left == 0:
                        if self.wire.exact(2, "the CRLF after a chunk") != b"\r\n":
                            raise FramingError("chunk data longer than its size (no CRLF after %d bytes)"
                                               % req.body_length)
                        self._chunk_open = False
                    return data
                line = self.wire.line("a chunk-size line", 4096)
                m = CHUNK_LINE_RE.match(line)
                if not m:
                    raise FramingError("malformed chunk-size line: %r" % line[:200])
                digits = m.group(1).lstrip(b"0") or b"0"
                if len(digits) > 15:
                    raise FramingError("chunk size overflows: %r" % line[:200])
                size = int(digits, 16)
                if m.group(2):
                    req.chunk_extensions.append(m.group(2).decode("latin-1"))
                if size == 0:
                    lines = []
                    total = 0
                    while True:
                        ln = self.wire.line("the trailer section", self.up.max_head)
                        if ln == b"":
                            break
                        total += len(ln) + 2
                        if total > self.up.max_head:
                            raise FramingError("trailer section too large")
                        lines.append(ln)
                    req.trailers = _parse_fields(lines, "trailer")
                    req.body_complete = True
                    return b""
                req.chunks += 1
                self._chunk_open = True
                self._body_left = size
        except FramingError as e:
            req.errors.append(str(e))
            raise

    def body(self):
        """The whole request body (reads what is left; returns what is kept,
        at most Upstream.keep_body bytes)."""
        while self.read_body(1 << 20):
            pass
        return bytes(self.request.body)

    def drain(self):
        while self.read_body(1 << 20):
            pass

    # -- writing --
    def send(self, data):
        """Raw bytes, verbatim."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.wire.send(data)
        self.request.response_bytes += len(data)

    def _head_bytes(self, status, fields, reason):
        lines = ["HTTP/1.1 %d %s" % (status, reason if reason is not None else reason_phrase(status))]
        lines += ["%s: %s" % (k, v) for k, v in fields]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def interim(self, status=100, headers=(), reason=None):
        """A 1xx response (100 Continue, 103 Early Hints, ...)."""
        self.send(self._head_bytes(status, _field_list(headers), reason))
        self.request.interims.append(status)
        if status == 100:
            self.continue_sent = True

    def send_head(self, status, headers=(), reason=None):
        """A final response head exactly as given (no fields added)."""
        head = self._head_bytes(status, _field_list(headers), reason)
        self.final_sent = True
        self.request.status = status
        self.request.response_head = head
        self.send(head)
        fields = _field_list(headers)
        if "close" in _tokens(v for k, v in fields if k.lower() == "connection"):
            self.close_after = True

    def send_chunk(self, data):
        if data:
            self.send(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunks(self, trailers=()):
        t = b"".join(("%s: %s\r\n" % kv).encode("latin-1") for kv in _field_list(trailers))
        self.send(b"0\r\n" + t + b"\r\n")

    def respond(self, status=200, headers=(), body=b"", chunked=False, trailers=None, reason=None,
                chunk_size=None, length=True):
        """A complete response.  Content-Length is added (unless chunked,
        given, or the status has no content), Transfer-Encoding: chunked
        when chunked, Connection: close when the connection will close;
        a HEAD gets the head only.  length=False sends the body delimited
        by the close."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if 100 <= status < 200:
            return self.interim(status, headers, reason)
        fields = _field_list(headers)
        no_content = status in (204, 304)
        if not no_content and not _has(fields, "Content-Length") and not _has(fields, "Transfer-Encoding"):
            if chunked:
                fields.append(("Transfer-Encoding", "chunked"))
            elif length:
                fields.append(("Content-Length", str(len(body))))
            else:
                self.close_after = True
        if trailers and chunked and not _has(fields, "Trailer"):
            fields.append(("Trailer", ", ".join(k for k, _ in _field_list(trailers))))
        if self.will_close and not _has(fields, "Connection"):
            fields.append(("Connection", "close"))
        self.send_head(status, fields, reason)
        if self.method == "HEAD" or no_content:
            return
        if chunked:
            step = chunk_size or max(1, len(body))
            for i in range(0, len(body), step):
                self.send_chunk(body[i:i + step])
            self.end_chunks(trailers or ())
        else:
            self.send(body)

    # -- the connection --
    def reset(self):
        """Aborts the connection with an RST (SO_LINGER 0, close)."""
        sock = self.wire.sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.up._close_sock(sock)
        self.ended = True
        self.conn.end = "reset by upstream"

    def close(self):
        """Closes the connection (FIN) at once, whatever was said."""
        try:
            self.wire.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.up._close_sock(self.wire.sock)
        self.ended = True
        self.conn.end = "closed by upstream"


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

class Upstream:
    """A scriptable HTTP/1.1 upstream (see the module documentation).

    Upstream(handler=None, unix=False, close_after_each=False,
             rcvbuf=None, sndbuf=None, keep_body=16 MiB, max_head=64 KiB,
             max_fields=100, io_timeout=60, close_linger=1.0, name="upstream")

    Connection.end is one of: "closed by peer", "reset by peer" (or a
    failed read/write), "closed by upstream" (a handler's close() or the
    keep-alive decision), "reset by upstream", "framing error",
    "handler error", "stopped"."""

    def __init__(self, handler=None, unix=False, close_after_each=False, rcvbuf=None, sndbuf=None,
                 keep_body=16 << 20, max_head=65536, max_fields=100, io_timeout=60.0, close_linger=1.0,
                 name="upstream"):
        self.default = handler or echo()
        self.unix = unix
        self.close_after_each = close_after_each
        self.rcvbuf, self.sndbuf = rcvbuf, sndbuf
        self.keep_body = keep_body
        self.max_head = max_head
        self.max_fields = max_fields
        self.io_timeout = io_timeout
        self.close_linger = close_linger
        self.name = name
        self.routes = []                # [(method, path, handler)]
        self._queue = []
        self.connections = []
        self.requests = []
        self.errors = []
        self.accepted = 0
        self.host = self.port = self.path = None
        self._dir = None
        self._lsock = None
        self._thread = None
        self._threads = []
        self._socks = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- scripting --
    def on(self, method, path, handler):
        """Routes requests: method (None: any; a string or a collection),
        path (None: any; "*" for OPTIONS *; exact, or a prefix when it ends
        with "/").  The first route added that matches wins."""
        self.routes.append((method, path, handler))
        return self

    def queue(self, *handlers):
        """Handlers for the next requests, one each, before any route."""
        with self._lock:
            self._queue.extend(handlers)
        return self

    def _pick(self, req):
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        for method, path, handler in self.routes:
            if method is not None:
                if isinstance(method, str) and method != req.method:
                    continue
                if not isinstance(method, str) and req.method not in method:
                    continue
            if path is not None:
                if path.endswith("/"):
                    if not req.path.startswith(path):
                        continue
                elif req.target != path and req.path != path:
                    continue
            return handler
        return self.default

    # -- addresses --
    @property
    def server(self):
        """The address as verbd's `server` directive spells it."""
        return "unix:" + self.path if self.unix else "%s:%d" % (self.host, self.port)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port) if not self.unix else "http://unix:" + self.path

    def connect(self, timeout=5.0):
        """A harness.Conn to this upstream (TCP or Unix), for self-tests."""
        if not self.unix:
            return Conn(self.host, self.port, timeout=timeout)
        c = Conn.__new__(Conn)
        c.host, c.port, c.timeout = self.path, None, timeout
        c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.sock.settimeout(timeout)
        try:
            c.sock.connect(self.path)
        except OSError:
            c.sock.close()
            raise
        c.buf, c.eof, c.reset = b"", False, False
        return c

    # -- life cycle --
    def start(self):
        if self.unix:
            self._dir = tempfile.mkdtemp(prefix="verbd-upstream-")
            self.path = os.path.join(self._dir, "upstream.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            bind_to = self.path
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bind_to = ("127.0.0.1", 0)
        try:
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            if self.sndbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            s.bind(bind_to)
            s.listen(128)
            s.settimeout(0.05)
        except OSError:
            s.close()
            self._remove_dir()
            raise
        self._lsock = s
        if not self.unix:
            self.host, self.port = s.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, name="%s-accept" % self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops accepting, ends every connection, joins every thread and
        removes the Unix socket's directory.  Safe to call twice."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(10)
        self._threads = []
        self._remove_dir()

    def _remove_dir(self):
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        if self._lsock is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- waiting and asserting --
    def wait_for(self, predicate, timeout=5.0, what="the condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("%s: %s not met within %gs; connections %r, errors %r"
                                     % (self.name, what, timeout, self.connections, self.errors))
            time.sleep(0.005)

    def wait_requests(self, n, timeout=5.0):
        self.wait_for(lambda: len(self.requests) >= n, timeout, "%d requests" % n)
        return self.requests[:n]

    def wait_closed(self, conn=None, timeout=5.0):
        """Waits until `conn` (default: every connection) has ended."""
        conns = [conn] if conn is not None else None
        self.wait_for(lambda: all(c.closed is not None for c in (conns or self.connections)), timeout,
                      "connections closed")

    def open_connections(self):
        return [c for c in self.connections if c.closed is None]

    def count(self, method=None, path=None):
        return sum(1 for r in self.requests
                   if (method is None or r.method == method) and (path is None or r.path == path))

    def assert_clean(self):
        if self.errors:
            raise AssertionError("%s recorded errors:\n  %s" % (self.name, "\n  ".join(self.errors)))

    def error(self, conn, msg):
        with self._lock:
            self.errors.append("connection #%d: %s" % (conn.id, msg))

    # -- internals --
    def _close_sock(self, sock):
        with self._lock:
            self._socks.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        try:
            while not self._stopping.is_set():
                try:
                    sock, peer = self._lsock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    if self._stopping.is_set():
                        break
                    continue
                sock.settimeout(self.io_timeout)
                with self._lock:
                    self.accepted += 1
                    conn = Connection(self.accepted, peer)
                    self.connections.append(conn)
                    self._socks.add(sock)
                t = threading.Thread(target=self._serve, args=(sock, conn),
                                     name="%s-conn-%d" % (self.name, conn.id), daemon=True)
                self._threads.append(t)
                t.start()
        finally:
            self._lsock.close()

    def _read_request(self, wire, conn):
        """The next request head, or None at a clean close between requests."""
        while not wire.buf:
            if wire.fill() == 0:
                return None
        req = Request(conn, len(conn.requests))
        req.started = time.monotonic()
        lines = []
        total = 0
        while True:
            what = "the request line" if not lines else "the header section"
            try:
                ln = wire.line(what, self.max_head)
            except FramingError as e:
                if not lines and conn.requests:
                    prev = conn.requests[-1]
                    raise FramingError("%s (after request #%d's body of %d bytes: a body longer than "
                                       "its framing?)" % (e, prev.index, prev.body_length)) from None
                raise
            total += len(ln) + 2
            if total > self.max_head:
                raise FramingError("request head larger than %d bytes" % self.max_head)
            if ln == b"":
                if not lines:
                    raise FramingError("empty line before the request line")
                break
            if not lines:
                # The request line is checked at once: bytes after a body
                # longer than its framing show up here.
                m = REQUEST_LINE_RE.match(ln)
                if not m:
                    after = ""
                    if conn.requests:
                        after = " (after request #%d's body of %d bytes: a body longer than its framing?)" % (
                            conn.requests[-1].index, conn.requests[-1].body_length)
                    raise FramingError("malformed request line %r%s" % (ln[:200], after))
            lines.append(ln)
            if len(lines) > self.max_fields + 1:
                raise FramingError("more than %d header fields" % self.max_fields)
        req.raw_head = b"\r\n".join(lines) + b"\r\n\r\n"
        req.method, req.target, req.version = (g.decode("latin-1") for g in m.groups())
        if req.version not in ("HTTP/1.1", "HTTP/1.0"):
            raise FramingError("unsupported version %s" % req.version)
        req.fields = _parse_fields(lines[1:], "header")
        with self._lock:
            conn.requests.append(req)
            self.requests.append(req)
        try:
            self._check_framing(req)
        except FramingError as e:
            req.errors.append(str(e))
            raise
        return req

    def _check_framing(self, req):
        hosts = req.header_all("Host")
        if req.version == "HTTP/1.1" and len(hosts) != 1:
            raise FramingError("%d Host fields in an HTTP/1.1 request" % len(hosts))
        te = req.header_all("Transfer-Encoding")
        cl = req.header_all("Content-Length")
        if te and cl:
            raise FramingError("Content-Length and Transfer-Encoding together")
        if te:
            codings = _tokens(te)
            if codings != ["chunked"]:
                raise FramingError("Transfer-Encoding %r (only chunked is supported)" % te)
            if req.version == "HTTP/1.0":
                raise FramingError("Transfer-Encoding in an HTTP/1.0 request")
            req.chunked = True
        elif cl:
            if len(cl) > 1:
                raise FramingError("%d Content-Length fields" % len(cl))
            if not re.match(r"^[0-9]{1,18}$", cl[0]):
                raise FramingError("invalid Content-Length %r" % cl[0])
            req.content_length = int(cl[0])

    def _fail(self, wire, conn, req, msg, ex=None):
        self.error(conn, msg)
        if req is not None and msg not in req.errors:
            req.errors.append(msg)
        if ex is None or not (ex.final_sent or ex.ended):
            try:
                wire.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except Gone:
                pass

    def _linger_close(self, wire, conn, record=True):
        """Half-closes, then waits (briefly) for the peer to close, so that
        unread bytes do not turn the close into an RST; bytes that arrive
        meanwhile are a client mistake when `record`."""
        sock = wire.sock
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        late = wire.buf
        deadline = time.monotonic() + self.close_linger
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                r, _, _ = select.select([sock], [], [], min(left, 0.05))
                if not r:
                    continue
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            late += data
        if late and record:
            conn.after_close = late
            self.error(conn, "%d bytes arrived on a connection that was to close: %r" % (len(late), late[:200]))

    def _serve(self, sock, conn):
        wire = _Wire(sock, self)
        req = ex = None
        end = "closed by peer"
        try:
            while True:
                req = ex = None
                req = self._read_request(wire, conn)
                if req is None:
                    end = "closed by peer"
                    break
                ex = Exchange(self, wire, conn, req)
                self._pick(req)(ex)
                if ex.ended:
                    end = conn.end
                    break
                if ex.tunnel:
                    end = conn.end or "closed by upstream"
                    break
                if not ex.final_sent:
                    self._fail(wire, conn, req, "the handler for %s %s sent no final response"
                               % (req.method, req.target), ex)
                    end = "handler error"
                    break
                if not req.body_complete:
                    if ex.expects_continue and not ex.continue_sent and req.body_length == 0:
                        ex.close_after = True
                    else:
                        ex.drain()
                if ex.will_close:
                    # A body still unread (behind an Expect that got no
                    # 100) may yet come: not a mistake then.
                    self._linger_close(wire, conn, record=req.body_complete)
                    end = "closed by upstream"
                    break
        except FramingError as e:
            self._fail(wire, conn, req, str(e), ex)
            end = "framing error"
        except Gone as e:
            end = "stopped" if self._stopping.is_set() else "reset by peer (%s)" % e
        except Exception:
            self.error(conn, "handler failed:\n" + traceback.format_exc())
            end = "handler error"
        finally:
            if not (ex is not None and ex.ended):
                conn.end = end
            self._close_sock(sock)
            conn.closed = time.monotonic()


# --------------------------------------------------------------------------
# Canned behaviours (each returns a handler)
# --------------------------------------------------------------------------

def respond(status=200, headers=(), body=b"", chunked=False, trailers=None, reason=None, chunk_size=None,
            length=True, read_body=True):
    """A fixed answer (after reading the body, unless read_body=False)."""
    def handler(ex):
        if read_body:
            ex.drain()
        ex.respond(status, headers, body, chunked=chunked, trailers=trailers, reason=reason,
                   chunk_size=chunk_size, length=length)
    return handler


def echo_document(req):
    """What echo() answers, as a dict."""
    return {
        "method": req.method, "target": req.target, "version": req.version,
        "headers": [[k, v] for k, v in req.fields],
        "body": bytes(req.body).decode("latin-1"), "body_length": req.body_length,
        "chunked": req.chunked, "trailers": [[k, v] for k, v in req.trailers],
        "connection": req.conn.id, "index": req.index,
    }


def parse_echo(body):
    """The echo document from a response body: headers as harness.Headers,
    body and trailers back as bytes / Headers."""
    d = json.loads(body.decode("utf-8"))
    d["headers"] = Headers([tuple(kv) for kv in d["headers"]])
    d["trailers"] = Headers([tuple(kv) for kv in d["trailers"]])
    d["body"] = d["body"].encode("latin-1")
    return d


def echo(status=200, headers=(), chunked=False):
    """Answers with the request (method, target, version, fields in order
    and case, body, framing, trailers, connection number) as JSON."""
    def handler(ex):
        ex.drain()
        body = json.dumps(echo_document(ex.request)).encode()
        fields = [("Content-Type", "application/json")] + _field_list(headers)
        ex.respond(status, fields, body, chunked=chunked)
    return handler


def methods(implemented, handler=None, allow=True):
    """A small application: methods in `implemented` go to `handler`
    (default: echo); OPTIONS (when implemented) answers 204 with Allow
    (without when allow=False), for a path and for `*`; any other method
    is 501 (implemented for no resource)."""
    implemented = [m.upper() for m in implemented]
    inner = handler or echo()

    def h(ex):
        if ex.method not in implemented:
            ex.drain()
            ex.respond(501, [("Content-Type", "text/plain")], "%s not implemented\n" % ex.method)
        elif ex.method == "OPTIONS":
            ex.drain()
            ex.respond(204, [("Allow", ", ".join(implemented))] if allow else [])
        else:
            inner(ex)
    return h


def refuse_405(allow="GET, HEAD", send_allow=True):
    """405 Method Not Allowed, with Allow (or without: a broken upstream)."""
    fields = [("Content-Type", "text/plain")]
    if send_allow:
        fields.append(("Allow", allow))
    return respond(405, fields, b"method not allowed\n")


def options_star(allow="GET, HEAD, OPTIONS", status=200):
    """OPTIONS * answered with Allow (allow=None: without)."""
    return respond(status, [("Allow", allow)] if allow is not None else [])


def stall(seconds, then=None):
    """Waits `seconds` after reading the request, before the first byte."""
    then = then or respond(200, [("Content-Type", "text/plain")], b"late\n")

    def handler(ex):
        ex.drain()
        ex.sleep(seconds)
        then(ex)
    return handler


def slow_body(total, step, interval, chunked=False, trailers=None, status=200):
    """A head at once, then the body (pattern bytes), `step` bytes every
    `interval` seconds."""
    def handler(ex):
        ex.drain()
        fields = [("Content-Type", "application/octet-stream")]
        fields.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(total)))
        if ex.will_close:
            fields.append(("Connection", "close"))
        ex.send_head(status, fields)
        if ex.method == "HEAD":
            return
        sent = 0
        while sent < total:
            if sent:
                ex.sleep(interval)
            piece = pattern(sent, min(step, total - sent))
            ex.send_chunk(piece) if chunked else ex.send(piece)
            sent += len(piece)
        if chunked:
            ex.end_chunks(trailers or ())
    return handler


def download(total, chunked=False, step=1 << 20, trailers=None):
    """A large body of pattern bytes, as fast as the peer reads it."""
    return slow_body(total, step, 0, chunked=chunked, trailers=trailers)


def stall_mid_body(total, after, seconds, then="finish", chunked=False):
    """Sends the head and `after` body bytes, waits `seconds`, then
    finishes the body ("finish"), resets ("reset") or closes ("close")."""
    def handler(ex):
        ex.drain()
        te = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(total))
        ex.send_head(200, [("Content-Type", "application/octet-stream"), te])
        ex.send_chunk(pattern(0, after)) if chunked else ex.send(pattern(0, after))
        ex.sleep(seconds)
        if then == "reset":
            ex.reset()
        elif then == "close":
            ex.close()
        else:
            rest = pattern(after, total - after)
            if chunked:
                ex.send_chunk(rest)
                ex.end_chunks()
            else:
                ex.send(rest)
    return handler


def reset_mid_head(prefix=b"HTTP/1.1 200 OK\r\nContent-Type: text/pl"):
    """Sends part of a head, then an RST."""
    def handler(ex):
        ex.drain()
        ex.send(prefix)
        ex.reset()
    return handler


def reset_mid_body(total=1000, after=100, chunked=False):
    """Sends the head and `after` of `total` body bytes, then an RST."""
    return _cut_body(total, after, chunked, "reset")


def close_mid_body(total=1000, after=100, chunked=False):
    """Sends the head and `after` of `total` body bytes, then a FIN."""
    return _cut_body(total, after, chunked, "close")


def _cut_body(total, after, chunked, how):
    def handler(ex):
        ex.drain()
        te = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(total))
        ex.send_head(200, [("Content-Type", "application/octet-stream"), te])
        ex.send_chunk(pattern(0, after)) if chunked else ex.send(pattern(0, after))
        time.sleep(0.02)   # let the bytes leave before the RST discards them
        ex.reset() if how == "reset" else ex.close()
    return handler


def close_without_answer(read_body=True):
    """Reads the request, then closes (FIN) without a byte."""
    def handler(ex):
        if read_body:
            ex.drain()
        ex.close()
    return handler


def reset_without_answer():
    """Reads the request, then resets the connection."""
    def handler(ex):
        ex.drain()
        ex.reset()
    return handler


def raw(data, then="keep", read_body=True):
    """Sends `data` verbatim as the answer.  then: "keep" (the connection
    stays up for further requests, so a gateway that reuses it shows as a
    second request on it), "close" (FIN), "reset" (RST), "hold" (keep it
    open without reading until the peer closes or the Upstream stops)."""
    def handler(ex):
        if read_body:
            ex.drain()
        ex.send(data)
        ex.final_sent = True
        if then == "close":
            ex.close()
        elif then == "reset":
            time.sleep(0.02)
            ex.reset()
        elif then == "hold":
            while not ex.wire.eof:
                r, _, _ = select.select([ex.wire.sock], [], [], 0.05)
                if ex.up._stopping.is_set():
                    raise Gone("stopping")
                if r:
                    try:
                        late = ex.wire.sock.recv(65536)
                    except OSError:
                        break
                    if not late:
                        break
                    ex.conn.after_close += late
            ex.ended = True
            ex.conn.end = "closed by peer"
    return handler


def continue_then(final=None, delay=0.0):
    """Expect: 100-continue honoured: (after `delay`) 100 Continue, then
    the body is read and `final` answers (default: echo)."""
    final = final or echo()

    def handler(ex):
        if ex.expects_continue:
            ex.sleep(delay)
            ex.interim(100)
        final(ex)
    return handler


def final_without_continue(status=417, headers=(), body=b"refused\n", then="close"):
    """A final answer at once, without 100 and without reading the body;
    then "close", or "drain" (read the body if it comes, and keep the
    connection)."""
    def handler(ex):
        if then == "close":
            ex.close_after = True
        ex.respond(status, headers, body)
        if then == "drain":
            ex.drain()
    return handler


def early_hints(links=("</style.css>; rel=preload; as=style",), count=1, then=None):
    """`count` 103 Early Hints (each with the Link fields), then `then`
    (default: a 200 "hinted")."""
    then = then or respond(200, [("Content-Type", "text/plain"), ("Link", links[0])], b"hinted\n")

    def handler(ex):
        ex.drain()
        for _ in range(count):
            ex.interim(103, [("Link", l) for l in links])
        then(ex)
    return handler


def read_slowly(step=1024, interval=0.01, then=None):
    """Reads the request body `step` bytes every `interval` seconds (with a
    small rcvbuf on the Upstream this pushes back on the sender); the
    arrivals are in Request.progress.  Then `then`, default a 200 with
    {"received": N, "sha256": HEX} as JSON."""
    def handler(ex):
        while ex.read_body(step):
            ex.sleep(interval)
        if then:
            then(ex)
        else:
            req = ex.request
            ex.respond(200, [("Content-Type", "application/json")],
                       json.dumps({"received": req.body_length, "sha256": req.digest()}))
    return handler


# -- WebSocket (RFC 6455, the minimum for an echo) --

def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + WS_GUID).digest()).decode()


def ws_frame(opcode, payload=b"", mask=True, fin=True):
    """One frame; clients mask (RFC 6455 §5.3), servers do not."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_parse(read_exact):
    """Reads one frame with read_exact(n); returns (fin, opcode, masked,
    payload unmasked)."""
    b0, b1 = read_exact(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(8))[0]
    masked = bool(b1 & 0x80)
    key = read_exact(4) if masked else None
    payload = read_exact(n) if n else b""
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), b0 & 0x0f, masked, payload


def ws_read_frame(conn):
    """One server frame from a harness.Conn: (fin, opcode, masked, payload)."""
    def read_exact(n):
        conn._need(n, "a WebSocket frame")
        out, conn.buf = conn.buf[:n], conn.buf[n:]
        return out
    return ws_parse(read_exact)


def websocket_echo(protocol=None):
    """101 Switching Protocols to a valid WebSocket handshake (else 400),
    then echoes text and binary messages, answers ping with pong and a
    close with a close; an unmasked client frame is an error (close
    1002).  Received messages are in Request.ws_messages."""
    def handler(ex):
        ex.drain()
        req = ex.request
        key = req.header("Sec-WebSocket-Key")
        if ("websocket" not in _tokens(req.header_all("Upgrade")) or "upgrade" not in req.connection_tokens()
                or not key or req.header("Sec-WebSocket-Version") != "13" or ex.method != "GET"):
            ex.close_after = True
            ex.respond(400, [("Content-Type", "text/plain")], b"not a WebSocket handshake\n")
            return
        fields = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ws_accept(key))]
        if protocol:
            fields.append(("Sec-WebSocket-Protocol", protocol))
        ex.send_head(101, fields)
        ex.tunnel = True
        message, mop = b"", None
        while True:
            fin, op, masked, payload = ws_parse(lambda n: ex.wire.exact(n, "a WebSocket frame"))
            if not masked:
                ex.up.error(ex.conn, "unmasked WebSocket frame from the client")
                ex.send(ws_frame(8, struct.pack("!H", 1002), mask=False))
                ex.close()
                return
            if op == 8:
                req.ws_messages.append((8, payload))
                ex.send(ws_frame(8, payload[:2], mask=False))
                ex.close()
                return
            if op == 9:
                req.ws_messages.append((9, payload))
                ex.send(ws_frame(10, payload, mask=False))
                continue
            if op == 10:
                continue
            if op in (1, 2):
                message, mop = payload, op
            elif op == 0:
                message += payload
            if fin and mop is not None:
                req.ws_messages.append((mop, message))
                ex.send(ws_frame(mop, message, mask=False))
                message, mop = b"", None
    return handler
