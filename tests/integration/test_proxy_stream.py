"""Large bodies through the gateway (docs/proxy.md, "Bodies stream both
ways"): an upload and a download of VERBD_STREAM_BYTES (256 MiB by default;
`make test-proxy-stream` runs 2 GiB) pass through verbd while its memory
stays flat.  verbd's resident memory (supervisor and worker) is sampled
throughout; the report line gives the baseline and the peak."""

import hashlib
import os
import threading
import time

import upstream as U
from harness import build_request, measured_as_built
from test_config import ConfigCase, config_server

TOTAL = int(os.environ.get("VERBD_STREAM_BYTES", str(256 << 20)))
# What verbd may grow by while streaming: its bounded buffers (64 KiB per
# direction and the session's) and allocator slack; nothing that grows
# with the body.
FLAT_LIMIT = 1 << 20


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def verbd_pids(supervisor):
    pids = [supervisor]
    try:
        with open("/proc/%d/task/%d/children" % (supervisor, supervisor)) as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


class Sampler(threading.Thread):
    """The sum of verbd's processes' resident memory, every 20 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def total(self):
        total = 0
        for p in verbd_pids(self.pid):
            try:
                total += rss_kib(p)
            except OSError:
                pass
        return total

    def run(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, self.total())


class Streaming(ConfigCase):
    def setUp(self):
        super().setUp()
        self.up = U.Upstream(U.read_slowly(step=1 << 20, interval=0))
        self.up.on("GET", "/down", U.download(TOTAL))
        self.up.start()
        self.addCleanup(self.up.stop)
        text = ("access_log off;\nworkers 1;\nlisten 127.0.0.1:0;\n"
                "location / { proxy %s; }\n" % self.up.url)
        self.srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(self.srv.cleanup)

    def measure(self, transfer):
        # A first small exchange, so the baseline has what every request
        # needs (buffers, the upstream connection).
        c = self.srv.connect(timeout=30)
        self.addCleanup(c.close)
        c.send(build_request("POST", "/warm", headers={"Content-Length": "5"}, body=b"hello"))
        self.assertEqual(c.read_response().status, 200)
        sampler = Sampler(self.srv.pid)
        baseline = sampler.total()
        sampler.start()
        started = time.monotonic()
        transfer(c)
        seconds = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        growth = sampler.peak - baseline
        print("  %s: %d MiB in %.1fs; verbd RSS %d KiB before, %d KiB at most (+%d KiB)"
              % (self._testMethodName, TOTAL >> 20, seconds, baseline, sampler.peak, growth))
        if measured_as_built():
            self.assertLess(growth * 1024, FLAT_LIMIT)

    def test_upload(self):
        piece = U.pattern(0, 1 << 20)
        digest = hashlib.sha256()

        def upload(c):
            c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % TOTAL)
            sent = 0
            while sent < TOTAL:
                part = piece[:min(len(piece), TOTAL - sent)]
                c.sock.sendall(part)
                digest.update(part)
                sent += len(part)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            d = U.json.loads(r.body)
            self.assertEqual(d["received"], TOTAL)
            self.assertEqual(d["sha256"], digest.hexdigest())
        self.measure(upload)

    def test_download(self):
        def download(c):
            c.send(build_request("GET", "/down"))
            c.sock.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.sock.recv(65536)
            head, body = head.split(b"\r\n\r\n", 1)
            self.assertIn(b"Content-Length: %d\r\n" % TOTAL, head + b"\r\n")
            got = len(body)
            expect = hashlib.sha256(U.pattern(0, TOTAL)).hexdigest() if TOTAL <= 64 << 20 else None
            h = hashlib.sha256(body)
            buf = bytearray(1 << 20)
            while got < TOTAL:
                n = c.sock.recv_into(buf)
                self.assertGreater(n, 0, "the body ended at %d of %d bytes" % (got, TOTAL))
                h.update(memoryview(buf)[:n])
                got += n
            self.assertEqual(got, TOTAL)
            if expect:
                self.assertEqual(h.hexdigest(), expect)
        self.measure(download)
