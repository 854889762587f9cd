"""Compression (issue 16): gzip and brotli on the fly for every module
(`gzip`, `brotli`, `gzip_types`, `gzip_min_length`, `gzip_comp_level`,
`brotli_comp_level`), and precompressed files (`precompressed`).

Round trips are checked with Python's gzip module, curl --compressed and a
brotli decoder (Python's brotli module, else the brotli command); the
fields with a raw connection: Vary on every eligible response and its 304s,
a weak ETag and no Accept-Ranges on the encoded form, ranges answered
unencoded, q-values, HEAD as GET, the refusals untouched."""

import base64
import gzip
import os
import shutil
import subprocess
import time
import unittest

import upstream as U
from test_config import ConfigCase, config_server

try:
    import brotli as _brotli
except ImportError:  # the tests may run under a Python without it
    _brotli = None

# A compressible text, large enough for several of the filter's windows.
TEXT = b"".join(b"<p>line %d of a text that compresses well</p>\n" % i for i in range(6000))
SMALL = b"<p>short</p>\n" * 10  # 130 bytes


def unbrotli(data):
    """Decodes brotli with whichever decoder this machine has."""
    if _brotli is not None:
        return _brotli.decompress(data)
    if shutil.which("brotli"):
        return subprocess.run(["brotli", "-d", "-c"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    raise unittest.SkipTest("no brotli decoder (python3-brotli or the brotli command)")


def gunzip(data):
    return gzip.decompress(data)


class CompressCase(ConfigCase):
    HEAD = "listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\n"

    def setUp(self):
        super().setUp()
        self.write("www/page.html", TEXT)
        self.write("www/notes.txt", TEXT)
        self.write("www/blob.bin", TEXT)
        self.write("www/small.html", SMALL)
        os.makedirs(os.path.join(self.dir, "dav"), exist_ok=True)
        self.serve(self.HEAD +
                   "gzip on;\nbrotli on;\ngzip_comp_level 6;\n"
                   "location / { static www; }\n"
                   "location /plain/ { static www; gzip_types text/plain; }\n"
                   "location /any/ { static www; gzip_types *; gzip_min_length 1; }\n"
                   "location /min/ { static www; gzip_min_length 200; }\n"
                   "location /off/ { static www; gzip off; brotli off; }\n"
                   "location /gz/ { static www; brotli off; }\n"
                   "location /dav/ { webdav dav; }\n")

    def get(self, target, ae=None, method="GET", headers=None, version="HTTP/1.1"):
        h = dict(headers or {})
        if ae is not None:
            h["Accept-Encoding"] = ae
        c = self.connect()
        return c.request(method, target, h, version=version)


class RoundTrips(CompressCase):
    def test_gzip(self):
        r = self.get("/page.html", "gzip")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertLess(len(r.body), len(TEXT) // 4)
        self.assertEqual(gunzip(r.body), TEXT)

    def test_brotli(self):
        r = self.get("/page.html", "gzip, br")
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual(unbrotli(r.body), TEXT)

    def test_curl_compressed(self):
        if not shutil.which("curl"):
            self.skipTest("no curl")
        for ae in ("gzip", "br"):
            out = subprocess.run(["curl", "-s", "--compressed", "-H", "Accept-Encoding: " + ae,
                                  "-D", "-", "-o", os.path.join(self.dir, "got"),
                                  "http://127.0.0.1:%d/page.html" % self.server.port],
                                 stdout=subprocess.PIPE, check=True).stdout.decode()
            self.assertIn("content-encoding: %s" % ae, out.lower())
            with open(os.path.join(self.dir, "got"), "rb") as f:
                self.assertEqual(f.read(), TEXT)

    def test_curl_compressed_over_http2(self):
        """The filter over an HTTP/2 stream (h2c): a body far larger than
        the stream's output bound, so the filter is held back and resumed
        by the HTTP/2 session too."""
        if not shutil.which("curl"):
            self.skipTest("no curl")
        big = (TEXT * (2 * 1024 * 1024 // len(TEXT) + 1))[:2 * 1024 * 1024]
        self.write("www/big.html", big)
        for ae in ("gzip", "br"):
            got = os.path.join(self.dir, "got-" + ae)
            out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--compressed",
                                  "-H", "Accept-Encoding: " + ae, "-D", "-", "-o", got,
                                  "--max-time", "20",
                                  "http://127.0.0.1:%d/big.html" % self.server.port],
                                 stdout=subprocess.PIPE, check=True).stdout.decode()
            self.assertTrue(out.startswith("HTTP/2 200"), out)
            self.assertIn("content-encoding: %s" % ae, out.lower())
            with open(got, "rb") as f:
                self.assertEqual(f.read(), big)

    def test_level_one_and_nine_both_decode(self):
        self.serve(self.HEAD + "gzip on;\nlocation /a/ { static www; gzip_comp_level 1; }\n"
                   "location /b/ { static www; gzip_comp_level 9; brotli on; "
                   "brotli_comp_level 0; }\n")
        a = self.get("/a/page.html", "gzip")
        b = self.get("/b/page.html", "gzip")
        self.assertEqual(gunzip(a.body), TEXT)
        self.assertEqual(gunzip(b.body), TEXT)
        self.assertGreater(len(a.body), len(b.body))
        self.assertEqual(unbrotli(self.get("/b/page.html", "br").body), TEXT)

    def test_large_file_streams_in_bounded_memory(self):
        """A 24 MiB file compressed for a client that does not read: the
        worker holds a bounded window, not the file or its encoded form."""
        big = os.path.join(self.dir, "www", "big.html")
        with open(big, "wb") as f:  # compresses to about 3/4: 18 MiB encoded
            for i in range(24):
                f.write(base64.b64encode(os.urandom(3 << 18)))
        c = self.connect(timeout=30)
        c.send(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")  # warm the worker
        c.read_response()
        rss = worker_rss(self.server)
        c.send(b"GET /big.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        time.sleep(1.5)
        grown = worker_rss(self.server) - rss
        r = c.read_response()
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        with open(big, "rb") as f:
            self.assertEqual(gunzip(r.body), f.read())
        self.assertLess(grown, 4 << 20, "the worker grew by %d bytes" % grown)


def worker_rss(srv):
    """Resident bytes of the server's worker (the child of the supervisor)."""
    kids = subprocess.run(["pgrep", "-P", str(srv.pid)], stdout=subprocess.PIPE,
                          text=True).stdout.split()
    pid = int(kids[0]) if kids else srv.pid
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Fields(CompressCase):
    def test_vary_on_uncompressed_eligible(self):
        for ae in (None, "identity", "deflate"):
            r = self.get("/page.html", ae)
            self.assertIsNone(r.header("Content-Encoding"), ae)
            self.assertEqual(r.header("Vary"), "Accept-Encoding", ae)
            self.assertEqual(r.header("Content-Length"), str(len(TEXT)))
            self.assertEqual(r.header("Accept-Ranges"), "bytes")
            self.assertEqual(r.body, TEXT)

    def test_not_eligible_no_vary(self):
        r = self.get("/blob.bin", "gzip")  # application/octet-stream
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))
        self.assertEqual(r.body, TEXT)

    def test_weak_etag_on_encoded_form(self):
        plain = self.get("/page.html").header("ETag")
        self.assertTrue(plain.startswith('"'), plain)
        enc = self.get("/page.html", "gzip")
        self.assertEqual(enc.header("ETag"), "W/" + plain)
        self.assertIsNone(enc.header("Accept-Ranges"))

    def test_not_modified_has_vary_and_the_encoded_etag(self):
        enc = self.get("/page.html", "gzip")
        r = self.get("/page.html", "gzip", headers={"If-None-Match": enc.header("ETag")})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.header("ETag"), enc.header("ETag"))
        self.assertIsNone(r.header("Content-Encoding"))
        plain = self.get("/page.html").header("ETag")
        r = self.get("/page.html", headers={"If-None-Match": plain})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.header("ETag"), plain)

    def test_range_is_answered_unencoded(self):
        r = self.get("/page.html", "gzip, br", headers={"Range": "bytes=100-299"})
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, TEXT[100:300])
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        # With the encoded form's (weak) ETag in If-Range: the whole, encoded.
        etag = self.get("/page.html", "gzip").header("ETag")
        r = self.get("/page.html", "gzip", headers={"Range": "bytes=0-9", "If-Range": etag})
        self.assertEqual(r.status, 200)
        self.assertEqual(gunzip(r.body), TEXT)

    def test_head_mirrors_get(self):
        for ae in ("gzip", "br", None):
            g = self.get("/page.html", ae)
            h = self.get("/page.html", ae, method="HEAD")
            self.assertEqual(h.status, 200)
            self.assertEqual(h.body, b"")
            for name in ("Content-Encoding", "Vary", "ETag", "Content-Length",
                         "Transfer-Encoding", "Accept-Ranges", "Content-Type"):
                self.assertEqual(h.header(name), g.header(name), (ae, name))

    def test_http10_is_not_encoded(self):
        r = self.get("/page.html", "gzip", version="HTTP/1.0")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.body, TEXT)


