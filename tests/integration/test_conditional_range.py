"""Conditional requests (RFC 9110 §13) and byte ranges (RFC 9110 §14)."""

import os
import shutil
import tempfile
import unittest

from harness import Server, VerbdTestCase, build_request, get_request, parse_multipart
from test_webdav import DavServer

OLD_DATE = "Mon, 01 Jan 1990 00:00:00 GMT"
FUTURE_DATE = "Fri, 01 Jan 2100 00:00:00 GMT"


class Conditional(VerbdTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.connect()
        r = self.c.request("GET", "/index.html")
        self.etag = r.header("ETag")
        self.lm = r.header("Last-Modified")
        self.assertIsNotNone(self.etag)
        self.assertIsNotNone(self.lm)

    def ask(self, *headers, method="GET", target="/index.html"):
        return self.c.request(method, target, list(headers))

    def assert304(self, r):
        self.assertStatus(r, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), self.etag)
        self.assertUsable(self.c)   # no stray body bytes after the 304

    def assertFull(self, r):
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def assert412(self, r):
        self.assertStatus(r, 412)
        self.assertUsable(self.c)

    def test_if_none_match_etag_is_304(self):
        self.assert304(self.ask(("If-None-Match", self.etag)))

    def test_if_none_match_star_is_304(self):
        self.assert304(self.ask(("If-None-Match", "*")))

    def test_if_none_match_in_list_is_304(self):
        self.assert304(self.ask(("If-None-Match", '"other", %s, "third"' % self.etag)))

    def test_if_none_match_weak_comparison_is_304(self):
        self.assert304(self.ask(("If-None-Match", "W/" + self.etag)))

    def test_if_none_match_other_is_200(self):
        self.assertFull(self.ask(("If-None-Match", '"nope"')))

    def test_if_none_match_head_is_304(self):
        r = self.ask(("If-None-Match", self.etag), method="HEAD")
        self.assertStatus(r, 304, "HEAD")
        self.assertUsable(self.c)

    def test_304_has_date_and_no_content_length(self):
        r = self.ask(("If-None-Match", self.etag))
        self.assertEqual(r.status, 304)
        self.assertIsNotNone(r.header("Date"))
        self.assertIsNone(r.header("Content-Length"))

    def test_if_modified_since_last_modified_is_304(self):
        self.assert304(self.ask(("If-Modified-Since", self.lm)))

    def test_if_modified_since_future_is_304(self):
        # a date later than Last-Modified: not modified since
        self.assert304(self.ask(("If-Modified-Since", FUTURE_DATE)))

    def test_if_modified_since_older_is_200(self):
        self.assertFull(self.ask(("If-Modified-Since", OLD_DATE)))

    def test_if_modified_since_rfc850_format(self):
        # RFC 9110 5.6.7: recipients MUST accept all three HTTP-date formats.
        self.assert304(self.ask(("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT")))

    def test_if_modified_since_asctime_format(self):
        self.assert304(self.ask(("If-Modified-Since", "Tue Nov 14 22:13:20 2023")))

    def test_if_modified_since_one_second_before_is_200(self):
        self.assertFull(self.ask(("If-Modified-Since", "Tue, 14 Nov 2023 22:13:19 GMT")))

    def test_if_unmodified_since_one_second_before_is_412(self):
        self.assert412(self.ask(("If-Unmodified-Since", "Tue, 14 Nov 2023 22:13:19 GMT")))

    def test_if_modified_since_invalid_date_ignored(self):
        self.assertFull(self.ask(("If-Modified-Since", "not a date")))

    def test_if_match_other_is_412(self):
        self.assert412(self.ask(("If-Match", '"nope"')))

    def test_if_match_etag_is_200(self):
        self.assertFull(self.ask(("If-Match", self.etag)))

    def test_if_match_star_is_200(self):
        self.assertFull(self.ask(("If-Match", "*")))

    def test_if_match_in_list_is_200(self):
        self.assertFull(self.ask(("If-Match", '"a", %s' % self.etag)))

    def test_if_match_weak_is_412(self):
        # If-Match uses the strong comparison: a weak tag never matches.
        self.assert412(self.ask(("If-Match", "W/" + self.etag)))

    def test_if_unmodified_since_1990_is_412(self):
        self.assert412(self.ask(("If-Unmodified-Since", OLD_DATE)))

    def test_if_unmodified_since_last_modified_is_200(self):
        self.assertFull(self.ask(("If-Unmodified-Since", self.lm)))

    def test_if_match_precedes_if_unmodified_since(self):
        # If-Match matches, so If-Unmodified-Since (which would fail) is ignored.
        self.assertFull(self.ask(("If-Match", self.etag), ("If-Unmodified-Since", OLD_DATE)))

    def test_if_match_failing_wins_over_passing_ius(self):
        self.assert412(self.ask(("If-Match", '"nope"'), ("If-Unmodified-Since", self.lm)))

    def test_if_none_match_precedes_if_modified_since(self):
        # If-None-Match does not match, so If-Modified-Since (which would give 304) is ignored.
        self.assertFull(self.ask(("If-None-Match", '"nope"'), ("If-Modified-Since", self.lm)))

    def test_if_none_match_match_with_old_ims_is_304(self):
        self.assert304(self.ask(("If-None-Match", self.etag), ("If-Modified-Since", OLD_DATE)))

    def test_if_match_on_missing_is_not_2xx(self):
        r = self.ask(("If-Match", "*"), target="/missing")
        self.assertIn(r.status, (404, 412), r)

    def test_if_none_match_star_on_missing_is_404(self):
        r = self.ask(("If-None-Match", "*"), target="/missing")
        self.assertStatus(r, 404)


