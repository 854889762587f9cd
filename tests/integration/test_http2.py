"""HTTP/2: h2c with prior knowledge on a plain address (beside HTTP/1.1 on
the same port) and h2 by ALPN on a TLS one.  The method decision is the
same as over HTTP/1.1 (each answer compared with HTTP/1.1's), bodies flow
both ways under flow control, a graceful stop sends GOAWAY and lets the
streams in flight finish, and `http2 off` offers none of it.

The client is Python's h2 package (Debian's python3-h2, found in the
system's dist-packages when the test interpreter is another Python), and
curl for round trips."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError:  # a Python other than the system's: Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings

from hyperframe.frame import DataFrame, Frame, GoAwayFrame, RstStreamFrame, WindowUpdateFrame

from harness import Conn, build_request, free_port, test_certificate, webroot
from method_table import TableCase, http2, table_tests
from test_config import config_server
from test_webdav import LOCKINFO

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BIG = 3 * 1024 * 1024 + 123


class Response:
    def __init__(self):
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.trailers = []
        self.ended = False
        self.reset = None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return "<h2 %s %r %r%s>" % (self.status, self.headers, bytes(self.body[:200]),
                                    " reset %s" % self.reset if self.reset is not None else "")


class H2Client:
    """One HTTP/2 connection: h2c (prior knowledge) or h2 over TLS."""

    def __init__(self, host, port, tls=False, window=None, ack=True, timeout=10,
                 server_name="localhost"):
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.alpn = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            raw = ctx.wrap_socket(raw, server_hostname=server_name)
            self.alpn = raw.selected_alpn_protocol()
        self.sock = raw
        self.timeout = timeout
        self.ack = ack  # give the window back as data arrives
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if window:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.responses = {}
        self.goaway = None
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def start(self, method, path, headers=(), body=None, end=True, authority="localhost"):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", "http"),
              (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hs, end_stream=end and not body)
        self.responses[sid] = Response()
        if body:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        """Sends body on stream sid as the windows allow, until the server
        ends the stream (an answer before the whole body: the rest is not
        wanted)."""
        view = memoryview(body)
        r = self.responses[sid]
        try:
            while view and not r.ended:
                room = min(self.conn.local_flow_control_window(sid),
                           self.conn.max_outbound_frame_size)
                if room <= 0:
                    self.pump(lambda: r.ended or self.conn.local_flow_control_window(sid) > 0)
                    continue
                self.conn.send_data(sid, bytes(view[:room]))
                view = view[room:]
                self.flush()
            if end and not r.ended:
                self.conn.end_stream(sid)
                self.flush()
        except h2.exceptions.StreamClosedError:
            pass

    def pump(self, done, timeout=None):
        """Reads and handles events until done() is true."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            if self.closed:
                raise AssertionError("connection closed before done: %r" % self.responses)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out: %r" % self.responses)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            for ev in self.conn.receive_data(data):
                self.handle(ev)
            self.flush()

    def handle(self, ev):
        r = self.responses.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            r.headers = list(ev.headers)
            r.status = int(dict(ev.headers)[":status"])
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            pass
        elif isinstance(ev, h2.events.DataReceived):
            r.body += ev.data
            if self.ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            r.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if r is not None:
                r.reset = ev.error_code
                r.ended = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait(self, sid, timeout=None):
        r = self.responses[sid]
        self.pump(lambda: r.ended, timeout)
        return r

    def request(self, method, path, headers=(), body=None, authority="localhost"):
        return self.wait(self.start(method, path, headers, body, authority=authority))


def h1_request(host, port, method, target, tls=False, headers=None, body=b""):
    c = Conn(host, port, tls=tls)
    try:
        c.send(build_request(method, target, headers, body=body))
        return c.read_response(method)
    finally:
        c.close()


