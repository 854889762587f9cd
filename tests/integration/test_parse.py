"""Request parsing: every malformed request gets the most specific status,
Connection: close, and the connection is closed; valid edge cases are
served and leave the connection usable."""

import unittest

from harness import VerbdTestCase, get_request

H = b"Host: localhost\r\n"


def req(line=b"GET /index.html HTTP/1.1", fields=H, body=b""):
    return line + b"\r\n" + fields + b"\r\n" + body


# (name, raw request, expected status).  Each becomes its own test:
# the response has that status and Connection: close, then the server closes.
REJECTS = [
    # line endings
    ("bare_lf_everywhere", b"GET /index.html HTTP/1.1\nHost: localhost\n\n", 400),
    ("bare_lf_after_request_line", b"GET /index.html HTTP/1.1\nHost: localhost\r\n\r\n", 400),
    ("bare_lf_after_field", b"GET /index.html HTTP/1.1\r\nHost: localhost\n\r\n", 400),
    ("bare_lf_final_empty_line", b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\n", 400),
    ("bare_cr_in_field_block", req(fields=H + b"X-A: 1\rX-B: 2\r\n"), 400),
    ("bare_cr_in_request_line", b"GET /index.html\rHTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    # field syntax
    ("space_before_colon", req(fields=H + b"X-Foo : bar\r\n"), 400),
    ("tab_before_colon", req(fields=H + b"X-Foo\t: bar\r\n"), 400),
    ("space_before_colon_host", b"GET /index.html HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    ("obs_fold_space", req(fields=H + b"X-Foo: a\r\n b\r\n"), 400),
    ("obs_fold_tab", req(fields=H + b"X-Foo: a\r\n\tb\r\n"), 400),
    ("first_field_line_folded", req(fields=b" X-Foo: a\r\n" + H), 400),
    ("nul_in_value", req(fields=H + b"X-Foo: a\x00b\r\n"), 400),
    ("ctl_0x01_in_value", req(fields=H + b"X-Foo: a\x01b\r\n"), 400),
    ("ctl_0x1f_in_value", req(fields=H + b"X-Foo: a\x1fb\r\n"), 400),
    ("del_in_value", req(fields=H + b"X-Foo: a\x7fb\r\n"), 400),
    ("nul_in_name", req(fields=H + b"X-F\x00oo: a\r\n"), 400),
    ("ctl_in_name", req(fields=H + b"X-F\x01oo: a\r\n"), 400),
    ("non_token_char_in_name", req(fields=H + b"X(Foo): a\r\n"), 400),
    ("empty_field_name", req(fields=H + b": value\r\n"), 400),
    ("line_without_colon", req(fields=H + b"X-Foo bar\r\n"), 400),
    # Host
    ("http11_without_host", b"GET /index.html HTTP/1.1\r\n\r\n", 400),
    ("http11_without_host_other_fields", b"GET /index.html HTTP/1.1\r\nX-Foo: a\r\n\r\n", 400),
    ("two_host_fields", req(fields=b"Host: localhost\r\nHost: localhost\r\n"), 400),
    ("two_host_fields_different", req(fields=b"Host: a.example\r\nHost: b.example\r\n"), 400),
    ("host_with_space", req(fields=b"Host: a b\r\n"), 400),
    ("host_with_slash", req(fields=b"Host: a/b\r\n"), 400),
    ("host_list", req(fields=b"Host: a.example, b.example\r\n"), 400),
    # Content-Length
    ("cl_non_digit", req(fields=H + b"Content-Length: abc\r\n"), 400),
    ("cl_plus_sign", req(fields=H + b"Content-Length: +5\r\n", body=b"hello"), 400),
    ("cl_minus_sign", req(fields=H + b"Content-Length: -5\r\n"), 400),
    ("cl_two_numbers_space", req(fields=H + b"Content-Length: 1 2\r\n", body=b"ab"), 400),
    ("cl_hex", req(fields=H + b"Content-Length: 0x5\r\n", body=b"hello"), 400),
    ("cl_empty", req(fields=H + b"Content-Length: \r\n"), 400),
    ("cl_differing_list", req(fields=H + b"Content-Length: 5, 6\r\n", body=b"hello!"), 400),
    ("cl_differing_fields", req(fields=H + b"Content-Length: 5\r\nContent-Length: 6\r\n",
                                body=b"hello!"), 400),
    ("cl_decimal_point", req(fields=H + b"Content-Length: 5.0\r\n", body=b"hello"), 400),
    # Transfer-Encoding
    ("te_with_cl", req(fields=H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                       body=b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("cl_with_te", req(fields=H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                       body=b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("te_on_http10", req(line=b"GET /index.html HTTP/1.0", fields=b"Transfer-Encoding: chunked\r\n",
                         body=b"0\r\n\r\n"), 400),
    ("te_gzip", req(fields=H + b"Transfer-Encoding: gzip\r\n"), 501),
    ("te_gzip_chunked", req(fields=H + b"Transfer-Encoding: gzip, chunked\r\n", body=b"0\r\n\r\n"), 501),
    ("te_identity", req(fields=H + b"Transfer-Encoding: identity\r\n"), 501),
    ("te_chunked_not_last", req(fields=H + b"Transfer-Encoding: chunked, gzip\r\n",
                                body=b"0\r\n\r\n"), 400),
    ("te_chunked_twice", req(fields=H + b"Transfer-Encoding: chunked, chunked\r\n",
                             body=b"0\r\n\r\n"), 400),
    ("te_chunked_twice_two_fields", req(fields=H + b"Transfer-Encoding: chunked\r\n"
                                        b"Transfer-Encoding: chunked\r\n", body=b"0\r\n\r\n"), 400),
    # size limits (defaults)
    ("target_over_default_max_target", req(line=b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414),
    ("head_over_default_max_header", req(fields=H + b"X-Big: " + b"b" * 17000 + b"\r\n"), 431),
    ("fields_over_default_max_fields",
     req(fields=H + b"".join(b"X-F%d: v\r\n" % i for i in range(101))), 431),
    ("cl_over_default_max_body", req(fields=H + b"Content-Length: 1048577\r\n"), 413),
    ("cl_huge", req(fields=H + b"Content-Length: 99999999999999999999999\r\n"), 413),
    # version
    ("version_2_0", req(line=b"GET /index.html HTTP/2.0"), 505),
    ("version_3_1", req(line=b"GET /index.html HTTP/3.1"), 505),
    ("version_0_9", req(line=b"GET /index.html HTTP/0.9"), 505),
    ("version_two_digit_minor", req(line=b"GET /index.html HTTP/1.10"), 400),
    ("version_lowercase", req(line=b"GET /index.html http/1.1"), 400),
    ("version_without_minor", req(line=b"GET /index.html HTTP/1"), 400),
    ("version_garbage", req(line=b"GET /index.html FOO/1.1"), 400),
    # request line
    ("method_with_paren", req(line=b"GE(T /index.html HTTP/1.1"), 400),
    ("method_with_slash", req(line=b"GE/T /index.html HTTP/1.1"), 400),
    ("method_with_at", req(line=b"G@T /index.html HTTP/1.1"), 400),
    ("method_with_nul", req(line=b"GE\x00T /index.html HTTP/1.1"), 400),
    ("asterisk_form_with_get", req(line=b"GET * HTTP/1.1"), 400),
    ("asterisk_form_with_head", req(line=b"HEAD * HTTP/1.1"), 400),
    ("target_with_space_inside", req(line=b"GET /index .html HTTP/1.1"), 400),
    ("request_line_missing_target", req(line=b"GET HTTP/1.1"), 400),
    ("request_line_only_method", req(line=b"GET"), 400),
    ("target_not_starting_with_slash", req(line=b"GET index.html HTTP/1.1"), 400),
    ("nul_in_target", req(line=b"GET /index\x00.html HTTP/1.1"), 400),
    ("ctl_in_target", req(line=b"GET /index\x01.html HTTP/1.1"), 400),
    ("del_in_target", req(line=b"GET /index\x7f.html HTTP/1.1"), 400),
    # Expect
    ("expect_unknown", req(fields=H + b"Expect: something-else\r\n"), 417),
    ("expect_100_continue_with_params", req(fields=H + b"Expect: 100-continue-x\r\n"), 417),
]


def _make_reject(raw, status):
    def test(self):
        self.assertRejected(raw, status)
    return test


class Rejections(VerbdTestCase):
    pass


for _name, _raw, _status in REJECTS:
    setattr(Rejections, "test_%s_is_%d" % (_name, _status), _make_reject(_raw, _status))


class BadChunkedBody(VerbdTestCase):
    """A malformed chunked body: the response to the request line may already
    be out (the body is read after responding), so assert only that the
    connection is closed and a pipelined request behind it is not answered."""

    def check(self, chunk_size_line):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunk_size_line + b"\r\nhello\r\n0\r\n\r\n" + get_request("/pipe/1.txt"))
        responses = c.read_all_responses()
        self.assertLessEqual(len(responses), 1, responses)
        for r in responses:
            self.assertIn(r.status, (200, 400), r)
            self.assertNotEqual(r.body, b"pipe-1\n")
        self.assertTrue(c.eof)


for _name, _line in [("0x5", b"0x5"), ("underscore_5", b"_5"), ("leading_space", b" 5"),
                     ("trailing_space", b"5 "), ("negative", b"-5"), ("17_hex_digits", b"0" * 16 + b"5"),
                     ("empty", b""), ("not_hex", b"g"), ("plus", b"+5")]:
    setattr(BadChunkedBody, "test_chunk_size_%s_closes" % _name,
            (lambda line: lambda self: self.check(line))(_line))


class Accepted(VerbdTestCase):
    """Valid but unusual requests are served; the connection stays usable."""

    def served(self, raw, target_body=None):
        c, r = self.exchange(raw)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, target_body if target_body is not None else self.web.index)
        self.assertNotIn("close", r.connection_tokens())
        self.assertUsable(c)
        return c, r

    def test_htab_in_field_value(self):
        self.served(req(fields=H + b"X-Foo: a\tb\r\n"))

    def test_obs_text_in_field_value(self):
        self.served(req(fields=H + b"X-Foo: caf\xc3\xa9\r\n"))

    def test_field_value_without_ows(self):
        self.served(req(fields=H + b"X-Foo:bar\r\n"))

    def test_field_value_with_trailing_ows(self):
        self.served(req(fields=H + b"X-Foo: bar  \t\r\n"))

    def test_field_names_case_insensitive_host(self):
        self.served(b"GET /index.html HTTP/1.1\r\nhOsT: localhost\r\n\r\n")

    def test_host_with_port(self):
        self.served(req(fields=b"Host: example.com:8080\r\n"))

    def test_host_ipv6_literal(self):
        self.served(req(fields=b"Host: [::1]:80\r\n"))

    def test_http10_without_host(self):
        c, r = self.exchange(b"GET /index.html HTTP/1.0\r\n\r\n")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_cl_identical_list_accepted(self):
        c = self.connect()
        c.send(req(fields=H + b"Content-Length: 5, 5\r\n", body=b"hello") + get_request("/pipe/2.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r1.body, self.web.index)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-2\n")

    def test_cl_zero(self):
        self.served(req(fields=H + b"Content-Length: 0\r\n"))

    def test_cl_leading_zeros(self):
        c = self.connect()
        c.send(req(fields=H + b"Content-Length: 005\r\n", body=b"hello") + get_request("/pipe/3.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r2.body, b"pipe-3\n")

    def test_chunked_with_extensions_and_trailers(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1;name=\"quoted\"\r\nhello\r\n"
               b"3 ; x=y\r\nabc\r\n"
               b"0;last\r\nX-Trailer: v\r\nX-Other: w\r\n\r\n" + get_request("/pipe/4.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r1.body, self.web.index)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.body, b"pipe-4\n")
        self.assertUsable(c)

    def test_chunked_uppercase_hex_size(self):
        body = b"A\r\n0123456789\r\n0\r\n\r\n"
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               + body + get_request("/pipe/5.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r2.body, b"pipe-5\n")

    def test_chunk_size_leading_zeros(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0005\r\nhello\r\n000\r\n\r\n" + get_request("/pipe/5.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r2.body, b"pipe-5\n")

    def test_te_chunked_case_insensitive(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n"
               b"0\r\n\r\n" + get_request("/pipe/6.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r2.body, b"pipe-6\n")

    def test_exactly_100_fields_accepted(self):
        fields = H + b"".join(b"X-F%d: v\r\n" % i for i in range(99))
        self.served(req(fields=fields))

    def test_absolute_form_serves_path(self):
        self.served(b"GET http://x/index.html HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_absolute_form_with_port(self):
        self.served(b"GET http://localhost:1234/pipe/7.txt HTTP/1.1\r\nHost: localhost:1234\r\n\r\n",
                    b"pipe-7\n")

    def test_options_asterisk_form(self):
        c, r = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", method="OPTIONS")
        self.assertStatus(r, 204)
        self.assertUsable(c)

    def test_expect_100_continue_case_insensitive(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nExpect: 100-Continue\r\n"
               b"Content-Length: 5\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 100, r)
        c.send(b"hello")
        r = c.read_response()
        self.assertStatus(r, 200)

    def test_http11_status_line_for_http10_request(self):
        c, r = self.exchange(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.status, 200)


class ConnectMethod(VerbdTestCase):
    def test_connect_authority_form_is_501(self):
        c, r = self.exchange(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        self.assertStatus(r, 501)


class ConfiguredLimits(VerbdTestCase):
    server_args = ("--set", "max_target=100", "--set", "max_header=1k", "--set", "max_fields=10",
                   "--set", "max_body=1k")

    def test_target_at_max_target_is_not_414(self):
        target = b"/" + b"a" * 99
        c, r = self.exchange(req(line=b"GET " + target + b" HTTP/1.1"))
        self.assertStatus(r, 404)
        self.assertUsable(c)

    def test_target_over_max_target_is_414(self):
        self.assertRejected(req(line=b"GET /" + b"a" * 100 + b" HTTP/1.1"), 414)

    def test_head_over_max_header_is_431(self):
        self.assertRejected(req(fields=H + b"X-Big: " + b"b" * 1100 + b"\r\n"), 431)

    def test_head_under_max_header_is_served(self):
        c, r = self.exchange(req(fields=H + b"X-Big: " + b"b" * 500 + b"\r\n"))
        self.assertStatus(r, 200)

    def test_eleven_fields_is_431(self):
        self.assertRejected(req(fields=H + b"".join(b"X-F%d: v\r\n" % i for i in range(10))), 431)

    def test_ten_fields_is_served(self):
        c, r = self.exchange(req(fields=H + b"".join(b"X-F%d: v\r\n" % i for i in range(9))))
        self.assertStatus(r, 200)

    def test_body_over_max_body_is_413(self):
        self.assertRejected(req(fields=H + b"Content-Length: 1025\r\n"), 413)

    def test_body_at_max_body_is_accepted(self):
        c = self.connect()
        c.send(req(fields=H + b"Content-Length: 1024\r\n", body=b"z" * 1024) + get_request("/pipe/8.txt"))
        r1, r2 = c.read_responses(2)
        self.assertStatus(r1, 200)
        self.assertEqual(r2.body, b"pipe-8\n")

    def test_chunked_body_over_max_body_closes(self):
        c = self.connect()
        c.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"800\r\n" + b"z" * 0x800 + b"\r\n0\r\n\r\n" + get_request("/pipe/9.txt"))
        responses = c.read_all_responses()
        self.assertLessEqual(len(responses), 1, responses)
        for r in responses:
            self.assertIn(r.status, (200, 413), r)


class VersionEdge(VerbdTestCase):
    def test_request_line_without_version_is_not_served(self):
        # HTTP/0.9-style "GET /": must be refused (not answered as 0.9).
        c = self.connect()
        c.send(b"GET /index.html\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (400, 505), r)
        self.assertWellFormed(r)
        self.assertClosed(c)


if __name__ == "__main__":
    unittest.main()
