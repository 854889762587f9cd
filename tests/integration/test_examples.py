"""The example programs embedding libverbd (examples/hello.c, examples/echo.c):
they build, announce their address, answer with the method decision of
DESIGN.md for C handlers, and stop cleanly on SIGTERM.

The binaries are expected beside $VERBD_BIN, in examples/ (make examples;
make test builds them)."""

import os
import re
import signal
import subprocess
import unittest

from harness import Server, VerbdTestCase, build_request, verbd_bin


def example_path(name):
    return os.path.join(os.path.dirname(os.path.abspath(verbd_bin())), "examples", name)


class ExampleServer(Server):
    """Runs build/examples/NAME ADDR (default 127.0.0.1:0)."""

    def __init__(self, name, addr="127.0.0.1:0"):
        super().__init__(None)
        self.name = name
        self.addr = addr

    def command(self):
        return [example_path(self.name), self.addr]


class ExampleTestCase(VerbdTestCase):
    example = None

    def setUp(self):
        path = example_path(self.example)
        self.assertTrue(os.access(path, os.X_OK), "%s is missing: run make examples" % path)
        self.conns = []
        self.server = ExampleServer(self.example).start()
        self.addCleanup(self.server.cleanup)
        self._servers = [self.server]     # tearDown stops it and wants exit 0

    def request(self, method, target, headers=None, body=b"", conn=None):
        """Sends one request (with Content-Length when there is a body and
        no framing field) and reads its response."""
        headers = list(headers or [])
        if body and not any(k.lower() in ("content-length", "transfer-encoding")
                            for k, _ in headers):
            headers.append(("Content-Length", str(len(body))))
        c = conn or self.connect()
        c.send(build_request(method, target, headers, body))
        return c, c.read_response(method)

    def assertSameHeadersButDate(self, head, get):
        strip = lambda r: [(k.lower(), v) for k, v in r.headers if k.lower() != "date"]
        self.assertEqual(strip(head), strip(get), "HEAD %r\nGET %r" % (head, get))

    def assertUsable(self, c):
        c.send(build_request("OPTIONS", "*"))
        r = c.read_response("OPTIONS")
        self.assertIn(r.status, (200, 204), r)


# --------------------------------------------------------------------------
# hello
# --------------------------------------------------------------------------

HELLO_ALL = "GET, HEAD, OPTIONS, PATCH"
HELLO_HELLO = "GET, HEAD, OPTIONS"
TEXT = [("Content-Type", "text/plain")]


