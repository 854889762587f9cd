"""Range requests and the cache (docs/cache.md, "Ranges"; RFC 9110 §14,
RFC 9111 §3.3-3.4): a Range on a stored 200 is answered from the cache
(206, multipart/byteranges, 416, If-Range, HEAD), in a memory zone and
in a disk zone; a Range on a miss goes upstream as it is.  Counted by
the requests the upstream receives, as test_cache.py does."""

import hashlib
import re

import upstream as U
from test_cache import CacheCase, http_date

# Over four blocks of a zone: ranges that span blocks are lent in pieces.
SIZE = 20000


def body_of(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


BODY = body_of(SIZE)
LM = "Tue, 14 Nov 2023 22:13:20 GMT"


def ranged(body, fields):
    """An upstream handler that answers a single bytes=A-B, A- or -N with
    206 (and anything else, several ranges too, with 200), counting both
    as requests."""
    def handler(ex):
        ex.drain()
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", ex.request.header("Range") or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                a = int(m.group(1))
                b = min(int(m.group(2) or len(body) - 1), len(body) - 1)
            else:
                a, b = max(len(body) - int(m.group(2)), 0), len(body) - 1
            ex.respond(206, fields + [("Content-Range", "bytes %d-%d/%d" % (a, b, len(body)))],
                       body[a:b + 1])
        else:
            ex.respond(200, fields, body)
    return handler


def parts_of(r):
    """The parts of a multipart/byteranges answer: [(Content-Range, bytes)]."""
    ct = r.header("Content-Type")
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ct or "")
    assert m, ct
    delim = b"--" + m.group(1).encode()
    chunks = r.body.split(delim)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n", r.body[:200]
    out = []
    for c in chunks[1:-1]:
        head, _, data = c.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if line)
        assert data.endswith(b"\r\n")
        out.append((fields.get("Content-Range"), fields.get("Content-Type"), data[:-2]))
    return out


