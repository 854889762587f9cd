"""Asynchronous exchanges over a real socket (examples/stream.c): responses
of unknown length sent chunked, a handler answering from a timer, bodies
read at the handler's pace, a response begun before the body is complete,
pipelined requests answered in order behind a slow one, a client that stops
reading (the server's memory stays bounded), and clients that vanish at
every step (the server goes on; ASan and valgrind runs check the memory)."""

import os
import socket
import time
import unittest
import zlib

from harness import build_request
from test_examples import ExampleTestCase


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Streaming(ExampleTestCase):
    example = "stream"

    def test_tick_stream_is_chunked(self):
        t0 = time.monotonic()
        c, r = self.request("GET", "/tick?n=4&ms=50")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.body, b"tick 1\ntick 2\ntick 3\ntick 4\n")
        self.assertGreaterEqual(elapsed, 0.15)  # four ticks 50 ms apart
        self.assertUsable(c)

    def test_head_of_tick_stream_mirrors_get(self):
        c, get = self.request("GET", "/tick?n=2&ms=10")
        c, head = self.request("HEAD", "/tick?n=2&ms=10", conn=c)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertSameHeadersButDate(head, get)
        self.assertUsable(c)

    def test_http10_stream_ends_with_connection(self):
        c = self.connect()
        c.send(b"GET /tick?n=2&ms=10 HTTP/1.0\r\n\r\n")
        raw = c.read_until_close()
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertIn(b"Connection: close", head)
        self.assertNotIn(b"Transfer-Encoding", head)
        self.assertEqual(body, b"tick 1\ntick 2\n")

    def test_pipelined_answers_in_order_behind_a_slow_one(self):
        c = self.connect()
        c.send(build_request("GET", "/tick?n=3&ms=60") + build_request("GET", "/bytes?n=5")
               + build_request("GET", "/tick?n=1&ms=0"))
        first, second, third = c.read_responses(["GET", "GET", "GET"])
        self.assertEqual(first.body, b"tick 1\ntick 2\ntick 3\n")
        self.assertEqual(second.body, b"xxxxx")
        self.assertEqual(third.body, b"tick 1\n")

    def test_upload_read_at_its_own_pace(self):
        data = os.urandom(3 * 1024 * 1024 + 7)
        for ms in ("0", "1"):
            c, r = self.request("PUT", "/upload?ms=" + ms, body=data)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body.decode(), "%d bytes, fnv1a %s\n" % (len(data), fnv1a(data)))
            self.assertUsable(c)

    def test_chunked_upload(self):
        data = os.urandom(200000)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 7000]), data[i:i + 7000])
                          for i in range(0, len(data), 7000)) + b"0\r\n\r\n"
        c = self.connect()
        c.send(build_request("PUT", "/upload", [("Transfer-Encoding", "chunked")]) + chunks)
        r = c.read_response("PUT")
        self.assertEqual(r.body.decode(), "%d bytes, fnv1a %s\n" % (len(data), fnv1a(data)))

    def test_answer_begins_before_the_body_is_complete(self):
        c = self.connect()
        c.send(build_request("POST", "/early", [("Content-Length", "10")]) + b"12345")
        # The head and the first chunk arrive while half the body is unsent.
        got = b""
        deadline = time.monotonic() + 5
        while b"started\n" not in got and time.monotonic() < deadline:
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                got += c.sock.recv(4096)
            except socket.timeout:
                break
        self.assertIn(b"HTTP/1.1 200 OK", got)
        self.assertIn(b"started\n", got)
        self.assertNotIn(b"received", got)
        c.sock.sendall(b"67890")
        while b"0\r\n\r\n" not in got and time.monotonic() < deadline + 5:
            got += c.sock.recv(4096)
        self.assertIn(b"received 10 bytes\n", got)

    def test_expect_continue_only_when_read(self):
        c = self.connect()
        c.send(build_request("PUT", "/upload", [("Content-Length", "3"),
                                                ("Expect", "100-continue")]))
        r = c.read_response("PUT")
        self.assertEqual(r.status, 100)
        c.send(b"abc")
        r = c.read_response("PUT")
        self.assertEqual(r.body.decode(), "3 bytes, fnv1a %s\n" % fnv1a(b"abc"))

    def test_slow_reader_keeps_memory_bounded(self):
        pid = self.server.pid
        before = rss_kib(pid)
        c = self.connect(rcvbuf=4096)
        size = 256 * 1024 * 1024
        c.send(build_request("GET", "/bytes?n=%d" % size))
        time.sleep(1.5)  # the client reads nothing: the server must wait
        during = rss_kib(pid)
        self.assertLess(during - before, 4096, "server grew by %d KiB" % (during - before))
        # Then it reads it all, and every byte is there.
        c.sock.settimeout(30)
        total, head = 0, b""
        while b"\r\n\r\n" not in head:
            head += c.sock.recv(65536)
        head, _, rest = head.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % size, head)
        total = len(rest)
        while total < size:
            data = c.sock.recv(1 << 20)
            if not data:
                break
            total += len(data)
        self.assertEqual(total, size)

    def test_clients_vanishing_at_every_step(self):
        steps = [
            build_request("GET", "/tick?n=50&ms=10"),                 # mid-stream
            build_request("PUT", "/upload?ms=5", [("Content-Length", "100000")]) + b"x" * 5000,
            build_request("POST", "/early", [("Content-Length", "10")]) + b"123",
            build_request("GET", "/bytes?n=50000000"),                # under backpressure
            build_request("PUT", "/upload", [("Transfer-Encoding", "chunked")]) + b"5\r\nab",
            b"GET /tick?n=3&ms=10 HTTP/1.1\r\nHost: x\r\n",             # half a head
        ]
        for raw in steps:
            for linger in (False, True):
                s = socket.create_connection(("127.0.0.1", self.server.port))
                if linger:  # a reset rather than a FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.sendall(raw)
                time.sleep(0.05)
                s.close()
        time.sleep(0.2)
        self.assertTrue(self.server.alive())
        c, r = self.request("GET", "/tick?n=1&ms=0")
        self.assertEqual(r.body, b"tick 1\n")


if __name__ == "__main__":
    unittest.main()
