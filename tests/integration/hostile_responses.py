"""Hostile upstream responses: a corpus for the reverse proxy, like the
request-smuggling corpus in test_smuggling.py but in the other direction.

Each Case is one raw answer an upstream sends to one request (Case.method,
to a plain request without Upgrade or Expect), and what a correct gateway
must make of it.  Outcomes (Case.expect lists every acceptable one, the
preferred first):

  "502"      the client gets verbd's 502 as the final response (1xx that
             went out before it are fine) and nothing of the upstream's
             final response: the problem is in the head, before anything
             could be forwarded;
  "abort"    the (valid) head went out, then the client connection is
             closed before the response is complete (a truncated body, no
             last chunk), so the client cannot take it for a whole one;
  "deliver"  the leading response is valid and complete and reaches the
             client as it is; only what follows it is hostile.

For every case, whatever the outcome: nothing after the leading response
reaches any client as a response (the bytes carry MARKER wherever a
response could be split off), and the upstream connection is never used
again (Case.reuse is False throughout).  The Upstream keeps the connection
open after the bytes (Case.then == "keep") unless the case needs a close
or a reset, so that a gateway that did reuse it shows up as a second
request on that connection.

classify() is a strict reading of a raw response (RFC 9112) used by the
self-tests to make sure every case really is what its name says.
"""

import collections
import re

MARKER = b"HOSTILE-MARKER-3b9e1c"

Case = collections.namedtuple("Case", "name raw expect reason method then reuse")


def case(name, raw, expect, reason, method="GET", then="keep"):
    if isinstance(expect, str):
        expect = (expect,)
    return Case(name, raw, tuple(expect), reason, method, then, False)


def resp(status_line=b"HTTP/1.1 200 OK", fields=b"", body=b""):
    """A response: status line, fields (each ending CRLF), CRLF, body."""
    return status_line + b"\r\n" + fields + b"\r\n" + body


def cl(n):
    return b"Content-Length: %d\r\n" % n


TE = b"Transfer-Encoding: chunked\r\n"
OK = resp(fields=cl(2), body=b"ok")
# A complete second response carrying the marker: read as a response, it
# would be served to whoever asks next on a poisoned connection.
SPLIT = resp(fields=b"Content-Type: text/plain\r\n" + cl(len(MARKER)), body=MARKER)
ANY_AFTER_COMPLETE = ("deliver", "502", "abort")
HEAD_OR_BODY = ("abort", "502")


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