class RangeOnHit:
    """The tests, for a memory zone and a disk zone alike."""

    FIELDS = [("Cache-Control", "max-age=60"), ("Content-Type", "application/x-test"),
              ("ETag", '"v1"'), ("Last-Modified", LM)]

    def stored(self, path="/r", body=BODY, fields=None):
        self.up.on("GET", path, ranged(body, self.FIELDS if fields is None else fields))
        self.start()
        first = self.get(path)
        self.assertEqual((first.status, first.body), (200, body))
        self.assertEqual(self.up.count("GET", path), 1)

    def assertRange(self, r, first, last, body=BODY):
        self.assertEqual(r.status, 206, r.headers)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, len(body)))
        self.assertEqual(r.body, body[first:last + 1])
        self.assertEqual(r.header("Content-Length"), str(last - first + 1))
        self.assertEqual(r.header("Content-Type"), "application/x-test")
        self.assertHit(r)

    def test_single_ranges_of_a_stored_200_are_answered_206_from_it(self):
        self.stored()
        cases = {"bytes=0-99": (0, 99), "bytes=4000-8300": (4000, 8300),
                 "bytes=19990-": (19990, SIZE - 1), "bytes=-10": (SIZE - 10, SIZE - 1),
                 "bytes=5-999999": (5, SIZE - 1), "bytes=-999999": (0, SIZE - 1),
                 "bytes=4096-4096": (4096, 4096)}
        for spec, (a, b) in cases.items():
            with self.subTest(range=spec):
                self.assertRange(self.get("/r", headers={"Range": spec}), a, b)
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_a_small_body_too(self):
        # A disk zone keeps a body this small in its index as well.
        small = b"0123456789abcdef"
        self.stored("/s", small)
        self.assertRange(self.get("/s", headers={"Range": "bytes=3-6"}), 3, 6, small)
        self.assertEqual(self.up.count("GET", "/s"), 1)

    def test_several_ranges_are_multipart_byteranges(self):
        self.stored()
        r = self.get("/r", headers={"Range": "bytes=0-9, 8000-12000, -5"})
        self.assertEqual(r.status, 206, r.headers)
        self.assertHit(r)
        self.assertIsNone(r.header("Content-Range"))
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))
        self.assertEqual(parts_of(r), [
            ("bytes 0-9/%d" % SIZE, "application/x-test", BODY[0:10]),
            ("bytes 8000-12000/%d" % SIZE, "application/x-test", BODY[8000:12001]),
            ("bytes %d-%d/%d" % (SIZE - 5, SIZE - 1, SIZE), "application/x-test", BODY[-5:]),
        ])
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_an_unsatisfiable_range_is_416_with_the_length(self):
        self.stored()
        for spec in ("bytes=%d-" % SIZE, "bytes=30000-40000", "bytes=-0"):
            with self.subTest(range=spec):
                r = self.get("/r", headers={"Range": spec})
                self.assertEqual(r.status, 416, r.headers)
                self.assertEqual(r.header("Content-Range"), "bytes */%d" % SIZE)
                self.assertEqual(r.body, b"")
                self.assertTrue(r.header("Cache-Status").startswith("verbd; hit"))
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_an_invalid_range_gets_the_whole_200(self):
        self.stored()
        for spec in ("bytes=9-3", "items=0-3", "bytes=a-b", "bytes="):
            with self.subTest(range=spec):
                r = self.get("/r", headers={"Range": spec})
                self.assertEqual((r.status, r.body), (200, BODY))
                self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_accept_ranges_none_gets_the_whole_200(self):
        self.stored(fields=self.FIELDS + [("Accept-Ranges", "none")])
        r = self.get("/r", headers={"Range": "bytes=0-99"})
        self.assertEqual((r.status, r.body), (200, BODY))
        self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_if_range_matches_a_strong_etag_or_the_exact_date(self):
        self.stored()
        honoured = ('"v1"', LM)
        whole = ('"v2"', 'W/"v1"', "Tue, 14 Nov 2023 22:13:21 GMT", "nonsense")
        for value in honoured:
            with self.subTest(if_range=value):
                r = self.get("/r", headers={"Range": "bytes=10-19", "If-Range": value})
                self.assertRange(r, 10, 19)
        for value in whole:
            with self.subTest(if_range=value):
                r = self.get("/r", headers={"Range": "bytes=10-19", "If-Range": value})
                self.assertEqual((r.status, r.body), (200, BODY))
                self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_if_range_never_matches_a_weak_etag(self):
        self.stored(fields=[("Cache-Control", "max-age=60"), ("ETag", 'W/"v1"')])
        for value in ('W/"v1"', '"v1"'):
            with self.subTest(if_range=value):
                r = self.get("/r", headers={"Range": "bytes=10-19", "If-Range": value})
                self.assertEqual((r.status, r.body), (200, BODY))
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_head_with_a_range(self):
        self.stored()
        r = self.ask("HEAD", "/r", headers={"Range": "bytes=100-199"})
        self.assertEqual(r.status, 206, r.headers)
        self.assertEqual(r.header("Content-Range"), "bytes 100-199/%d" % SIZE)
        self.assertEqual((r.header("Content-Length"), r.body), ("100", b""))
        self.assertHit(r)
        r = self.ask("HEAD", "/r", headers={"Range": "bytes=%d-" % SIZE})
        self.assertEqual((r.status, r.header("Content-Range")), (416, "bytes */%d" % SIZE))
        self.assertEqual((self.up.count("GET", "/r"), self.up.count("HEAD", "/r")), (1, 0))

    def test_a_range_on_a_miss_goes_upstream_as_it_is(self):
        self.up.on("GET", "/m", ranged(BODY, self.FIELDS))
        self.start()
        r = self.get("/m", headers={"Range": "bytes=10-19"})
        self.assertEqual((r.status, r.body), (206, BODY[10:20]))
        self.assertEqual(r.header("Content-Range"), "bytes 10-19/%d" % SIZE)
        self.assertIn("fwd=uri-miss", r.header("Cache-Status"))
        self.assertEqual(self.up.requests[-1].header("Range"), "bytes=10-19")
        self.assertEqual(self.up.count("GET", "/m"), 1)