class HelloStartStop(ExampleTestCase):
    example = "hello"

    def test_announces_its_address(self):
        self.assertRegex(self.server.stdout_lines[0],
                         r"^hello: listening on http://127\.0\.0\.1:\d+/$")
        self.assertNotEqual(self.server.port, 0)

    def test_sigterm_exits_0(self):
        self.server.stop(signal.SIGTERM)
        self.assertEqual(self.server.returncode, 0)

    def test_sigint_exits_0(self):
        self.server.stop(signal.SIGINT)
        self.assertEqual(self.server.returncode, 0)

    def test_sigterm_right_after_the_listening_line_exits_0(self):
        # The stop signals are blocked before the line is printed, so a stop
        # that arrives before the loop runs is still graceful.
        srv = ExampleServer("hello").start()
        self.addCleanup(srv.cleanup)
        srv.stop(signal.SIGTERM)
        self.assertEqual(srv.returncode, 0)

    def test_bad_address_fails_with_a_message(self):
        p = subprocess.run([example_path("hello"), "not-an-address"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 1, p)
        self.assertTrue(p.stderr.startswith(b"hello: "), p.stderr)
        self.assertNotIn(b"listening", p.stdout)


class Hello(ExampleTestCase):
    example = "hello"

    def test_get_hello(self):
        _, r = self.request("GET", "/hello")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"Hello, world!\n")
        self.assertEqual(r.media_type(), "text/plain")

    def test_head_hello_mirrors_get(self):
        c, get = self.request("GET", "/hello")
        _, head = self.request("HEAD", "/hello", conn=c)
        self.assertStatus(head, 200, "HEAD")
        self.assertEqual(head.header("Content-Length"), "14")
        self.assertSameHeadersButDate(head, get)
        self.assertOpen(c)          # no body bytes followed the HEAD response

    def test_post_is_501_nothing_implements_it(self):
        c, r = self.request("POST", "/hello", TEXT, b"x")
        self.assertStatus(r, 501)
        self.assertIn(b"POST", r.body)
        self.assertIsNone(r.header("Allow"))
        self.assertIsNone(r.header("Retry-After"))
        self.assertUsable(c)

    def test_patch_on_hello_is_405_because_counter_implements_it(self):
        c, r = self.request("PATCH", "/hello", TEXT, b"+1")
        self.assertStatus(r, 405)
        self.assertEqual(r.header("Allow"), HELLO_HELLO)
        self.assertIn(b"PATCH", r.body)
        self.assertUsable(c)
        # ... and the refused PATCH changed nothing.
        _, r = self.request("GET", "/counter")
        self.assertEqual(r.body, b"0\n")

    def test_options_hello_agrees_with_405(self):
        _, r = self.request("OPTIONS", "/hello")
        self.assertIn(r.status, (200, 204), r)
        self.assertWellFormed(r, "OPTIONS")
        self.assertEqual(r.header("Allow"), HELLO_HELLO)

    def test_options_counter(self):
        _, r = self.request("OPTIONS", "/counter")
        self.assertIn(r.status, (200, 204), r)
        self.assertWellFormed(r, "OPTIONS")
        self.assertEqual(r.header("Allow"), HELLO_ALL)

    def test_options_star_is_the_union(self):
        _, r = self.request("OPTIONS", "*")
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.header("Allow"), HELLO_ALL)

    def test_unknown_method_is_501_everywhere(self):
        for target in ("/hello", "/counter", "/missing"):
            for method in ("BREW", "DELETE", "PUT", "patch", "QUERY"):
                with self.subTest(method=method, target=target):
                    c, r = self.request(method, target)
                    self.assertStatus(r, 501)
                    self.assertIn(method.encode(), r.body)
                    self.assertUsable(c)

    def test_unmapped_path_is_404_for_get(self):
        _, r = self.request("GET", "/missing")
        self.assertStatus(r, 404)

    def test_exact_locations_do_not_match_below(self):
        for target in ("/hello/x", "/hellox", "/counter/1"):
            with self.subTest(target=target):
                _, r = self.request("GET", target)
                self.assertStatus(r, 404)

    def test_counter_starts_at_zero(self):
        _, r = self.request("GET", "/counter")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"0\n")
        self.assertEqual(r.header("Accept-Patch"), "text/plain")

    def test_patch_then_get(self):
        c, r = self.request("PATCH", "/counter", TEXT, b"+5")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"5\n")
        self.assertEqual(r.header("Accept-Patch"), "text/plain")
        _, r = self.request("GET", "/counter", conn=c)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"5\n")
        # On another connection too: one process holds the counter.
        _, r = self.request("PATCH", "/counter", TEXT, b"-2\n")
        self.assertEqual(r.body, b"3\n")
        for _ in range(4):
            _, r = self.request("GET", "/counter")
            self.assertEqual(r.body, b"3\n")

    def test_patch_with_charset_and_negative_result(self):
        _, r = self.request("PATCH", "/counter", [("Content-Type", "text/plain; charset=utf-8")],
                            b"-7")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"-7\n")

    def test_patch_chunked_body(self):
        c = self.connect()
        c.send(b"PATCH /counter HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n1\r\n+\r\n2\r\n12\r\n0\r\n\r\n")
        r = c.read_response("PATCH")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"12\n")

    def test_head_counter_mirrors_get(self):
        c, get = self.request("GET", "/counter")
        _, head = self.request("HEAD", "/counter", conn=c)
        self.assertStatus(head, 200, "HEAD")
        self.assertEqual(head.header("Content-Length"), "2")
        self.assertSameHeadersButDate(head, get)

    def test_bad_bodies_are_400_and_change_nothing(self):
        bad = [b"", b"5", b"+", b"-", b"+5x", b"++5", b"+ 5", b"+5\n\n", b"five",
               b"+99999999999999999999", b"+" + b"9" * 40]
        c = self.connect()
        for body in bad:
            with self.subTest(body=body):
                _, r = self.request("PATCH", "/counter", TEXT, body, conn=c)
                self.assertStatus(r, 400)
                self.assertEqual(r.header("Accept-Patch"), "text/plain")
                self.assertIn(b"+5", r.body)      # says what a good body is
        _, r = self.request("GET", "/counter", conn=c)
        self.assertEqual(r.body, b"0\n")

    def test_overflow_is_400(self):
        _, r = self.request("PATCH", "/counter", TEXT, b"+9223372036854775807")
        self.assertStatus(r, 200)
        _, r = self.request("PATCH", "/counter", TEXT, b"+1")
        self.assertStatus(r, 400)
        _, r = self.request("GET", "/counter")
        self.assertEqual(r.body, b"9223372036854775807\n")

    def test_other_media_type_is_415_with_accept_patch(self):
        _, r = self.request("PATCH", "/counter", [("Content-Type", "application/json")], b"+5")
        self.assertStatus(r, 415)
        self.assertEqual(r.header("Accept-Patch"), "text/plain")
        _, r = self.request("GET", "/counter")
        self.assertEqual(r.body, b"0\n")

    def test_expect_100_continue_on_patch(self):
        c = self.connect()
        c.send(b"PATCH /counter HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response("PATCH")
        self.assertEqual(interim.status, 100, interim)
        c.send(b"+4")
        r = c.read_response("PATCH")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"4\n")

    def test_refused_expect_gets_final_status_not_100(self):
        c = self.connect()
        c.send(b"PATCH /hello HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response("PATCH")
        self.assertStatus(r, 405)


# --------------------------------------------------------------------------
# echo
# --------------------------------------------------------------------------

ECHO_ALL = "GET, HEAD, POST, OPTIONS"


class EchoStartStop(ExampleTestCase):
    example = "echo"

    def test_announces_its_address(self):
        self.assertRegex(self.server.stdout_lines[0],
                         r"^echo: listening on http://127\.0\.0\.1:\d+/$")

    def test_sigterm_exits_0_with_a_connection_open(self):
        c, r = self.request("POST", "/", [("Content-Type", "text/plain")], b"x")
        self.assertStatus(r, 200)
        self.server.stop(signal.SIGTERM)
        self.assertEqual(self.server.returncode, 0)
        self.assertClosed(c)


class EchoBodies(ExampleTestCase):
    example = "echo"

    def test_post_content_length_body(self):
        _, r = self.request("POST", "/any/path?q=1", [("Content-Type", "application/json")],
                            b'{"a": [1, 2]}')
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b'{"a": [1, 2]}')
        self.assertEqual(r.header("Content-Type"), "application/json")

    def test_content_type_echoed_exactly(self):
        ct = "Text/Plain; charset=ISO-8859-1; x=\"a b\""
        _, r = self.request("POST", "/", [("Content-Type", ct)], b"abc")
        self.assertEqual(r.header("Content-Type"), ct)

    def test_post_without_content_type_is_octet_stream(self):
        _, r = self.request("POST", "/", None, b"\x00\x01")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"\x00\x01")
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")

    def test_binary_body_every_byte(self):
        body = bytes(range(256)) * 64
        _, r = self.request("POST", "/bin", [("Content-Type", "application/octet-stream")], body)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, body)

    def test_large_body(self):
        body = bytes((i * 7 + i // 251) & 0xFF for i in range(512 * 1024))
        _, r = self.request("POST", "/big", [("Content-Type", "application/octet-stream")], body)
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), len(body))
        self.assertEqual(r.body, body)

    def test_empty_post(self):
        _, r = self.request("POST", "/", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")

    def test_post_chunked_body(self):
        c = self.connect()
        c.send(b"POST /c HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response("POST")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"hello 0123456789")
        self.assertEqual(r.header("Content-Type"), "text/plain")
        self.assertUsable(c)

    def test_post_chunked_sent_in_pieces(self):
        c = self.connect()
        c.send_parts([b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
                      b"3\r\nab", b"c\r\n", b"2\r\nde\r\n0\r", b"\n\r\n"])
        r = c.read_response("POST")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"abcde")

    def test_100_continue_then_body(self):
        c = self.connect()
        c.send(b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response("POST")
        self.assertEqual(interim.status, 100, interim)
        self.assertEqual(c.buf, b"")
        c.send(b"hello world")
        r = c.read_response("POST")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"hello world")
        self.assertUsable(c)

    def test_100_continue_chunked(self):
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response("POST")
        self.assertEqual(interim.status, 100, interim)
        c.send(b"4\r\nwxyz\r\n0\r\n\r\n")
        r = c.read_response("POST")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"wxyz")

    def test_body_over_max_body_is_413(self):
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
        r = c.read_response("POST")
        self.assertStatus(r, 413)


