"""Path traversal corpus: no request-target, however encoded, serves a byte
from outside the served directory.

Two roots are served.  The shared web root (harness.WebRoot) has a secret
file beside it, a symlink to it (link_out) and a symlink to a directory
beside it (dirlink_out).  A second root, built here, adds symlinks that
leave the root in other ways: to an absolute path, to /, to /etc/passwd,
through a chain of links, from a subdirectory, and to its parent
directory; with its own secret beside it.

Every case checks that neither secret (nor /etc/passwd's first line)
appears anywhere in what the server sends, that the status is a refusal
(400, 403, 404, 414) or, where the target legitimately names something
inside the root, a 200 or 301 for that, and that a 301 never points
outside.  Some cases pin the exact documented status (docs/security.md).
"""

import os
import shutil
import socket
import tempfile
import unittest

from harness import VerbdTestCase, webroot

REFUSED = (400, 403, 404, 414)
INSIDE = (200, 301)

_SYMROOT = None


class SymRoot:
    """BASE/secret2 (outside), BASE/sym/ (the root):
        index.html
        sub/file.txt
        abs_link      -> BASE/secret2 (absolute)
        etc_link      -> /etc/passwd
        slash_link    -> /
        chain1 -> chain2 -> ../secret2
        sub/up        -> ../../secret2
        sub/updir     -> ../..          (BASE)
        parent_link   -> ..             (BASE)
        inside_link   -> sub            (legit, inside)
        rel_inside    -> sub/file.txt   (legit, inside)
    """

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="verbd-traversal-")
        self.root = os.path.join(self.base, "sym")
        self.secret = b"VERBD-SECRET2-3b1e9c0d77a4f2e85c6b"
        with open(os.path.join(self.base, "secret2"), "wb") as f:
            f.write(self.secret + b"\n")
        os.mkdir(self.root)
        os.mkdir(os.path.join(self.root, "sub"))
        with open(os.path.join(self.root, "index.html"), "wb") as f:
            f.write(b"sym index\n")
        with open(os.path.join(self.root, "sub", "file.txt"), "wb") as f:
            f.write(b"sym sub file\n")
        links = {
            "abs_link": os.path.join(self.base, "secret2"),
            "etc_link": "/etc/passwd",
            "slash_link": "/",
            "chain1": "chain2",
            "chain2": "../secret2",
            "sub/up": "../../secret2",
            "sub/updir": "../..",
            "parent_link": "..",
            "inside_link": "sub",
            "rel_inside": "sub/file.txt",
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(self.root, name))

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


def symroot():
    global _SYMROOT
    if _SYMROOT is None:
        _SYMROOT = SymRoot()
        import atexit
        atexit.register(_SYMROOT.cleanup)
    return _SYMROOT


def passwd_first_line():
    try:
        with open("/etc/passwd", "rb") as f:
            return f.readline().strip()
    except OSError:
        return b"root:x:0:0:"


DEEP_UP = "/" + "a/" * 500 + "../" * 502 + "secret"          # climbs above the root
DEEP_DOWN_UP = "/" + "sub/" * 1 + "x/" * 1000 + "../" * 1001 + "index.html"  # stays inside
TOO_DEEP = "/" + "../" * 3000 + "secret"                      # past max_target