class Http2Case(unittest.TestCase):
    """A server with a plain and a TLS address, each serving the shared web
    root at /, WebDAV at /dav/ and the same tree read-only at /ro/."""

    server_args = ()
    http2 = None  # "on", "off", or None (the default)

    def setUp(self):
        self.web = webroot()
        self.dir = tempfile.mkdtemp(prefix="verbd-h2-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.dav = os.path.join(self.dir, "dav")
        os.mkdir(self.dav)
        with open(os.path.join(self.dav, "big.bin"), "wb") as f:
            f.write(os.urandom(BIG))
        cert, key = test_certificate()
        self.plain_port, self.tls_port = free_port(), free_port()
        self.access_log = os.path.join(self.dir, "access.log")
        locations = ("location / { static %s; }\n"
                     "    location /dav/ { webdav %s; }\n"
                     "    location /ro/ { webdav %s; methods GET HEAD OPTIONS; }\n"
                     "    location /small/ { webdav %s; max_body 1m; }\n"
                     % (self.web.root, self.dav, self.dav, self.dav))
        own = "http2 %s;\n" % self.http2 if self.http2 else ""
        conf = ("workers 1;\nmax_body 64m;\naccess_log %s;\nshutdown_timeout 20s;\n"
                "server {\n    listen 127.0.0.1:%d;\n    %s    %s}\n"
                "server {\n    listen 127.0.0.1:%d tls;\n    tls_certificate %s;\n"
                "    tls_certificate_key %s;\n    %s    %s}\n"
                % (self.access_log, self.plain_port, own, locations, self.tls_port, cert, key,
                   own, locations))
        self.conf = os.path.join(self.dir, "verbd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.server = config_server(self.conf, *self.server_args).start()
        self.addCleanup(self.server.cleanup)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.server.stop()

    def client(self, tls=False, **kw):
        c = H2Client("127.0.0.1", self.tls_port if tls else self.plain_port, tls=tls, **kw)
        self.clients.append(c)
        if tls:
            self.assertEqual(c.alpn, "h2")
        return c


@table_tests
class MethodDecisionH2c(TableCase):
    """The method-decision table (method_table.py) over h2c: the same
    expectations as over HTTP/1.1 (test_methods.py)."""

    transport = http2


@table_tests
class MethodDecisionH2(TableCase):
    """The same over h2 (TLS, ALPN)."""

    transport = http2
    tls = True


class MethodDecision(Http2Case):
    def test_head_mirrors_get(self):
        c = self.client()
        for target in ("/index.html", "/missing", "/dav/big.bin"):
            with self.subTest(target=target):
                g = c.request("GET", target)
                h = c.request("HEAD", target)
                self.assertEqual(h.status, g.status)
                self.assertEqual(bytes(h.body), b"")
                strip = lambda hs: [(k, v) for k, v in hs if k != "date"]
                self.assertEqual(strip(h.headers), strip(g.headers))

    def test_501_keeps_the_connection(self):
        c = self.client()
        self.assertEqual(c.request("BREW", "/").status, 501)
        self.assertEqual(c.request("GET", "/index.html").status, 200)

    def test_connect_is_501(self):
        c = self.client()
        sid = c.conn.get_next_available_stream_id()
        c.conn.config.validate_outbound_headers = False
        c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.org:443")],
                            end_stream=True)
        c.responses[sid] = Response()
        c.flush()
        self.assertEqual(c.wait(sid).status, 501)

    def test_malformed_request_is_reset(self):
        c = self.client()
        c.conn.config.validate_outbound_headers = False
        c.conn.config.normalize_outbound_headers = False
        sid = c.start("GET", "/index.html", headers=[("connection", "keep-alive")])
        r = c.wait(sid)
        self.assertEqual(r.reset, 1, r)  # PROTOCOL_ERROR
        self.assertEqual(c.request("GET", "/index.html").status, 200)

    def test_access_log_says_http2(self):
        c = self.client()
        c.request("GET", "/index.html")
        c.close()
        deadline = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline and "HTTP/2.0" not in text:
            time.sleep(0.05)
            with open(self.access_log) as f:
                text = f.read()
        self.assertIn('"GET /index.html HTTP/2.0" 200', text)


class Bodies(Http2Case):
    def test_large_download_both_transports(self):
        with open(os.path.join(self.dav, "big.bin"), "rb") as f:
            want = f.read()
        for tls in (False, True):
            with self.subTest(tls=tls):
                r = self.client(tls=tls).request("GET", "/dav/big.bin")
                self.assertEqual(r.status, 200)
                self.assertEqual(int(r.header("content-length")), BIG)
                self.assertTrue(bytes(r.body) == want, "body differs")

    def test_large_frames_both_transports(self):
        # A client that allows 1 MiB frames and windows: DATA of up to
        # 256 KiB, whose file payload goes by the transport's sendfile
        # (docs/http2.md).
        with open(os.path.join(self.dav, "big.bin"), "rb") as f:
            want = f.read()
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.client(tls=tls, window=1 << 20)
                c.conn.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20})
                c.conn.increment_flow_control_window(1 << 24)
                c.flush()
                sizes = []
                orig = c.handle

                def handle(ev, orig=orig, sizes=sizes):
                    if isinstance(ev, h2.events.DataReceived):
                        sizes.append(len(ev.data))
                    orig(ev)
                c.handle = handle
                # h2 applies its settings once the server acknowledged them.
                c.pump(lambda: c.conn.local_settings.max_frame_size == 1 << 20)
                r = c.wait(c.start("GET", "/dav/big.bin"))
                self.assertEqual(r.status, 200)
                self.assertTrue(bytes(r.body) == want, "body differs")
                self.assertEqual(max(sizes), 256 * 1024, sizes[:10])
                self.assertEqual(c.request("GET", "/index.html").status, 200)

    def test_large_upload_with_flow_control(self):
        data = os.urandom(8 * 1024 * 1024 + 7)
        for tls in (False, True):
            with self.subTest(tls=tls):
                c = self.client(tls=tls)
                r = c.request("PUT", "/dav/up-%d.bin" % tls, body=data)
                self.assertEqual(r.status, 201, r)
                with open(os.path.join(self.dav, "up-%d.bin" % tls), "rb") as f:
                    self.assertTrue(f.read() == data, "upload differs")
                back = c.request("GET", "/dav/up-%d.bin" % tls)
                self.assertTrue(bytes(back.body) == data)

    def test_post_body_to_a_refusal(self):
        # The body nobody reads is dropped; the connection goes on.
        c = self.client()
        r = c.request("POST", "/index.html", body=b"x" * 300000)
        self.assertEqual(r.status, 501)
        self.assertEqual(c.request("GET", "/index.html").status, 200)

    def answered_early(self, c):
        """A PUT answered before its body: the head goes out without
        END_STREAM, the 405 of a read-only location comes back first."""
        sid = c.start("PUT", "/ro/x.txt", end=False)
        r = c.responses[sid]
        c.pump(lambda: r.ended)
        self.assertEqual(r.status, 405, r)
        return sid, r

    def test_the_rest_of_an_answered_body_is_dropped(self):
        # The client ends its stream as its request did: no reset (curl
        # takes one in the middle of an upload for a failure).
        c = self.client()
        sid, r = self.answered_early(c)
        c.conn.send_data(sid, b"the rest", end_stream=True)
        c.flush()
        self.assertEqual(c.request("GET", "/index.html").status, 200)
        self.assertIsNone(r.reset, r)

    def test_an_answered_body_that_goes_on_is_reset(self):
        # Past 64 KiB of a body nobody reads, RST_STREAM NO_ERROR.
        c = self.client()
        sid, r = self.answered_early(c)
        sent = 0
        while r.reset is None and sent < (1 << 20):
            if c.conn.local_flow_control_window(sid) < 16384:
                c.pump(lambda: r.reset is not None or
                       c.conn.local_flow_control_window(sid) >= 16384)
                continue
            c.conn.send_data(sid, b"z" * 16384)
            c.flush()
            sent += 16384
        self.assertEqual(r.reset, 0, r)
        self.assertLessEqual(sent, 64 * 1024 + 65535 + 16384)
        self.assertEqual(c.request("GET", "/index.html").status, 200)

    def test_an_answered_body_that_stalls_is_reset(self):
        c = self.client()
        _, r = self.answered_early(c)
        t = time.monotonic()
        c.pump(lambda: r.reset is not None, timeout=5)
        self.assertEqual(r.reset, 0, r)
        self.assertGreater(time.monotonic() - t, 1.5)

    def test_slow_request_body(self):
        c = self.client()
        sid = c.start("PUT", "/dav/slow.txt", end=False)
        for i in range(5):
            c.send_body(sid, b"part %d\n" % i, end=False)
            time.sleep(0.2)
        c.send_body(sid, b"end\n", end=True)
        r = c.wait(sid)
        self.assertEqual(r.status, 201, r)
        with open(os.path.join(self.dav, "slow.txt"), "rb") as f:
            self.assertEqual(f.read(), b"".join(b"part %d\n" % i for i in range(5)) + b"end\n")

    def test_upload_with_content_length(self):
        c = self.client(tls=True)
        body = b"hello over h2\n"
        r = c.request("PUT", "/dav/cl.txt", headers=[("content-length", str(len(body)))],
                      body=body)
        self.assertEqual(r.status, 201)
        self.assertEqual(c.request("GET", "/dav/cl.txt").body, body)

    def test_body_over_max_body(self):
        # A location's max_body holds for a body of no stated length.
        c = self.client()
        sid = c.start("PUT", "/small/huge.bin", end=False)
        c.conn.increment_flow_control_window(1 << 24)
        chunk = b"y" * 16384
        sent = 0
        r = c.responses[sid]
        while sent < (2 << 20) and not r.ended:
            if c.conn.local_flow_control_window(sid) < len(chunk):
                try:
                    c.pump(lambda: r.ended or c.conn.local_flow_control_window(sid) >= len(chunk))
                except AssertionError:
                    break
                continue
            c.conn.send_data(sid, chunk)
            c.flush()
            sent += len(chunk)
        c.pump(lambda: r.ended)
        self.assertEqual(r.status, 413, r)
        self.assertFalse(os.path.exists(os.path.join(self.dav, "huge.bin")))


