"""Request smuggling and message framing: a request hidden inside another
request's body, or behind a message whose framing is ambiguous, is never
answered as a request.

Every case sends one connection's worth of bytes: an attack that carries a
smuggled `GET /smuggled-7e3f.txt` (a file that exists, with a unique
marker as its content), followed by a harmless closing request
(`GET /index.html` with `Connection: close`), and then half-closes the
connection, so the server answers what it parsed and closes.  Each case
checks, in order:

  - no response contains the marker, and no access-log line names the
    smuggled path (the access log has one line per response queued);
  - the statuses of the responses are exactly the expected ones (so the
    closing request is answered exactly when the attack's framing was
    clean, and never swallowed or split);
  - the server closed the connection.

Where a front end and verbd could disagree about framing, the expected
answer is a rejection that closes the connection (400, 501, 413) or, for
valid framing, the smuggled bytes are body and the next request is the
closing one.
"""

import os
import shutil
import socket
import tempfile
import unittest

from harness import VerbdTestCase, webroot

MARKER = b"SMUGGLED-MARKER-5f0d8a17c2"
SMUG_PATH = "/smuggled-7e3f.txt"
SMUG = b"GET " + SMUG_PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
INDEX = b"index of the smuggling root\n"
HEAD_GET = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
CLOSER = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

_ROOT = None


def smuggling_root():
    global _ROOT
    if _ROOT is None:
        base = tempfile.mkdtemp(prefix="verbd-smuggling-")
        _ROOT = os.path.join(base, "root")
        os.mkdir(_ROOT)
        with open(os.path.join(_ROOT, "index.html"), "wb") as f:
            f.write(INDEX)
        with open(os.path.join(_ROOT, SMUG_PATH[1:]), "wb") as f:
            f.write(MARKER + b"\n")
        import atexit
        atexit.register(shutil.rmtree, base, True)
    return _ROOT


def head(method=b"POST", target=b"/index.html", fields=b"", version=b"HTTP/1.1"):
    """A request head with Host first, then `fields` (each ending CRLF)."""
    host = b"Host: localhost\r\n" if version == b"HTTP/1.1" else b""
    return method + b" " + target + b" " + version + b"\r\n" + host + fields + b"\r\n"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


LAST = b"0\r\n\r\n"
TE = b"Transfer-Encoding: chunked\r\n"


def cl(n):
    return b"Content-Length: %d\r\n" % n


def cl_te(te_field):
    """CL.TE: Content-Length covers a complete chunked body *and* the
    smuggled request; a reader using the chunked framing would answer it."""
    body = LAST + SMUG
    return head(fields=cl(len(body)) + te_field) + body


def te_cl(te_field):
    """TE.CL: the chunked body holds the smuggled request as chunk data;
    Content-Length covers only the first chunk-size line, so a reader using
    Content-Length would answer it."""
    first = b"%x\r\n" % len(SMUG)
    body = first + SMUG + b"\r\n" + LAST
    return head(fields=te_field + cl(len(first))) + body