# (name, request-target, allowed statuses) on the shared web root.
CASES = [
    # plain and encoded dot-dot
    ("dotdot", "/../secret", (400,)),
    ("dotdot_twice", "/../../secret", (400,)),
    ("dotdot_etc_passwd", "/../../../../../../../../etc/passwd", (400,)),
    ("dotdot_lower_hex", "/%2e%2e/secret", (400,)),
    ("dotdot_upper_hex", "/%2E%2E/secret", (400,)),
    ("dotdot_mixed_1", "/.%2e/secret", (400,)),
    ("dotdot_mixed_2", "/%2e./secret", (400,)),
    ("dotdot_encoded_slash_after", "/%2e%2e%2fsecret", REFUSED),
    ("dotdot_all_encoded_etc", "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", REFUSED),
    ("dot_then_dotdot", "/./../secret", (400,)),
    ("encoded_dot_then_dotdot", "/%2e/%2e%2e/secret", (400,)),
    ("sub_dotdot_dotdot", "/sub/../../secret", (400,)),
    ("sub_encoded_dotdot_twice", "/sub/%2e%2e/%2e%2e/secret", (400,)),
    ("file_as_dir_dotdot", "/index.html/../../secret", (400,)),
    ("dotdot_at_end", "/sub/../..", (400,)),
    # double encoding: decoded once, %2e stays a literal name
    ("double_encoded_dotdot", "/%252e%252e/secret", (404,)),
    ("double_encoded_slash", "/..%252fsecret", (404,)),
    ("double_encoded_all", "/%252e%252e%252fsecret", (404,)),
    ("nested_percent", "/%%32%65%%32%65/secret", (400,)),
    ("iis_unicode_escape", "/%u002e%u002e/secret", (400,)),
    # overlong and odd UTF-8 for '.' and '/'
    ("overlong_2byte_dots", "/%c0%ae%c0%ae/secret", REFUSED),
    ("overlong_2byte_slash", "/..%c0%afsecret", REFUSED),
    ("overlong_3byte_dots", "/%e0%80%ae%e0%80%ae/secret", REFUSED),
    ("overlong_mixed", "/%c0%2e%c0%2e/secret", REFUSED),
    ("fullwidth_dots", "/%ef%bc%8e%ef%bc%8e/secret", REFUSED),
    # backslashes are not separators
    ("backslash_raw", "/..\\secret", REFUSED),
    ("backslash_encoded", "/..%5csecret", REFUSED),
    ("backslash_encoded_twice", "/%2e%2e%5c%2e%2e%5csecret", REFUSED),
    ("backslash_sub", "/sub\\..\\..\\secret", REFUSED),
    # encoded slashes
    ("encoded_slash_dotdot", "/..%2fsecret", REFUSED),
    ("encoded_slash_upper", "/..%2Fsecret", REFUSED),
    ("encoded_slash_sub", "/sub/..%2f..%2fsecret", REFUSED),
    ("encoded_slash_inside_name", "/sub%2ffile.txt", (404,)),
    # NUL and control characters
    ("nul_after_dotdot", "/..%00/secret", (400,)),
    ("nul_truncation", "/index.html%00../../secret", (400,)),
    ("nul_extension", "/../secret%00.html", (400,)),
    ("nul_only", "/%00", (400,)),
    ("nul_between_dots", "/.%00./secret", (400,)),
    ("newline_escape", "/%0a../secret", (400,)),
    # trailing dots, many dots, spaces
    ("three_dots", "/.../secret", (404,)),
    ("four_dots_slashes", "/....//....//secret", (404,)),
    ("trailing_dot", "/../secret.", (400,)),
    ("dotdot_trailing_dot_name", "/sub/..../secret", (404,)),
    ("dotdot_space_escape", "/..%20/secret", (404,)),
    ("dotdot_tab_escape", "/..%09/secret", (400,)),
    # ';' and '//' and '?' and '#'
    ("semicolon_dotdot", "/..;/secret", (404,)),
    ("semicolon_then_dotdot", "/;/../secret", REFUSED),
    ("sub_semicolon_dotdot", "/sub;/../../secret", (400,)),
    ("double_slash_dotdot", "//../secret", (400,)),
    ("triple_slash_dotdot_twice", "///../../secret", (400,)),
    ("double_slash_absolute_path", "//etc/passwd", (404,)),
    ("query_dotdot", "/index.html?/../../secret", (200,)),
    ("encoded_question_dotdot", "/index.html%3f/../../secret", (400,)),
    ("encoded_hash_dotdot", "/sub%23/../../secret", (400,)),
    # absolute paths of the secret as a path under the root
    ("secret_absolute_path", "ABS_SECRET", (404,)),
    ("proc_self_root", "/proc/self/root/etc/passwd", (404,)),
    # very deep
    ("deep_climb", DEEP_UP, REFUSED),
    ("deep_inside", DEEP_DOWN_UP, (200,)),
    ("too_deep", TOO_DEEP, (400, 414)),
    # symlinks in the shared root
    ("symlink_file_out", "/link_out", (403,)),
    ("symlink_file_out_slash", "/link_out/", REFUSED),
    ("symlink_file_out_encoded", "/%6cink_out", (403,)),
    ("symlink_dir_out_file", "/dirlink_out/inner.txt", (403,)),
    ("symlink_dir_out_listing", "/dirlink_out/", (403,)),
    ("symlink_dir_out_no_slash", "/dirlink_out", REFUSED + (301,)),
    ("symlink_dir_out_dotdot", "/dirlink_out/../secret", (400, 403, 404)),
    ("symlink_dir_out_via_sub", "/sub/../dirlink_out/inner.txt", (403,)),
    ("symlink_dir_out_twice", "/dirlink_out/../dirlink_out/inner.txt", (403,)),
    ("symlink_loop", "/loop", REFUSED),
    ("symlink_in_root_ok", "/link_in.html", (200,)),
]