class Streams(Http2Case):
    def test_many_concurrent_streams(self):
        c = self.client()
        sids = [c.start("GET", "/index.html" if i % 2 else "/missing") for i in range(100)]
        for i, sid in enumerate(sids):
            r = c.wait(sid)
            self.assertEqual(r.status, 200 if i % 2 else 404, r)

    def test_max_concurrent_streams_is_100(self):
        c = self.client()
        c.pump(lambda: c.conn.remote_settings.max_concurrent_streams == 100)

    def test_no_rfc7540_priorities(self):
        # RFC 9218 §2.1: SETTINGS_NO_RFC7540_PRIORITIES (0x9) = 1.
        c = self.client()
        c.pump(lambda: c.conn.remote_settings.get(0x9) == 1)

    def test_a_stalled_stream_does_not_hold_the_others(self):
        # The client gives no window back for the big body: its stream
        # stops; another stream on the same connection is still answered.
        c = self.client(ack=False)
        c.conn.increment_flow_control_window(1 << 24)
        c.flush()
        big = c.start("GET", "/dav/big.bin")
        c.pump(lambda: len(c.responses[big].body) >= 65535)
        small = c.start("GET", "/index.html")
        r = c.wait(small)
        self.assertEqual(r.status, 200)
        self.assertFalse(c.responses[big].ended)
        self.assertEqual(len(c.responses[big].body), 65535)

    def test_h1_and_h2c_on_one_port(self):
        r1 = h1_request("127.0.0.1", self.plain_port, "GET", "/index.html")
        r2 = self.client().request("GET", "/index.html")
        self.assertEqual(r1.status, 200)
        self.assertEqual(bytes(r2.body), r1.body)

    def test_preface_in_pieces(self):
        s = socket.create_connection(("127.0.0.1", self.plain_port), timeout=5)
        try:
            for i in range(0, len(PREFACE), 5):
                s.sendall(PREFACE[i:i + 5])
                time.sleep(0.02)
            s.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
            head = s.recv(9)
            self.assertEqual(head[3], 4, head)  # the server's SETTINGS
        finally:
            s.close()