class Ranges(VerbdTestCase):
    def setUp(self):
        super().setUp()
        self.c = self.connect()

    def rng(self, spec, target="/index.html", *more):
        return self.c.request("GET", target, [("Range", spec)] + list(more))

    def assertPartial(self, r, first, last, total, data):
        self.assertStatus(r, 206)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, total))
        self.assertEqual(int(r.header("Content-Length")), last - first + 1)
        self.assertEqual(r.body, data[first:last + 1])

    def test_first_100(self):
        r = self.rng("bytes=0-99")
        self.assertPartial(r, 0, 99, 1024, self.web.index)
        self.assertUsable(self.c)

    def test_suffix_100(self):
        self.assertPartial(self.rng("bytes=-100"), 924, 1023, 1024, self.web.index)

    def test_open_ended(self):
        self.assertPartial(self.rng("bytes=1000-"), 1000, 1023, 1024, self.web.index)

    def test_last_byte_past_end_is_clamped(self):
        self.assertPartial(self.rng("bytes=1000-5000"), 1000, 1023, 1024, self.web.index)

    def test_single_byte(self):
        self.assertPartial(self.rng("bytes=5-5"), 5, 5, 1024, self.web.index)

    def test_suffix_longer_than_file_is_whole(self):
        self.assertPartial(self.rng("bytes=-5000"), 0, 1023, 1024, self.web.index)

    def test_range_in_big_file(self):
        self.assertPartial(self.rng("bytes=65000-65535", "/big.bin"), 65000, 65535, 65536, self.web.big)

    def test_range_middle_of_big_file(self):
        self.assertPartial(self.rng("bytes=1000-40999", "/big.bin"), 1000, 40999, 65536, self.web.big)

    def test_multipart(self):
        r = self.rng("bytes=0-0,-1")
        self.assertStatus(r, 206)
        ct = r.header("Content-Type", "")
        self.assertEqual(r.media_type(), "multipart/byteranges")
        self.assertIn("boundary=", ct)
        self.assertIsNone(r.header("Content-Range"))
        parts = parse_multipart(ct, r.body)
        self.assertEqual(len(parts), 2)
        (h1, b1), (h2, b2) = parts
        self.assertEqual(h1.get("Content-Range"), "bytes 0-0/1024")
        self.assertEqual(b1, self.web.index[:1])
        self.assertEqual(h2.get("Content-Range"), "bytes 1023-1023/1024")
        self.assertEqual(b2, self.web.index[-1:])
        self.assertUsable(self.c)

    def test_multipart_parts_have_content_type(self):
        r = self.rng("bytes=0-9,20-29")
        self.assertStatus(r, 206)
        parts = parse_multipart(r.header("Content-Type", ""), r.body)
        self.assertEqual([b for _, b in parts], [self.web.index[0:10], self.web.index[20:30]])
        for h, _ in parts:
            self.assertEqual(h.get("Content-Type", "").split(";")[0], "text/html")

    def test_unsatisfiable_is_416(self):
        r = self.rng("bytes=5000-6000")
        self.assertStatus(r, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */1024")
        self.assertUsable(self.c)

    def test_unsatisfiable_first_pos_equals_length(self):
        r = self.rng("bytes=1024-")
        self.assertStatus(r, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */1024")

    def test_suffix_zero_is_416(self):
        r = self.rng("bytes=-0")
        self.assertStatus(r, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */1024")

    def test_huge_last_pos_is_clamped_or_ignored(self):
        r = self.rng("bytes=0-99999999999999999999999")
        self.assertIn(r.status, (200, 206), r)
        self.assertEqual(r.body, self.web.index)
        if r.status == 206:
            self.assertEqual(r.header("Content-Range"), "bytes 0-1023/1024")

    def test_invalid_range_ignored(self):
        r = self.rng("bytes=abc")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_reversed_range_ignored(self):
        r = self.rng("bytes=100-50")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_unknown_unit_ignored(self):
        r = self.rng("items=0-5")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_if_range_current_etag_is_206(self):
        etag = self.c.request("GET", "/index.html").header("ETag")
        r = self.rng("bytes=0-99", "/index.html", ("If-Range", etag))
        self.assertPartial(r, 0, 99, 1024, self.web.index)

    def test_if_range_stale_etag_is_200(self):
        r = self.rng("bytes=0-99", "/index.html", ("If-Range", '"stale"'))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_if_range_weak_etag_is_200(self):
        # If-Range needs a strong match; a weak validator means "send it all".
        etag = self.c.request("GET", "/index.html").header("ETag")
        r = self.rng("bytes=0-99", "/index.html", ("If-Range", "W/" + etag))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_if_range_last_modified_date_is_206(self):
        lm = self.c.request("GET", "/index.html").header("Last-Modified")
        r = self.rng("bytes=0-99", "/index.html", ("If-Range", lm))
        self.assertPartial(r, 0, 99, 1024, self.web.index)

    def test_if_range_other_date_is_200(self):
        r = self.rng("bytes=0-99", "/index.html", ("If-Range", OLD_DATE))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_range_on_missing_is_404(self):
        r = self.rng("bytes=0-99", "/missing")
        self.assertStatus(r, 404)

    def test_range_spanning_big_file_with_sendfile_offsets(self):
        r = self.rng("bytes=1-65534", "/big.bin")
        self.assertPartial(r, 1, 65534, 65536, self.web.big)

    def test_multipart_three_parts_big_file(self):
        r = self.rng("bytes=0-9,30000-30009,-10", "/big.bin")
        self.assertStatus(r, 206)
        parts = parse_multipart(r.header("Content-Type", ""), r.body)
        self.assertEqual([h.get("Content-Range") for h, _ in parts],
                         ["bytes 0-9/65536", "bytes 30000-30009/65536", "bytes 65526-65535/65536"])
        self.assertEqual([b for _, b in parts],
                         [self.web.big[0:10], self.web.big[30000:30010], self.web.big[-10:]])

    def test_multipart_with_unsatisfiable_member_is_206(self):
        # One satisfiable range is enough; the unsatisfiable one is dropped.
        r = self.rng("bytes=0-9,5000-6000")
        self.assertStatus(r, 206)
        if r.media_type() == "multipart/byteranges":
            parts = parse_multipart(r.header("Content-Type", ""), r.body)
            self.assertEqual([b for _, b in parts], [self.web.index[:10]])
        else:
            self.assertEqual(r.header("Content-Range"), "bytes 0-9/1024")
            self.assertEqual(r.body, self.web.index[:10])

    def test_head_range_mirrors_get(self):
        g = self.rng("bytes=0-99")
        h = self.c.request("HEAD", "/index.html", [("Range", "bytes=0-99")])
        self.assertEqual(h.status, 206)
        self.assertEqual(h.body, b"")
        strip = lambda r: sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
        self.assertEqual(strip(h), strip(g))
        self.assertUsable(self.c)

    def test_range_on_empty_file_is_416_or_200(self):
        r = self.rng("bytes=0-0", "/empty.txt")
        self.assertIn(r.status, (200, 416), r)
        self.assertEqual(r.body, b"")

    def test_range_with_matching_if_none_match_is_304(self):
        etag = self.c.request("GET", "/index.html").header("ETag")
        r = self.rng("bytes=0-99", "/index.html", ("If-None-Match", etag))
        self.assertStatus(r, 304)


# 2023-11-15 10:00:00 UTC, a Wednesday: its HTTP-date starts with "W", as a
# weak entity-tag ("W/...") does.
WEDNESDAY = 1700042400
WEDNESDAY_DATE = "Wed, 15 Nov 2023 10:00:00 GMT"
WED_BODY = b"0123456789abcdef\n"


def range_request(target, if_range):
    # What `curl -r 0-3 -H 'If-Range: ...' URL` sends.
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\n"
            "Accept: */*\r\nRange: bytes=0-3\r\nIf-Range: %s\r\n\r\n"
            % (target, if_range)).encode()


class IfRangeWednesday(unittest.TestCase):
    """If-Range with a Last-Modified date that falls on a Wednesday is a
    date, not a weak entity-tag: the range is honoured."""

    def check(self, server, target):
        c = server.connect()
        try:
            c.send(range_request(target, WEDNESDAY_DATE))
            r = c.read_response()
            self.assertEqual(r.header("Last-Modified"), WEDNESDAY_DATE, r)
            self.assertEqual(r.status, 206, r)
            self.assertEqual(r.header("Content-Range"), "bytes 0-3/%d" % len(WED_BODY))
            self.assertEqual(r.body, WED_BODY[:4])
            # Another Wednesday is another date: the whole representation.
            c.send(range_request(target, "Wed, 08 Nov 2023 10:00:00 GMT"))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, WED_BODY)
        finally:
            c.close()

    def test_static(self):
        root = tempfile.mkdtemp(prefix="verbd-wed-")
        self.addCleanup(shutil.rmtree, root, True)
        p = os.path.join(root, "wed.txt")
        with open(p, "wb") as f:
            f.write(WED_BODY)
        os.utime(p, (WEDNESDAY, WEDNESDAY))
        srv = Server(root).start()
        self.addCleanup(srv.cleanup)
        self.check(srv, "/wed.txt")

    def test_webdav(self):
        dav = DavServer()
        self.addCleanup(dav.cleanup)
        p = dav.path("wed.txt")
        with open(p, "wb") as f:
            f.write(WED_BODY)
        os.utime(p, (WEDNESDAY, WEDNESDAY))
        dav.start()
        self.check(dav.server, "/dav/wed.txt")


if __name__ == "__main__":
    unittest.main()
