"""Connection management: keep-alive, pipelining, body discarding, timeouts,
connection limits, graceful stop."""

import signal
import socket
import time
import unittest

from harness import ConnectionClosed, VerbdTestCase, build_request, get_request


class KeepAlive(VerbdTestCase):
    def test_http11_keeps_alive_by_default(self):
        c, r = self.get("/index.html")
        self.assertStatus(r, 200)
        self.assertNotIn("close", r.connection_tokens())
        self.assertOpen(c)
        self.assertUsable(c)

    def test_connection_close_request(self):
        c = self.connect()
        c.send(build_request("GET", "/index.html", [("Connection", "close")]))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_connection_close_case_insensitive(self):
        c = self.connect()
        c.send(build_request("GET", "/index.html", [("Connection", "Close")]))
        r = c.read_response()
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_connection_close_in_token_list(self):
        c = self.connect()
        c.send(build_request("GET", "/index.html", [("Connection", "keep-alive, close")]))
        r = c.read_response()
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_requests_after_close_not_answered(self):
        c = self.connect()
        c.send(build_request("GET", "/pipe/0.txt", [("Connection", "close")]) + get_request("/pipe/1.txt"))
        responses = c.read_all_responses()
        self.assertEqual(len(responses), 1, responses)
        self.assertEqual(responses[0].body, b"pipe-0\n")

    def test_http10_closes_by_default(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)
        self.assertNotIn("keep-alive", r.connection_tokens())
        self.assertClosed(c)

    def test_http10_keep_alive(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertIn("keep-alive", r.connection_tokens())
        self.assertOpen(c)
        c.send(b"GET /pipe/2.txt HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.body, b"pipe-2\n")
        self.assertIn("keep-alive", r.connection_tokens())
        self.assertUsable(c)

    def test_http10_keep_alive_then_plain_http10_closes(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        c.send(b"GET /index.html HTTP/1.0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertClosed(c)

    def test_hundred_sequential_requests(self):
        c = self.connect()
        for i in range(100):
            r = c.request("GET", "/pipe/%d.txt" % (i % 10))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"pipe-%d\n" % (i % 10))

    def test_404_keeps_alive(self):
        c, r = self.get("/missing")
        self.assertStatus(r, 404)
        self.assertUsable(c)

    def test_request_after_400_not_answered(self):
        # After a parse error the server closes; what follows is not read.
        c = self.connect()
        c.send(b"GET / HTTP/1.1\r\n\r\n" + get_request("/pipe/3.txt"))
        responses = c.read_all_responses()
        self.assertEqual([r.status for r in responses], [400])


class Pipelining(VerbdTestCase):
    def test_ten_pipelined_gets_in_order(self):
        c = self.connect()
        c.send(b"".join(get_request("/pipe/%d.txt" % i) for i in range(10)))
        responses = c.read_responses(10)
        self.assertEqual([r.body for r in responses], [b"pipe-%d\n" % i for i in range(10)])
        for r in responses:
            self.assertStatus(r, 200)
        self.assertUsable(c)

    def test_ten_pipelined_in_reverse_order(self):
        c = self.connect()
        c.send(b"".join(get_request("/pipe/%d.txt" % i) for i in reversed(range(10))))
        responses = c.read_responses(10)
        self.assertEqual([r.body for r in responses], [b"pipe-%d\n" % i for i in reversed(range(10))])

    def test_mixed_pipeline(self):
        c = self.connect()
        c.send(get_request("/pipe/1.txt") + build_request("HEAD", "/big.bin")
               + get_request("/missing") + build_request("OPTIONS", "/index.html")
               + build_request("BREW", "/") + get_request("/big.bin") + get_request("/pipe/2.txt"))
        rs = c.read_responses(["GET", "HEAD", "GET", "OPTIONS", "BREW", "GET", "GET"])
        self.assertEqual([r.status for r in rs], [200, 200, 404, 204, 501, 200, 200])
        self.assertEqual(rs[0].body, b"pipe-1\n")
        self.assertEqual(rs[1].body, b"")
        self.assertEqual(rs[5].body, self.web.big)
        self.assertEqual(rs[6].body, b"pipe-2\n")

    def test_pipeline_of_50_big_heads(self):
        c = self.connect()
        c.send(build_request("HEAD", "/big.bin") * 50)
        rs = c.read_responses(["HEAD"] * 50)
        self.assertTrue(all(r.status == 200 and r.header("Content-Length") == "65536" for r in rs))
        self.assertUsable(c)

    def test_request_sent_byte_by_byte(self):
        c = self.connect()
        c.send_slowly(get_request("/pipe/4.txt"), chunk=1, delay=0.002)
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"pipe-4\n")

    def test_request_split_inside_crlf(self):
        raw = get_request("/pipe/5.txt")
        cut = raw.index(b"\r\n") + 1
        c = self.connect()
        c.send_parts([raw[:cut], raw[cut:-1], raw[-1:]], delay=0.1)
        r = c.read_response()
        self.assertEqual(r.body, b"pipe-5\n")

    def test_two_requests_split_across_writes(self):
        raw = get_request("/pipe/6.txt") + get_request("/pipe/7.txt")
        c = self.connect()
        mid = len(raw) // 2 + 3
        c.send_parts([raw[:mid], raw[mid:]], delay=0.1)
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.body, r2.body), (b"pipe-6\n", b"pipe-7\n"))


    def test_bad_request_mid_pipeline(self):
        c = self.connect()
        c.send(get_request("/pipe/1.txt") + b"GET /x HTTP/1.1\r\nBad Field: 1\r\n\r\n"
               + get_request("/pipe/2.txt"))
        rs = c.read_all_responses()
        self.assertEqual([r.status for r in rs], [200, 400], rs)
        self.assertEqual(rs[0].body, b"pipe-1\n")