# (name, request-target, allowed statuses) on the second root.
SYM_CASES = [
    ("abs_symlink", "/abs_link", (403,)),
    ("etc_passwd_symlink", "/etc_link", (403,)),
    ("slash_symlink_etc", "/slash_link/etc/passwd", (403,)),
    ("slash_symlink_listing", "/slash_link/", (403,)),
    ("chained_symlinks", "/chain1", (403,)),
    ("chained_symlinks_middle", "/chain2", (403,)),
    ("subdir_symlink_up", "/sub/up", (403,)),
    ("subdir_dir_symlink_up", "/sub/updir/secret2", (403,)),
    ("parent_symlink", "/parent_link/secret2", (403,)),
    ("parent_symlink_listing", "/parent_link/", (403,)),
    ("inside_dir_symlink", "/inside_link/file.txt", (200,)),
    ("inside_file_symlink", "/rel_inside", (200,)),
    ("inside_dir_symlink_then_up", "/inside_link/../abs_link", (403,)),
]


class TraversalBase(VerbdTestCase):
    def secrets(self):
        return [self.web.secret, self.web.outside_secret, symroot().secret, passwd_first_line()]

    def check(self, target, statuses, method="GET"):
        raw = ("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, target)).encode("latin-1")
        c = self.connect()
        c.send(raw)
        r = c.read_response(method)
        # Everything the server sent on this connection, until it closes or
        # goes quiet.
        c.sock.shutdown(socket.SHUT_WR)
        try:
            rest = c.read_until_close(3.0)
        except AssertionError:
            rest = c.buf
        everything = r.raw_head + r.body + rest
        for s in self.secrets():
            self.assertNotIn(s, everything, "%s %s leaked a secret: %r" % (method, target, r))
        self.assertIn(r.status, statuses, "%s %s: %r" % (method, target, r))
        self.assertIn(r.status, REFUSED + INSIDE, r)
        self.assertWellFormed(r, method)
        if r.status == 301:
            loc = r.header("Location", "")
            self.assertNotIn("..", loc, r)
            self.assertNotIn("%2e", loc.lower(), r)
        return r


class Traversal(TraversalBase):
    """The shared web root."""

    def check_case(self, target, statuses):
        if target == "ABS_SECRET":
            target = os.path.join(self.web.base, "secret")
        r = self.check(target, statuses)
        if r.status == 200:
            self.assertIn(r.body, (self.web.index, self.web.sub_file), r)


class SymlinkTraversal(TraversalBase):
    """The second root, with links out of it in every shape."""

    def setUp(self):
        self.web = webroot()
        self.conns = []
        self.sym = symroot()
        self.server = self.start_server(root=self.sym.root)

    def check_case(self, target, statuses):
        r = self.check(target, statuses)
        if r.status == 200:
            self.assertEqual(r.body, b"sym sub file\n", r)


for _name, _target, _statuses in CASES:
    setattr(Traversal, "test_%s" % _name,
            (lambda t, s: lambda self: self.check_case(t, s))(_target, _statuses))
for _name, _target, _statuses in SYM_CASES:
    setattr(SymlinkTraversal, "test_%s" % _name,
            (lambda t, s: lambda self: self.check_case(t, s))(_target, _statuses))


class OtherForms(TraversalBase):
    """Absolute-form targets, other methods, ranges and conditionals on the
    same attacks."""

    def test_absolute_form_dotdot(self):
        self.check("http://localhost/../secret", (400,))

    def test_absolute_form_encoded_dotdot(self):
        self.check("http://localhost/%2e%2e/secret", (400,))

    def test_absolute_form_encoded_slash(self):
        self.check("http://localhost/..%2fsecret", REFUSED)

    def test_absolute_form_dotdot_host(self):
        self.check("http://../secret", REFUSED)

    def test_absolute_form_symlink_out(self):
        self.check("http://localhost/link_out", (403,))

    def test_absolute_form_file_scheme(self):
        self.check("file:///etc/passwd", REFUSED)

    def test_absolute_form_userinfo(self):
        self.check("http://user@localhost/../secret", REFUSED)

    def test_head_dotdot(self):
        self.check("/../secret", (400,), method="HEAD")

    def test_head_symlink_out(self):
        self.check("/link_out", (403,), method="HEAD")

    def test_options_dotdot(self):
        self.check("/../secret", REFUSED, method="OPTIONS")

    def test_range_on_symlink_out(self):
        c = self.connect()
        r = c.request("GET", "/dirlink_out/inner.txt", [("Range", "bytes=0-5")])
        self.assertEqual(r.status, 403, r)
        self.assertNotIn(self.web.outside_secret[:6], r.body)

    def test_fifo_does_not_hang(self):
        self.check("/fifo", (403,))

    def test_corpus_size(self):
        self.assertGreaterEqual(len(CASES) + len(SYM_CASES), 50)


if __name__ == "__main__":
    unittest.main()