class QValues(CompressCase):
    def coding(self, ae, target="/page.html"):
        r = self.get(target, ae)
        self.assertEqual(r.status, 200, ae)
        enc = r.header("Content-Encoding") or "identity"
        body = {"gzip": gunzip, "br": unbrotli, "identity": lambda b: b}[enc](r.body)
        self.assertEqual(body, TEXT, ae)
        return enc

    def test_choices(self):
        cases = [
            ("gzip, br", "br"),                       # br wins a tie
            ("br;q=0.5, gzip", "gzip"),
            ("gzip;q=1.0, br;q=0.999", "gzip"),
            ("gzip;q=0", "identity"),
            ("gzip;q=0, br", "br"),
            ("gzip;q=0, *", "br"),
            ("*", "br"),
            ("*;q=0", "identity"),                    # nothing acceptable: unencoded anyway
            ("identity;q=0", "identity"),
            ("identity;q=0, gzip", "gzip"),
            ("gzip;q=0.5, identity", "identity"),     # identity weighs more
            ("x-gzip", "gzip"),
            ("GZIP", "gzip"),
            ("", "identity"),
            ("deflate, zstd", "identity"),
            ("gzip;q=2", "identity"),                 # not a qvalue: ignored
            ("gzip;q=0.5;foo=bar", "gzip"),           # unlisted identity does not outweigh
            ("gzip;q=0.5, *;q=0.6", "br"),
            ("br;q=0.001", "br"),
        ]
        for ae, want in cases:
            self.assertEqual(self.coding(ae), want, ae)

    def test_gzip_only_location(self):
        self.assertEqual(self.coding("br, gzip", "/gz/page.html"), "gzip")
        self.assertEqual(self.coding("br", "/gz/page.html"), "identity")
        self.assertEqual(self.coding("gzip;q=0.5, *", "/gz/page.html"), "identity")

    def test_fields_combined(self):
        r = self.get("/page.html", headers=[("Accept-Encoding", "gzip;q=0"),
                                             ("Accept-Encoding", "br")])
        self.assertEqual(r.header("Content-Encoding"), "br")