class Robustness(VerbdTestCase):
    def test_thousand_pipelined_requests(self):
        c = self.connect()
        c.send(b"".join(get_request("/pipe/%d.txt" % (i % 10)) for i in range(1000)))
        rs = c.read_responses(1000)
        self.assertEqual([r.body for r in rs], [b"pipe-%d\n" % (i % 10) for i in range(1000)])

    def test_clients_aborting_mid_transfer(self):
        import struct
        for _ in range(20):
            c = self.connect(rcvbuf=4096)
            c.send(get_request("/big.bin") * 3)
            c.sock.recv(1000)
            # RST instead of FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        time.sleep(0.2)
        self.assertTrue(self.server.alive())
        c = self.connect()
        r = c.request("GET", "/big.bin")
        self.assertTrue(r.status == 200 and r.body == self.web.big)

    def test_client_closes_before_response(self):
        for _ in range(20):
            c = self.connect()
            c.send(get_request("/big.bin"))
            c.close()
        c = self.connect()
        self.assertUsable(c)

    def test_random_garbage_never_crashes(self):
        import random
        rnd = random.Random(12345)
        alphabet = b"GET /HTP1.\r\n: \t\x00\x7f\xffabc%0-9;,"
        for i in range(150):
            n = rnd.randint(1, 300)
            if i % 3 == 0:
                junk = bytes(rnd.getrandbits(8) for _ in range(n))
            else:
                junk = bytes(rnd.choice(alphabet) for _ in range(n))
            c = self.connect(timeout=3.0)
            # End with a blank line so a complete head is always present.
            c.try_send(junk + b"\r\n\r\n")
            try:
                data = c.read_until_close(timeout=3.0)
            except Exception as e:
                # still open: it must then have answered something sane
                data = c.buf
            finally:
                c.close()
            if data:
                self.assertTrue(data.startswith(b"HTTP/1.1 "), (junk, data[:200]))
        self.assertTrue(self.server.alive(), "server died on garbage input")
        c = self.connect()
        self.assertUsable(c)


