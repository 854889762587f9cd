"""The method decision: the table of method_table.py over HTTP/1.1 (plain
and TLS; test_http2.py runs it over h2c and h2), then what is HTTP/1's own
or needs a server of its own: 501 and 405 framing, refused bodies and
pipelining, OPTIONS without a body, HEAD mirroring GET, TRACE only when
enabled, Expect handling."""

import time
import unittest

from harness import VerbdTestCase, build_request, get_request
from method_table import ALLOW, TableCase, http1, table_tests

ALLOW_TRACE = "GET, HEAD, OPTIONS, TRACE"


@table_tests
class DecisionTable(TableCase):
    """The method-decision table (method_table.py) over HTTP/1.1; the same
    table runs over h2c and h2 in test_http2.py."""

    transport = http1


@table_tests
class DecisionTableTls(TableCase):
    """The same over HTTP/1.1 on TLS."""

    transport = http1
    tls = True


class Response501(VerbdTestCase):
    def setUp(self):
        super().setUp()
        self.c, self.r = self.get("/index.html", method="BREW")

    def test_status_and_framing(self):
        self.assertStatus(self.r, 501)

    def test_no_retry_after(self):
        self.assertIsNone(self.r.header("Retry-After"), self.r)

    def test_content_type_text_plain(self):
        self.assertEqual(self.r.media_type(), "text/plain", self.r)

    def test_body_names_method(self):
        self.assertIn(b"BREW", self.r.body)

    def test_body_lists_supported_methods(self):
        self.assertIn(ALLOW.encode(), self.r.body)

    def test_keep_alive_after_501(self):
        self.assertNotIn("close", self.r.connection_tokens())
        self.assertUsable(self.c)

    def test_no_allow_header_on_501_or_truthful(self):
        # 501 concerns the method, not the resource; an Allow, if sent, must
        # still be the truth.
        self.assertIn(self.r.header("Allow"), (None, ALLOW), self.r)