class MemoryZone(RangeOnHit, CacheCase):
    pass


class DiskZone(RangeOnHit, CacheCase):
    def start(self, extra="", top="", zone="d"):
        top += "cache_zone d memory=4m path=%s/cache disk=8m;\n" % self.dir
        return super().start(extra, top, zone)


class StoredParts:
    """206 answers stored as parts (RFC 9111 §3.3) and combined (§3.4),
    for a memory zone and a disk zone alike."""

    def serve(self, body=BODY, fields=None, path="/p"):
        self.fields = list(fields if fields is not None else
                           [("Cache-Control", "max-age=60"), ("ETag", '"v1"'),
                            ("Content-Type", "application/x-test")])
        self.body = body
        self.up.on("GET", path, lambda ex: ranged(self.body, self.fields)(ex))
        self.start()

    def range(self, spec, path="/p", **extra):
        return self.get(path, headers=dict(extra, Range=spec))

    def assertPart(self, r, first, last, body=BODY, hit=True):
        self.assertEqual(r.status, 206, r.headers)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, len(body)))
        self.assertEqual(r.body, body[first:last + 1])
        if hit:
            self.assertHit(r)

    def test_a_206_is_stored_and_answers_ranges_inside_it(self):
        self.serve()
        r = self.range("bytes=100-199")
        self.assertPart(r, 100, 199, hit=False)
        self.assertIn("stored", r.header("Cache-Status"))
        for spec, (a, b) in {"bytes=120-149": (120, 149), "bytes=100-199": (100, 199),
                             "bytes=199-199": (199, 199)}.items():
            with self.subTest(range=spec):
                self.assertPart(self.range(spec), a, b)
        r = self.range("bytes=100-109, 190-199")
        self.assertEqual(r.status, 206)
        self.assertHit(r)
        self.assertEqual(parts_of(r), [
            ("bytes 100-109/%d" % SIZE, "application/x-test", BODY[100:110]),
            ("bytes 190-199/%d" % SIZE, "application/x-test", BODY[190:200])])
        r = self.ask("HEAD", "/p", headers={"Range": "bytes=150-159"})
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (206, "10", b""))
        self.assertEqual(self.up.count("GET", "/p"), 1)

    def test_a_part_never_answers_for_more_than_it_holds(self):
        self.serve()
        self.range("bytes=1000-1999")
        asked = ["bytes=999-1500", "bytes=1500-2000", "bytes=-10", "bytes=0-1,19995-19999"]
        for n, spec in enumerate(asked, start=2):
            with self.subTest(range=spec):
                r = self.range(spec)
                self.assertIn("fwd=partial", r.header("Cache-Status"))
                # Forwarded as it is.
                self.assertEqual(self.up.requests[-1].header("Range"), spec)
                self.assertEqual(self.up.count("GET", "/p"), n)
        self.assertEqual(self.up.count("GET", "/p"), 5)
        # The upstream answered the two ranges with the whole 200 (as it
        # may), which replaced the part.
        self.assertEqual(r.status, 200)
        r = self.get("/p")
        self.assertEqual(r.body, BODY)
        self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/p"), 5)

    def test_a_request_without_range_is_not_answered_from_a_part(self):
        self.serve()
        self.range("bytes=0-99")
        r = self.get("/p")
        self.assertEqual((r.status, r.body), (200, BODY))
        self.assertIn("fwd=partial", r.header("Cache-Status"))
        self.assertIsNone(self.up.requests[-1].header("Range"))
        self.assertEqual(self.up.count("GET", "/p"), 2)
        # The 200 replaced the part.
        self.assertHit(self.get("/p"))
        self.assertEqual(self.up.count("GET", "/p"), 2)

    def test_a_part_answers_an_unsatisfiable_range_with_the_complete_length(self):
        self.serve()
        self.range("bytes=0-99")
        r = self.range("bytes=%d-" % SIZE)
        self.assertEqual((r.status, r.header("Content-Range")), (416, "bytes */%d" % SIZE))
        self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/p"), 1)

    def test_a_part_with_if_range_or_other_conditions(self):
        self.serve()
        self.range("bytes=0-99")
        self.assertPart(self.range("bytes=0-9", **{"If-Range": '"v1"'}), 0, 9)
        self.assertEqual(self.up.count("GET", "/p"), 1)
        # If-Range that does not match asks for the whole: upstream.
        r = self.range("bytes=0-9", **{"If-Range": '"v0"'})
        self.assertIn("fwd=partial", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 2)
        r = self.range("bytes=0-9", **{"If-None-Match": '"v1"'})
        self.assertIn("fwd=partial", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 3)

    def test_overlapping_parts_of_one_validator_are_combined(self):
        self.serve()
        self.range("bytes=100-199")
        self.range("bytes=150-299")      # overlaps: 100-299
        self.range("bytes=300-399")      # touches: 100-399
        self.assertEqual(self.up.count("GET", "/p"), 3)
        self.assertPart(self.range("bytes=100-399"), 100, 399)
        self.assertPart(self.range("bytes=180-320"), 180, 320)
        self.assertEqual(self.up.count("GET", "/p"), 3)
        # A part apart from it replaces it (one part per variant).
        self.range("bytes=1000-1099")
        self.assertPart(self.range("bytes=1000-1009"), 1000, 1009)
        self.assertEqual(self.up.count("GET", "/p"), 4)
        self.assertIn("fwd=partial", self.range("bytes=100-109").header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 5)

    def test_parts_that_complete_the_representation_become_a_200(self):
        self.serve()
        self.range("bytes=0-9999")
        self.range("bytes=10000-")
        self.assertEqual(self.up.count("GET", "/p"), 2)
        r = self.get("/p")
        self.assertEqual((r.status, r.body), (200, BODY))
        self.assertHit(r)
        self.assertIsNone(r.header("Content-Range"))
        self.assertEqual(r.header("ETag"), '"v1"')
        self.assertPart(self.range("bytes=5-15"), 5, 15)
        self.assertEqual(self.up.count("GET", "/p"), 2)

    def validated_part(self, etag_304):
        fields = [("Cache-Control", "max-age=0"), ("ETag", '"v1"')]
        partial = ranged(BODY, fields)

        def handler(ex):
            if ex.request.header("If-None-Match") == '"v1"':
                ex.drain()
                ex.respond(304, [("ETag", etag_304), ("Cache-Control", "max-age=60")], b"")
            else:
                partial(ex)
        self.up.on("GET", "/p", handler)
        self.start()
        self.range("bytes=0-99")
        r = self.range("bytes=10-19")
        self.assertPart(r, 10, 19, hit=False)
        self.assertIn("fwd=stale; fwd-status=304", r.header("Cache-Status"))
        self.assertEqual(self.up.requests[-1].header("Range"), "bytes=10-19")
        self.assertEqual(self.up.count("GET", "/p"), 2)
        self.assertPart(self.range("bytes=20-29"), 20, 29)   # fresh again
        self.assertEqual(self.up.count("GET", "/p"), 2)

    def test_a_stale_part_is_validated_and_a_304_answers_from_it(self):
        self.validated_part('"v1"')

    def test_a_304_that_weakens_the_etag_still_answers_from_the_part(self):
        # The 304 says the stored bytes are current; its fields replace
        # the stored ones, the part's Content-Range stays.
        self.validated_part('W/"v1"')

    def test_a_head_with_range_that_misses_stores_no_part(self):
        self.serve()
        r = self.ask("HEAD", "/p", headers={"Range": "bytes=0-9"})
        self.assertEqual((r.status, r.header("Content-Range"), r.body),
                         (206, "bytes 0-9/%d" % SIZE, b""))
        self.assertEqual(self.up.requests[-1].method, "GET")
        r = self.range("bytes=0-9")
        self.assertNotIn("hit", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 2)

    def test_a_206_of_a_stored_200_s_validator_leaves_the_200(self):
        # A stale 200 validated for a Range; the upstream answers 206 (not
        # 304) with the same ETag: the 200 holds it already and stays.
        self.serve(fields=[("Cache-Control", "max-age=0"), ("ETag", '"v1"')])
        self.get("/p")
        r = self.range("bytes=0-9")
        self.assertIn("fwd=stale; fwd-status=206", r.header("Cache-Status"))
        r = self.get("/p")
        self.assertIn("fwd=stale", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 3)
        # With another ETag, the part replaces it (the 200 is outdated).
        self.fields[1] = ("ETag", '"v2"')
        self.range("bytes=0-9")
        r = self.get("/p")
        self.assertIn("fwd=partial", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 5)

    def test_a_206_of_the_whole_is_a_200(self):
        self.serve()
        self.range("bytes=0-%d" % (SIZE - 1))
        r = self.get("/p")
        self.assertEqual((r.status, r.body), (200, BODY))
        self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/p"), 1)

    def test_parts_of_another_validator_are_never_combined(self):
        self.serve()
        self.range("bytes=0-9999")
        # The representation changes: the newer part replaces the stored one.
        self.body = bytes(reversed(BODY))
        self.fields[1] = ("ETag", '"v2"')
        self.range("bytes=10000-")
        self.assertEqual(self.up.count("GET", "/p"), 2)
        self.assertPart(self.range("bytes=15000-15009"), 15000, 15009, self.body)
        self.assertEqual(self.up.count("GET", "/p"), 2)
        r = self.range("bytes=0-9")     # the v1 part is gone
        self.assertIn("fwd=partial", r.header("Cache-Status"))
        self.assertEqual(r.body, self.body[:10])
        r = self.get("/p")              # and nothing became a 200
        self.assertNotIn("hit", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET", "/p"), 4)

    def test_a_last_modified_a_second_before_date_is_a_strong_validator(self):
        self.serve(fields=[("Cache-Control", "max-age=60"), ("Last-Modified", http_date(-10)),
                           ("Date", http_date())])
        self.range("bytes=0-99")
        self.assertPart(self.range("bytes=0-9"), 0, 9)
        self.assertEqual(self.up.count("GET", "/p"), 1)

    def test_what_206_is_not_stored(self):
        cases = {
            "/weak": [("Cache-Control", "max-age=60"), ("ETag", 'W/"v1"')],
            "/none": [("Cache-Control", "max-age=60")],
            "/lm-at-date": [("Cache-Control", "max-age=60"), ("Last-Modified", http_date()),
                            ("Date", http_date())],
            "/no-store": [("Cache-Control", "no-store"), ("ETag", '"v1"')],
        }
        for path, fields in cases.items():
            self.up.on("GET", path, ranged(BODY, fields))

        def unknown_length(ex):
            ex.drain()
            ex.respond(206, [("Cache-Control", "max-age=60"), ("ETag", '"v1"'),
                             ("Content-Range", "bytes 0-9/*")], BODY[:10])
        self.up.on("GET", "/unknown-length", unknown_length)

        def multipart(ex):
            ex.drain()
            ex.respond(206, [("Cache-Control", "max-age=60"), ("ETag", '"v1"'),
                             ("Content-Type", "multipart/byteranges; boundary=B")],
                       b"--B\r\nContent-Range: bytes 0-0/20000\r\n\r\nx\r\n--B--\r\n")
        self.up.on("GET", "/multipart", multipart)
        self.start()
        for path in list(cases) + ["/unknown-length", "/multipart"]:
            with self.subTest(path=path):
                self.range("bytes=0-9", path)
                r = self.range("bytes=0-9", path)
                self.assertEqual(r.status, 206)
                self.assertNotIn("hit", r.header("Cache-Status"))
                self.assertEqual(self.up.count("GET", path), 2)


class MemoryZoneParts(StoredParts, CacheCase):
    pass


class DiskZoneParts(StoredParts, CacheCase):
    def start(self, extra="", top="", zone="d"):
        top += "cache_zone d memory=4m path=%s/cache disk=8m;\n" % self.dir
        return super().start(extra, top, zone)
