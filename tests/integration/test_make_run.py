"""`make run`: the README's first command serves the welcome page in
examples/www/ (not the checkout), and takes PORT= and a DIR= with spaces."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import free_port, verbd_bin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def http_get(port, target):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        s.close()


class MakeRun(unittest.TestCase):
    def make_run(self, *args):
        port = free_port()
        build = os.path.dirname(os.path.abspath(verbd_bin()))
        p = subprocess.Popen(["make", "-s", "--no-print-directory", "run", "BUILD=" + build,
                              "PORT=%d" % port] + list(args), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)

        def stop():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait(10)
            p.stderr.close()
        self.addCleanup(stop)
        deadline = time.time() + 60
        while time.time() < deadline:
            if p.poll() is not None:
                self.fail("make run exited %d: %s" % (p.returncode, p.stderr.read().decode()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                time.sleep(0.1)
        self.fail("make run did not listen on port %d" % port)

    def test_welcome_page_not_the_checkout(self):
        port = self.make_run()
        r = http_get(port, "/")
        self.assertTrue(r.startswith(b"HTTP/1.1 200 "), r[:200])
        self.assertIn(b"verbd is running", r)
        self.assertTrue(http_get(port, "/Makefile").startswith(b"HTTP/1.1 404 "))
        self.assertTrue(http_get(port, "/.git/config").startswith(b"HTTP/1.1 404 "))

    def test_dir_with_spaces_and_port(self):
        d = tempfile.mkdtemp(prefix="verbd make run ")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "index.html"), "wb") as f:
            f.write(b"spaced site\n")
        port = self.make_run("DIR=" + d)
        r = http_get(port, "/")
        self.assertTrue(r.startswith(b"HTTP/1.1 200 "), r[:200])
        self.assertTrue(r.endswith(b"spaced site\n"), r)


if __name__ == "__main__":
    unittest.main()