class Eligibility(CompressCase):
    def test_min_length(self):
        r = self.get("/min/small.html", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))
        self.assertEqual(r.body, SMALL)
        self.assertEqual(self.get("/min/page.html", "gzip").header("Content-Encoding"), "gzip")
        # The default (20 bytes) compresses the small one.
        self.assertEqual(gunzip(self.get("/small.html", "gzip").body), SMALL)

    def test_types(self):
        self.assertIsNone(self.get("/notes.txt", "gzip").header("Content-Encoding"))
        r = self.get("/plain/notes.txt", "gzip")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(r.body), TEXT)
        # text/html stays compressible with gzip_types given.
        self.assertEqual(self.get("/plain/page.html", "gzip").header("Content-Encoding"), "gzip")
        r = self.get("/any/blob.bin", "gzip")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(r.body), TEXT)

    def test_off_in_a_location(self):
        r = self.get("/off/page.html", "gzip, br")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))

    def test_errors_and_listings(self):
        r = self.get("/any/missing.html", "gzip")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("Content-Encoding"))
        r = self.get("/dav/", "gzip", method="PROPFIND", headers={"Depth": "0"})
        self.assertEqual(r.status, 207)

    def test_refusals_keep_allow(self):
        # /any/ compresses every type: the refusals' text/plain would qualify.
        r = self.get("/any/page.html", "gzip", method="PUT", headers={"Content-Length": "0"})
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))
        self.assertIn(b"not allowed", r.body)
        r = self.get("/any/page.html", "gzip", method="BREW")
        self.assertEqual(r.status, 501)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIn(b"not implemented", r.body)
        r = self.get("/any/page.html", "gzip", method="OPTIONS")
        self.assertIn(r.status, (200, 204))
        self.assertIsNone(r.header("Content-Encoding"))