CASES = [
    # -- the status line (RFC 9112 §4) --
    case("status_line_bare_lf", b"HTTP/1.1 200 OK\n" + cl(2) + b"\r\nok", "502",
         "RFC 9112 §2.2: a bare LF as line terminator; verbd parses responses as strictly as requests"),
    case("status_line_bare_cr", b"HTTP/1.1 200 OK\rX: y\r\n" + cl(2) + b"\r\nok", "502",
         "RFC 9112 §2.2: a bare CR outside the content is invalid"),
    case("status_code_two_digits", resp(b"HTTP/1.1 20 OK", cl(2), b"ok"), "502",
         "RFC 9112 §4: status-code is 3DIGIT"),
    case("status_code_four_digits", resp(b"HTTP/1.1 2000 OK", cl(2), b"ok"), "502",
         "RFC 9112 §4: status-code is 3DIGIT"),
    case("status_code_not_digits", resp(b"HTTP/1.1 2x0 OK", cl(2), b"ok"), "502",
         "RFC 9112 §4: status-code is 3DIGIT"),
    case("status_code_out_of_range", resp(b"HTTP/1.1 099 Odd", cl(2), b"ok"), "502",
         "RFC 9110 §15: status codes outside 100..599 are invalid"),
    case("status_reason_nul", resp(b"HTTP/1.1 200 O\x00K", cl(2), b"ok"), "502",
         "RFC 9112 §4: reason-phrase is HTAB / SP / VCHAR / obs-text, never NUL"),
    case("version_lowercase", resp(b"http/1.1 200 OK", cl(2), b"ok"), "502",
         "RFC 9112 §2.3: HTTP-name is case-sensitive \"HTTP\""),
    case("version_http2_text", resp(b"HTTP/2 200 OK", cl(2), b"ok"), "502",
         "RFC 9112 §2.3: HTTP-version is HTTP/DIGIT.DIGIT"),
    case("version_major_2", resp(b"HTTP/2.0 200 OK", cl(2), b"ok"), "502",
         "RFC 9112 §2.3: a major version other than 1 is not HTTP/1.1 framing"),
    case("status_line_leading_space", b" " + OK, "502",
         "RFC 9112 §4: the status-line begins with HTTP-version"),
    case("status_line_twice", b"HTTP/1.1 200 OK\r\n" + b"HTTP/1.1 302 Found\r\n" + cl(2) + b"\r\nok", "502",
         "RFC 9112 §5: a line in the field section without a colon is not a field line"),
    case("http09_style_response", b"<html>" + MARKER + b"</html>\n", "502",
         "RFC 9112 §4 and Appendix C.1: an HTTP/1.1 response begins with a status-line; no HTTP/0.9"),
    case("http2_server_preface", b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", "502",
         "RFC 9113 §3.4: an HTTP/2 SETTINGS preface is not an HTTP/1.1 status-line (RFC 9112 §4)"),
    case("tls_record", b"\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03" + b"\x00" * 38, "502",
         "RFC 9112 §4: binary (a TLS record) where a status-line must be"),
    case("empty_answer_then_close", b"", "502",
         "RFC 9112 §8: the connection closed before a complete response head (RFC 9110 §15.6.3)",
         then="close"),
    case("status_line_only_then_close", b"HTTP/1.1 200 OK\r\n", "502",
         "RFC 9112 §8: a head cut short by the close is incomplete", then="close"),
    case("head_cut_by_reset", b"HTTP/1.1 200 OK\r\nContent-Type: text/pl", "502",
         "RFC 9112 §8: a head cut short by a reset is incomplete", then="reset"),
    # -- field lines (RFC 9112 §5, RFC 9110 §5) --
    case("field_bare_lf", resp(fields=b"X-A: 1\n" + cl(2), body=b"ok"), "502",
         "RFC 9112 §2.2: a bare LF inside the field section"),
    case("field_obs_fold", resp(fields=b"X-A: 1\r\n 2\r\n" + cl(2), body=b"ok"), "502",
         "RFC 9112 §5.2: a gateway receiving obs-fold MUST send 502 or unfold; verbd sends 502"),
    case("content_length_obs_fold", resp(fields=b"Content-Length: 2\r\n 0\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9112 §5.2 and §6.3: obs-fold inside Content-Length makes the length unknowable"),
    case("field_nul_in_value", resp(fields=b"X-A: a\x00b\r\n" + cl(2), body=b"ok"), "502",
         "RFC 9110 §5.5: NUL in a field value MUST be rejected (or replaced); verbd rejects"),
    case("field_name_invalid_char", resp(fields=b"X@Y: 1\r\n" + cl(2), body=b"ok"), "502",
         "RFC 9110 §5.1: field-name is a token; '@' is not a tchar"),
    case("field_name_empty", resp(fields=b": value\r\n" + cl(2), body=b"ok"), "502",
         "RFC 9110 §5.1: field-name is a token of at least one tchar"),
    case("field_line_without_colon", resp(fields=b"Garbage\r\n" + cl(2), body=b"ok"), "502",
         "RFC 9112 §5: field-line = field-name \":\" OWS field-value OWS"),
    case("te_space_before_colon_with_cl", resp(fields=b"Transfer-Encoding : chunked\r\n" + cl(5),
                                               body=b"0\r\n\r\n" + SPLIT), "502",
         "RFC 9112 §5.1: no whitespace between name and colon; read either way it is CL+TE (§6.3)"),
    case("header_section_too_large", resp(fields=b"X-Big: " + b"a" * (256 << 10) + b"\r\n" + cl(2),
                                          body=b"ok"), "502",
         "RFC 9110 §15.6.3: a head past the gateway's limit is an invalid response"),
    case("too_many_fields", resp(fields=b"".join(b"X-F%d: 1\r\n" % i for i in range(5000)) + cl(2),
                                 body=b"ok"), "502",
         "RFC 9110 §15.6.3: a field count past the gateway's limit is an invalid response"),
    # -- Content-Length (RFC 9112 §6.3, RFC 9110 §8.6) --
    case("cl_and_te", resp(fields=cl(len(b"0\r\n\r\n" + SPLIT)) + TE, body=b"0\r\n\r\n" + SPLIT), "502",
         "RFC 9112 §6.3(3): Content-Length with Transfer-Encoding ought to be handled as an error"),
    case("te_and_cl", resp(fields=TE + cl(5), body=b"0\r\n\r\n" + SPLIT), "502",
         "RFC 9112 §6.3(3): Transfer-Encoding with Content-Length, either order"),
    case("cl_differing_fields", resp(fields=cl(2) + cl(2 + len(SPLIT)), body=b"ok" + SPLIT), "502",
         "RFC 9112 §6.3(5): differing Content-Lengths; a proxy MUST send 502 and close"),
    case("cl_differing_list", resp(fields=b"Content-Length: 2, %d\r\n" % (2 + len(SPLIT)), body=b"ok" + SPLIT),
         "502", "RFC 9112 §6.3(5): a list with different values is an invalid Content-Length"),
    case("cl_negative", resp(fields=b"Content-Length: -2\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: Content-Length = 1*DIGIT; a sign is invalid (RFC 9112 §6.3(5))"),
    case("cl_plus_sign", resp(fields=b"Content-Length: +2\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: Content-Length = 1*DIGIT"),
    case("cl_hex", resp(fields=b"Content-Length: 0x2\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: Content-Length is decimal digits only"),
    case("cl_inner_space", resp(fields=b"Content-Length: 1 0\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: Content-Length = 1*DIGIT, no inner whitespace"),
    case("cl_empty", resp(fields=b"Content-Length: \r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: an empty Content-Length is invalid (RFC 9112 §6.3(5))"),
    case("cl_overflow_wraps_64", resp(fields=b"Content-Length: 18446744073709551618\r\n", body=b"ok" + SPLIT),
         "502", "RFC 9110 §8.6: a length that overflows must not wrap (2^64 + 2 read as 2)"),
    case("cl_huge", resp(fields=b"Content-Length: 99999999999999999999999999\r\n", body=b"ok" + SPLIT), "502",
         "RFC 9110 §8.6: a recipient MUST anticipate large numerals and prevent overflow"),
    case("cl_body_short_then_close", resp(fields=cl(100), body=b"only part"), HEAD_OR_BODY,
         "RFC 9112 §8: closed before the Content-Length is complete: an incomplete message", then="close"),
    case("cl_body_short_then_reset", resp(fields=cl(100), body=b"only part"), HEAD_OR_BODY,
         "RFC 9112 §8: reset before the Content-Length is complete: an incomplete message", then="reset"),
    case("cl_more_bytes_than_announced", resp(fields=cl(2), body=b"ok" + MARKER), ANY_AFTER_COMPLETE,
         "RFC 9112 §6.3(6): the message ends at Content-Length; the excess is no response"),
    case("response_splitting_after_cl", OK + SPLIT, ANY_AFTER_COMPLETE,
         "RFC 9112 §11.1: a second response behind the first is response splitting"),
    case("two_responses_after_chunked", resp(fields=TE, body=chunk(b"ok") + b"0\r\n\r\n") + SPLIT,
         ANY_AFTER_COMPLETE, "RFC 9112 §11.1: a response no request asked for, after a chunked one"),
    # -- Transfer-Encoding and chunks (RFC 9112 §6.1, §7.1) --
    case("te_chunked_twice", resp(fields=b"Transfer-Encoding: chunked, chunked\r\n",
                                  body=chunk(b"ok") + b"0\r\n\r\n"), "502",
         "RFC 9112 §6.1: a sender MUST NOT apply chunked more than once"),
    case("te_in_http10_response", resp(b"HTTP/1.0 200 OK", TE, chunk(b"ok") + b"0\r\n\r\n" + SPLIT), "502",
         "RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message MUST be treated as faulty framing"),
    case("chunk_size_overflow", resp(fields=TE, body=b"10000000000000002\r\nok\r\n0\r\n\r\n" + SPLIT),
         HEAD_OR_BODY, "RFC 9112 §7.1: a chunk-size that overflows must not wrap (2^64 + 2 read as 2)"),
    case("chunk_size_2_63", resp(fields=TE, body=b"8000000000000000\r\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: a recipient MUST anticipate large hexadecimal numerals and prevent overflow"),
    case("chunk_size_negative", resp(fields=TE, body=b"-2\r\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: chunk-size = 1*HEXDIG"),
    case("chunk_size_0x", resp(fields=TE, body=b"0x2\r\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: chunk-size = 1*HEXDIG, no 0x prefix"),
    case("chunk_size_not_hex", resp(fields=TE, body=b"zz\r\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: chunk-size = 1*HEXDIG"),
    case("chunk_size_bare_lf", resp(fields=TE, body=b"2\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1 and §2.2: the chunk-size line ends with CRLF"),
    case("chunk_ext_bare_lf", resp(fields=TE, body=b"2;a=b\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1.1: a chunk-ext ends with the CRLF of its line"),
    case("chunk_ext_invalid", resp(fields=TE, body=b"2;a b c\r\nok\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name [ BWS \"=\" BWS chunk-ext-val ] )"),
    case("chunk_ext_unterminated_quote", resp(fields=TE, body=b'2;a="x\r\nok\r\n0\r\n\r\n' + SPLIT),
         HEAD_OR_BODY, "RFC 9112 §7.1.1 and RFC 9110 §5.6.4: an unterminated quoted-string"),
    case("chunk_data_longer_than_size", resp(fields=TE, body=b"2\r\nokay\r\n0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: chunk-data is exactly chunk-size octets, then CRLF"),
    case("chunk_data_without_crlf", resp(fields=TE, body=b"2\r\nok0\r\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF"),
    case("chunked_without_last_chunk_then_close", resp(fields=TE, body=chunk(b"ok")), HEAD_OR_BODY,
         "RFC 9112 §7.1 and §8: a chunked body without its last chunk is incomplete", then="close"),
    case("chunked_cut_by_reset", resp(fields=TE, body=chunk(b"ok") + b"10\r\npart"), HEAD_OR_BODY,
         "RFC 9112 §8: reset inside a chunk: an incomplete message", then="reset"),
    case("trailer_obs_fold", resp(fields=TE, body=chunk(b"ok") + b"0\r\nX-T: a\r\n b\r\n\r\n" + SPLIT),
         HEAD_OR_BODY, "RFC 9112 §7.1.2 and §5.2: obs-fold in the trailer section"),
    case("trailer_bare_lf", resp(fields=TE, body=chunk(b"ok") + b"0\r\nX-T: a\n\r\n" + SPLIT), HEAD_OR_BODY,
         "RFC 9112 §7.1.2 and §2.2: a bare LF in the trailer section"),
    # -- responses that have no content (RFC 9110 §6.4.1, RFC 9112 §6.3(1)) --
    case("status_204_with_body", resp(b"HTTP/1.1 204 No Content", cl(len(SPLIT)), SPLIT), ANY_AFTER_COMPLETE,
         "RFC 9112 §6.3(1): a 204 ends with its head; what follows is not its content"),
    case("status_304_with_body", resp(b"HTTP/1.1 304 Not Modified", cl(len(SPLIT)), SPLIT),
         ANY_AFTER_COMPLETE, "RFC 9112 §6.3(1): a 304 ends with its head; what follows is not its content"),
    case("head_response_with_body", resp(fields=cl(len(SPLIT)), body=SPLIT), ANY_AFTER_COMPLETE,
         "RFC 9112 §6.3(1): a response to HEAD ends with its head", method="HEAD"),
    # -- interim responses (RFC 9110 §15.2) --
    case("interim_with_body", resp(b"HTTP/1.1 103 Early Hints", cl(len(MARKER)), MARKER) + OK, "502",
         "RFC 9110 §15.2: a 1xx ends with its head; the bytes after it are no status-line"),
    case("interim_flood", b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" * 2000 + OK, "502",
         "RFC 9110 §15.2 and §15.6.3: an unbounded 1xx series is an invalid response past a limit"),
    case("switching_protocols_unasked", resp(b"HTTP/1.1 101 Switching Protocols",
                                             b"Upgrade: websocket\r\nConnection: Upgrade\r\n", MARKER), "502",
         "RFC 9110 §15.2.2 and §7.8: a server MUST NOT switch to a protocol the client did not ask for"),
]


# --------------------------------------------------------------------------
# A strict reading of a response, for the self-tests
# --------------------------------------------------------------------------

STATUS_LINE_RE = re.compile(rb"^HTTP/1\.[01] ([1-5][0-9][0-9]) [\t !-~\x80-\xff]*$")
TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
CHUNK_LINE_RE = re.compile(rb"^([0-9A-Fa-f]{1,15})((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
                           rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"
                           rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*)$')


class _Bad(Exception):
    pass


def _lines(block):
    lines = block.split(b"\r\n")
    for ln in lines:
        if b"\r" in ln or b"\n" in ln:
            raise _Bad("bare CR or LF")
    return lines


def _fields(lines):
    out = []
    for ln in lines:
        if ln[:1] in (b" ", b"\t") or b":" not in ln:
            raise _Bad("obs-fold or no colon")
        name, value = ln.split(b":", 1)
        if not TOKEN_RE.match(name) or re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
            raise _Bad("bad field")
        out.append((name.lower(), value.strip(b" \t")))
    return out


def classify(raw, method="GET", max_head=65536, max_fields=100, max_interims=10):
    """Reads `raw` as the whole answer to one request (Upgrade not asked):
    "bad-head" (no valid, complete final head), "bad-body" (invalid
    framing after a valid head), "short-body" (the body ends early),
    "excess" (a complete response with bytes after it) or "ok"."""
    pos = 0
    interims = 0
    while True:
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0 or end - pos > max_head:
            return "bad-head"
        head = raw[pos:end]
        pos = end + 4
        try:
            lines = _lines(head)
            m = STATUS_LINE_RE.match(lines[0])
            if not m:
                return "bad-head"
            if len(lines) - 1 > max_fields:
                return "bad-head"
            fields = _fields(lines[1:])
        except _Bad:
            return "bad-head"
        status = int(m.group(1))
        if 100 <= status < 200:
            interims += 1
            if status == 101 or interims > max_interims:
                return "bad-head"
            continue
        break
    te = [v for k, v in fields if k == b"transfer-encoding"]
    cls = [v for k, v in fields if k == b"content-length"]
    rest = raw[pos:]
    if te and cls:
        return "bad-head"
    if te and (lines[0].startswith(b"HTTP/1.0")
               or [c.strip().lower() for c in b",".join(te).split(b",")] != [b"chunked"]):
        return "bad-head"
    if cls:
        values = {v.strip() for c in cls for v in c.split(b",")}
        if len(values) != 1 or not re.match(rb"^[0-9]{1,18}$", next(iter(values))):
            return "bad-head"
    if method == "HEAD" or status in (204, 304):
        return "excess" if rest else "ok"
    if te:
        i = 0
        while True:
            j = rest.find(b"\n", i)
            if j < 0:
                return "short-body"
            if rest[j - 1:j] != b"\r" or j == i:
                return "bad-body"
            m = CHUNK_LINE_RE.match(rest[i:j - 1])
            if not m or b"\r" in rest[i:j - 1]:
                return "bad-body"
            size = int(m.group(1), 16)
            i = j + 1
            if size == 0:
                while True:
                    j = rest.find(b"\n", i)
                    if j < 0:
                        return "short-body"
                    if rest[j - 1:j] != b"\r":
                        return "bad-body"
                    ln = rest[i:j - 1]
                    i = j + 1
                    if ln == b"":
                        return "excess" if rest[i:] else "ok"
                    try:
                        _fields(_lines(ln))
                    except _Bad:
                        return "bad-body"
            if len(rest) < i + size + 2:
                return "short-body" if not rest[i + size:i + size + 2].strip(b"\r") else "bad-body"
            if rest[i + size:i + size + 2] != b"\r\n":
                return "bad-body"
            i += size + 2
    if cls:
        n = int(next(iter({v.strip() for c in cls for v in c.split(b",")})))
        if len(rest) < n:
            return "short-body"
        return "excess" if len(rest) > n else "ok"
    return "ok"
