"""max_body belongs to the location and is checked after the method
decision: a location's own limit, else the server's, else the module's
default (1m for static and C handlers, none for webdav, which streams
bodies to disk).  A refused method never hears of it; a 413 closes the
connection and is logged with the limit that was hit."""

import os
import shutil
import tempfile
import time
import unittest

from harness import Server, build_request, run_verbd


class BodyLimits(unittest.TestCase):
    def serve(self, config):
        self.base = tempfile.mkdtemp(prefix="verbd-limits-")
        self.addCleanup(shutil.rmtree, self.base, True)
        for d in ("www", "dav", "small"):
            os.makedirs(os.path.join(self.base, d))
        with open(os.path.join(self.base, "www", "index.html"), "w") as f:
            f.write("hello\n")
        self.log = os.path.join(self.base, "error.log")
        conf = os.path.join(self.base, "verbd.conf")
        with open(conf, "w") as f:
            f.write(config.replace("BASE", self.base))
        self.server = Server(None, "-c", conf, "--error-log", self.log, "--log-level", "info").start()
        self.addCleanup(self.server.cleanup)

    def send(self, method, target, body=b"", chunked=False, length=None):
        c = self.server.connect(timeout=20)
        self.addCleanup(c.close)
        if chunked:
            parts = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4096]), body[i:i + 4096])
                             for i in range(0, len(body), 4096)) + b"0\r\n\r\n"
            c.send(build_request(method, target, [("Transfer-Encoding", "chunked")]) + parts)
        else:
            n = len(body) if length is None else length
            c.send(build_request(method, target, [("Content-Length", str(n))]) + body)
        return c, c.read_response(method)

    DEFAULTS = ("workers 1;\n"
                "location / { static BASE/www; }\n"
                "location /dav/ { webdav BASE/dav; }\n"
                "location /small/ { webdav BASE/small; max_body 10k; }\n")

    def test_webdav_takes_large_uploads_by_default(self):
        self.serve(self.DEFAULTS)
        data = os.urandom(3 * 1024 * 1024)
        c, r = self.send("PUT", "/dav/big.bin", data)
        self.assertEqual(r.status, 201, r)
        with open(os.path.join(self.base, "dav", "big.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_static_default_is_one_mebibyte(self):
        self.serve(self.DEFAULTS)
        c, r = self.send("GET", "/index.html", length=(1 << 20) + 1)
        self.assertEqual(r.status, 413, r)
        self.assertIn("close", r.connection_tokens())
        c, r = self.send("GET", "/index.html", b"x" * 1000)
        self.assertEqual(r.status, 200, r)

    def test_location_limit(self):
        self.serve(self.DEFAULTS)
        c, r = self.send("PUT", "/small/a.bin", b"y" * 20000)
        self.assertEqual(r.status, 413, r)
        self.assertIn("close", r.connection_tokens())
        self.assertFalse(os.path.exists(os.path.join(self.base, "small", "a.bin")))
        c, r = self.send("PUT", "/small/a.bin", b"y" * 5000)
        self.assertEqual(r.status, 201, r)

    def test_chunked_body_over_location_limit(self):
        self.serve(self.DEFAULTS)
        c, r = self.send("PUT", "/small/c.bin", b"z" * 30000, chunked=True)
        self.assertEqual(r.status, 413, r)
        self.assertTrue(c.is_closed(timeout=3))
        self.assertFalse(os.path.exists(os.path.join(self.base, "small", "c.bin")))

    def test_refused_method_never_hears_of_the_limit(self):
        self.serve(self.DEFAULTS)
        # PUT is implemented (webdav), not allowed on the static tree: 405.
        c, r = self.send("PUT", "/index.html", length=50 << 20)
        self.assertEqual(r.status, 405, r)
        # A method nothing implements: 501.
        c, r = self.send("BREW", "/small/x", length=50 << 20)
        self.assertEqual(r.status, 501, r)

    def test_server_default_and_off(self):
        self.serve("workers 1;\nmax_body 4k;\n"
                   "location / { static BASE/www; }\n"
                   "location /dav/ { webdav BASE/dav; }\n"
                   "location /small/ { webdav BASE/small; max_body off; }\n")
        c, r = self.send("PUT", "/dav/a.bin", b"q" * 5000)
        self.assertEqual(r.status, 413, r)
        c, r = self.send("GET", "/index.html", b"q" * 5000)
        self.assertEqual(r.status, 413, r)
        c, r = self.send("PUT", "/small/a.bin", b"q" * 50000)
        self.assertEqual(r.status, 201, r)

    def test_413_is_logged_with_the_limit(self):
        self.serve(self.DEFAULTS)
        self.send("PUT", "/small/log.bin", length=20480)
        deadline = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline:
            with open(self.log) as f:
                text = f.read()
            if "413" in text:
                break
            time.sleep(0.05)
        self.assertIn("413 for PUT /small/log.bin: Content-Length 20480 over max_body 10240 "
                      "at location /small/", text)

    def test_config_check(self):
        base = tempfile.mkdtemp(prefix="verbd-limits-")
        self.addCleanup(shutil.rmtree, base, True)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("location / {\n    static %s;\n    max_body banana;\n}\n" % base)
        p = run_verbd("-t", "-c", conf)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("verbd.conf:3:", p.stderr.decode())
        self.assertIn("max_body", p.stderr.decode())
        with open(conf, "w") as f:
            f.write("location / {\n    static %s;\n    max_body off;\n}\n" % base)
        p = run_verbd("-t", "-c", conf)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