class BodyDiscard(VerbdTestCase):
    def test_get_with_content_length_body(self):
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", "11")], b"hello world")
               + get_request("/pipe/2.txt"))
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.status, r1.body), (200, b"pipe-1\n"))
        self.assertEqual((r2.status, r2.body), (200, b"pipe-2\n"))

    def test_get_with_chunked_body(self):
        c = self.connect()
        c.send(build_request("GET", "/pipe/3.txt", [("Transfer-Encoding", "chunked")],
                             b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n") + get_request("/pipe/4.txt"))
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.status, r1.body), (200, b"pipe-3\n"))
        self.assertEqual((r2.status, r2.body), (200, b"pipe-4\n"))

    def test_body_that_looks_like_a_request_is_not_executed(self):
        smuggled = get_request("/pipe/9.txt")
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", str(len(smuggled)))], smuggled)
               + get_request("/pipe/2.txt"))
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.body, r2.body), (b"pipe-1\n", b"pipe-2\n"))
        self.assertOpen(c)

    def test_body_sent_late(self):
        c = self.connect()
        c.send(build_request("GET", "/pipe/5.txt", [("Content-Length", "5")]))
        time.sleep(0.2)
        c.send(b"hello" + get_request("/pipe/6.txt"))
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.body, r2.body), (b"pipe-5\n", b"pipe-6\n"))

    def test_chunked_body_byte_by_byte(self):
        c = self.connect()
        raw = (build_request("GET", "/pipe/1.txt", [("Transfer-Encoding", "chunked")],
                             b"3;a=b\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n") + get_request("/pipe/2.txt"))
        c.send_slowly(raw, chunk=1, delay=0.001)
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.body, r2.body), (b"pipe-1\n", b"pipe-2\n"))

    def test_chunk_data_overrun_closes(self):
        # Data longer than the declared size: malformed, connection closed,
        # and the request behind it is never answered.
        c = self.connect()
        c.send(build_request("GET", "/pipe/3.txt", [("Transfer-Encoding", "chunked")],
                             b"3\r\nabcdef\r\n0\r\n\r\n") + get_request("/pipe/4.txt"))
        rs = c.read_all_responses()
        self.assertLessEqual(len(rs), 1, rs)
        self.assertNotIn(b"pipe-4\n", [r.body for r in rs])

    def test_large_body_with_get_discarded(self):
        body = b"x" * 200000
        c = self.connect()
        c.send(build_request("GET", "/pipe/7.txt", [("Content-Length", str(len(body)))], body)
               + get_request("/pipe/8.txt"))
        r1, r2 = c.read_responses(2)
        self.assertEqual((r1.body, r2.body), (b"pipe-7\n", b"pipe-8\n"))


class HeaderTimeout(VerbdTestCase):
    server_args = ("--set", "header_timeout=1s")

    def check_cut_off(self, c, started):
        closed = c.is_closed(timeout=4.0)
        elapsed = time.monotonic() - started
        self.assertTrue(closed, "partial request still open after %.1fs" % elapsed)
        self.assertLess(elapsed, 3.5)
        if c.buf:
            # Whatever was sent must be a 408.
            r = c.read_response()
            self.assertEqual(r.status, 408, r)

    def test_partial_request_line_times_out(self):
        c = self.connect()
        started = time.monotonic()
        c.send(b"GET /ind")
        self.check_cut_off(c, started)

    def test_partial_header_block_times_out(self):
        c = self.connect()
        started = time.monotonic()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n")
        self.check_cut_off(c, started)

    def test_trickled_head_times_out(self):
        # Slowloris: a byte every 200 ms never completes a head in time.
        c = self.connect()
        started = time.monotonic()
        raw = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n" + b"X: " + b"y" * 100
        for i in range(len(raw)):
            if time.monotonic() - started > 5 or not c.try_send(raw[i:i + 1]):
                break
            if c.is_closed(0.2):
                break
        self.assertTrue(c.is_closed(timeout=1.0), "trickling client not cut off")
        self.assertLess(time.monotonic() - started, 4.0)

    def test_other_clients_served_meanwhile(self):
        slow = self.connect()
        slow.send(b"GET /ind")
        time.sleep(0.3)
        c, r = self.get("/index.html")
        self.assertStatus(r, 200)
        self.assertTrue(slow.is_closed(timeout=4.0))
        self.assertUsable(c)

    def test_partial_second_request_times_out(self):
        # After a served request, bytes of the next one start the header timer.
        c, r = self.get("/index.html")
        self.assertEqual(r.status, 200)
        started = time.monotonic()
        c.send(b"GET /ind")
        self.check_cut_off(c, started)

    def test_complete_request_in_time_is_served(self):
        c = self.connect()
        c.send_parts([b"GET /index.html HTTP/1.1\r\n", b"Host: localhost\r\n\r\n"], delay=0.4)
        r = c.read_response()
        self.assertStatus(r, 200)


class IdleTimeout(VerbdTestCase):
    server_args = ("--set", "idle_timeout=1s")

    def test_idle_keep_alive_connection_closed(self):
        c, r = self.get("/index.html")
        self.assertEqual(r.status, 200)
        started = time.monotonic()
        self.assertFalse(c.is_closed(timeout=0.5), "closed long before idle_timeout")
        self.assertTrue(c.is_closed(timeout=3.0), "idle connection not closed")
        self.assertLess(time.monotonic() - started, 3.5)
        self.assertEqual(c.buf, b"", "a response was sent on idle close")

    def test_activity_resets_idle_timer(self):
        c = self.connect()
        for _ in range(4):
            r = c.request("GET", "/pipe/1.txt")
            self.assertEqual(r.status, 200)
            time.sleep(0.6)
        self.assertUsable(c)

    def test_others_served_while_idle(self):
        idle, r = self.get("/index.html")
        c, r = self.get("/pipe/2.txt")
        self.assertEqual(r.body, b"pipe-2\n")
        self.assertTrue(idle.is_closed(timeout=3.0))


