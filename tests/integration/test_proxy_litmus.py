"""litmus through the gateway: verbd's proxy in front of verbd's webdav
module at the same prefix, every suite with 0 failures and 0 warnings; and
in front of Apache's mod_dav, every suite with 0 failures and no warning
that Apache itself does not earn."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import test_webdav as dav
from harness import Server
from peers import Apache, find_httpd

SUMMARY_RE = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


def litmus(url, suite, cwd):
    """Runs one litmus suite: (summary match, output, exit status)."""
    p = subprocess.run(["litmus", url], env={"TESTS": suite, "PATH": "/usr/bin:/bin"},
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=200, cwd=cwd)
    out = p.stdout.decode("utf-8", "replace")
    return SUMMARY_RE.search(out), out, p.returncode


def warnings(out):
    return sorted(line.strip() for line in out.splitlines() if "WARNING" in line)


@unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
class LitmusThroughGateway(unittest.TestCase):
    def gateway(self, host, port):
        base = tempfile.mkdtemp(prefix="verbd-gateway-")
        self.addCleanup(shutil.rmtree, base, True)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 2;\nlocation /dav/ { proxy http://%s:%d/dav/; }\n" % (host, port))
        gateway = Server(None, "-c", conf).start()
        self.addCleanup(gateway.cleanup)
        return gateway, base

    def run_suite(self, suite):
        upstream = dav.DavServer(workers=1)
        self.addCleanup(upstream.cleanup)
        upstream.start()
        gateway, base = self.gateway(upstream.server.host, upstream.server.port)
        m, out, rc = litmus("http://%s:%d/dav/" % (gateway.host, gateway.port), suite, base)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), suite)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertNotIn("WARNING", out)
        self.assertEqual(rc, 0, out)
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


@unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
class LitmusThroughGatewayToApache(LitmusThroughGateway):
    """The same suites with Apache's mod_dav behind the gateway, each run
    against Apache directly too: through verbd, no failure and exactly
    the warnings Apache earns on its own."""

    def run_suite(self, suite):
        if not find_httpd():
            self.skipTest("Apache httpd is not installed (Debian package: apache2)")
        httpd = Apache(["mpm_prefork", "authz_core", "mime", "dir", "dav", "dav_fs"],
                       # One process (-X) serves one connection at a time: a
                       # connection kept open would hold the next one back.
                       "KeepAlive Off\nDavLockDB {d}/davlock\n<Directory {root}>\n    Require all granted\n"
                       "</Directory>\n<Location /dav/>\n    Dav On\n</Location>\n")
        self.addCleanup(httpd.cleanup)
        os.makedirs(os.path.join(httpd.root, "dav"))
        httpd.start()
        gateway, base = self.gateway("127.0.0.1", httpd.port)
        direct, direct_out, _ = litmus("http://127.0.0.1:%d/dav/" % httpd.port, suite, base)
        m, out, rc = litmus("http://%s:%d/dav/" % (gateway.host, gateway.port), suite, base)
        self.assertIsNotNone(direct, direct_out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), suite)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertEqual(m.group(2), direct.group(2), out)
        self.assertEqual(warnings(out), warnings(direct_out), out)
        self.assertEqual(rc, 0, out)
        gateway.stop()


if __name__ == "__main__":
    unittest.main()
