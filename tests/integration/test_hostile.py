"""Hostile clients: slow senders, too many connections, clients that never
read, huge declared bodies.  The server keeps serving others promptly and
its memory stays bounded.

Memory is the server's VmRSS from /proc (one worker, so one process).
"""

import errno
import os
import resource
import selectors
import socket
import time
import unittest

from harness import VerbdTestCase, get_request

HEAD = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_many(host, port, n):
    """n non-blocking connections, connected (or connecting)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise AssertionError("connect: %s" % os.strerror(err))
        socks.append(s)
    return socks


class Timed:
    """A normal client: one GET on a fresh connection, timed."""

    def __init__(self, test):
        self.test = test
        self.worst = 0.0
        self.count = 0

    def get(self):
        t = time.monotonic()
        c = self.test.connect(timeout=5.0)
        c.send(HEAD)
        r = c.read_response()
        took = time.monotonic() - t
        c.close()
        self.test.assertEqual(r.status, 200, r)
        self.test.assertEqual(r.body, self.test.web.index)
        self.worst = max(self.worst, took)
        self.count += 1
        return took


class SlowHeaders(VerbdTestCase):
    """(a) 2,000 connections sending one header byte per second."""

    N = 2000
    server_args = ("--workers", "1", "--set", "header_timeout=3s")

    def setUp(self):
        raise_nofile(self.N + 1000)
        super().setUp()

    def test_slowloris_does_not_starve_and_is_timed_out(self):
        if raise_nofile(self.N + 1000) < self.N + 200:
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % self.N)
        slow = (b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                + b"a" * 200 + b"\r\n\r\n")
        start = time.monotonic()
        socks = open_many(self.server.host, self.server.port, self.N)
        sel = selectors.DefaultSelector()
        sent = {}
        closed_at = {}
        got = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            sent[s] = 0
        client = Timed(self)
        next_byte = start
        next_get = start + 0.2
        deadline = start + 9.0
        try:
            while time.monotonic() < deadline and len(closed_at) < self.N:
                now = time.monotonic()
                if now >= next_byte:
                    # One more byte on every connection still open.
                    for s in socks:
                        if s in closed_at:
                            continue
                        try:
                            if s.send(slow[sent[s]:sent[s] + 1]) == 1:
                                sent[s] += 1
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            closed_at.setdefault(s, time.monotonic())
                    next_byte += 1.0
                if now >= next_get:
                    client.get()
                    next_get = time.monotonic() + 0.3
                for key, _ in sel.select(timeout=0.05):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        got[s] = got.get(s, b"") + data
                        continue
                    closed_at[s] = time.monotonic()
                    sel.unregister(s)
            open_left = self.N - len(closed_at)
            last = max(closed_at.values()) - start if closed_at else None
        finally:
            sel.close()
            for s in socks:
                s.close()
        print("\n[slowloris] %d connections, header_timeout 3s: all closed %s; last close at %.1fs; "
              "normal client: %d GETs, worst %.3fs" % (
                  self.N, "yes" if open_left == 0 else "NO (%d open)" % open_left,
                  last or -1, client.count, client.worst))
        # A GET every 0.3 s for the 3 s or so the slow connections last: about
        # ten, fewer on a loaded machine; a starved client gets one or two.
        self.assertGreaterEqual(client.count, 6, "the normal client was hardly served")
        self.assertLess(client.worst, 1.0, "a normal request took %.3fs among slow clients" % client.worst)
        self.assertEqual(open_left, 0, "%d slow connections were not closed by the header timeout" % open_left)
        # Closed by the header timeout (3 s after the connection opened,
        # checked every 250 ms), not earlier and not much later.
        self.assertGreaterEqual(min(closed_at.values()) - start, 2.5)
        self.assertLess(last, 7.0)
        # Whoever sent bytes and got an answer got 408.
        for s, data in got.items():
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:100])
        # The server is still fine.
        client.get()


class ConnectionCap(VerbdTestCase):
    """(b) Connections beyond max_connections get 503 and are closed; the
    ones already open carry on."""

    CAP = 50
    server_args = ("--workers", "1", "--set", "max_connections=%d" % CAP)

    def test_over_cap_refused_existing_continue(self):
        held = []
        for _ in range(self.CAP):
            c = self.connect()
            c.send(HEAD)
            self.assertEqual(c.read_response().status, 200)
            held.append(c)
        for _ in range(5):
            extra = self.connect()
            extra.send(HEAD)
            r = extra.read_response()
            self.assertStatus(r, 503)
            self.assertEqual(r.header("Retry-After"), "1", r)
            self.assertIn("close", r.connection_tokens())
            self.assertClosed(extra)
        # Every connection already open is still served, pipelining too.
        for c in held:
            c.send(HEAD + HEAD)
            for r in c.read_responses(2):
                self.assertStatus(r, 200)
                self.assertEqual(r.body, self.web.index)
        # Closing some makes room again.
        for c in held[:5]:
            c.close()
        time.sleep(0.3)
        c = self.connect()
        c.send(HEAD)
        self.assertEqual(c.read_response().status, 200)


class NeverReads(VerbdTestCase):
    """(c) A client that pipelines many requests and never reads: the
    server stops reading once 64 KiB of output waits, so its memory does
    not grow with what the client sends."""

    server_args = ("--workers", "1")

    def pump(self, request, seconds=3.0, budget=50 << 20):
        before = self.warm_rss()
        s = socket.create_connection((self.server.host, self.server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        block = request * max(1, (256 * 1024) // len(request))
        sent = 0
        end = time.monotonic() + seconds
        peak = before
        while sent < budget and time.monotonic() < end:
            try:
                sent += s.send(block)
            except (BlockingIOError, InterruptedError):
                time.sleep(0.01)
            peak = max(peak, rss_kib(self.server.pid))
        time.sleep(0.3)
        peak = max(peak, rss_kib(self.server.pid))
        # Still serving others.
        Timed(self).get()
        s.close()
        grew = peak - before
        print("\n[never-reads] %s: sent %.1f MB of requests; server RSS %d -> peak %d KiB (+%d KiB)" % (
            request.split(b" ")[1].decode(), sent / 1e6, before, peak, grew))
        return sent, grew

    def warm_rss(self):
        for _ in range(3):
            Timed(self).get()
        c = self.connect()
        c.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        c.close()
        time.sleep(0.1)
        return rss_kib(self.server.pid)

    def test_pipelined_big_file_never_read(self):
        sent, grew = self.pump(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertLess(grew, 4096, "server memory grew by %d KiB" % grew)

    def test_pipelined_small_file_never_read(self):
        sent, grew = self.pump(HEAD)
        self.assertLess(grew, 4096, "server memory grew by %d KiB" % grew)


class HugeBodies(VerbdTestCase):
    """(d) A huge declared body with a refused method is not read into
    memory."""

    server_args = ("--workers", "1")

    def baseline(self):
        for _ in range(3):
            Timed(self).get()
        time.sleep(0.1)
        return rss_kib(self.server.pid)

    def test_refused_body_under_max_body_is_discarded(self):
        before = self.baseline()
        c = self.connect()
        n = 1000000
        c.send(b"POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % n)
        r = c.read_response()
        self.assertStatus(r, 501)
        chunk = b"x" * 65536
        left = n
        while left:
            k = min(left, len(chunk))
            c.send(chunk[:k])
            left -= k
        # The connection stays in sync: the next request is answered.
        self.assertUsable(c)
        grew = rss_kib(self.server.pid) - before
        print("\n[huge-body] 1 MB refused body: RSS +%d KiB" % grew)
        self.assertLess(grew, 2048)

    def test_declared_body_over_max_body_is_413_unread(self):
        before = self.baseline()
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000000\r\n\r\n"
               + b"x" * 65536)
        r = c.read_response()
        self.assertStatus(r, 413)
        self.assertIn("close", r.connection_tokens())
        # The rest is not read: the server closes (after a bounded linger).
        sent = 0
        try:
            c.sock.settimeout(5)
            for _ in range(1000):
                c.sock.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            pass
        self.assertLess(sent, 64 << 20, "the server kept reading a body it refused")
        self.assertLess(rss_kib(self.server.pid) - before, 2048)

    def test_expect_continue_gets_final_status_not_100(self):
        before = self.baseline()
        c = self.connect()
        c.send(b"POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 501)
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)
        self.assertLess(rss_kib(self.server.pid) - before, 2048)

    def test_expect_continue_over_max_body(self):
        c = self.connect()
        c.send(b"PUT /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (413, 501), r)
        self.assertClosed(c)

    def test_refused_chunked_body_is_discarded(self):
        before = self.baseline()
        c = self.connect()
        c.send(b"POST /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 501)
        piece = b"10000\r\n" + b"y" * 65536 + b"\r\n"
        for _ in range(15):  # 960 KiB, under max_body
            c.send(piece)
        c.send(b"0\r\n\r\n")
        self.assertUsable(c)
        self.assertLess(rss_kib(self.server.pid) - before, 2048)


class IdleMemory(VerbdTestCase):
    """Memory per idle keep-alive connection (after one GET each)."""

    N = 5000
    server_args = ("--workers", "1")

    def setUp(self):
        raise_nofile(self.N + 1000)
        super().setUp()

    def test_memory_per_idle_connection(self):
        if raise_nofile(self.N + 1000) < self.N + 200:
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % self.N)
        # Warm up: the worker's pools and a few connections' worth.
        warm = []
        for _ in range(50):
            c = self.server.connect()
            c.send(HEAD)
            c.read_response()
            warm.append(c)
        time.sleep(0.2)
        before = rss_kib(self.server.pid)
        socks = []
        try:
            batch = 200
            for i in range(0, self.N, batch):
                group = [socket.create_connection((self.server.host, self.server.port)) for _ in range(batch)]
                for s in group:
                    s.sendall(HEAD)
                for s in group:
                    buf = b""
                    s.settimeout(5)
                    while b"\r\n\r\n" not in buf or len(buf) < buf.index(b"\r\n\r\n") + 4 + 1024:
                        d = s.recv(65536)
                        if not d:
                            raise AssertionError("connection closed before its response")
                        buf += d
                    self.assertTrue(buf.startswith(b"HTTP/1.1 200 "), buf[:100])
                socks += group
            time.sleep(0.5)
            after = rss_kib(self.server.pid)
            per = (after - before) * 1024.0 / self.N
            print("\n[idle-memory] %d idle keep-alive connections: RSS %d -> %d KiB, %.0f bytes per connection"
                  % (self.N, before, after, per))
            # All still open and usable.
            s = socks[-1]
            s.sendall(HEAD)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200 "))
            self.assertLess(per, 16 * 1024, "%.0f bytes per idle connection" % per)
        finally:
            for s in socks:
                s.close()
            for c in warm:
                c.close()


if __name__ == "__main__":
    unittest.main()