class Inheritance(CompressCase):
    def test_server_and_location(self):
        self.serve("access_log off;\nworkers 1;\ngzip_types text/plain;\n"
                   "server { listen 127.0.0.1:0; gzip on;\n"
                   "  location / { static www; }\n"
                   "  location /no/ { static www; gzip off; }\n"
                   "  location /lvl/ { static www; gzip_comp_level 9; }\n}\n")
        self.assertEqual(self.get("/notes.txt", "gzip").header("Content-Encoding"), "gzip")
        self.assertIsNone(self.get("/no/notes.txt", "gzip").header("Content-Encoding"))
        self.assertEqual(gunzip(self.get("/lvl/notes.txt", "gzip").body), TEXT)


class Proxied(CompressCase):
    def setUp(self):
        super().setUp()
        self.up = U.Upstream(U.echo())
        self.up.on("GET", "/page", U.respond(200, [("Content-Type", "text/html")], TEXT))
        self.up.on("GET", "/chunked", U.respond(200, [("Content-Type", "text/html")], TEXT,
                                                 chunked=True, chunk_size=1000))
        self.up.on("GET", "/keep", U.respond(200, [("Content-Type", "text/html"),
                                                   ("Cache-Control", "public, no-transform")],
                                              TEXT))
        self.up.on("GET", "/encoded", U.respond(200, [("Content-Type", "text/html"),
                                                      ("Content-Encoding", "gzip")],
                                                 gzip.compress(TEXT)))
        self.up.start()
        self.addCleanup(self.up.stop)
        self.serve(self.HEAD + "gzip on;\nlocation / { proxy %s/; }\n" % self.up.url)

    def test_proxy_response_compressed(self):
        for path in ("/page", "/chunked"):
            r = self.get(path, "gzip")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Encoding"), "gzip", path)
            self.assertEqual(r.header("Vary"), "Accept-Encoding")
            self.assertIsNone(r.header("Content-Length"))
            self.assertEqual(gunzip(r.body), TEXT, path)
        r = self.get("/page")
        self.assertEqual(r.body, TEXT)
        self.assertEqual(r.header("Content-Length"), str(len(TEXT)))

    def test_upgrade_passes_untouched(self):
        """A tunnel after 101 in a location that compresses: its bytes pass
        as they are (the filter never sees a 101)."""
        self.up.on(None, "/ws", U.websocket_echo())
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        c = self.connect(timeout=10)
        c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Accept-Encoding: gzip\r\nSec-WebSocket-Key: " + key.encode() +
               b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 101)
        self.assertIsNone(r.header("Content-Encoding"))
        c.send(U.ws_frame(1, "hello " * 100))
        self.assertEqual(U.ws_read_frame(c), (True, 1, False, b"hello " * 100))

    def test_no_transform_is_honoured(self):
        r = self.get("/keep", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, TEXT)

    def test_upstream_encoding_kept(self):
        r = self.get("/encoded", "gzip")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(r.body), TEXT)