class EchoFields(ExampleTestCase):
    example = "echo"

    def test_fields_in_order_and_case_as_sent(self):
        fields = [("hOST", "example.test"), ("X-lower", "1"), ("x-MiXeD", "two  words"),
                  ("Accept", "*/*"), ("X-Dup", "first"), ("Cookie", "a=b; c=d"),
                  ("X-Dup", "second"), ("X-Empty", ""), ("X-Obs", "caf\xe9")]
        raw = "GET /echo HTTP/1.1\r\n" + "".join("%s: %s\r\n" % f for f in fields) + "\r\n"
        c = self.connect()
        c.send(raw.encode("latin-1"))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), "text/plain")
        expected = "".join("%s: %s\n" % f for f in fields).encode("latin-1")
        self.assertEqual(r.body, expected)

    def test_surrounding_whitespace_is_not_part_of_the_value(self):
        c = self.connect()
        c.send(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Pad: \t padded value \t\r\nX-Tight:v\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.body, b"Host: h\nX-Pad: padded value\nX-Tight: v\n")

    def test_head_echo_mirrors_get(self):
        c = self.connect()
        req = b"%s /echo HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
        c.send(req % b"GET")
        get = c.read_response()
        c.send(req % b"HEAD")
        head = c.read_response("HEAD")
        self.assertStatus(head, 200, "HEAD")
        self.assertEqual(head.header("Content-Length"), str(len(get.body)))
        self.assertSameHeadersButDate(head, get)
        self.assertOpen(c)

    def test_get_elsewhere_describes_echo(self):
        _, r = self.request("GET", "/some/where")
        self.assertStatus(r, 200)
        self.assertIn(b"/echo", r.body)

    def test_query_does_not_change_the_echo_path(self):
        c = self.connect()
        c.send(b"GET /echo?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.body, b"Host: h\n")


class EchoMethods(ExampleTestCase):
    example = "echo"

    def test_options_everywhere(self):
        for target in ("/", "/echo", "/a/b/c", "*"):
            with self.subTest(target=target):
                _, r = self.request("OPTIONS", target)
                self.assertIn(r.status, (200, 204), r)
                self.assertWellFormed(r, "OPTIONS")
                self.assertEqual(r.header("Allow"), ECHO_ALL)

    def test_other_methods_are_501(self):
        for method in ("PUT", "DELETE", "PATCH", "BREW", "TRACE", "post", "PROPFIND"):
            for target in ("/", "/echo", "/x/y"):
                with self.subTest(method=method, target=target):
                    c, r = self.request(method, target)
                    self.assertStatus(r, 501)
                    self.assertIn(method.encode(), r.body)
                    self.assertIsNone(r.header("Retry-After"))
                    self.assertUsable(c)

    def test_put_with_body_is_501_and_the_body_is_discarded(self):
        c, r = self.request("PUT", "/f", [("Content-Type", "text/plain")],
                            b"GET /echo HTTP/1.1\r\nHost: smuggled\r\n\r\n")
        self.assertStatus(r, 501)
        _, r = self.request("POST", "/", [("Content-Type", "text/plain")], b"after", conn=c)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"after")
        self.assertOpen(c)


