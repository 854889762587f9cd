"""Self-tests of the scriptable upstream (upstream.py) and of the hostile
response corpus (hostile_responses.py), talking to the Upstream directly,
so that the reverse-proxy tests can trust what it does and records."""

import hashlib
import json
import os
import socket
import struct
import threading
import time
import unittest

from harness import ConnectionClosed, build_request
from hostile_responses import CASES, MARKER, classify
from upstream import (Upstream, close_mid_body, close_without_answer, continue_then, download, early_hints,
                      echo, final_without_continue, methods, options_star, parse_echo, pattern, raw,
                      read_slowly, refuse_405, reset_mid_body, reset_mid_head, reset_without_answer, respond,
                      slow_body, stall, stall_mid_body, websocket_echo, ws_accept, ws_frame, ws_read_frame)


def get(target="/", extra=b"", method=b"GET"):
    return method + b" " + target.encode() + b" HTTP/1.1\r\nHost: up.test\r\n" + extra + b"\r\n"


class UpstreamCase(unittest.TestCase):
    def start(self, handler=None, **kw):
        up = Upstream(handler, **kw).start()
        self.addCleanup(up.stop)
        return up

    def connect(self, up, **kw):
        c = up.connect(**kw)
        self.addCleanup(c.close)
        return c

    def read_raw(self, c, n=None, timeout=3.0):
        """Bytes until n are there, or until EOF/reset."""
        deadline = time.monotonic() + timeout
        while (n is None or len(c.buf) < n) and not c.eof:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "timed out; got %r" % c.buf[:300])
            try:
                c._fill(timeout=left)
            except socket.timeout:
                pass
        data, c.buf = c.buf, b""
        return data


