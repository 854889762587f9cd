"""litmus through the gateway: verbd's proxy in front of verbd's webdav
module at the same prefix, every suite with 0 failures and 0 warnings."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import test_webdav as dav
from harness import Server

SUMMARY_RE = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


@unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
class LitmusThroughGateway(unittest.TestCase):
    def run_suite(self, suite):
        upstream = dav.DavServer(workers=1)
        self.addCleanup(upstream.cleanup)
        upstream.start()
        base = tempfile.mkdtemp(prefix="verbd-gateway-")
        self.addCleanup(shutil.rmtree, base, True)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 2;\nlocation /dav/ { proxy http://%s:%d/dav/; }\n"
                    % (upstream.server.host, upstream.server.port))
        gateway = Server(None, "-c", conf).start()
        self.addCleanup(gateway.cleanup)
        url = "http://%s:%d/dav/" % (gateway.host, gateway.port)
        p = subprocess.run(["litmus", url], env={"TESTS": suite, "PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=200, cwd=base)
        out = p.stdout.decode("utf-8", "replace")
        m = SUMMARY_RE.search(out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), suite)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertNotIn("WARNING", out)
        self.assertEqual(p.returncode, 0, out)
        gateway.stop()

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