class BodyTimeout(VerbdTestCase):
    server_args = ("--set", "body_timeout=1s")

    def test_stalled_body_is_cut_off(self):
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", "5")]) + b"he")
        started = time.monotonic()
        c.read_all_responses(timeout=4.0)   # (the response may precede the body)
        self.assertLess(time.monotonic() - started, 3.5)


class SendTimeout(VerbdTestCase):
    server_args = ("--set", "send_timeout=1s")

    def test_client_that_never_reads_is_dropped(self):
        c = self.connect(rcvbuf=4096)
        c.send(get_request("/big.bin") * 50)      # ~3 MiB of responses
        time.sleep(3.0)                            # read nothing meanwhile
        c.sock.settimeout(3.0)
        total = 0
        try:
            while True:
                data = c.sock.recv(65536)
                if not data:
                    break
                total += len(data)
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("connection still open after a blocked send of 3 s (got %d bytes)" % total)
        self.assertLess(total, 50 * 65536)


class ShutdownTimeout(VerbdTestCase):
    server_args = ("--set", "shutdown_timeout=1s")

    def test_stuck_client_does_not_block_exit(self):
        c = self.connect(rcvbuf=4096)
        c.send(get_request("/big.bin") * 50)
        time.sleep(0.3)
        started = time.monotonic()
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait_exit(8), 0)
        self.assertLess(time.monotonic() - started, 4.0)


class MaxConnections(VerbdTestCase):
    server_args = ("--workers", "1", "--set", "max_connections=5")

    def test_connections_over_limit_refused(self):
        first = [self.connect() for _ in range(5)]
        for c in first:
            self.assertUsable(c)
        for _ in range(5):
            try:
                c = self.connect(timeout=3.0)
            except OSError:
                continue      # refused at connect: fine
            c.try_send(get_request("/index.html"))
            data = c.read_until_close(timeout=3.0)   # must be closed, not served
            if data:
                # Whatever was sent must be one complete, well-formed 503.
                c.buf = data
                r = c.read_response()
                self.assertStatus(r, 503)
                self.assertEqual(c.buf, b"", "bytes after the 503")
        for c in first:
            self.assertUsable(c)

    def test_refusal_without_request(self):
        # A connection over the limit that has sent nothing yet.
        first = [self.connect() for _ in range(5)]
        for c in first:
            self.assertUsable(c)
        c = self.connect(timeout=3.0)
        data = c.read_until_close(timeout=3.0)
        if data:
            c.buf = data
            r = c.read_response()
            self.assertStatus(r, 503)
            self.assertEqual(c.buf, b"")

    def test_slot_freed_after_close(self):
        first = [self.connect() for _ in range(5)]
        for c in first:
            self.assertUsable(c)
        first[0].close()
        time.sleep(0.3)
        c = self.connect()
        self.assertUsable(c)


class GracefulStop(VerbdTestCase):
    def test_slow_reader_gets_whole_file_after_sigterm(self):
        c = self.connect(rcvbuf=4096)
        c.send(get_request("/big.bin"))
        got = b""
        while len(got) < 4096:
            data = c.sock.recv(4096)
            self.assertTrue(data, "closed early")
            got += data
        self.server.signal(signal.SIGTERM)
        time.sleep(0.5)
        c.sock.settimeout(5)
        while True:
            try:
                data = c.sock.recv(4096)
            except ConnectionResetError:
                self.fail("connection reset after %d bytes" % len(got))
            if not data:
                break
            got += data
            time.sleep(0.005)
            if b"\r\n\r\n" in got:
                head, body = got.split(b"\r\n\r\n", 1)
                if len(body) >= 65536:
                    break
        head, body = got.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(len(body), 65536)
        self.assertTrue(body == self.web.big)
        self.assertEqual(self.server.wait_exit(10), 0)

    def test_idle_connection_closed_on_sigterm(self):
        c, r = self.get("/index.html")
        self.assertEqual(r.status, 200)
        started = time.monotonic()
        self.server.signal(signal.SIGTERM)
        self.assertTrue(c.is_closed(timeout=5.0), "idle connection kept open during shutdown")
        self.assertEqual(self.server.wait_exit(10), 0)
        self.assertLess(time.monotonic() - started, 5.0)

    def test_sigint_stops_gracefully(self):
        c, r = self.get("/index.html")
        self.assertEqual(r.status, 200)
        c.close()
        self.server.signal(signal.SIGINT)
        self.assertEqual(self.server.wait_exit(10), 0)


if __name__ == "__main__":
    unittest.main()
