"""min_rate: a request body a module reads, and a response the client is
not taking, must move at least SIZE bytes per second averaged over TIME;
a trickle that resets body_timeout and send_timeout with every byte no
longer keeps a connection forever.  A paused body and an idle producer owe
nothing."""

import os
import shutil
import socket
import tempfile
import time
import unittest

from harness import Server, build_request, run_verbd


class MinRate(unittest.TestCase):
    def serve(self, rate, in_file=False):
        self.base = tempfile.mkdtemp(prefix="verbd-rate-")
        self.addCleanup(shutil.rmtree, self.base, True)
        os.makedirs(os.path.join(self.base, "dav"))
        with open(os.path.join(self.base, "big.bin"), "wb") as f:
            f.write(b"z" * (8 << 20))
        conf = os.path.join(self.base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 1;\nlocation / { static %s; }\nlocation /dav/ { webdav %s/dav; }\n"
                    % (self.base, self.base))
            if in_file:
                f.write("min_rate %s;\n" % rate)
        args = [] if in_file else ["--set", "min_rate=" + rate]
        self.server = Server(None, "-c", conf, *args).start()
        self.addCleanup(self.server.cleanup)

    def test_trickled_body_is_cut(self):
        self.serve("1k 1s", in_file=True)
        c = self.server.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/dav/slow.bin", [("Content-Length", "100000")]))
        t0 = time.monotonic()
        r = None
        for _ in range(40):  # 10 bytes every 0.1 s: 100 B/s, under 1 KiB/s
            try:
                c.sock.sendall(b"x" * 10)
            except OSError:
                break
            c.sock.settimeout(0.1)
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            if data:
                c.buf += data
            break
        c.sock.settimeout(5)
        r = c.read_response("PUT")
        self.assertEqual(r.status, 408, r)
        self.assertLess(time.monotonic() - t0, 3.5)  # one window, not body_timeout
        self.assertFalse(os.path.exists(os.path.join(self.base, "dav", "slow.bin")))

    def test_body_at_the_rate_is_kept(self):
        self.serve("1k 1s")
        c = self.server.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/dav/ok.bin", [("Content-Length", str(8 * 4096))]))
        for _ in range(8):  # 16 KiB/s
            c.sock.sendall(b"y" * 4096)
            time.sleep(0.25)
        r = c.read_response("PUT")
        self.assertEqual(r.status, 201, r)

    def test_response_read_too_slowly_is_cut(self):
        self.serve("64k 1s")
        c = self.server.connect(timeout=10, rcvbuf=4096)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/big.bin"))
        t0 = time.monotonic()
        got, closed = 0, False
        while time.monotonic() - t0 < 8:
            c.sock.settimeout(1)
            try:
                data = c.sock.recv(512)  # about 5 KiB/s
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            got += len(data)
            time.sleep(0.1)
        self.assertTrue(closed, "still open after %.1f s, %d bytes read" % (time.monotonic() - t0, got))
        self.assertLess(got, 8 << 20)

    def test_response_read_fast_enough_completes(self):
        self.serve("64k 1s")
        c = self.server.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/big.bin"))
        r = c.read_response("GET")
        self.assertEqual(len(r.body), 8 << 20)

    def test_off(self):
        self.serve("off")
        c = self.server.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/dav/slow.bin", [("Content-Length", "30")]))
        for _ in range(3):
            c.sock.sendall(b"x" * 10)
            time.sleep(0.6)
        self.assertEqual(c.read_response("PUT").status, 201)


class MinRateConfig(unittest.TestCase):
    def check(self, line):
        base = tempfile.mkdtemp(prefix="verbd-rate-")
        self.addCleanup(shutil.rmtree, base, True)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("%s\nlocation / { static %s; }\n" % (line, base))
        return run_verbd("-t", "-c", conf)

    def test_accepted(self):
        for line in ("min_rate 1k 30s;", "min_rate 100 1m;", "min_rate off;"):
            self.assertEqual(self.check(line).returncode, 0, line)

    def test_refused_with_position(self):
        for line in ("min_rate 1k;", "min_rate banana 1s;", "min_rate 1k 10ms;",
                     "min_rate 1k 30s 2;"):
            p = self.check(line)
            self.assertNotEqual(p.returncode, 0, line)
            self.assertRegex(p.stderr.decode(), r"verbd\.conf:1:\d+: .*min_rate", line)


if __name__ == "__main__":
    unittest.main()