class GracefulStop(Http2Case):
    def test_goaway_on_sigterm_and_the_stream_in_flight_finishes(self):
        with open(os.path.join(self.dav, "big.bin"), "rb") as f:
            want = f.read()
        # A download the client holds up (no window given back), and an
        # idle connection beside it.
        c = self.client(ack=False)
        big = c.start("GET", "/dav/big.bin")
        c.pump(lambda: len(c.responses[big].body) >= 65535)
        idle = self.client()
        self.assertEqual(idle.request("GET", "/index.html").status, 200)
        self.server.signal(signal.SIGTERM)
        idle.pump(lambda: idle.goaway is not None)
        self.assertEqual(idle.goaway.error_code, 0)
        self.assertEqual(idle.goaway.last_stream_id, 1)
        # The h2 package takes no frame after a GOAWAY: the rest by hand.
        body = bytearray(c.responses[big].body)
        goaway, ended, pending = None, False, b""
        deadline = time.monotonic() + 20
        while not ended and time.monotonic() < deadline:
            c.sock.settimeout(deadline - time.monotonic())
            data = c.sock.recv(65536)
            if not data:
                break
            pending += data
            while len(pending) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(pending[:9]))
                if len(pending) < 9 + length:
                    break
                frame.parse_body(memoryview(pending[9:9 + length]))
                pending = pending[9 + length:]
                if isinstance(frame, GoAwayFrame):
                    goaway = frame
                    # Now the client reads: the stream in flight goes on.
                    c.sock.sendall(WindowUpdateFrame(0, window_increment=2 * BIG).serialize()
                                   + WindowUpdateFrame(big, window_increment=2 * BIG).serialize())
                elif isinstance(frame, DataFrame) and frame.stream_id == big:
                    body += frame.data
                    ended = "END_STREAM" in frame.flags
                elif isinstance(frame, RstStreamFrame):
                    self.fail("stream reset: %r" % frame)
        self.assertIsNotNone(goaway)
        self.assertEqual(goaway.error_code, 0)
        self.assertEqual(goaway.last_stream_id, big)
        self.assertTrue(ended, len(body))
        self.assertTrue(bytes(body) == want, "the download differs")
        self.assertEqual(self.server.wait_exit(10), 0)