class EchoKeepAlive(ExampleTestCase):
    example = "echo"

    def test_several_posts_on_one_connection(self):
        c = self.connect()
        for i in range(20):
            body = ("body number %d " % i).encode() * (i + 1)
            _, r = self.request("POST", "/p%d" % i, [("Content-Type", "text/plain")], body, conn=c)
            self.assertStatus(r, 200)
            self.assertNotIn("close", r.connection_tokens())
            self.assertEqual(r.body, body)
        self.assertOpen(c)

    def test_pipelined_batch(self):
        c = self.connect()
        batch = [
            (b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Type: text/a\r\nContent-Length: 3\r\n\r\none",
             "POST", 200, b"one"),
            (b"GET /echo HTTP/1.1\r\nHost: h\r\nX-N: 2\r\n\r\n", "GET", 200, b"Host: h\nX-N: 2\n"),
            (b"POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nthree\r\n0\r\n\r\n", "POST", 200, b"three"),
            (b"PUT /4 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nfour", "PUT", 501, None),
            (b"HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD", 200, b""),
            (b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "OPTIONS", 204, b""),
            (b"POST /7 HTTP/1.1\r\nHost: h\r\nContent-Type: text/b\r\nContent-Length: 5\r\n\r\nseven",
             "POST", 200, b"seven"),
        ]
        c.send(b"".join(req for req, _, _, _ in batch))
        for i, (_, method, status, body) in enumerate(batch):
            r = c.read_response(method)
            with self.subTest(i=i, method=method):
                if method == "OPTIONS":
                    self.assertIn(r.status, (200, 204), r)
                else:
                    self.assertEqual(r.status, status, r)
                if body is not None:
                    self.assertEqual(r.body, body)
        self.assertOpen(c)

    def test_connection_close_is_honoured(self):
        c = self.connect()
        c.send(b"POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
        r = c.read_response("POST")
        self.assertEqual(r.body, b"hi")
        self.assertIn("close", r.connection_tokens())
        self.assertClosed(c)


if __name__ == "__main__":
    unittest.main()