# (name, attack bytes, expected statuses).  The closing request is sent
# after the attack in every case.
CASES = [
    # -- CL.TE and TE.CL with a plain Transfer-Encoding: both fields present
    #    is refused outright (400, close).
    ("cl_te_plain", cl_te(TE), [400]),
    ("te_cl_plain", te_cl(TE), [400]),
    ("cl_te_te_second_field_order", head(fields=TE + cl(len(LAST + SMUG))) + LAST + SMUG, [400]),
    ("cl_te_get", head(b"GET", fields=cl(len(LAST + SMUG)) + TE) + LAST + SMUG, [400]),
    ("cl_te_unknown_method", head(b"BREW", fields=cl(len(LAST + SMUG)) + TE) + LAST + SMUG, [400]),
    ("te_cl_zero_length", head(fields=TE + cl(0)) + chunk(SMUG) + LAST, [400]),
    ("cl_te_http10", head(version=b"HTTP/1.0", fields=cl(len(LAST + SMUG)) + TE) + LAST + SMUG, [400]),
    # -- TE.TE: obfuscated Transfer-Encoding next to Content-Length, in both
    #    directions.  Whichever way verbd read it, it must not pick a framing.
    ("cl_te_space_before_colon", cl_te(b"Transfer-Encoding : chunked\r\n"), [400]),
    ("te_cl_space_before_colon", te_cl(b"Transfer-Encoding : chunked\r\n"), [400]),
    ("cl_te_tab_before_colon", cl_te(b"Transfer-Encoding\t: chunked\r\n"), [400]),
    ("cl_te_chunked_identity", cl_te(b"Transfer-Encoding: chunked, identity\r\n"), [400]),
    ("te_cl_chunked_identity", te_cl(b"Transfer-Encoding: chunked, identity\r\n"), [400]),
    ("cl_te_xchunked", cl_te(b"Transfer-Encoding: xchunked\r\n"), [400]),
    ("te_cl_xchunked", te_cl(b"Transfer-Encoding: xchunked\r\n"), [400]),
    ("cl_te_tab_value", cl_te(b"Transfer-Encoding:\tchunked\r\n"), [400]),
    ("te_cl_space_tab_value", te_cl(b"Transfer-Encoding: \tchunked\r\n"), [400]),
    ("cl_te_uppercase", cl_te(b"Transfer-Encoding: CHUNKED\r\n"), [400]),
    ("te_cl_trailing_space", te_cl(b"Transfer-Encoding: chunked \r\n"), [400]),
    ("cl_te_quoted", cl_te(b'Transfer-Encoding: "chunked"\r\n'), [400]),
    ("te_cl_two_fields_identity_last", te_cl(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"),
     [400]),
    ("cl_te_vertical_tab_value", cl_te(b"Transfer-Encoding:\x0bchunked\r\n"), [400]),
    ("te_cl_nul_after_value", te_cl(b"Transfer-Encoding: chunked\x00\r\n"), [400]),
    ("cl_te_obs_fold_value", cl_te(b"Transfer-Encoding:\r\n chunked\r\n"), [400]),
    ("te_cl_obs_fold_after", te_cl(b"Transfer-Encoding: chunked\r\n X: y\r\n"), [400]),
    ("cl_te_bare_lf_after", cl_te(b"Transfer-Encoding: chunked\n"), [400]),
    ("cl_te_bare_cr_after", cl_te(b"Transfer-Encoding: chunked\rX: y\r\n"), [400]),
    ("te_cl_leading_space_line", te_cl(b" Transfer-Encoding: chunked\r\n"), [400]),
    ("cl_te_underscore_name_te_real", cl_te(b"Transfer_Encoding: x\r\n" + TE), [400]),
    # -- TE.TE without Content-Length: an obfuscated or unknown coding is
    #    refused, so the chunk-looking body is never parsed as requests.
    ("te_xchunked_alone", head(fields=b"Transfer-Encoding: xchunked\r\n") + LAST + SMUG, [501]),
    ("te_chunked_identity_alone", head(fields=b"Transfer-Encoding: chunked, identity\r\n") + LAST + SMUG,
     [400]),
    ("te_identity_then_chunked_fields", head(fields=b"Transfer-Encoding: identity\r\n" + TE) + LAST + SMUG,
     [501]),
    ("te_chunked_twice", head(fields=b"Transfer-Encoding: chunked, chunked\r\n") + LAST + SMUG, [400]),
    ("te_space_before_colon_alone", head(fields=b"Transfer-Encoding : chunked\r\n") + LAST + SMUG, [400]),
    ("te_on_http10_alone", head(version=b"HTTP/1.0", fields=TE) + LAST + SMUG, [400]),
    ("te_empty_value", head(fields=b"Transfer-Encoding: \r\n") + LAST + SMUG, [400]),
    # -- Content-Length variants
    ("cl_duplicate_differing", head(fields=cl(5) + cl(5 + len(SMUG))) + b"hello" + SMUG, [400]),
    ("cl_comma_differing", head(fields=b"Content-Length: 5, %d\r\n" % (5 + len(SMUG))) + b"hello" + SMUG,
     [400]),
    ("cl_comma_differing_reversed", head(fields=b"Content-Length: %d, 5\r\n" % (5 + len(SMUG))) + b"hello"
     + SMUG, [400]),
    ("cl_trailing_comma", head(fields=b"Content-Length: 5,\r\n") + b"hello" + SMUG, [400]),
    ("cl_plus_sign", head(fields=b"Content-Length: +5\r\n") + b"hello" + SMUG, [400]),
    ("cl_minus_sign", head(fields=b"Content-Length: -5\r\n") + b"hello" + SMUG, [400]),
    ("cl_hex", head(fields=b"Content-Length: 0x5\r\n") + b"hello" + SMUG, [400]),
    ("cl_inner_space", head(fields=b"Content-Length: 5 0\r\n") + b"hello" + SMUG, [400]),
    ("cl_obs_fold", head(fields=b"Content-Length: 5\r\n 0\r\n") + b"hello" + SMUG, [400]),
    ("cl_nul", head(fields=b"Content-Length: 5\x00\r\n") + b"hello" + SMUG, [400]),
    ("cl_bare_cr", head(fields=b"Content-Length: 5\rX: 1\r\n") + b"hello" + SMUG, [400]),
    ("cl_space_before_colon", head(fields=b"Content-Length : 5\r\n") + b"hello" + SMUG, [400]),
    # 2^64 + 5 and 2^32 + 5: a reader that wraps would read 5 bytes and
    # answer what follows.
    ("cl_wraps_64", head(fields=b"Content-Length: 18446744073709551621\r\n") + b"hello" + SMUG, [413]),
    # A refused method's body past the discard bound: 501, then the close.
    ("cl_wraps_32", head(fields=b"Content-Length: 4294967301\r\n") + b"hello" + SMUG, [501]),
    ("cl_huge", head(fields=b"Content-Length: 99999999999999999999999999\r\n") + b"hello" + SMUG, [413]),
    # Leading zeros are decimal: 0100 is 100, not 64 (octal) -- read as 64
    # the smuggled request would follow the body.
    ("cl_leading_zeros_not_octal", head(fields=b"Content-Length: 0%d\r\n" % (64 + len(SMUG)))
     + b"p" * 64 + SMUG, [501, 200]),
    ("cl_identical_list_is_body", head(fields=b"Content-Length: %d, %d\r\n" % (len(SMUG), len(SMUG))) + SMUG,
     [501, 200]),
    ("cl_identical_fields_is_body", head(fields=cl(len(SMUG)) + cl(len(SMUG))) + SMUG, [501, 200]),
    # -- chunk sizes: overflow, signs, junk, bare CR/LF.  A lenient decoder
    #    would see "5" and a clean end, then answer the smuggled request.
    ("chunk_size_17_digits_wraps", head(fields=TE) + b"10000000000000005\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_max_u64", head(fields=TE) + b"ffffffffffffffff\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_over_max_body", head(fields=TE) + b"100001\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_0x", head(fields=TE) + b"0x5\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_minus", head(fields=TE) + b"-5\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_plus", head(fields=TE) + b"+5\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_space_before", head(fields=TE) + b" 5\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_bare_lf", head(fields=TE) + b"5\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_size_bare_cr", head(fields=TE) + b"5\rhello\r\n" + LAST + SMUG, [501]),
    ("chunk_data_longer_than_size", head(fields=TE) + b"3\r\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_data_bare_lf_after", head(fields=TE) + b"5\r\nhello\n" + LAST + SMUG, [501]),
    ("chunk_ext_bare_lf", head(fields=TE) + b"5;a=b\nhello\r\n" + LAST + SMUG, [501]),
    ("chunk_ext_quoted_crlf", head(fields=TE) + b'5;a="x\r\n"\r\nhello\r\n' + LAST + SMUG, [501]),
    ("last_chunk_bare_lf", head(fields=TE) + chunk(b"hello") + b"0\n\n" + SMUG, [501]),
    ("last_chunk_missing_final_crlf_then_request", head(fields=TE) + chunk(b"hello") + b"0\r\n" + SMUG,
     [501]),
    # -- trailers: framing fields there are ignored, bad trailers close.
    ("te_in_trailer", head(fields=TE) + chunk(SMUG) + b"0\r\nTransfer-Encoding: chunked\r\n\r\n",
     [501, 200]),
    ("cl_in_trailer", head(fields=TE) + chunk(SMUG) + b"0\r\nContent-Length: 1000\r\n\r\n", [501, 200]),
    ("trailer_obs_fold", head(fields=TE) + chunk(b"x") + b"0\r\nX: a\r\n b\r\n\r\n" + SMUG, [501]),
    ("trailer_bare_lf", head(fields=TE) + chunk(b"x") + b"0\r\nX: a\n\r\n" + SMUG, [501]),
    ("trailer_nul", head(fields=TE) + chunk(b"x") + b"0\r\nX: a\x00\r\n\r\n" + SMUG, [501]),
    # -- requests hidden in valid bodies: the body is read and dropped.
    ("body_get_content_length", head(b"GET", fields=cl(len(SMUG))) + SMUG, [200, 200]),
    ("body_post_content_length", head(fields=cl(len(SMUG))) + SMUG, [501, 200]),
    ("body_unknown_method", head(b"BREW", fields=cl(len(SMUG))) + SMUG, [501, 200]),
    ("body_options", head(b"OPTIONS", fields=cl(len(SMUG))) + SMUG, [204, 200]),
    ("body_head", head(b"HEAD", fields=cl(len(SMUG))) + SMUG, [200, 200]),
    ("body_post_chunked", head(fields=TE) + chunk(SMUG) + LAST, [501, 200]),
    ("body_post_chunked_byte_chunks", head(fields=TE) + b"".join(chunk(SMUG[i:i + 1]) for i in range(len(SMUG)))
     + LAST, [501, 200]),
    ("body_chunked_with_extensions", head(fields=TE) + b"%x;x=\"y\";z\r\n" % len(SMUG) + SMUG + b"\r\n" + LAST,
     [501, 200]),
    ("body_chunked_leading_zeros", head(fields=TE) + b"000%x\r\n" % len(SMUG) + SMUG + b"\r\n" + LAST,
     [501, 200]),
    ("body_nul_bytes", head(fields=cl(len(SMUG) + 4)) + b"\x00\r\n\r" + SMUG, [501, 200]),
    # Expect: 100-continue on a refused request: final status, then close
    # (the client may or may not send the body).
    ("expect_continue_refused", head(fields=b"Expect: 100-continue\r\n" + cl(len(SMUG))) + SMUG, [501]),
    ("expect_continue_refused_chunked", head(fields=b"Expect: 100-continue\r\n" + TE) + chunk(SMUG) + LAST,
     [501]),
    # No keep-alive: nothing after the response is answered.
    ("http10_post_body", head(version=b"HTTP/1.0", fields=cl(len(SMUG))) + SMUG, [501]),
    ("connection_close_then_request", head(b"GET", fields=b"Connection: close\r\n") + SMUG, [200]),
    ("http10_get_then_request", head(b"GET", version=b"HTTP/1.0") + SMUG, [200]),
    ("declared_body_over_max_body", head(b"GET", fields=cl(2 << 20)) + SMUG, [413]),
    ("refused_body_over_discard_bound", head(fields=cl(2 << 20)) + SMUG, [501]),
    # A rejected head, then a request: never answered.
    ("bad_header_then_request", head(b"GET", fields=b"X Y: z\r\n") + SMUG, [400]),
    ("bare_lf_request_line", b"GET /index.html HTTP/1.1\nHost: localhost\r\n\r\n" + SMUG, [400]),
    ("http09_request_line", b"GET /index.html\r\n" + SMUG, [400]),
    ("request_line_two_requests", b"GET /index.html HTTP/1.1 GET " + SMUG_PATH.encode() + b" HTTP/1.1\r\n"
     b"Host: localhost\r\n\r\n" + SMUG, [400]),
    ("nul_in_request_line", b"GET /index.html\x00 HTTP/1.1\r\nHost: localhost\r\n\r\n" + SMUG, [400]),
    ("header_too_large_then_request", head(b"GET", fields=b"X: " + b"a" * 17000 + b"\r\n") + SMUG, [431]),
]


def read_all(c, first_method, timeout=10):
    """Reads responses until the server closes (the first answers
    first_method, the rest GET)."""
    out = []
    while True:
        if not c.buf:
            if c.eof:
                return out
            try:
                n = c._fill(timeout=timeout)
            except socket.timeout:
                raise AssertionError("the server neither answered nor closed within %g s; "
                                     "responses so far: %r" % (timeout, out)) from None
            if n == 0:
                return out
            continue
        out.append(c.read_response(first_method if not out else "GET"))


class Smuggling(VerbdTestCase):
    def setUp(self):
        self.web = webroot()
        self.conns = []
        fd, self.log_path = tempfile.mkstemp(prefix="verbd-smuggling-log-")
        os.close(fd)
        self.addCleanup(os.unlink, self.log_path)
        self.server = self.start_server("--access-log", self.log_path, root=smuggling_root())

    def check(self, attack, expected):
        c = self.connect()
        c.send(attack + CLOSER)
        c.sock.shutdown(socket.SHUT_WR)
        responses = read_all(c, attack.split(b" ", 1)[0].decode("latin-1"))
        self.server.stop()
        with open(self.log_path, "rb") as f:
            log = f.read()
        everything = b"".join(r.raw_head + r.body for r in responses) + c.buf
        self.assertNotIn(MARKER, everything, "the smuggled request was answered: %r" % responses)
        self.assertNotIn(SMUG_PATH.encode(), log, "the smuggled request was logged:\n%s" % log.decode("latin-1"))
        self.assertEqual([r.status for r in responses], expected, responses)
        self.assertEqual(len(log.splitlines()), len(expected), log.decode("latin-1"))
        self.assertTrue(c.eof, "the server did not close")
        if len(expected) == 2:
            self.assertEqual(responses[-1].body, INDEX, "the closing request got another answer")


def _make(attack, expected):
    def test(self):
        self.check(attack, expected)
    return test


for _name, _attack, _expected in CASES:
    setattr(Smuggling, "test_%s" % _name, _make(_attack, _expected))


class HalfClose(VerbdTestCase):
    """The cases above end with a half-close: the server must answer what it
    parsed and then close, every time, not only when the FIN happens to
    arrive after its last read.  Each attempt first completes one exchange,
    so the FIN arrives on an established keep-alive connection (not folded
    into the accept).  Repeated, because the failure is a race."""

    ATTEMPTS = 150

    def attempt(self, i, raw, method, expected):
        c = self.server.connect(timeout=2.0)
        try:
            c.send(HEAD_GET)
            self.assertEqual(c.read_response().status, 200)
            c.send(raw)
            c.sock.shutdown(socket.SHUT_WR)
            rs = read_all(c, method, timeout=2.0)
            self.assertEqual([r.status for r in rs], expected, "attempt %d" % i)
        finally:
            c.close()

    def test_pipelined_then_half_close_always_closes(self):
        for i in range(self.ATTEMPTS):
            self.attempt(i, HEAD_GET * 2, "GET", [200, 200])

    def test_body_then_half_close_always_closes(self):
        raw = head(fields=TE) + b"100001\r\nhello"
        for i in range(self.ATTEMPTS):
            self.attempt(i, raw, "POST", [501])


class SmugglingCorpusSize(unittest.TestCase):
    def test_at_least_forty_variants(self):
        self.assertGreaterEqual(len(CASES), 40)
        self.assertEqual(len({n for n, _, _ in CASES}), len(CASES), "duplicate case names")


if __name__ == "__main__":
    unittest.main()
