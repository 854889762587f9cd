"""The webdav module with real clients and real failures: an rclone round
trip of 200 files, a scripted cadaver session, and uploads cut short by
SIGKILL that must leave the old file or the new one, never a mix, and no
temporary file in sight."""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import build_request
import test_webdav as dav


def have(cmd):
    return shutil.which(cmd) is not None


class ClientCase(unittest.TestCase):
    def setUp(self):
        self.dav = dav.DavServer(workers=2)
        self.addCleanup(self.dav.cleanup)
        self.dav.start()
        self.tmp = tempfile.mkdtemp(prefix="verbd-davclient-")
        self.addCleanup(shutil.rmtree, self.tmp, True)


@unittest.skipUnless(have("rclone"), "rclone is not installed (apt-get install rclone)")
class TestRclone(ClientCase):
    def test_round_trip_200_files(self):
        src = os.path.join(self.tmp, "src")
        rnd = random.Random(4918)
        sizes = [0, 1, 100, 4096, 65536, 300000, 1 << 20]
        for i in range(200):
            d = os.path.join(src, "d%d" % (i % 7)) if i % 3 else src
            os.makedirs(d, exist_ok=True)
            n = rnd.choice(sizes) + rnd.randrange(50)
            with open(os.path.join(d, "f%03d \u00e9.bin" % i), "wb") as f:
                f.write(rnd.randbytes(n))
        env = dict(os.environ, HOME=self.tmp, RCLONE_CONFIG=os.path.join(self.tmp, "rclone.conf"),
                   RCLONE_CONFIG_V_TYPE="webdav", RCLONE_CONFIG_V_URL=self.dav.url,
                   RCLONE_CONFIG_V_VENDOR="other")
        back = os.path.join(self.tmp, "back")
        for args in (["copy", src, "v:up"], ["copy", "v:up", back]):
            p = subprocess.run(["rclone", "--retries", "1"] + args, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=180)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        p = subprocess.run(["diff", "-r", src, back], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        count = sum(len(files) for _, _, files in os.walk(back))
        self.assertEqual(count, 200)
        p = subprocess.run(["diff", "-r", src, os.path.join(self.dav.data, "up")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))


@unittest.skipUnless(have("cadaver"), "cadaver is not installed (apt-get install cadaver)")
class TestCadaver(ClientCase):
    def test_session(self):
        local = os.path.join(self.tmp, "local.txt")
        with open(local, "wb") as f:
            f.write(b"cadaver was here\n")
        script = ("put local.txt a.txt\nmkcol coll\nmove a.txt coll/b.txt\n"
                  "propset coll/b.txt color red\npropget coll/b.txt color\n"
                  "lock coll/b.txt\nput local.txt coll/b.txt\nunlock coll/b.txt\n"
                  "get coll/b.txt back.txt\nls coll\nquit\n")
        p = subprocess.run(["cadaver", self.dav.url], input=script.encode(), cwd=self.tmp,
                           env=dict(os.environ, HOME=self.tmp), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("failed", out)
        self.assertEqual(out.count("succeeded"), 9, out)
        self.assertIn("Value of color is: red", out)
        with open(os.path.join(self.tmp, "back.txt"), "rb") as f:
            self.assertEqual(f.read(), b"cadaver was here\n")
        self.assertEqual(os.listdir(self.dav.data), ["coll"])
        self.assertEqual(os.listdir(self.dav.path("coll")), ["b.txt"])


class TestKilledUpload(unittest.TestCase):
    OLD = b"O" * 200000
    NEW = bytes(range(256)) * 8192  # 2 MiB

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-davkill-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.dav = None

    def start(self):
        self.dav = dav.DavServer(base=self.base, workers=2)
        self.addCleanup(self.dav.stop)
        self.dav.start()

    def temp_files(self):
        return [n for n in os.listdir(self.dav.data) if n.startswith(".verbd-")]

    def check_after_restart(self, allowed):
        self.dav.start()
        r = self.dav.req("GET", "/dav/file")
        self.assertEqual(r.status, 200)
        self.assertIn(r.body, allowed, "a mix of old and new (%d bytes)" % len(r.body))
        ms = dav.multistatus(self.dav.req("PROPFIND", "/dav/", {"Depth": "1"}))
        self.assertEqual(set(ms), {"/dav/", "/dav/file"})

    def test_sigkill_mid_upload_keeps_old_file(self):
        self.start()
        self.assertEqual(self.dav.req("PUT", "/dav/file", body=self.OLD).status, 201)
        c = self.dav.server.connect(timeout=10)
        c.send(build_request("PUT", "/dav/file", [("Content-Length", str(len(self.NEW)))]))
        c.send(self.NEW[:len(self.NEW) // 2])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            tmp = self.temp_files()
            if tmp and os.path.getsize(os.path.join(self.dav.data, tmp[0])) > 0:
                break
            time.sleep(0.02)
        else:
            self.fail("no temporary file appeared while uploading")
        self.dav.stop(signal.SIGKILL)
        c.close()
        with open(os.path.join(self.dav.data, "file"), "rb") as f:
            self.assertEqual(f.read(), self.OLD)
        self.check_after_restart((self.OLD,))

    def test_sigkill_at_random_points(self):
        rnd = random.Random(99)
        self.start()
        self.assertEqual(self.dav.req("PUT", "/dav/file", body=self.OLD).status, 201)
        for i in range(6):
            c = self.dav.server.connect(timeout=10)
            cut = rnd.randrange(len(self.NEW) + 1) if i < 5 else len(self.NEW)
            c.send(build_request("PUT", "/dav/file", [("Content-Length", str(len(self.NEW)))]))
            c.send(self.NEW[:cut])
            time.sleep(rnd.random() * 0.05)
            self.dav.stop(signal.SIGKILL)
            c.close()
            self.check_after_restart((self.OLD, self.NEW))
            with open(os.path.join(self.dav.data, "file"), "rb") as f:
                if f.read() == self.NEW:
                    self.dav.req("PUT", "/dav/file", body=self.OLD)


if __name__ == "__main__":
    unittest.main()
