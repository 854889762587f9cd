"""litmus, the WebDAV conformance suite, against verbd's webdav module:
every suite with 0 failures and 0 warnings.  Each suite gets a fresh
server and directory, two worker processes sharing the database."""

import re
import shutil
import subprocess
import unittest

import test_webdav as dav

SUMMARY_RE = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


@unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
class TestLitmus(unittest.TestCase):
    def server(self):
        """The server under test (test_webdav_pg.py: another store)."""
        return dav.DavServer(workers=2)

    def run_suite(self, suite):
        d = self.server()
        self.addCleanup(d.cleanup)
        d.start()
        p = subprocess.run(["litmus", d.url], env={"TESTS": suite, "PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=200, cwd=d.base)
        out = p.stdout.decode("utf-8", "replace")
        m = SUMMARY_RE.search(out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), suite)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertNotIn("WARNING", out)
        self.assertNotRegex(out, r"\d+ warnings?\b", out)
        self.assertEqual(p.returncode, 0, out)

    def test_basic(self):
        self.run_suite("basic")

    def test_copymove(self):
        self.run_suite("copymove")

    def test_props(self):
        self.run_suite("props")

    def test_locks(self):
        self.run_suite("locks")

    def test_http(self):
        self.run_suite("http")


if __name__ == "__main__":
    unittest.main()