class Precompressed(CompressCase):
    def setUp(self):
        ConfigCase.setUp(self)
        self.write("www/app.js", TEXT)
        self.write("www/app.js.gz", gzip.compress(TEXT, mtime=0))
        self.write("www/app.js.br", b"\x8b" + b"pretend brotli")
        self.write("www/old.js", TEXT)
        self.write("www/old.js.gz", gzip.compress(TEXT))
        root = os.path.join(self.dir, "www")
        past = time.time() - 3600
        os.utime(os.path.join(root, "old.js.gz"), (past, past))
        os.utime(os.path.join(root, "app.js.br"), (past + 60, past + 60))
        os.utime(os.path.join(root, "app.js"), (past, past))
        self.serve(self.HEAD + "location / { static www; precompressed on; }\n"
                   "location /no/ { static www; }\n")

    def test_served_when_newer(self):
        r = self.get("/app.js", "gzip")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.media_type(), "text/javascript")
        self.assertEqual(r.header("Content-Length"), str(len(gzip.compress(TEXT, mtime=0))))
        self.assertEqual(gunzip(r.body), TEXT)
        # Its own strong ETag, not the original's.
        plain = self.get("/app.js")
        self.assertIsNone(plain.header("Content-Encoding"))
        self.assertEqual(plain.header("Vary"), "Accept-Encoding")
        self.assertTrue(r.header("ETag").startswith('"'))
        self.assertNotEqual(r.header("ETag"), plain.header("ETag"))
        # br preferred; as it is, byte for byte.
        r = self.get("/app.js", "gzip, br")
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual(r.body, b"\x8bpretend brotli")

    def test_not_when_older(self):
        r = self.get("/old.js", "gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, TEXT)

    def test_ranges_allowed(self):
        packed = gzip.compress(TEXT, mtime=0)
        r = self.get("/app.js", "gzip", headers={"Range": "bytes=0-99"})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Content-Range"), "bytes 0-99/%d" % len(packed))
        self.assertEqual(r.body, packed[:100])

    def test_conditional(self):
        etag = self.get("/app.js", "gzip").header("ETag")
        r = self.get("/app.js", "gzip", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")

    def test_off_and_refused(self):
        self.assertIsNone(self.get("/no/app.js", "gzip").header("Content-Encoding"))
        self.assertIsNone(self.get("/app.js", "gzip;q=0, br;q=0").header("Content-Encoding"))
        # The compressed file itself is still an ordinary file.
        r = self.get("/app.js.gz")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))


class Config(ConfigCase):
    def test_bad_values(self):
        R = self.web.root
        for line, msg in (("gzip maybe;", "expected on or off"),
                          ("gzip_comp_level 10;", "from 1 to 9"),
                          ("brotli_comp_level 12;", "from 0 to 11"),
                          ("gzip_types text;", "not a media type"),
                          ("gzip_min_length lots;", "not a size"),
                          ("precompressed yes;", "expected on or off")):
            errs = self.errors("listen 127.0.0.1:0;\nlocation / { static %s; %s }\n" % (R, line))
            self.assertIn(msg, errs[0][3], line)

    def test_gzip_static_hint(self):
        errs = self.errors("listen 127.0.0.1:0;\nlocation / { static %s; gzip_static on; }\n"
                           % self.web.root)
        self.assertIn("did you mean precompressed?", errs[0][3])

    def test_top_level(self):
        rc, out, err = self.check("listen 127.0.0.1:0;\ngzip on;\nbrotli on;\ngzip_types *;\n"
                                  "gzip_min_length 1k;\nprecompressed on;\n"
                                  "location / { static %s; }\n" % self.web.root)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