class RefusedWithBody(VerbdTestCase):
    def test_post_with_small_body_then_pipelined_get(self):
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
               + get_request("/pipe/0.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 501)
        self.assertIn(b"POST", r1.body)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-0\n")
        self.assertUsable(c)

    def test_put_with_chunked_body_then_pipelined_get(self):
        c = self.connect()
        c.send(b"PUT /new.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n" + get_request("/pipe/1.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 501)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-1\n")

    def test_unknown_method_with_body_then_pipelined_get(self):
        c = self.connect()
        c.send(b"BREW /pot HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello world"
               + get_request("/pipe/2.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 501)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-2\n")

    def test_put_did_not_create_file(self):
        c = self.connect()
        c.send(b"PUT /created.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
        self.assertStatus(c.read_response(), 501)
        c.send(get_request("/created.txt"))
        self.assertStatus(c.read_response(), 404)

    def test_delete_did_not_delete_file(self):
        c = self.connect()
        c.send(b"DELETE /pipe/3.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertStatus(c.read_response(), 501)
        c.send(get_request("/pipe/3.txt"))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"pipe-3\n")


class RefusedOverBodyLimit(VerbdTestCase):
    """max_body is the location's, checked after the method decision: a
    refused method gets its 501, never a 413; its body, past the bound on
    what is dropped to stay in step, ends the connection."""

    def check(self, method):
        c = self.connect()
        c.send(("%s / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n" % method).encode()
               + b"x" * 1000)
        r = c.read_response()
        self.assertStatus(r, 501)
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_allowed_method_over_max_body(self):
        c = self.connect()
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 413)
        self.assertIn("close", r.connection_tokens())

    def test_post_over_max_body(self):
        self.check("POST")

    def test_unknown_method_over_max_body(self):
        self.check("BREW")


class Http10(VerbdTestCase):
    def test_501_keeps_http10_keep_alive(self):
        c = self.connect()
        c.send(b"BREW / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 501)
        self.assertIn("keep-alive", r.connection_tokens())
        self.assertUsable(c)

    def test_501_closes_plain_http10(self):
        c = self.connect()
        c.send(b"BREW / HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 501)
        self.assertClosed(c)


class Options(VerbdTestCase):
    def check_options(self, target, allow=ALLOW):
        c = self.connect()
        c.send(build_request("OPTIONS", target) + get_request("/pipe/5.txt"))
        r = c.read_response("OPTIONS")
        self.assertStatus(r, 204)
        self.assertEqual(r.header("Allow"), allow, r)
        self.assertIsNone(r.header("Content-Length"))
        # No body: the next pipelined response starts right after the head.
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-5\n")

    def test_options_index(self):
        self.check_options("/index.html")

    def test_options_root(self):
        self.check_options("/")

    def test_options_missing(self):
        self.check_options("/missing")

    def test_options_subdir_without_index(self):
        self.check_options("/sub/")

    def test_options_directory_without_slash(self):
        self.check_options("/sub")

    def test_options_asterisk(self):
        self.check_options("*")

    def test_options_allow_lists_no_unimplemented_method(self):
        c, r = self.get("/index.html", method="OPTIONS")
        for m in ("POST", "PUT", "DELETE", "TRACE", "PATCH", "CONNECT"):
            self.assertNotIn(m, [t.strip() for t in r.header("Allow", "").split(",")])


class WithTrace(VerbdTestCase):
    server_args = ("--trace",)

    def test_options_allow_includes_trace(self):
        c, r = self.get("/index.html", method="OPTIONS")
        self.assertStatus(r, 204)
        self.assertEqual(r.header("Allow"), ALLOW_TRACE)

    def test_options_asterisk_includes_trace(self):
        c, r = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", method="OPTIONS")
        self.assertStatus(r, 204)
        self.assertEqual(r.header("Allow"), ALLOW_TRACE)

    def test_trace_echoes_request(self):
        c = self.connect()
        c.send(b"TRACE /index.html HTTP/1.1\r\nHost: localhost\r\nX-Custom: hello\r\n\r\n")
        r = c.read_response("TRACE")
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), "message/http")
        self.assertTrue(r.body.startswith(b"TRACE /index.html HTTP/1.1\r\n"), r.body)
        self.assertIn(b"X-Custom: hello", r.body)
        self.assertIn(b"Host: localhost", r.body)
        self.assertUsable(c)

    def test_trace_hides_credentials(self):
        c = self.connect()
        c.send(b"TRACE /index.html HTTP/1.1\r\nHost: localhost\r\nCookie: sid=COOKIEVALUE\r\n"
               b"Authorization: Basic QUTHVALUE\r\nProxy-Authorization: Basic PROXYVALUE\r\n"
               b"X-Visible: yes\r\n\r\n")
        r = c.read_response("TRACE")
        self.assertStatus(r, 200)
        self.assertIn(b"X-Visible: yes", r.body)
        for secret in (b"COOKIEVALUE", b"QUTHVALUE", b"PROXYVALUE"):
            self.assertNotIn(secret, r.body)
        low = r.body.lower()
        for name in (b"\ncookie:", b"\nauthorization:", b"\nproxy-authorization:"):
            self.assertNotIn(name, low)

    def test_trace_on_missing_target_is_200(self):
        c, r = self.get("/missing", method="TRACE")
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), "message/http")

    def test_other_unimplemented_still_501(self):
        c, r = self.get("/index.html", method="POST")
        self.assertStatus(r, 501)
        self.assertIn(ALLOW_TRACE.encode(), r.body)


class HeadMirrorsGet(VerbdTestCase):
    def compare(self, target, headers=None):
        c = self.connect()
        g = c.request("GET", target, headers)
        h = c.request("HEAD", target, headers)
        self.assertEqual(h.status, g.status, (g, h))
        self.assertEqual(h.body, b"")
        strip = lambda r: sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
        self.assertEqual(strip(h), strip(g))
        self.assertWellFormed(h, "HEAD")
        return g, h

    def test_head_index(self):
        g, h = self.compare("/index.html")
        self.assertEqual(h.header("Content-Length"), "1024")

    def test_head_root(self):
        self.compare("/")

    def test_head_big(self):
        g, h = self.compare("/big.bin")
        self.assertEqual(h.header("Content-Length"), "65536")

    def test_head_empty_file(self):
        g, h = self.compare("/empty.txt")
        self.assertEqual(h.header("Content-Length"), "0")

    def test_head_missing(self):
        g, h = self.compare("/missing")
        self.assertEqual(h.status, 404)

    def test_head_dir_redirect(self):
        g, h = self.compare("/sub")
        self.assertEqual(h.status, 301)

    def test_head_dir_forbidden(self):
        g, h = self.compare("/sub/")
        self.assertEqual(h.status, 403)

    def test_head_range(self):
        g, h = self.compare("/index.html", [("Range", "bytes=0-99")])
        self.assertEqual(h.status, 206)
        self.assertEqual(h.header("Content-Range"), "bytes 0-99/1024")

    def test_head_has_validators(self):
        g, h = self.compare("/index.html")
        for name in ("ETag", "Last-Modified", "Content-Type", "Accept-Ranges"):
            self.assertIsNotNone(h.header(name), name)

    def test_head_unsatisfiable_range(self):
        g, h = self.compare("/index.html", [("Range", "bytes=5000-6000")])
        self.assertEqual(h.status, 416)

    def test_head_not_modified(self):
        c = self.connect()
        etag = c.request("GET", "/index.html").header("ETag")
        g, h = self.compare("/index.html", [("If-None-Match", etag)])
        self.assertEqual(h.status, 304)

    def test_head_then_pipelined_get(self):
        c = self.connect()
        c.send(build_request("HEAD", "/big.bin") + get_request("/pipe/6.txt"))
        h = c.read_response("HEAD")
        self.assertStatus(h, 200, "HEAD")
        g = c.read_response()
        self.assertStatus(g, 200)
        self.assertEqual(g.body, b"pipe-6\n")

    def test_head_of_head_then_close_nothing_extra(self):
        c = self.connect()
        c.send(build_request("HEAD", "/index.html", [("Connection", "close")]))
        h = c.read_response("HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(c.read_until_close(), b"")

    def test_head_lowercase_is_501(self):
        c, r = self.get("/index.html", method="head")
        self.assertStatus(r, 501)


class Expect100(VerbdTestCase):
    def test_served_request_gets_100_then_200(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 100, r)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.body, b"")
        c.send(b"hello")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)
        self.assertUsable(c)

    def check_refused(self, method):
        c = self.connect()
        c.send(("%s / HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\n" % method).encode())
        r = c.read_response()
        self.assertStatus(r, 501)
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_refused_post_gets_501_without_100(self):
        self.check_refused("POST")

    def test_refused_unknown_method_gets_501_without_100(self):
        self.check_refused("BREW")

    def test_refused_put_gets_501_without_100(self):
        self.check_refused("PUT")

    def test_body_sent_without_waiting_for_100(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\nhello" + get_request("/pipe/1.txt"))
        r, interims = c.read_final_response()
        self.assertStatus(r, 200)
        self.assertTrue(all(i.status == 100 for i in interims), interims)
        r2, _ = c.read_final_response()
        self.assertEqual(r2.body, b"pipe-1\n")

    def test_expect_with_chunked_body(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 100, r)
        c.send(b"5\r\nhello\r\n0\r\n\r\n")
        self.assertStatus(c.read_response(), 200)
        self.assertUsable(c)

    def test_no_100_for_http10(self):
        # RFC 9110 10.1.1: a server MUST NOT send 100 to an HTTP/1.0 client.
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        time.sleep(0.3)
        c.send(b"hello")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_over_max_body_gets_413_without_100(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
               b"Content-Length: 2000000\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 413)
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)

    def test_expect_without_body_no_100_needed(self):
        # No body (no Content-Length): the final response comes directly.
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\r\n")
        r, interims = c.read_final_response()
        self.assertStatus(r, 200)
        self.assertUsable(c)


if __name__ == "__main__":
    unittest.main()