class Curl(Http2Case):
    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_version} %{http_code}"]
                           + list(args), capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        body, _, tail = p.stdout.rpartition(b"\n")
        return body, tail.decode()

    def test_prior_knowledge(self):
        body, tail = self.curl("--http2-prior-knowledge",
                               "http://127.0.0.1:%d/index.html" % self.plain_port)
        self.assertEqual(tail, "2 200")
        self.assertEqual(body, self.web.files["index.html"] if hasattr(self.web, "files")
                         else h1_request("127.0.0.1", self.plain_port, "GET", "/index.html").body)

    def test_alpn(self):
        _, tail = self.curl("--http2", "-k", "https://127.0.0.1:%d/index.html" % self.tls_port)
        self.assertEqual(tail, "2 200")
        _, tail = self.curl("--http2", "-k", "-X", "BREW",
                            "https://127.0.0.1:%d/index.html" % self.tls_port)
        self.assertEqual(tail, "2 501")

    def test_put_and_delete(self):
        url = "https://127.0.0.1:%d/dav/c.txt" % self.tls_port
        _, tail = self.curl("--http2", "-k", "-X", "PUT", url, "--data-binary", "x")
        self.assertIn(tail.split()[1], ("201", "204"))
        _, tail = self.curl("--http2", "-k", "-X", "DELETE", url)
        self.assertEqual(tail, "2 204")


class WebdavThroughCurl(Http2Case):
    """WebDAV through curl: the same sequence -- MKCOL, PUT, PROPFIND,
    COPY, MOVE, LOCK, a PUT refused by the lock and one that names it,
    UNLOCK, DELETE -- over HTTP/1.1, `--http2-prior-knowledge` (h2c) and
    `--http2` on TLS (ALPN h2), each in a collection of its own, with the
    same answers: statuses, Allow and DAV, the multistatus bodies (their
    hrefs made relative) and the lock's fields."""

    MODES = {"h1": ("--http1.1",), "h2c": ("--http2-prior-knowledge",), "h2": ("--http2",)}
    VERSION = {"h1": "1.1", "h2c": "2", "h2": "2"}

    def curl(self, mode, method, path, body=None, headers=()):
        """(status, {lower-case field: value}, body) of one request."""
        base = ("https://127.0.0.1:%d" % self.tls_port if mode == "h2"
                else "http://127.0.0.1:%d" % self.plain_port)
        head = os.path.join(self.dir, "head.txt")
        args = ["curl", "-sS", "-k", *self.MODES[mode], "-X", method, "-D", head, "-o", "-",
                "-w", "\n%{http_version}"]
        for h in headers:
            args += ["-H", h.replace("{base}", base)]
        if body is not None:
            args += ["--data-binary", body]
        p = subprocess.run(args + [base + path], capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 0, (mode, method, path, p.stderr))
        out, _, version = p.stdout.rpartition(b"\n")
        self.assertEqual(version.decode(), self.VERSION[mode], (mode, method, path))
        with open(head, "rb") as f:
            lines = f.read().decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        return status, fields, out

    def run_sequence(self, mode):
        """The sequence's answers, normalised: the collection's own path and
        the lock token replaced, dates and validators left out."""
        col = "/dav/%s/" % mode
        answers = []

        def step(method, path, body=None, headers=(), keep=("allow", "dav")):
            status, fields, out = self.curl(mode, method, path, body, headers)
            text = out.decode("utf-8", "replace").replace(col, "/COL/")
            if token:
                text = text.replace(token[0], "TOKEN")
            if status == 207:
                text = sorted(re.findall(r"<D:href>([^<]*)</D:href>|<D:status>([^<]*)</D:status>",
                                         text))
            elif method in ("PROPFIND", "LOCK") or status >= 400:
                text = None  # error bodies may name the path; statuses are compared
            answers.append((method, path.replace(col, "/COL/"), status,
                            {k: fields.get(k) for k in keep}, text))
            return status, fields

        token = []
        step("MKCOL", col)
        step("PUT", col + "a.txt", "hello")
        step("PUT", col + "a.txt", "hello again")
        step("PROPFIND", col, headers=["Depth: 1"])
        step("COPY", col + "a.txt", headers=["Destination: {base}%sb.txt" % col])
        step("MOVE", col + "b.txt", headers=["Destination: {base}%sc.txt" % col])
        step("OPTIONS", col + "c.txt")
        _, fields = step("LOCK", col + "c.txt", LOCKINFO % "exclusive", ["Content-Type: application/xml"],
                         keep=("lock-token",))
        self.assertIn("lock-token", fields, answers)
        token.append(fields["lock-token"].strip("<>"))
        answers[-1][3]["lock-token"] = "TOKEN"
        step("PUT", col + "c.txt", "no token")
        step("PUT", col + "c.txt", "with its token", ["If: (<%s>)" % token[0]])
        step("UNLOCK", col + "c.txt", headers=["Lock-Token: <%s>" % token[0]])
        step("DELETE", col + "c.txt")
        step("GET", col + "a.txt")
        step("MKCOL", col)
        step("PUT", col, "x")
        step("DELETE", col)
        step("PROPFIND", col, headers=["Depth: 0"])
        return answers

    def test_the_same_answers_over_http11_h2c_and_h2(self):
        runs = {mode: self.run_sequence(mode) for mode in self.MODES}
        statuses = [a[2] for a in runs["h1"]]
        self.assertEqual(statuses, [201, 201, 204, 207, 201, 201, 204, 200, 423, 204, 204, 204,
                                    200, 405, 405, 204, 404], runs["h1"])
        self.assertEqual(runs["h1"][12][4], "hello again")
        for mode in ("h2c", "h2"):
            with self.subTest(mode=mode):
                for a1, a2 in zip(runs["h1"], runs[mode]):
                    self.assertEqual(a2, a1)
        self.assertEqual(os.listdir(self.dav), ["big.bin"])


