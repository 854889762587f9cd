"""The proxy's cache over HTTP/2 (h2c with prior knowledge): hits of a
memory and a disk zone under HTTP/2 flow control, HEAD and Range from a
stored entry, and collapsed requests following an answer as it streams
in, each on a stream of one connection.  The same exchange serves both
protocols, so the answers are those of HTTP/1.1 (test_cache*.py)."""

import os
import threading

import upstream as U
from test_cache import CacheCase
from test_cache_collapse import FIRST, SIZE, held
from test_http2 import H2Client

BIG = 900 * 1024 + 77  # under the default cache_max_entry (1m)


class CacheOverHttp2(CacheCase):
    def h2(self, **kw):
        c = H2Client(self.srv.host, self.srv.port, **kw)
        self.addCleanup(c.close)
        return c

    def hits(self, zone_top="", zone="z"):
        body = U.pattern(0, BIG)
        self.up.on("GET", "/big", U.respond(200, [("Cache-Control", "max-age=60"),
                                                  ("Content-Type", "application/x-test")], body))
        self.start(top=zone_top, zone=zone)
        c = self.h2()
        first = c.request("GET", "/big")
        self.assertEqual((first.status, bytes(first.body)), (200, body))
        self.assertIn("stored", first.header("cache-status"))
        # A hit, read through the default 64 KiB window given back as it
        # is read, and one read with a window of 16 KiB.
        for client in (c, self.h2(window=16384)):
            r = client.request("GET", "/big")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.header("cache-status").startswith("verbd; hit"), r.headers)
            self.assertEqual(r.header("content-length"), str(BIG))
            self.assertTrue(bytes(r.body) == body, "the hit's body differs")
        r = c.request("HEAD", "/big")
        self.assertEqual((r.status, r.header("content-length"), bytes(r.body)), (200, str(BIG), b""))
        r = c.request("GET", "/big", headers=[("range", "bytes=1000-1999")])
        self.assertEqual((r.status, r.header("content-range")), (206, "bytes 1000-1999/%d" % BIG))
        self.assertEqual(bytes(r.body), body[1000:2000])
        self.assertEqual(self.up.count("GET", "/big"), 1)

    def test_memory_zone_hits(self):
        self.hits()

    def test_disk_zone_hits(self):
        self.hits(zone_top="cache_zone d memory=4m path=%s disk=16m;\n"
                  % os.path.join(self.dir, "cache"), zone="d")

    def test_collapsed_streams_follow_the_answer(self):
        gate = threading.Event()
        self.addCleanup(gate.set)
        self.up.on("GET", "/s", held(gate))
        self.start()
        leader = self.srv.connect(timeout=10)
        self.addCleanup(leader.close)
        leader.send(b"GET /s HTTP/1.1\r\nHost: example.test\r\n\r\n")
        self.up.wait_requests(1)
        c = self.h2()
        # The key has the host: the leader's Host, as :authority.
        sids = [c.start("GET", "/s", authority="example.test") for _ in range(3)]
        # Each stream has its head and the first part of the body while
        # the upstream still holds the rest.
        c.pump(lambda: all(len(c.responses[s].body) >= FIRST for s in sids))
        for s in sids:
            r = c.responses[s]
            self.assertEqual(r.status, 200)
            self.assertIn("collapsed", r.header("cache-status"))
            self.assertFalse(r.ended)
        self.assertEqual(self.up.count("GET", "/s"), 1)
        gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        for s in sids:
            r = c.wait(s)
            self.assertTrue(bytes(r.body) == U.pattern(0, SIZE), "a stream's body differs")
        self.assertEqual(self.up.count("GET", "/s"), 1)