class Recording(UpstreamCase):
    def test_echo_records_fields_in_order_and_case(self):
        up = self.start()
        c = self.connect(up)
        c.send(b"PUT /a%2Fb?q=1 HTTP/1.1\r\nHost: up.test\r\nx-lower: 1\r\nX-UPPER: 2\r\nX-Dup: a\r\n"
               b"x-dup: b\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        d = parse_echo(r.body)
        self.assertEqual((d["method"], d["target"], d["version"]), ("PUT", "/a%2Fb?q=1", "HTTP/1.1"))
        names = ["Host", "x-lower", "X-UPPER", "X-Dup", "x-dup", "Content-Length"]
        self.assertEqual(d["headers"].names(), names)
        self.assertEqual(d["headers"].get_all("x-dup"), ["a", "b"])
        self.assertEqual((d["body"], d["chunked"], d["connection"], d["index"]), (b"hello", False, 1, 0))
        req = up.requests[0]
        self.assertEqual(req.names(), names)
        self.assertEqual((req.path, req.content_length, req.body_length, bytes(req.body)), ("/a%2Fb", 5, 5, b"hello"))
        self.assertEqual(req.digest(), hashlib.sha256(b"hello").hexdigest())
        self.assertTrue(req.body_complete)
        self.assertEqual(req.status, 200)
        up.assert_clean()

    def test_chunked_body_extensions_and_trailers(self):
        up = self.start()
        c = self.connect(up)
        c.send(b"POST /c HTTP/1.1\r\nHost: up.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=\"v a\"\r\nhello\r\n1 ; x\r\n!\r\n0\r\nX-Sum: abc\r\nx-two: 2\r\n\r\n")
        d = parse_echo(c.read_response().body)
        self.assertEqual((d["body"], d["chunked"]), (b"hello!", True))
        self.assertEqual(d["trailers"].items, [("X-Sum", "abc"), ("x-two", "2")])
        req = up.requests[0]
        self.assertEqual((req.chunks, req.chunk_extensions), (2, [';name="v a"', " ; x"]))
        up.assert_clean()

    def test_head_and_no_content_statuses(self):
        up = self.start(respond(200, [("Content-Type", "text/plain")], b"0123456789"))
        up.on(None, "/none", respond(204))
        c = self.connect(up)
        c.send(get("/f", method=b"HEAD"))
        r = c.read_response("HEAD")
        self.assertEqual((r.header("Content-Length"), r.body), ("10", b""))
        c.send(get("/f"))
        self.assertEqual(c.read_response().body, b"0123456789")
        c.send(get("/none"))
        r = c.read_response()
        self.assertEqual((r.status, r.header("Content-Length")), (204, None))
        self.assertEqual(len(up.connections[0].requests), 3)
        up.assert_clean()

    def test_chunked_response_with_trailers_verbatim(self):
        up = self.start(respond(200, [("X-A", "1")], b"abcdefghij", chunked=True, chunk_size=4,
                                trailers=[("X-Checksum", "42")]))
        c = self.connect(up)
        c.send(get("/", b"Connection: close\r\n"))
        data = self.read_raw(c)
        head, body = data.split(b"\r\n\r\n", 1)
        self.assertIn(b"\r\nTransfer-Encoding: chunked", head)
        self.assertIn(b"\r\nTrailer: X-Checksum", head)
        self.assertIn(b"\r\nConnection: close", head)
        self.assertEqual(body, b"4\r\nabcd\r\n4\r\nefgh\r\n2\r\nij\r\n0\r\nX-Checksum: 42\r\n\r\n")

    def test_routes_and_queue(self):
        up = self.start(respond(200, body=b"default"))
        up.on("GET", "/exact", respond(200, body=b"exact"))
        up.on(("PUT", "DELETE"), "/dir/", respond(200, body=b"prefix"))
        up.on(None, "*", respond(200, body=b"star"))
        up.queue(respond(200, body=b"queued-1"), respond(200, body=b"queued-2"))
        c = self.connect(up)
        for target, method, want in [("/exact", "GET", b"queued-1"), ("/exact", "GET", b"queued-2"),
                                     ("/exact", "GET", b"exact"), ("/exact?x", "GET", b"exact"),
                                     ("/exact", "POST", b"default"), ("/dir/a/b", "DELETE", b"prefix"),
                                     ("/dir", "PUT", b"default"), ("*", "OPTIONS", b"star")]:
            c.send(build_request(method, target, host="up.test"))
            self.assertEqual(c.read_response(method).body, want, (method, target))
        self.assertEqual(up.count("GET"), 4)
        self.assertEqual(up.count("GET", "/exact"), 4)
        self.assertEqual(up.accepted, 1)

    def test_handler_failure_is_recorded(self):
        def broken(ex):
            raise ValueError("boom")
        up = self.start(broken)
        up.on(None, "/silent", lambda ex: None)
        c = self.connect(up)
        c.send(get("/"))
        self.assertTrue(c.is_closed(2))
        c2 = self.connect(up)
        c2.send(get("/silent"))
        self.assertEqual(c2.read_response().status, 400)
        up.wait_closed()
        self.assertEqual(len(up.errors), 2, up.errors)
        self.assertIn("ValueError: boom", up.errors[0])
        self.assertIn("sent no final response", up.errors[1])
        self.assertRaises(AssertionError, up.assert_clean)


class KeepAlive(UpstreamCase):
    def test_requests_share_a_connection_until_close(self):
        up = self.start()
        c = self.connect(up)
        for i in range(3):
            c.send(get("/%d" % i))
            self.assertEqual(parse_echo(c.read_response().body)["index"], i)
        c.send(get("/last", b"Connection: close\r\n"))
        r = c.read_response()
        self.assertIn("close", r.connection_tokens())
        self.assertTrue(c.is_closed(2))
        up.wait_closed()
        self.assertEqual((up.accepted, len(up.connections[0].requests)), (1, 4))
        self.assertEqual(up.connections[0].end, "closed by upstream")
        self.assertEqual(up.open_connections(), [])
        up.assert_clean()

    def test_http10_without_keep_alive_closes(self):
        up = self.start()
        c = self.connect(up)
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn("close", c.read_response().connection_tokens())
        self.assertTrue(c.is_closed(2))
        c = self.connect(up)
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        c.read_response()
        self.assertFalse(c.is_closed(0.2))

    def test_close_after_each_response(self):
        up = self.start(close_after_each=True)
        for _ in range(2):
            c = self.connect(up)
            c.send(get("/"))
            self.assertIn("close", c.read_response().connection_tokens())
            self.assertTrue(c.is_closed(2))
        self.assertEqual(up.accepted, 2)

    def test_request_after_close_is_an_error(self):
        up = self.start()
        c = self.connect(up)
        c.send(get("/", b"Connection: close\r\n") + get("/again"))
        c.read_response()
        self.assertTrue(c.is_closed(2))
        up.wait_closed()
        self.assertEqual(len(up.errors), 1, up.errors)
        self.assertIn("was to close", up.errors[0])
        self.assertTrue(up.connections[0].after_close.startswith(b"GET /again"))

    def test_closed_by_peer(self):
        up = self.start()
        c = self.connect(up)
        c.send(get("/"))
        c.read_response()
        c.close()
        up.wait_closed()
        self.assertEqual(up.connections[0].end, "closed by peer")


class Methods(UpstreamCase):
    def test_methods_501_and_options_allow(self):
        up = self.start(methods(["GET", "HEAD", "OPTIONS", "POST"]))
        c = self.connect(up)
        for method, status in [("GET", 200), ("POST", 200), ("PATCH", 501), ("PROPFIND", 501), ("BREW", 501)]:
            c.send(build_request(method, "/r", host="up.test"))
            r = c.read_response(method)
            self.assertEqual(r.status, status, method)
            self.assertIsNone(r.header("Allow"))
        for target in ("*", "/r"):
            c.send(build_request("OPTIONS", target, host="up.test"))
            r = c.read_response("OPTIONS")
            self.assertEqual((r.status, r.header("Allow")), (204, "GET, HEAD, OPTIONS, POST"))
        up2 = self.start(methods(["GET", "OPTIONS"], allow=False))
        c = self.connect(up2)
        c.send(build_request("OPTIONS", "*", host="up.test"))
        self.assertIsNone(c.read_response("OPTIONS").header("Allow"))

    def test_405_with_and_without_allow(self):
        up = self.start()
        up.on("DELETE", "/ro", refuse_405("GET, HEAD"))
        up.on("DELETE", "/broken", refuse_405(send_allow=False))
        c = self.connect(up)
        c.send(build_request("DELETE", "/ro", host="up.test"))
        r = c.read_response()
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD"))
        c.send(build_request("DELETE", "/broken", host="up.test"))
        r = c.read_response()
        self.assertEqual((r.status, r.header("Allow")), (405, None))

    def test_options_star_with_and_without_allow(self):
        up = self.start()
        up.on("OPTIONS", "*", options_star("GET, HEAD, OPTIONS, PUT"))
        c = self.connect(up)
        c.send(build_request("OPTIONS", "*", host="up.test"))
        r = c.read_response("OPTIONS")
        self.assertEqual((r.status, r.header("Allow")), (200, "GET, HEAD, OPTIONS, PUT"))
        c.send(build_request("OPTIONS", "/not-star", host="up.test"))
        self.assertEqual(parse_echo(c.read_response("OPTIONS").body)["method"], "OPTIONS")
        up2 = self.start(options_star(None, status=204))
        c = self.connect(up2)
        c.send(build_request("OPTIONS", "*", host="up.test"))
        r = c.read_response("OPTIONS")
        self.assertEqual((r.status, r.header("Allow")), (204, None))


class Timing(UpstreamCase):
    def test_slow_body_paced(self):
        for chunked in (False, True):
            up = self.start(slow_body(400, 100, 0.05, chunked=chunked))
            c = self.connect(up)
            t0 = time.monotonic()
            c.send(get("/"))
            r = c.read_response()
            self.assertGreaterEqual(time.monotonic() - t0, 0.14)
            self.assertEqual((r.body, r.framing), (pattern(0, 400), "chunked" if chunked else "length"))
            sent = len(r.raw_head) + (len(b"64\r\n\r\n") * 4 + 400 + 5 if chunked else 400)
            up.wait_for(lambda: up.requests[0].response_bytes == sent, what="%d bytes counted" % sent)

    def test_stall_before_first_byte(self):
        up = self.start(stall(0.3))
        c = self.connect(up)
        t0 = time.monotonic()
        c.send(get("/"))
        c._fill(timeout=2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        self.assertEqual(c.read_response().body, b"late\n")

    def test_stall_mid_body(self):
        up = self.start(stall_mid_body(1000, 300, 0.3))
        c = self.connect(up)
        c.send(get("/"))
        t0 = time.monotonic()
        got = self.read_raw(c, 10)
        got += self.read_raw(c, len(got.split(b"\r\n\r\n", 1)[0]) + 4 + 300 - len(got))
        mid = time.monotonic()
        self.assertLess(mid - t0, 0.25)
        self.assertFalse(c.is_closed(0.15))   # still stalled
        c.buf = got + c.buf
        r = c.read_response()
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        self.assertEqual(r.body, pattern(0, 1000))

    def test_stall_mid_body_then_reset(self):
        up = self.start(stall_mid_body(1000, 300, 0.1, then="reset"))
        c = self.connect(up)
        c.send(get("/"))
        data = self.read_raw(c)
        self.assertTrue(c.reset)
        self.assertTrue(data.endswith(pattern(0, 300)))

    def test_download_pattern(self):
        up = self.start(download(3 << 20))
        up.on(None, "/chunked", download(1 << 20, chunked=True, step=100000, trailers=[("X-End", "1")]))
        c = self.connect(up)
        c.send(get("/"))
        self.assertEqual(c.read_response().body, pattern(0, 3 << 20))
        c.send(get("/chunked"))
        r = c.read_response()
        self.assertEqual((r.body, r.framing), (pattern(0, 1 << 20), "chunked"))

    def test_read_slowly_pushes_back(self):
        total = 256 << 10
        up = self.start(read_slowly(8192, 0.02), rcvbuf=4096)
        c = self.connect(up)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        body = os.urandom(total)
        sender = threading.Thread(target=c.send, args=(get("/up", b"Content-Length: %d\r\n" % total) + body,))
        sender.start()
        time.sleep(0.15)
        self.assertTrue(sender.is_alive(), "the upload was not held back")
        up.wait_requests(1)
        self.assertLess(up.requests[0].body_length, total // 2)
        sender.join(10)
        r = c.read_response()
        self.assertEqual(json.loads(r.body), {"received": total, "sha256": hashlib.sha256(body).hexdigest()})
        progress = up.requests[0].progress
        self.assertGreaterEqual(len(progress), total // 8192)
        self.assertTrue(all(n <= 8192 * (i + 1) for i, (_, n) in enumerate(progress)))
        self.assertGreaterEqual(progress[-1][0] - progress[0][0], 0.5)


class Aborts(UpstreamCase):
    def test_reset_mid_head(self):
        up = self.start(reset_mid_head())
        c = self.connect(up)
        c.send(get("/"))
        data = self.read_raw(c)
        self.assertTrue(c.reset)
        self.assertEqual(data, b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")
        up.wait_closed()
        self.assertEqual(up.connections[0].end, "reset by upstream")

    def test_reset_and_close_mid_body(self):
        for handler, reset in ((reset_mid_body(1000, 100), True), (close_mid_body(1000, 100), False),
                               (reset_mid_body(1000, 100, chunked=True), True)):
            up = self.start(handler)
            c = self.connect(up)
            c.send(get("/"))
            data = self.read_raw(c)
            self.assertEqual((c.eof, c.reset), (True, reset))
            self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"))
            self.assertIn(pattern(0, 100), data)
            self.assertEqual(len(data.split(b"\r\n\r\n", 1)[1]), 100 if "chunked" not in str(data) else 106)
            c.buf = data
            with self.assertRaises(ConnectionClosed):
                c.read_response()

    def test_close_or_reset_without_answer(self):
        for handler, reset in ((close_without_answer(), False), (reset_without_answer(), True)):
            up = self.start(handler)
            c = self.connect(up)
            c.send(get("/", b"Content-Length: 3\r\n") + b"abc")
            self.assertEqual(self.read_raw(c), b"")
            self.assertEqual(c.reset, reset)
            up.wait_closed()
            self.assertEqual(up.requests[0].body_length, 3)
            self.assertIsNone(up.requests[0].status)


class RawBytes(UpstreamCase):
    def test_raw_then_keep_shows_reuse(self):
        bad = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok"
        up = self.start()
        up.queue(raw(bad))
        c = self.connect(up)
        c.send(get("/"))
        self.assertEqual(self.read_raw(c, len(bad)), bad)
        c.send(get("/reused"))
        self.assertEqual(parse_echo(c.read_response().body)["target"], "/reused")
        self.assertEqual(len(up.connections[0].requests), 2)

    def test_raw_then_close_reset_hold(self):
        for then in ("close", "reset", "hold"):
            up = self.start(raw(b"HTTP/1.1 200 OK\r\n\r\npartial", then=then))
            c = self.connect(up)
            c.send(get("/"))
            if then == "hold":
                self.assertEqual(self.read_raw(c, 26), b"HTTP/1.1 200 OK\r\n\r\npartial")
                self.assertFalse(c.is_closed(0.2))
                c.send(b"ignored")
                c.close()
                up.wait_closed()
                self.assertEqual(up.connections[0].after_close, b"ignored")
            else:
                self.assertEqual(self.read_raw(c), b"HTTP/1.1 200 OK\r\n\r\npartial")
                self.assertEqual(c.reset, then == "reset")

    def test_corpus_served_verbatim(self):
        up = self.start()
        for case in CASES:
            up.queue(raw(case.raw, then=case.then))
            c = self.connect(up)
            c.send(build_request(case.method, "/", host="up.test"))
            got = self.read_raw(c, len(case.raw) if case.then == "keep" else None)
            self.assertEqual(got, case.raw, case.name)
            c.close()
        self.assertEqual(up.accepted, len(CASES))
        up.assert_clean()


class Interim(UpstreamCase):
    def test_continue_then_final(self):
        up = self.start(continue_then())
        c = self.connect(up)
        c.send(get("/", b"Expect: 100-continue\r\nContent-Length: 4\r\n"))
        r = c.read_response()
        self.assertEqual(r.status, 100)
        c.send(b"data")
        d = parse_echo(c.read_response().body)
        self.assertEqual(d["body"], b"data")
        self.assertEqual(up.requests[0].interims, [100])
        up.assert_clean()

    def test_final_without_continue_closes(self):
        up = self.start(final_without_continue(417))
        c = self.connect(up)
        c.send(get("/", b"Expect: 100-continue\r\nContent-Length: 4\r\n"))
        r = c.read_response()
        self.assertEqual((r.status, r.connection_tokens()), (417, ["close"]))
        c.send(b"data")             # a client that sends the body anyway
        self.assertTrue(c.is_closed(3))
        up.wait_closed()
        self.assertEqual(up.requests[0].interims, [])
        up.assert_clean()

    def test_final_without_continue_then_drain_keeps_the_connection(self):
        up = self.start(final_without_continue(401, then="drain"))
        c = self.connect(up)
        c.send(get("/", b"Expect: 100-continue\r\nContent-Length: 4\r\n"))
        self.assertEqual(c.read_response().status, 401)
        c.send(b"data" + get("/next"))
        self.assertEqual(c.read_response().status, 401)
        self.assertEqual(up.requests[0].body_length, 4)

    def test_early_hints(self):
        up = self.start(early_hints(("</a.css>; rel=preload", "</b.js>; rel=preload"), count=2))
        c = self.connect(up)
        c.send(get("/"))
        final, interims = c.read_final_response()
        self.assertEqual([r.status for r in interims], [103, 103])
        self.assertEqual(interims[1].header_all("Link"), ["</a.css>; rel=preload", "</b.js>; rel=preload"])
        self.assertEqual((final.status, final.body), (200, b"hinted\n"))


class WebSocket(UpstreamCase):
    HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: up.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

    def test_echo_ping_close(self):
        up = self.start(websocket_echo())
        c = self.connect(up)
        c.send(self.HANDSHAKE)
        r = c.read_response()
        self.assertEqual(r.status, 101)
        self.assertEqual(r.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(ws_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        c.send(ws_frame(1, "hello"))
        self.assertEqual(ws_read_frame(c), (True, 1, False, b"hello"))
        big = os.urandom(70000)
        c.send(ws_frame(2, big[:1000], fin=False) + ws_frame(0, big[1000:]))
        self.assertEqual(ws_read_frame(c), (True, 2, False, big))
        c.send(ws_frame(9, b"p"))
        self.assertEqual(ws_read_frame(c), (True, 10, False, b"p"))
        c.send(ws_frame(8, struct.pack("!H", 1000) + b"bye"))
        self.assertEqual(ws_read_frame(c), (True, 8, False, struct.pack("!H", 1000)))
        self.assertTrue(c.is_closed(2))
        req = up.requests[0]
        self.assertEqual([op for op, _ in req.ws_messages], [1, 2, 9, 8])
        up.assert_clean()

    def test_unmasked_frame_and_bad_handshake(self):
        up = self.start(websocket_echo())
        c = self.connect(up)
        c.send(self.HANDSHAKE)
        c.read_response()
        c.send(ws_frame(1, "x", mask=False))
        self.assertEqual(ws_read_frame(c), (True, 8, False, struct.pack("!H", 1002)))
        up.wait_closed()
        self.assertIn("unmasked", up.errors[0])
        c = self.connect(up)
        c.send(get("/ws"))
        self.assertEqual(c.read_response().status, 400)


class Strictness(UpstreamCase):
    BAD = [
        ("body_longer_than_cl", get("/", b"Content-Length: 2\r\n") + b"abcd\r\n", "body longer"),
        ("malformed_chunk_size", get("/", b"Transfer-Encoding: chunked\r\n") + b"z\r\n", "chunk-size"),
        ("chunk_longer_than_size", get("/", b"Transfer-Encoding: chunked\r\n") + b"2\r\nabc\r\n0\r\n\r\n",
         "longer than its size"),
        ("chunk_bare_lf", get("/", b"Transfer-Encoding: chunked\r\n") + b"2\nab\r\n0\r\n\r\n", "bare LF"),
        ("chunk_size_overflow", get("/", b"Transfer-Encoding: chunked\r\n") + b"10000000000000002\r\nab\r\n",
         "overflows"),
        ("cl_and_te", get("/", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
         "together"),
        ("te_not_chunked", get("/", b"Transfer-Encoding: gzip, chunked\r\n") + b"0\r\n\r\n", "only chunked"),
        ("two_content_lengths", get("/", b"Content-Length: 1\r\nContent-Length: 1\r\n") + b"a",
         "Content-Length fields"),
        ("content_length_sign", get("/", b"Content-Length: +1\r\n") + b"a", "invalid Content-Length"),
        ("bare_lf_in_head", b"GET / HTTP/1.1\nHost: up.test\r\n\r\n", "bare LF"),
        ("bare_cr_in_field", b"GET / HTTP/1.1\r\nHost: up.test\rX: y\r\n\r\n", "bare CR"),
        ("obs_fold", b"GET / HTTP/1.1\r\nHost: up.test\r\nX: a\r\n b\r\n\r\n", "obs-fold"),
        ("space_before_colon", b"GET / HTTP/1.1\r\nHost : up.test\r\n\r\n", "bad field name"),
        ("nul_in_value", b"GET / HTTP/1.1\r\nHost: up.test\r\nX: a\x00\r\n\r\n", "control character"),
        ("no_host", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", "Host"),
        ("bad_request_line", b"GET  / HTTP/1.1\r\nHost: up.test\r\n\r\n", "malformed request line"),
        ("http2_version", b"GET / HTTP/2.0\r\nHost: up.test\r\n\r\n", "unsupported version"),
        ("empty_line_first", b"\r\n" + get("/"), "empty line"),
        ("truncated_body", get("/", b"Content-Length: 10\r\n") + b"abc", "closed inside the request body"),
        ("head_too_large", get("/", b"X: " + b"a" * 70000 + b"\r\n"), "than 65536 bytes"),
        ("too_many_fields", get("/", b"".join(b"X%d: 1\r\n" % i for i in range(101))), "more than 100"),
    ]

    def test_framing_mistakes_are_recorded(self):
        up = self.start()
        for name, data, words in self.BAD:
            with self.subTest(name):
                before = len(up.errors)
                c = self.connect(up)
                c.send(data)
                if name == "truncated_body":
                    c.sock.shutdown(socket.SHUT_WR)
                first = c.read_response()
                if name in ("body_longer_than_cl",):
                    first = c.read_response()
                if name != "truncated_body":
                    self.assertEqual(first.status, 400, name)
                self.assertTrue(c.is_closed(2), name)
                c.close()
                up.wait_for(lambda: len(up.errors) > before, what=name)
                self.assertEqual(len(up.errors), before + 1, up.errors[before:])
                self.assertIn(words, up.errors[-1])

    def test_valid_variants_are_not_errors(self):
        up = self.start()
        c = self.connect(up)
        for data in (get("/", b"Content-Length: 0\r\n"), get("/", b"Transfer-Encoding: Chunked\r\n") + b"0\r\n\r\n",
                     get("/", b"X-Empty:\r\nX-Tab: a\tb\r\n"), get("/", b"Transfer-Encoding: chunked\r\n")
                     + b"0002;a=\"q\\\"\"\r\nab\r\n0\r\n\r\n", b"OPTIONS * HTTP/1.1\r\nHost: up.test\r\n\r\n",
                     b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"):
            c.send(data)
            self.assertEqual(c.read_response().status, 200, data)
        up.assert_clean()


class LifeCycle(UpstreamCase):
    def test_unix_socket(self):
        up = self.start(unix=True)
        self.assertTrue(up.server.startswith("unix:/"))
        c = self.connect(up)
        c.send(get("/u"))
        self.assertEqual(parse_echo(c.read_response().body)["target"], "/u")
        path = up.path
        up.stop()
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_stop_ends_everything_quickly(self):
        baseline = threading.active_count()
        up = Upstream().start()
        up.on(None, "/stall", stall(30))
        up.on(None, "/slow-read", read_slowly(1, 10))
        up.on(None, "/slow-body", slow_body(10 ** 9, 1, 10))
        up.on(None, "/hold", raw(b"x", then="hold"))
        conns = []
        try:
            for target, extra in (("/stall", b""), ("/slow-read", b"Content-Length: 100000\r\n"), ("/slow-body", b""),
                                  ("/hold", b""), ("/idle", b"")):
                c = up.connect()
                conns.append(c)
                c.send(get(target, extra))
            conns[-1].read_response()
            up.wait_requests(5)
            self.assertEqual(len(up.open_connections()), 5)
            t0 = time.monotonic()
            up.stop()
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(threading.active_count(), baseline)
            self.assertEqual(up.open_connections(), [])
            self.assertTrue(all(c.end for c in up.connections), up.connections)
            up.stop()   # twice is fine
            self.assertRaises(OSError, socket.create_connection, ("127.0.0.1", up.port), 0.5)
        finally:
            for c in conns:
                c.close()
            up.stop()

    def test_address_forms(self):
        up = self.start()
        self.assertEqual(up.server, "127.0.0.1:%d" % up.port)
        self.assertEqual(up.url, "http://127.0.0.1:%d" % up.port)


class Corpus(unittest.TestCase):
    OUTCOME_TO_VERDICT = {"502": {"bad-head"}, "abort": {"bad-body", "short-body"}, "deliver": {"excess"}}

    def test_at_least_forty_distinct_cases(self):
        self.assertGreaterEqual(len(CASES), 40)
        self.assertEqual(len({c.name for c in CASES}), len(CASES), "duplicate case names")

    def test_every_case_is_well_formed(self):
        for c in CASES:
            with self.subTest(c.name):
                self.assertTrue(c.expect and set(c.expect) <= {"502", "abort", "deliver"})
                self.assertRegex(c.reason, r"RFC 91(10|12|13) §\d")
                self.assertNotIn("\n", c.reason)
                self.assertIn(c.then, ("keep", "close", "reset"))
                self.assertIn(c.method, ("GET", "HEAD"))
                self.assertFalse(c.reuse)

    def test_every_case_is_what_it_claims(self):
        """A strict reading agrees with the preferred outcome: a bad head
        for 502, bad or short framing after a valid head for abort, a
        complete response with bytes behind it for deliver; none is a
        clean response."""
        for c in CASES:
            with self.subTest(c.name):
                verdict = classify(c.raw, c.method)
                self.assertIn(verdict, self.OUTCOME_TO_VERDICT[c.expect[0]], c.raw[:200])

    def test_marker_never_in_a_leading_valid_part(self):
        """The marker only ever sits where a gateway must not deliver it."""
        for c in CASES:
            if "deliver" in c.expect and MARKER in c.raw:
                with self.subTest(c.name):
                    head_end = c.raw.index(b"\r\n\r\n") + 4
                    length = 0 if c.method == "HEAD" or b" 204 " in c.raw[:13] or b" 304 " in c.raw[:13] else 2
                    self.assertNotIn(MARKER, c.raw[:head_end + length])


if __name__ == "__main__":
    unittest.main()