class MinRate(Http2Case):
    """min_rate (docs/config.md) over HTTP/2: a request body slower than
    the rate over its window ends that stream with 408 (or a reset); the
    connection and its other streams go on."""

    server_args = ("--set", "min_rate=1k 1s", "--set", "body_timeout=30s")

    def test_slow_body_is_408_and_the_connection_goes_on(self):
        c = self.client()
        sid = c.start("PUT", "/dav/slow.bin", headers=[("content-length", "100000")], end=False)
        r = c.responses[sid]
        start = time.monotonic()
        # 100 bytes every 0.25 s: 400 bytes a second, under 1k.
        while not r.ended and time.monotonic() - start < 6:
            try:
                c.conn.send_data(sid, b"x" * 100)
                c.flush()
            except h2.exceptions.StreamClosedError:
                break
            try:
                c.pump(lambda: r.ended, timeout=0.25)
            except AssertionError:
                pass  # not ended yet: send more
        self.assertTrue(r.ended, "the slow body was not stopped: %r" % r)
        self.assertTrue(r.status == 408 or r.reset is not None, r)
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertLess(time.monotonic() - start, 4)
        self.assertFalse(os.path.exists(os.path.join(self.dav, "slow.bin")))
        self.assertIsNone(c.goaway)
        # The same connection: a body at full speed is not held to it.
        data = os.urandom(300000)
        self.assertEqual(c.request("PUT", "/dav/fast.bin", body=data).status, 201)
        self.assertEqual(c.request("GET", "/index.html").status, 200)


class Http2Off(Http2Case):
    http2 = "off"

    def test_preface_is_http1_garbage(self):
        s = socket.create_connection(("127.0.0.1", self.plain_port), timeout=5)
        try:
            s.sendall(PREFACE)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            # What the HTTP/1 parser answers "PRI * HTTP/2.0" (test_parse).
            self.assertTrue(data.startswith(b"HTTP/1.1 505 "), data[:100])
        finally:
            s.close()

    def test_alpn_offers_no_h2(self):
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        try:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        finally:
            s.close()

    def test_curl_falls_back_to_http11(self):
        p = subprocess.run(["curl", "-sS", "-k", "--http2", "-o", "/dev/null", "-w",
                            "%{http_version} %{http_code}",
                            "https://127.0.0.1:%d/index.html" % self.tls_port],
                           capture_output=True, timeout=20)
        self.assertEqual(p.stdout.decode(), "1.1 200")


if __name__ == "__main__":
    unittest.main()
