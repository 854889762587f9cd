"""The proxy's cache (docs/cache.md, RFC 9111): what is stored and
reused, counted by the requests the upstream receives (never by timing:
ages come from the upstream's Age and Date, and the few tests where time
must pass sleep at most two seconds).  Storing rules (no-store, private,
Authorization, must-understand), freshness (s-maxage, max-age, Expires,
Date/Age arithmetic, heuristic freshness of refusals), Vary, HEAD from a
stored GET, request directives, validation, invalidation by unsafe
methods (FROB included), Cache-Status, and the configuration."""

import email.utils
import os
import signal
import subprocess
import threading
import time

import upstream as U
from harness import verbd_bin
from test_config import ConfigCase, config_server, wait_for


def http_date(offset=0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def answer(status=200, headers=(), body=b"x" * 100):
    """An upstream handler whose fields may be callables (evaluated per
    request, for Dates relative to now)."""
    def handler(ex):
        ex.drain()
        fields = [(k, v() if callable(v) else v) for k, v in headers]
        ex.respond(status, fields, body if status not in (204, 304) else b"")
    return handler


def validated(etag, fields, body, fields_304):
    """An upstream handler that answers 304 with fields_304 to
    If-None-Match: etag, and 200 with fields and body otherwise."""
    def handler(ex):
        ex.drain()
        if ex.request.header("If-None-Match") == etag:
            ex.respond(304, [("ETag", etag)] + fields_304, b"")
        else:
            ex.respond(200, [("ETag", etag)] + fields, body)
    return handler


class CacheCase(ConfigCase):
    TOP = "access_log off;\nworkers 1;\ncache_zone z memory=4m;\n"

    def setUp(self):
        super().setUp()
        self.up = U.Upstream(U.echo())
        self.up.start()
        self.addCleanup(self.up.stop)

    def start(self, extra="", top="", zone="z"):
        text = (self.TOP + top + "listen 127.0.0.1:0;\n"
                "location / { proxy %s/; cache %s; %s }\n" % (self.up.url, zone, extra))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        return srv

    def ask(self, method, target, headers=None, body=b""):
        c = self.srv.connect(timeout=10)
        try:
            h = dict(headers or {})
            if body:
                h["Content-Length"] = str(len(body))
            req = "%s %s HTTP/1.1\r\nHost: example.test\r\n" % (method, target)
            req += "".join("%s: %s\r\n" % kv for kv in h.items())
            c.send(req.encode() + b"\r\n" + body)
            return c.read_response(method)
        finally:
            c.close()

    def get(self, target, **kw):
        return self.ask("GET", target, **kw)

    def assertHit(self, r):
        self.assertTrue(r.header("Cache-Status", "").startswith("verbd; hit"), r.headers)
        self.assertIsNotNone(r.header("Age"), r.headers)


class Storing(CacheCase):
    def test_get_is_stored_and_reused_with_age_and_cache_status(self):
        self.up.on("GET", "/a", answer(200, [("Cache-Control", "max-age=60"),
                                             ("Content-Type", "text/plain")], b"hello\n"))
        self.start()
        r1 = self.get("/a")
        self.assertEqual(r1.status, 200)
        self.assertIn("fwd=uri-miss", r1.header("Cache-Status"))
        self.assertIn("stored", r1.header("Cache-Status"))
        r2 = self.get("/a")
        self.assertEqual((r2.status, r2.body), (200, b"hello\n"))
        self.assertHit(r2)
        self.assertEqual(r2.header("Content-Type"), "text/plain")
        self.assertEqual(self.up.count("GET", "/a"), 1)
        # Another target is another key.
        self.up.on("GET", "/b", answer(200, [("Cache-Control", "max-age=60")]))
        self.get("/b")
        self.assertEqual(self.up.count("GET", "/b"), 1)

    def test_head_is_served_from_a_stored_get_with_its_fields(self):
        self.up.on("GET", "/h", answer(200, [("Cache-Control", "max-age=60"), ("ETag", '"v1"'),
                                             ("Content-Type", "text/plain")], b"z" * 1000))
        self.start()
        g = self.get("/h")
        h = self.ask("HEAD", "/h")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        for name in ("Content-Length", "ETag", "Content-Type", "Cache-Control"):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertHit(h)
        self.assertEqual((self.up.count("GET"), self.up.count("HEAD")), (1, 0))

    def test_head_miss_is_fetched_as_get_and_stored(self):
        self.up.on("GET", "/h", answer(200, [("Cache-Control", "max-age=60")], b"q" * 10))
        self.start()
        h = self.ask("HEAD", "/h")
        self.assertEqual((h.status, h.body, h.header("Content-Length")), (200, b"", "10"))
        self.assertEqual(self.get("/h").body, b"q" * 10)
        self.assertEqual((self.up.count("GET"), self.up.count("HEAD")), (1, 0))

    def test_what_is_not_stored(self):
        cases = {
            "/nostore": [("Cache-Control", "no-store, max-age=60")],
            "/private": [("Cache-Control", "private, max-age=60")],
            "/vary-star": [("Cache-Control", "max-age=60"), ("Vary", "*")],
            "/understand": [("Cache-Control", "must-understand, no-store")],
        }
        for path, fields in cases.items():
            self.up.on("GET", path, answer(299 if path == "/understand" else 200, fields))
        self.start()
        for path in cases:
            with self.subTest(path=path):
                self.get(path)
                r = self.get(path)
                self.assertNotIn("hit", r.header("Cache-Status"))
                self.assertEqual(self.up.count("GET", path), 2)

    def test_must_understand_overrides_no_store_for_a_known_status(self):
        self.up.on("GET", "/m", answer(200, [("Cache-Control", "must-understand, no-store, "
                                                                "max-age=60")]))
        self.start()
        self.get("/m")
        self.assertHit(self.get("/m"))
        self.assertEqual(self.up.count("GET"), 1)

    def test_request_no_store_is_not_stored(self):
        self.up.on("GET", "/n", answer(200, [("Cache-Control", "max-age=60")]))
        self.start()
        self.get("/n", headers={"Cache-Control": "no-store"})
        self.get("/n")
        self.assertEqual(self.up.count("GET"), 2)

    def test_private_and_no_cache_field_names_are_not_stored(self):
        self.up.on("GET", "/p", answer(200, [
            ("Cache-Control", 'max-age=60, private="Set-Cookie", no-cache="X-Secret"'),
            ("Set-Cookie", "a=b"), ("X-Secret", "s"), ("X-Kept", "k")]))
        self.start()
        r1 = self.get("/p")
        self.assertEqual(r1.header("Set-Cookie"), "a=b")
        r2 = self.get("/p")
        self.assertHit(r2)
        self.assertIsNone(r2.header("Set-Cookie"))
        self.assertIsNone(r2.header("X-Secret"))
        self.assertEqual(r2.header("X-Kept"), "k")

    def test_authorization_limits_reuse(self):
        self.up.on("GET", "/auth", answer(200, [("Cache-Control", "max-age=60")]))
        self.up.on("GET", "/pub", answer(200, [("Cache-Control", "public, max-age=60")]))
        self.start()
        for path in ("/auth", "/pub"):
            self.get(path, headers={"Authorization": "Basic dTpw"})
            self.get(path)
        self.assertEqual(self.up.count("GET", "/auth"), 2)
        self.assertEqual(self.up.count("GET", "/pub"), 1)

    def test_shared_by_workers(self):
        self.up.on("GET", "/w", answer(200, [("Cache-Control", "max-age=60")]))
        self.start(top="workers 2;\n")
        for _ in range(8):
            self.assertEqual(self.get("/w").status, 200)
        self.assertEqual(self.up.count("GET"), 1)

    def test_too_large_is_not_stored(self):
        self.up.on("GET", "/big", answer(200, [("Cache-Control", "max-age=60")], b"b" * 5000))
        self.start(extra="cache_max_entry 4k;")
        self.assertEqual(len(self.get("/big").body), 5000)
        r = self.get("/big")
        self.assertEqual(len(r.body), 5000)
        self.assertIn("detail=too-large", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET"), 2)

    def test_eviction_keeps_the_zone_bounded(self):
        self.up.on("GET", None, answer(200, [("Cache-Control", "max-age=60")], b"e" * 10000))
        self.start(top="cache_zone small memory=256k;\n", zone="small")
        for i in range(40):
            self.assertEqual(len(self.get("/e%d" % i).body), 10000)
        self.assertHit(self.get("/e39"))
        self.assertEqual(len(self.get("/e0").body), 10000)
        self.assertEqual(self.up.count("GET", "/e0"), 2)  # evicted: least recently used
        self.assertEqual(self.up.count("GET", "/e39"), 1)


class Freshness(CacheCase):
    def test_501_without_freshness_is_reused_for_its_heuristic_lifetime_only(self):
        self.up.on("GET", "/r", answer(501, [("Content-Type", "text/plain")], b"no\n"))
        self.start(extra="cache_heuristic 501=2s;")
        self.assertEqual(self.get("/r").status, 501)
        r = self.get("/r")
        self.assertEqual(r.status, 501)
        self.assertHit(r)
        self.assertEqual(self.up.count("GET"), 1)
        time.sleep(2.1)
        self.assertEqual(self.get("/r").status, 501)
        self.assertEqual(self.up.count("GET"), 2)

    def test_refusals_have_default_heuristic_lifetimes(self):
        for status in (404, 405, 410, 414, 501):
            self.up.on("GET", "/s%d" % status, answer(status, [("Allow", "POST")]))
        self.start()
        for status in (404, 405, 410, 414, 501):
            with self.subTest(status=status):
                self.assertEqual(self.get("/s%d" % status).status, status)
                r = self.get("/s%d" % status)
                self.assertEqual(r.status, status)
                self.assertHit(r)
                ttl = int(r.header("Cache-Status").split("ttl=")[1].split(";")[0])
                self.assertLessEqual(ttl, 60 if status in (404, 410) else 600)
                self.assertGreater(ttl, 50 if status in (404, 410) else 590)
                self.assertEqual(self.up.count("GET", "/s%d" % status), 1)

    def test_405_with_no_store_is_not_stored(self):
        self.up.on("GET", "/n", answer(405, [("Allow", "POST"), ("Cache-Control", "no-store")]))
        self.start()
        self.assertEqual(self.get("/n").status, 405)
        self.assertEqual(self.get("/n").status, 405)
        self.assertEqual(self.up.count("GET"), 2)

    def test_heuristic_from_last_modified_and_none_without(self):
        self.up.on("GET", "/lm", answer(200, [("Last-Modified", http_date(-1000))]))
        self.up.on("GET", "/plain", answer(200))
        self.start()
        self.get("/lm")
        r = self.get("/lm")
        self.assertHit(r)
        ttl = int(r.header("Cache-Status").split("ttl=")[1].split(";")[0])
        self.assertTrue(95 <= ttl <= 100, ttl)
        # A 200 with neither freshness nor Last-Modified: stored stale,
        # and with no validator it goes upstream again.
        self.get("/plain")
        self.get("/plain")
        self.assertEqual(self.up.count("GET", "/plain"), 2)

    def test_public_gives_any_status_a_heuristic_lifetime(self):
        """RFC 9111 §4.2.2: `public` marks a status the cache does not
        know as cacheable, so Last-Modified gives it a heuristic
        lifetime; without `public` it is not stored."""
        lm = ("Last-Modified", http_date(-1000))
        self.up.on("GET", "/p", answer(599, [lm, ("Cache-Control", "public")]))
        self.up.on("GET", "/q", answer(599, [lm]))
        self.start()
        self.get("/p")
        r = self.get("/p")
        self.assertEqual(r.status, 599)
        self.assertHit(r)
        self.get("/q")
        self.get("/q")
        self.assertEqual((self.up.count("GET", "/p"), self.up.count("GET", "/q")), (1, 2))

    def test_cache_heuristic_sets_200(self):
        self.up.on("GET", "/x", answer(200))
        self.start(extra="cache_heuristic 200=1h;")
        self.get("/x")
        self.assertHit(self.get("/x"))

    def test_age_and_date_arithmetic(self):
        # Age from upstream counts: max-age=60 with Age: 55 leaves 5s.
        self.up.on("GET", "/age", answer(200, [("Cache-Control", "max-age=60"), ("Age", "55")]))
        # Age already past max-age: stale at once.
        self.up.on("GET", "/old", answer(200, [("Cache-Control", "max-age=60"), ("Age", "70")]))
        # A Date 30 s in the past with max-age=20: stale at once (apparent age).
        self.up.on("GET", "/date", answer(200, [("Cache-Control", "max-age=20"),
                                                ("Date", lambda: http_date(-30))]))
        self.start()
        self.get("/age")
        r = self.get("/age")
        self.assertHit(r)
        self.assertGreaterEqual(int(r.header("Age")), 55)
        for path in ("/old", "/date"):
            self.get(path)
            self.get(path)
            self.assertEqual(self.up.count("GET", path), 2, path)

    def test_s_maxage_over_max_age_and_expires(self):
        self.up.on("GET", "/s", answer(200, [("Cache-Control", "max-age=0, s-maxage=60")]))
        self.up.on("GET", "/e", answer(200, [("Date", lambda: http_date()),
                                             ("Expires", lambda: http_date(60))]))
        self.up.on("GET", "/bad", answer(200, [("Expires", "0")]))
        self.up.on("GET", "/inv", answer(200, [("Cache-Control", "max-age=abc")]))
        self.start()
        for path, hits in (("/s", True), ("/e", True), ("/bad", False), ("/inv", False)):
            with self.subTest(path=path):
                self.get(path)
                self.get(path)
                self.assertEqual(self.up.count("GET", path), 1 if hits else 2)


class Vary(CacheCase):
    def test_vary_hits_and_misses(self):
        def by_encoding(ex):
            ex.drain()
            ae = ex.request.header("Accept-Encoding", "none")
            ex.respond(200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")],
                       ae.encode())
        self.up.on("GET", "/v", by_encoding)
        self.start()
        self.assertEqual(self.get("/v", headers={"Accept-Encoding": "gzip"}).body, b"gzip")
        r = self.get("/v", headers={"Accept-Encoding": "gzip"})
        self.assertHit(r)
        self.assertEqual(r.body, b"gzip")
        r = self.get("/v", headers={"Accept-Encoding": "br"})
        self.assertEqual(r.body, b"br")
        self.assertIn("fwd=vary-miss", r.header("Cache-Status"))
        self.assertEqual(self.get("/v").body, b"none")
        self.assertEqual(self.up.count("GET"), 3)
        # Every variant stays; white space and case are normalised.
        self.assertEqual(self.get("/v", headers={"Accept-Encoding": "GZIP"}).body, b"gzip")
        self.assertEqual(self.get("/v", headers={"Accept-Encoding": "br"}).body, b"br")
        self.assertEqual(self.get("/v").body, b"none")
        self.assertEqual(self.up.count("GET"), 3)


class Requests(CacheCase):
    def test_only_if_cached(self):
        self.up.on("GET", "/o", answer(200, [("Cache-Control", "max-age=60")]))
        self.start()
        r = self.get("/o", headers={"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 504)
        self.assertEqual(self.up.count("GET"), 0)
        self.get("/o")
        r = self.get("/o", headers={"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.count("GET"), 1)

    def test_request_directives(self):
        self.up.on("GET", "/d", answer(200, [("Cache-Control", "max-age=60"), ("Age", "30")]))
        self.start()
        self.get("/d")
        self.assertHit(self.get("/d", headers={"Cache-Control": "max-age=40"}))
        self.assertHit(self.get("/d", headers={"Cache-Control": "min-fresh=20"}))
        self.assertEqual(self.up.count("GET"), 1)
        self.get("/d", headers={"Cache-Control": "max-age=10"})
        self.assertEqual(self.up.count("GET"), 2)
        self.get("/d", headers={"Cache-Control": "min-fresh=40"})
        self.assertEqual(self.up.count("GET"), 3)
        self.get("/d", headers={"Cache-Control": "no-cache"})
        self.assertEqual(self.up.count("GET"), 4)

    def test_max_stale(self):
        self.up.on("GET", "/st", answer(200, [("Cache-Control", "max-age=10"), ("Age", "20")]))
        self.up.on("GET", "/mr", answer(200, [("Cache-Control", "max-age=10, must-revalidate"),
                                              ("Age", "20")]))
        self.start()
        self.get("/st")
        r = self.get("/st", headers={"Cache-Control": "max-stale=60"})
        self.assertIn("detail=stale", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/st"), 1)
        self.get("/st", headers={"Cache-Control": "max-stale=5"})
        self.assertEqual(self.up.count("GET", "/st"), 2)
        self.get("/mr")
        self.get("/mr", headers={"Cache-Control": "max-stale"})
        self.assertEqual(self.up.count("GET", "/mr"), 2)

    def test_bypass_and_off(self):
        self.up.on("GET", None, answer(200, [("Cache-Control", "max-age=60")]))
        text = (self.TOP + "listen 127.0.0.1:0;\n"
                "location / { proxy %s/; cache z; cache_bypass $http_x_fresh; }\n"
                "location /off/ { proxy %s/; cache z; cache off; }\n" % (self.up.url, self.up.url))
        self.srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(self.srv.cleanup)
        self.get("/b")
        r = self.get("/b", headers={"X-Fresh": "1"})
        self.assertIn("fwd=bypass", r.header("Cache-Status"))
        self.assertHit(self.get("/b", headers={"X-Fresh": "0"}))
        self.assertEqual(self.up.count("GET", "/b"), 2)
        self.get("/off/x")
        r = self.get("/off/x")
        self.assertIsNone(r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/x"), 2)

    def test_min_uses(self):
        self.up.on("GET", "/u", answer(200, [("Cache-Control", "max-age=60")]))
        self.start(extra="cache_min_uses 2;")
        self.assertIn("detail=min-uses", self.get("/u").header("Cache-Status"))
        self.get("/u")
        self.assertHit(self.get("/u"))
        self.assertEqual(self.up.count("GET"), 2)


class Validation(CacheCase):
    def test_stale_entry_is_validated_and_a_304_refreshes_it(self):
        self.up.on("GET", "/e", validated('"e1"', [("Cache-Control", "max-age=10"), ("Age", "10"),
                                                   ("X-Version", "1")], b"body",
                                          [("Cache-Control", "max-age=60"), ("X-Version", "2")]))
        self.start()
        self.assertEqual(self.get("/e").header("X-Version"), "1")
        r = self.get("/e", headers={"If-None-Match": '"other"'})
        self.assertEqual((r.status, r.body), (200, b"body"))
        self.assertEqual(r.header("X-Version"), "2")
        self.assertIn("fwd-status=304", r.header("Cache-Status"))
        sent = self.up.requests[-1]
        self.assertEqual(sent.header("If-None-Match"), '"e1"')
        r = self.get("/e")
        self.assertHit(r)
        self.assertEqual((r.body, r.header("X-Version")), (b"body", "2"))
        self.assertEqual(self.up.count("GET"), 2)

    def test_last_modified_validation(self):
        lm = http_date(-3600)

        def dated(ex):
            ex.drain()
            if ex.request.header("If-Modified-Since") == lm:
                ex.respond(304, [("Cache-Control", "max-age=60")], b"")
            else:
                ex.respond(200, [("Last-Modified", lm), ("Cache-Control", "max-age=0")], b"lm")
        self.up.on("GET", "/l", dated)
        self.start()
        self.get("/l")
        self.assertEqual(self.get("/l").body, b"lm")
        self.assertHit(self.get("/l"))
        self.assertEqual(self.up.count("GET"), 2)

    def test_client_conditional_from_a_fresh_entry(self):
        self.up.on("GET", "/c", answer(200, [("ETag", 'W/"c1"'), ("Cache-Control", "max-age=60"),
                                             ("Content-Type", "text/plain")]))
        self.start()
        self.get("/c")
        for inm, status in (('"c1"', 304), ('W/"c1"', 304), ('"x", W/"c1"', 304), ("*", 304),
                            ('"c2"', 200)):
            with self.subTest(inm=inm):
                r = self.get("/c", headers={"If-None-Match": inm})
                self.assertEqual(r.status, status)
                if status == 304:
                    self.assertEqual(r.header("ETag"), 'W/"c1"')
                    self.assertIsNone(r.header("Content-Type"))
        self.assertEqual(self.up.count("GET"), 1)

    def test_if_modified_since_against_date_without_last_modified(self):
        """RFC 9111 §4.3.2: with no Last-Modified stored, the stored Date
        is what If-Modified-Since is compared with."""
        date = http_date(-100)
        self.up.on("GET", "/d", answer(200, [("Date", date), ("Cache-Control", "max-age=600")]))
        self.start()
        self.get("/d")
        for ims, status in ((date, 304), (http_date(-50), 304), (http_date(-200), 200)):
            with self.subTest(ims=ims):
                self.assertEqual(self.get("/d", headers={"If-Modified-Since": ims}).status, status)
        self.assertEqual(self.up.count("GET"), 1)

    def test_upstream_unreachable(self):
        self.up.on("GET", "/ok", answer(200, [("Cache-Control", "max-age=1"), ("Age", "1"),
                                              ("ETag", '"1"')]))
        self.up.on("GET", "/must", answer(200, [("Cache-Control", "max-age=1, must-revalidate"),
                                                ("Age", "1"), ("ETag", '"1"')]))
        self.up.on("GET", "/nc", answer(200, [("Cache-Control", "no-cache"), ("ETag", '"1"')]))
        self.start()
        for path in ("/ok", "/must", "/nc"):
            self.assertEqual(self.get(path).status, 200)
        self.up.stop()
        r = self.get("/ok")
        self.assertEqual(r.status, 200)
        self.assertIn("fwd=stale", r.header("Cache-Status"))
        self.assertEqual(self.get("/must").status, 504)
        self.assertEqual(self.get("/nc").status, 504)


class Stale(CacheCase):
    def test_stale_if_error(self):
        self.up.on("GET", "/sie", answer(200, [("Cache-Control", "max-age=1, stale-if-error=60"),
                                               ("Age", "1")], b"old"))
        self.up.on("GET", "/plain", answer(200, [("Cache-Control", "max-age=1"), ("Age", "1")]))
        self.start()
        self.get("/sie")
        self.get("/plain")
        self.up.queue(answer(503, [("Content-Type", "text/plain")], b"down"),
                      answer(503, [("Content-Type", "text/plain")], b"down"))
        r = self.get("/sie")
        self.assertEqual((r.status, r.body), (200, b"old"))
        self.assertIn("fwd-status=503", r.header("Cache-Status"))
        self.assertIn("detail=stale-if-error", r.header("Cache-Status"))
        self.assertEqual(self.get("/plain").status, 503)
        # The request's own stale-if-error does as well.
        self.up.queue(answer(500))
        r = self.get("/plain", headers={"Cache-Control": "stale-if-error=60"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.count("GET"), 5)

    def wait_for(self, cond):
        """Asks cond() every 50 ms until it holds (2 s at most)."""
        for _ in range(40):
            if cond():
                return True
            time.sleep(0.05)
        return False

    def test_stale_while_revalidate(self):
        self.up.on("GET", "/w", validated(
            '"w1"', [("X-Version", "1"), ("Age", "2"),
                     ("Cache-Control", "max-age=1, stale-while-revalidate=60")], b"swr",
            [("Cache-Control", "max-age=60"), ("X-Version", "2")]))
        self.start()
        self.get("/w")
        # Stale: answered at once, and revalidated in the background.
        r = self.get("/w")
        self.assertEqual((r.status, r.body, r.header("X-Version")), (200, b"swr", "1"))
        self.assertIn("detail=stale-while-revalidate", r.header("Cache-Status"))
        self.assertTrue(self.wait_for(lambda: self.get("/w").header("X-Version") == "2"))
        r = self.get("/w")
        self.assertHit(r)
        self.assertNotIn("stale", r.header("Cache-Status"))
        self.assertEqual(r.body, b"swr")
        # One revalidation however many stale answers went out meanwhile.
        self.assertEqual(self.up.count("GET"), 2)
        self.assertEqual(self.up.requests[1].header("If-None-Match"), '"w1"')

    def stale_then(self, path, background):
        """Stores path stale within its stale-while-revalidate (body
        "old"), has it served stale, and waits until the background GET,
        answered by `background`, reached the upstream.  Later requests
        get "third" (X-Version 3, fresh for a minute)."""
        self.up.queue(answer(200, [("Cache-Control", "max-age=1, stale-while-revalidate=60"),
                                   ("Age", "2"), ("X-Version", "1")], b"old"), background)
        self.up.on("GET", path, answer(200, [("Cache-Control", "max-age=60"),
                                             ("X-Version", "3")], b"third"))
        self.assertEqual(self.get(path).body, b"old")
        r = self.get(path)
        self.assertEqual(r.body, b"old")
        self.assertIn("detail=stale-while-revalidate", r.header("Cache-Status"))
        self.assertTrue(self.wait_for(lambda: self.up.count("GET", path) == 2))

    def test_stale_while_revalidate_stores_a_new_answer(self):
        """The background GET's 200 replaces the entry, whatever its
        framing: the next request is a hit with it, and nothing more is
        asked upstream."""
        fresh = [("Cache-Control", "max-age=60"), ("X-Version", "2")]

        def framed(**kw):
            def handler(ex):
                ex.drain()
                ex.respond(200, fresh, b"new body, " * 50, **kw)
            return handler
        self.start()
        for path, background in (("/length", framed()),
                                 ("/chunked", framed(chunked=True, chunk_size=7)),
                                 ("/close", framed(length=False))):
            with self.subTest(path):
                self.stale_then(path, background)
                self.assertTrue(self.wait_for(lambda: self.get(path).body != b"old"))
                r = self.get(path)
                self.assertHit(r)
                self.assertNotIn("stale", r.header("Cache-Status"))
                self.assertEqual((r.body, r.header("X-Version")), (b"new body, " * 50, "2"))
                self.assertEqual(self.up.count("GET", path), 2)
        self.assertEqual(self.up.requests[1].header("Connection"), "close")

    def test_stale_while_revalidate_new_answer_of_another_variant(self):
        """A new answer that varies where the old did not replaces it: the
        stale variant goes (one entry left), and the request's own fields
        choose the new."""
        self.start(top="location = /status { status; }\n")
        self.stale_then("/v", answer(200, [("Cache-Control", "max-age=60"), ("Vary", "X-Lang")],
                                     b"new"))
        self.assertTrue(self.wait_for(lambda: self.get("/v").body != b"old"))
        r = self.get("/v")
        self.assertHit(r)
        self.assertEqual(r.body, b"new")
        self.assertEqual(self.up.count("GET", "/v"), 2)
        self.assertIn('verbd_proxy_cache_entries{zone="z"} 1\n', self.get("/status").body.decode())

    def test_stale_while_revalidate_removes_what_it_may_not_store(self):
        """A background answer that may not be stored (no-store, private,
        a 503, over cache_max_entry by its length or as it is read), or
        that has a field rewritten for each client (Content-Location),
        removes the entry: the next request misses and fetches it."""
        big = b"b" * 5000
        self.start(extra="cache_max_entry 4k;")
        for path, background in (
                ("/no-store", answer(200, [("Cache-Control", "no-store")], b"new")),
                ("/private", answer(200, [("Cache-Control", "private, max-age=60")], b"new")),
                ("/503", answer(503, [("Content-Type", "text/plain")], b"down")),
                ("/located", answer(200, [("Cache-Control", "max-age=60"),
                                          ("Content-Location", "/located.en")], b"new")),
                ("/big", answer(200, [("Cache-Control", "max-age=60")], big)),
                ("/big-chunked", lambda ex: (ex.drain(), ex.respond(
                    200, [("Cache-Control", "max-age=60")], big, chunked=True,
                    chunk_size=1000)))):
            with self.subTest(path):
                self.stale_then(path, background)
                self.assertTrue(self.wait_for(
                    lambda: "fwd=uri-miss" in self.get(path).header("Cache-Status")))
                self.assertEqual(self.up.count("GET", path), 3)
                r = self.get(path)
                self.assertHit(r)
                self.assertEqual(r.body, b"third")

    def test_must_revalidate_without_validators_is_504_when_unreachable(self):
        self.up.on("GET", "/m", answer(200, [("Cache-Control", "max-age=1, must-revalidate"),
                                             ("Age", "1")]))
        self.up.on("GET", "/o", answer(200, [("Cache-Control", "max-age=1"), ("Age", "1")]))
        self.start()
        self.get("/m")
        self.get("/o")
        self.up.stop()
        self.assertEqual(self.get("/m").status, 504)
        self.assertEqual(self.get("/o").status, 200)


class Collapsing(CacheCase):
    def concurrent_gets(self, target, n):
        conns = [self.srv.connect(timeout=10) for _ in range(n)]
        for c in conns:
            self.addCleanup(c.close)
            c.send(("GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n" % target).encode())
        return [c.read_response("GET") for c in conns]

    def slow(self, fields):
        """Answers after 0.5 s; self.most is the most requests it had at
        once."""
        lock = threading.Lock()
        self.busy = self.most = 0

        def handler(ex):
            ex.drain()
            with lock:
                self.busy += 1
                self.most = max(self.most, self.busy)
            time.sleep(0.5)
            with lock:
                self.busy -= 1
            ex.respond(200, fields, b"slow")
        return handler

    def test_concurrent_misses_send_one_request(self):
        self.up.on("GET", "/c", self.slow([("Cache-Control", "max-age=60")]))
        self.start(top="workers 2;\n")
        rs = self.concurrent_gets("/c", 6)
        self.assertEqual([r.status for r in rs], [200] * 6)
        self.assertEqual([r.body for r in rs], [b"slow"] * 6)
        self.assertEqual(self.up.count("GET"), 1)
        collapsed = [r for r in rs if "collapsed" in r.header("Cache-Status")]
        self.assertEqual(len(collapsed), 5, [r.header("Cache-Status") for r in rs])

    def test_an_uncacheable_answer_releases_the_waiters(self):
        self.up.on("GET", "/u", self.slow([("Cache-Control", "no-store")]))
        self.start()
        rs = self.concurrent_gets("/u", 4)
        self.assertEqual([r.status for r in rs], [200] * 4)
        self.assertEqual(self.up.count("GET"), 4)
        # The three that waited went together, not one behind the other.
        self.assertEqual(self.most, 3)

    def stale_entry(self, path, then, cc="max-age=1"):
        """The first request stores path already stale, with a validator;
        `then` answers every later one (after 0.5 s, so that they meet)."""
        first = threading.Event()

        def handler(ex):
            ex.drain()
            if not first.is_set():
                first.set()
                ex.respond(200, [("Cache-Control", cc), ("Age", "1"), ("ETag", '"v1"')], b"stored")
            else:
                time.sleep(0.5)
                then(ex)
        self.up.on("GET", path, handler)

    def test_concurrent_validations_send_one_request(self):
        self.stale_entry("/v", lambda ex: ex.respond(
            304, [("Cache-Control", "max-age=60"), ("ETag", '"v1"')], b""))
        self.start(top="workers 2;\n")
        self.assertEqual(self.get("/v").body, b"stored")
        rs = self.concurrent_gets("/v", 6)
        self.assertEqual([(r.status, r.body) for r in rs], [(200, b"stored")] * 6)
        self.assertEqual(self.up.count("GET", "/v"), 2)  # the store and one validation
        statuses = [r.header("Cache-Status") for r in rs]
        self.assertEqual(sum("fwd=stale; collapsed" in c for c in statuses), 5, statuses)
        self.assertEqual(sum("fwd-status=304" in c for c in statuses), 1, statuses)
        self.assertHit(self.get("/v"))
        self.assertEqual(self.up.count("GET", "/v"), 2)

    def test_waiters_on_a_failed_validation_are_answered_stale(self):
        """The validation fails (a 503, and the entry has stale-if-error):
        the request that made it and those that waited for it all get the
        stale entry, none the error."""
        self.stale_entry("/f", lambda ex: ex.respond(503, [("Content-Type", "text/plain")],
                                                     b"down"),
                         cc="max-age=1, stale-if-error=60")
        self.start(top="workers 2;\n")
        self.get("/f")
        rs = self.concurrent_gets("/f", 4)
        self.assertEqual([(r.status, r.body) for r in rs], [(200, b"stored")] * 4,
                         [r.header("Cache-Status") for r in rs])

    def test_no_cache_validates_for_itself(self):
        self.stale_entry("/n", lambda ex: ex.respond(
            304, [("Cache-Control", "max-age=60"), ("ETag", '"v1"')], b""))
        self.start()
        self.get("/n")
        conns = [self.srv.connect(timeout=10) for _ in range(3)]
        for c in conns:
            self.addCleanup(c.close)
            c.send(b"GET /n HTTP/1.1\r\nHost: example.test\r\nCache-Control: no-cache\r\n\r\n")
        rs = [c.read_response("GET") for c in conns]
        self.assertEqual([r.status for r in rs], [200] * 3)
        self.assertEqual(self.up.count("GET", "/n"), 4)


class Purge(CacheCase):
    def test_purge_from_allowed_addresses_only(self):
        self.up.on("GET", None, answer(200, [("Cache-Control", "max-age=60")]))
        text = (self.TOP + "listen 127.0.0.1:0;\n"
                "location / { proxy %s/; cache z; cache_purge 127.0.0.0/8; }\n"
                "location /no/ { proxy %s/no/; cache z; cache_purge 10.0.0.1; }\n"
                "location /fwd/ { proxy %s/fwd/; cache z; }\n" % ((self.up.url,) * 3))
        self.srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(self.srv.cleanup)
        self.get("/p")
        self.assertHit(self.get("/p"))
        r = self.ask("PURGE", "/p")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.ask("PURGE", "/p").status, 404)
        self.get("/p")
        self.assertEqual(self.up.count("GET", "/p"), 2)
        self.get("/no/x")
        self.assertEqual(self.ask("PURGE", "/no/x").status, 403)
        self.assertHit(self.get("/no/x"))
        # Without cache_purge, PURGE is a method like any other: forwarded.
        self.ask("PURGE", "/fwd/x")
        self.assertEqual(self.up.count("PURGE"), 1)


class Invalidation(CacheCase):
    def test_unknown_unsafe_method_invalidates(self):
        self.up.on("GET", "/x", answer(200, [("Cache-Control", "max-age=60")]))
        self.up.on("FROB", "/x", answer(204))
        self.up.on("FROB", "/y", answer(500))
        self.up.on("GET", "/y", answer(200, [("Cache-Control", "max-age=60")]))
        self.start()
        self.get("/x")
        self.get("/y")
        self.assertEqual(self.ask("FROB", "/x").status, 204)
        self.assertEqual(self.ask("FROB", "/y").status, 500)
        r = self.get("/x")
        self.assertIn("fwd=uri-miss", r.header("Cache-Status"))
        self.assertHit(self.get("/y"))  # an error invalidates nothing
        self.assertEqual(self.up.count("GET", "/x"), 2)
        self.assertEqual(self.up.count("GET", "/y"), 1)

    def test_location_and_content_location_invalidated(self):
        # Under another prefix, so that the gateway's rewriting of Location
        # (docs/proxy.md) leaves the other origin's URI as it is.
        for p in ("/v1/a", "/v1/b", "/v1/c", "/v1/d"):
            self.up.on("GET", p, answer(200, [("Cache-Control", "max-age=60")]))
        self.up.on("POST", "/v1/a", answer(201, [("Location", "/v1/b"),
                                                 ("Content-Location", "http://example.test/v1/c")],
                                           b""))
        self.up.on("POST", "/v1/other", answer(200, [("Location", "http://elsewhere.test/api/d")]))
        text = (self.TOP + "listen 127.0.0.1:0;\n"
                "location /api/ { proxy %s/v1/; cache z; }\n" % self.up.url)
        self.srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(self.srv.cleanup)
        for p in ("a", "b", "c", "d"):
            self.get("/api/" + p)
        self.ask("POST", "/api/a", body=b"1")
        self.ask("POST", "/api/other", body=b"1")
        for p, n in (("a", 2), ("b", 2), ("c", 2), ("d", 1)):
            self.get("/api/" + p)
            self.assertEqual(self.up.count("GET", "/v1/" + p), n, p)

    def test_safe_methods_invalidate_nothing(self):
        self.up.on("GET", "/s", answer(200, [("Cache-Control", "max-age=60")]))
        self.start()
        self.get("/s")
        self.ask("OPTIONS", "/s")
        self.ask("PROPFIND", "/s")
        self.assertHit(self.get("/s"))


class Operator(CacheCase):
    def test_metrics_per_zone(self):
        self.up.on("GET", "/m", answer(200, [("Cache-Control", "max-age=60")]))
        self.start(top="location = /status { status; }\n")
        self.get("/m")
        self.get("/m")
        self.ask("FROB", "/m")
        text = self.get("/status").body.decode()
        for line in ('verbd_proxy_cache_hits_total{zone="z"} 1',
                     'verbd_proxy_cache_misses_total{zone="z"} 1',
                     'verbd_proxy_cache_stores_total{zone="z"} 1',
                     'verbd_proxy_cache_invalidations_total{zone="z"} 1',
                     'verbd_proxy_cache_entries{zone="z"} 0'):
            self.assertIn(line + "\n", text)
        # Each family once, the learnt refusals' too.
        for family in ("verbd_proxy_cache_hits_total", "verbd_gateway_learnt_refusal_seconds"):
            self.assertEqual(text.count("# TYPE %s " % family), 1, family)

    def zone_lines(self, log):
        try:
            with open(log) as f:
                return [l for l in f if "cache zone z:" in l]
        except OSError:
            return []

    def check_zone_log(self, workers):
        # One info line per zone at a reload and at stop, from the process
        # that runs the server (never one per worker).
        self.up.on("GET", "/r", answer(200, [("Cache-Control", "max-age=60")]))
        log = os.path.join(self.dir, "err.log")
        self.TOP = ("access_log off;\nworkers %d;\ncache_zone z memory=4m;\n"
                    "error_log %s info;\n" % (workers, log))
        srv = self.start()
        self.get("/r")
        self.get("/r")
        self.get("/r")
        srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: len(self.zone_lines(log)) == 1),
                        self.zone_lines(log))
        line = self.zone_lines(log)[0]
        self.assertRegex(line, r"\[info\] \d+: cache zone z: memory 4194304 bytes, 1 entries in "
                               r"4096 bytes \(0\.1% of \d+\); ")
        self.assertIn("2 hits, 1 misses (hit ratio 66.7%), 1 stored, 0 evicted, "
                      "0 invalidated", line)
        self.assertTrue(wait_for(lambda: self.get("/r").status == 200))
        srv.stop()
        lines = self.zone_lines(log)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("3 hits, 1 misses (hit ratio 75.0%)", lines[1])

    def test_zone_sizes_and_hit_ratio_logged_at_reload_and_stop(self):
        self.check_zone_log(1)

    def test_zone_log_once_with_two_workers(self):
        self.check_zone_log(2)

    def test_zones_in_verbd_m(self):
        path = self.write("verbd.conf", self.TOP + "listen 127.0.0.1:0;\n"
                          "location /a/ { proxy %s/; cache z; cache_max_entry 64k; }\n"
                          % self.up.url)
        out = subprocess.run([verbd_bin(), "-M", "-c", path], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("  location /a/: every method but CONNECT and TRACE\n"
                      "    cache z: memory 4194304 bytes, entries up to 65536 bytes\n", out.stdout)


class Targeted(CacheCase):
    """RFC 9213: CDN-Cache-Control's directives, when valid, decide instead
    of Cache-Control's and Expires, and go on to the client; the field
    cache_targeted_field names comes before both and is not relayed."""

    TARGETED = "cache_targeted_field Verbd-Cache-Control;"

    def test_cdn_max_age_overrides_cache_control_no_store(self):
        self.up.on("GET", "/c", answer(200, [("Cache-Control", "no-store"),
                                             ("CDN-Cache-Control", "max-age=60")], b"cdn"))
        self.start()
        r1 = self.get("/c")
        self.assertIn("stored", r1.header("Cache-Status"))
        r2 = self.get("/c")
        self.assertHit(r2)
        self.assertEqual(r2.body, b"cdn")
        self.assertEqual(self.up.count("GET", "/c"), 1)
        for r in (r1, r2):
            self.assertEqual(r.header_all("CDN-Cache-Control"), ["max-age=60"])
            self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_cdn_no_store_beats_cache_control_max_age(self):
        self.up.on("GET", "/n", answer(200, [("Cache-Control", "max-age=60"),
                                             ("CDN-Cache-Control", "no-store")]))
        self.start()
        r = self.get("/n")
        self.assertIn("detail=no-store", r.header("Cache-Status"))
        self.assertEqual(r.header("CDN-Cache-Control"), "no-store")
        self.get("/n")
        self.assertEqual(self.up.count("GET", "/n"), 2)

    def test_cdn_cache_control_ignores_expires(self):
        # A 302 is stored only with explicit freshness: Expires would give
        # it, but CDN-Cache-Control's directives replace it.
        self.up.on("GET", "/e", answer(302, [("Location", "/x"),
                                             ("Expires", lambda: http_date(3600)),
                                             ("CDN-Cache-Control", "must-revalidate")]))
        self.start()
        r = self.get("/e")
        self.assertIn("detail=no-freshness", r.header("Cache-Status"))
        self.get("/e")
        self.assertEqual(self.up.count("GET", "/e"), 2)

    def test_targeted_field_beats_both_and_is_not_relayed(self):
        self.up.on("GET", "/t", answer(200, [("Cache-Control", "no-store"),
                                             ("CDN-Cache-Control", "no-store"),
                                             ("Verbd-Cache-Control", "max-age=60")], b"t"))
        self.up.on("GET", "/u", answer(200, [("Cache-Control", "max-age=60"),
                                             ("CDN-Cache-Control", "max-age=60"),
                                             ("Verbd-Cache-Control", "no-store")]))
        self.start(self.TARGETED)
        r1, r2 = self.get("/t"), self.get("/t")
        self.assertHit(r2)
        self.assertEqual(self.up.count("GET", "/t"), 1)
        for r in (r1, r2, self.ask("HEAD", "/t")):
            self.assertIsNone(r.header("Verbd-Cache-Control"), r.headers)
            self.assertEqual(r.header("CDN-Cache-Control"), "no-store")
        u = self.get("/u")
        self.assertIn("detail=no-store", u.header("Cache-Status"))
        self.assertIsNone(u.header("Verbd-Cache-Control"), u.headers)
        self.get("/u")
        self.assertEqual(self.up.count("GET", "/u"), 2)

    def test_invalid_targeted_field_is_ignored(self):
        # Read leniently, the field would say no-store; it is not a valid
        # list (an unterminated quoted string), so CDN-Cache-Control decides.
        self.up.on("GET", "/i", answer(200, [("Cache-Control", "no-store"),
                                             ("CDN-Cache-Control", "max-age=60"),
                                             ("Verbd-Cache-Control", 'no-store, max-age="60')]))
        self.start(self.TARGETED)
        r = self.get("/i")
        self.assertIn("stored", r.header("Cache-Status"))
        self.assertIsNone(r.header("Verbd-Cache-Control"), r.headers)
        self.assertHit(self.get("/i"))
        self.assertEqual(self.up.count("GET", "/i"), 1)

    def test_cdn_quoted_max_age_is_invalid_and_ignored(self):
        # max-age="60" is a Cache-Control directive, but as a Dictionary
        # member it is a String where an Integer belongs: the field is
        # invalid and ignored whole, so Cache-Control's no-store decides.
        self.up.on("GET", "/q", answer(200, [("Cache-Control", "no-store"),
                                             ("CDN-Cache-Control", 'max-age="60"')]))
        self.start()
        r = self.get("/q")
        self.assertIn("detail=no-store", r.header("Cache-Status"))
        self.assertEqual(r.header("CDN-Cache-Control"), 'max-age="60"')
        self.get("/q")
        self.assertEqual(self.up.count("GET", "/q"), 2)

    def test_cdn_max_age_and_private(self):
        # A valid Dictionary whose private a shared cache obeys: not stored,
        # although Cache-Control alone would allow it.
        self.up.on("GET", "/p", answer(200, [("Cache-Control", "max-age=60"),
                                             ("CDN-Cache-Control", "max-age=60, private")]))
        self.start()
        r = self.get("/p")
        self.assertIn("detail=private", r.header("Cache-Status"))
        self.get("/p")
        self.assertEqual(self.up.count("GET", "/p"), 2)

    def test_cdn_dictionary_last_member_counts_and_parameters_ignored(self):
        # A Dictionary keeps the last value of a key (no-store=?0 undoes
        # no-store) and ignores parameters (;a=b), which Cache-Control's
        # syntax would refuse; an unknown inner list is skipped.
        self.up.on("GET", "/l", answer(200, [("Cache-Control", "no-store"),
                                             ("CDN-Cache-Control",
                                              "no-store, max-age=1;a=b, x=(1 2), "
                                              "max-age=60, no-store=?0")], b"l"))
        self.start()
        r1 = self.get("/l")
        self.assertIn("stored", r1.header("Cache-Status"))
        self.assertIn("ttl=60", r1.header("Cache-Status"))
        self.assertHit(self.get("/l"))
        self.assertEqual(self.up.count("GET", "/l"), 1)

    def test_targeted_field_uppercase_directive_is_invalid(self):
        # Dictionary keys are lowercase: MAX-AGE=5 spoils the operator's
        # field, and CDN-Cache-Control decides.
        self.up.on("GET", "/k", answer(200, [("CDN-Cache-Control", "no-store"),
                                             ("Verbd-Cache-Control", "MAX-AGE=5")]))
        self.start(self.TARGETED)
        r = self.get("/k")
        self.assertIn("detail=no-store", r.header("Cache-Status"))
        self.get("/k")
        self.assertEqual(self.up.count("GET", "/k"), 2)

    def test_targeted_field_obeyed_after_a_304(self):
        # The stored entry keeps the field (never served) so that a
        # validation's 304 is judged by it too.
        self.up.on("GET", "/v", validated('"v1"', [("Cache-Control", "no-store"),
                                                   ("Verbd-Cache-Control", "max-age=10"),
                                                   ("Age", "10")], b"v", []))
        self.start(self.TARGETED)
        self.get("/v")
        r = self.get("/v")
        self.assertIn("fwd-status=304", r.header("Cache-Status"))
        self.assertIsNone(r.header("Verbd-Cache-Control"), r.headers)
        self.assertHit(self.get("/v"))
        self.assertEqual(self.up.count("GET", "/v"), 2)

    def test_hidden_cdn_cache_control_obeyed_after_a_304(self):
        # Hidden from the client, CDN-Cache-Control still decides, and is
        # kept (never served) for the validation's 304 to be judged by.
        self.up.on("GET", "/h", validated('"h1"', [("Cache-Control", "no-store"),
                                                   ("CDN-Cache-Control", "max-age=10"),
                                                   ("Age", "10")], b"h",
                                          [("X-Version", "2")]))
        self.start("proxy_hide_header CDN-Cache-Control;")
        r1 = self.get("/h")
        self.assertIn("stored", r1.header("Cache-Status"))
        r2 = self.get("/h")
        self.assertIn("fwd-status=304", r2.header("Cache-Status"))
        r3 = self.get("/h")
        self.assertHit(r3)
        self.assertEqual(r3.header("X-Version"), "2")
        for r in (r1, r2, r3):
            self.assertIsNone(r.header("CDN-Cache-Control"), r.headers)
            self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(self.up.count("GET", "/h"), 2)


class Config(ConfigCase):
    def test_errors(self):
        cases = [
            ("location / { proxy http://127.0.0.1:9/; cache nope; }\n",
             "cache: no cache_zone nope"),
            ("cache_zone z size=1m;\n", "want memory=SIZE"),
            ("cache_zone z;\n", "memory=SIZE is required"),
            ("cache_zone z memory=1k;\n", "no 1024 bytes"),
            ("cache_zone z memory=1m;\nlocation / { proxy http://127.0.0.1:9/; cache z; "
             "cache_heuristic 302=1m; }\n", "cache_heuristic"),
            ("cache_zone z memory=1m;\nlocation / { proxy http://127.0.0.1:9/; cache z; "
             "cache_key $nope; }\n", "nope"),
            ("cache_zone z memory=1m;\nlocation / { proxy http://127.0.0.1:9/; cache z; "
             "cache_min_uses 0; }\n", "cache_min_uses"),
            ("cache_zone z memory=1m;\nlocation / { proxy http://127.0.0.1:9/; cache z; "
             "cache_targeted_field CDN-Cache-Control; }\n", "cache_targeted_field"),
        ]
        for text, msg in cases:
            with self.subTest(text=text):
                errs = self.errors("listen 127.0.0.1:0;\n" + text)
                self.assertEqual(len(errs), 1, errs)
                self.assertIn(msg, errs[0][3])

    def test_nginx_names_are_hinted(self):
        errs = self.errors("listen 127.0.0.1:0;\nproxy_cache_path /c;\n"
                           "location / { static .; }\n")
        self.assertIn("did you mean cache_zone?", errs[0][3])


if __name__ == "__main__":
    import unittest
    unittest.main()
