"""Path safety: nothing outside the root is ever served; normalisation of
safe paths works.  Rules: bad %-escape or %00 or control chars -> 400;
'..' climbing above the root -> 400; encoded slash %2F -> 404; a symlink
resolving outside the root -> 403; missing -> 404."""

import unittest

from harness import VerbdTestCase

ANY_REFUSAL = (400, 403, 404)

# (name, raw request-target, allowed statuses)
ATTACKS = [
    ("dotdot", "/../secret", (400,)),
    ("dotdot_deep", "/../../../../../../etc/passwd", (400,)),
    ("encoded_dotdot", "/%2e%2e/secret", (400,)),
    ("encoded_dotdot_upper", "/%2E%2E/secret", (400,)),
    ("encoded_dotdot_and_slash", "/%2E%2E%2Fsecret", ANY_REFUSAL),
    ("sub_dotdot_dotdot", "/sub/../../secret", (400,)),
    ("dotdot_encoded_slash", "/..%2fsecret", ANY_REFUSAL),
    ("double_encoded_dotdot", "/%252e%252e/secret", (404,)),
    ("overlong_utf8_dots", "/%c0%ae%c0%ae/secret", ANY_REFUSAL),
    ("backslash", "/..\\secret", ANY_REFUSAL),
    ("encoded_backslash", "/sub/..%5c..%5csecret", ANY_REFUSAL),
    ("half_encoded_dotdot", "/.%2e/secret", (400,)),
    ("dotdot_after_file", "/index.html/../../secret", (400,)),
    ("nul_before_extension", "/index.html%00.txt", (400,)),
    ("bad_escape", "/%zz", (400,)),
    ("truncated_escape", "/index.html%4", (400,)),
    ("control_char_escape", "/index%01.html", (400,)),
    ("encoded_slash", "/sub%2Ffile.txt", (404,)),
    ("symlink_to_file_outside", "/link_out", (403,)),
    ("symlink_dir_outside", "/dirlink_out/inner.txt", (403,)),
    ("symlink_dir_outside_itself", "/dirlink_out/", (403,)),
    ("symlink_dir_outside_no_slash", "/dirlink_out", ANY_REFUSAL + (301,)),
    ("dotdot_into_symlink_dir", "/sub/../dirlink_out/inner.txt", (403,)),
]


class Traversal(VerbdTestCase):
    def check(self, target, statuses):
        c = self.connect()
        c.send(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target).encode("latin-1"))
        r = c.read_response()
        self.assertIn(r.status, statuses, r)
        self.assertWellFormed(r)
        self.assertNotIn(self.web.secret, r.body)
        self.assertNotIn(self.web.outside_secret, r.body)
        if r.status == 301:
            self.assertNotIn("..", r.header("Location", ""))
        rest = c.read_until_close(2.0) if c.is_closed(0.2) else b""
        self.assertNotIn(self.web.secret, rest)


for _name, _target, _statuses in ATTACKS:
    setattr(Traversal, "test_%s" % _name,
            (lambda t, s: lambda self: self.check(t, s))(_target, _statuses))


class AbsoluteFormTraversal(VerbdTestCase):
    def test_absolute_form_dotdot(self):
        c = self.connect()
        c.send(b"GET http://h/../secret HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (400,), r)
        self.assertNotIn(self.web.secret, r.body)

    def test_absolute_form_encoded_dotdot(self):
        c = self.connect()
        c.send(b"GET http://h/%2e%2e/%2e%2e/secret HTTP/1.1\r\nHost: h\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, ANY_REFUSAL, r)
        self.assertNotIn(self.web.secret, r.body)

    def test_head_dotdot(self):
        c = self.connect()
        c.send(b"HEAD /../secret HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response("HEAD")
        self.assertEqual(r.status, 400, r)

    def test_range_on_symlink_outside(self):
        c = self.connect()
        c.send(b"GET /link_out HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-5\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(self.web.secret[:6], r.body)


class Normalisation(VerbdTestCase):
    def served(self, target, body):
        c, r = self.get(target)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, body)
        self.assertUsable(c)

    def test_dot_segment(self):
        self.served("/sub/./file.txt", self.web.sub_file)

    def test_double_slash(self):
        self.served("/sub//file.txt", self.web.sub_file)

    def test_dotdot_inside_root(self):
        self.served("/sub/x/../file.txt", self.web.sub_file)

    def test_dotdot_back_to_root(self):
        self.served("/sub/../index.html", self.web.index)

    def test_leading_double_slash(self):
        self.served("//index.html", self.web.index)

    def test_encoded_dot_segment(self):
        self.served("/sub/%2e/file.txt", self.web.sub_file)

    def test_trailing_dot_segment_dir(self):
        self.served("/./index.html", self.web.index)

    def test_symlink_inside_root(self):
        self.served("/link_in.html", self.web.index)

    def test_dotdot_at_root_boundary_is_refused(self):
        # "/sub/../.." climbs exactly one level above the root.
        c, r = self.get("/sub/../../index.html")
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()
