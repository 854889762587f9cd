"""A WebDAV share behind auth_basic with real clients: litmus (its suites,
with credentials), a scripted cadaver session (credentials from .netrc)
and an rclone round trip; and without credentials, nothing but 401s
(and OPTIONS, which tells the configured set)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from test_access import entry
import test_webdav as dav

SUMMARY_RE = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
USER, PASSWORD = "davuser", "dav:pass.word"  # a colon in a password is fine


def have(cmd):
    return shutil.which(cmd) is not None


@unittest.skipUnless(have("htpasswd") and have("openssl"), "htpasswd and openssl make the users")
class AuthDavCase(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-authdav-")
        self.addCleanup(shutil.rmtree, self.base, True)
        users = os.path.join(self.base, "users")
        with open(users, "w") as f:
            f.write(entry("bcrypt", USER, PASSWORD, cost=5) + "\n")
        self.dav = dav.DavServer(base=self.base, workers=2,
                                 extra='auth_basic "dav"; auth_basic_user_file %s;' % users)
        self.addCleanup(self.dav.cleanup)
        self.dav.start()
        self.tmp = os.path.join(self.base, "client")
        os.makedirs(self.tmp)


class Unauthenticated(AuthDavCase):
    def test_only_401(self):
        for method, target in (("PROPFIND", "/dav/"), ("PUT", "/dav/x"), ("MKCOL", "/dav/c/"),
                               ("GET", "/dav/"), ("DELETE", "/dav/x"), ("LOCK", "/dav/x")):
            r = self.dav.req(method, target)
            self.assertEqual(r.status, 401, method)
            self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="dav", charset="UTF-8"')
        self.assertEqual(os.listdir(self.dav.data), [])
        r = self.dav.req("OPTIONS", "/dav/")
        self.assertEqual((r.status, r.header("DAV")), (204, "1, 2"))


@unittest.skipUnless(have("litmus"), "litmus is not installed (apt-get install litmus)")
class Litmus(AuthDavCase):
    def run_suite(self, suite):
        p = subprocess.run(["litmus", self.dav.url, USER, PASSWORD],
                           env={"TESTS": suite, "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=200,
                           cwd=self.base)
        out = p.stdout.decode("utf-8", "replace")
        m = SUMMARY_RE.search(out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertNotIn("WARNING", out)
        self.assertEqual(p.returncode, 0, out)

    def test_basic(self):
        self.run_suite("basic")

    def test_copymove(self):
        self.run_suite("copymove")

    def test_props(self):
        self.run_suite("props")

    def test_locks(self):
        self.run_suite("locks")

    def test_wrong_password_fails(self):
        p = subprocess.run(["litmus", self.dav.url, USER, "wrong"],
                           env={"TESTS": "basic", "PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, cwd=self.base)
        self.assertNotEqual(p.returncode, 0, p.stdout.decode("utf-8", "replace"))


@unittest.skipUnless(have("cadaver"), "cadaver is not installed (apt-get install cadaver)")
class Cadaver(AuthDavCase):
    def test_session(self):
        with open(os.path.join(self.tmp, ".netrc"), "w") as f:
            f.write("machine %s login %s password %s\n"
                    % (self.dav.server.host, USER, PASSWORD))
        os.chmod(os.path.join(self.tmp, ".netrc"), 0o600)
        with open(os.path.join(self.tmp, "local.txt"), "wb") as f:
            f.write(b"behind a password\n")
        script = "put local.txt a.txt\nmkcol coll\nmove a.txt coll/b.txt\nls coll\nquit\n"
        p = subprocess.run(["cadaver", self.dav.url], input=script.encode(), cwd=self.tmp,
                           env=dict(os.environ, HOME=self.tmp), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("failed", out)
        self.assertEqual(out.count("succeeded"), 4, out)
        with open(os.path.join(self.dav.data, "coll", "b.txt"), "rb") as f:
            self.assertEqual(f.read(), b"behind a password\n")


@unittest.skipUnless(have("rclone"), "rclone is not installed (apt-get install rclone)")
class Rclone(AuthDavCase):
    def test_round_trip(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(os.path.join(src, "d"))
        for i in range(20):
            with open(os.path.join(src, "d" if i % 2 else "", "f%02d.bin" % i), "wb") as f:
                f.write(os.urandom(100 * i))
        obscured = subprocess.run(["rclone", "obscure", PASSWORD], stdout=subprocess.PIPE,
                                  check=True).stdout.decode().strip()
        env = dict(os.environ, HOME=self.tmp, RCLONE_CONFIG=os.path.join(self.tmp, "rclone.conf"),
                   RCLONE_CONFIG_V_TYPE="webdav", RCLONE_CONFIG_V_URL=self.dav.url,
                   RCLONE_CONFIG_V_VENDOR="other", RCLONE_CONFIG_V_USER=USER,
                   RCLONE_CONFIG_V_PASS=obscured)
        back = os.path.join(self.tmp, "back")
        for args in (["copy", src, "v:up"], ["copy", "v:up", back]):
            p = subprocess.run(["rclone", "--retries", "1"] + args, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        p = subprocess.run(["diff", "-r", src, back], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))


if __name__ == "__main__":
    unittest.main()
