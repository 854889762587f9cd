"""The fastcgi module (docs/fastcgi.md): applications behind handler
mappings.  `Php` runs a real PHP-FPM (peers.PhpFpm) on a Unix socket with
a small application; `Protocol` runs a scripted responder (fcgi_app.py) to
see exactly what crosses the socket and what verbd does with an
application's mistakes."""

import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import fcgi_app as F
from harness import build_request, measured_as_built
from peers import PhpFpm, find_php_fpm
from test_config import ConfigCase, config_server
from test_proxy_stream import Sampler

SCRIPTS = {
    "env.php": r"""<?php
header('Content-Type: application/json');
$keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'DOCUMENT_ROOT',
         'REQUEST_URI', 'DOCUMENT_URI', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH',
         'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT',
         'HTTPS', 'GATEWAY_INTERFACE', 'HTTP_HOST', 'HTTP_X_CUSTOM', 'HTTP_PROXY', 'APP_ENV',
         'HTTP_X_MULTI'];
$out = [];
foreach ($keys as $k) { $out[$k] = $_SERVER[$k] ?? null; }
$out['getenv_http_proxy'] = getenv('HTTP_PROXY');
$out['post'] = $_POST;
$out['get'] = $_GET;
$out['files'] = [];
foreach ($_FILES as $n => $f) {
    $out['files'][$n] = ['name' => $f['name'], 'size' => $f['size'],
                         'md5' => $f['tmp_name'] ? md5_file($f['tmp_name']) : null];
}
$out['input'] = file_get_contents('php://input');
file_put_contents(__DIR__ . '/state/ran', $_SERVER['SCRIPT_NAME'] . "\n", FILE_APPEND);
echo json_encode($out);
""",
    "upload.php": r"""<?php
$in = fopen('php://input', 'rb');
$h = hash_init('sha256');
$n = 0;
while (!feof($in)) { $b = fread($in, 1 << 16); $n += strlen($b); hash_update($h, $b); }
echo $n, ' ', hash_final($h);
""",
    "big.php": r"""<?php
header('Content-Type: application/octet-stream');
$block = str_repeat('0123456789abcdef', 4096);
$n = intval($_GET['mb'] ?? 1) * 16;
for ($i = 0; $i < $n; $i++) { echo $block; }
""",
    "slow.php": r"""<?php
ignore_user_abort(false);
sleep(intval($_GET['s'] ?? 2));
echo "late\n";
""",
    "crash.php": r"""<?php
header('Content-Type: text/plain');
echo str_repeat("x", 100000);
flush();
posix_kill(getmypid(), 9);
""",
    "stderr.php": r"""<?php
error_log('verbd-test-stderr-' . ($_GET['n'] ?? '0'));
echo "logged\n";
""",
    "status.php": r"""<?php
http_response_code(intval($_GET['code'] ?? 200));
if (isset($_GET['allow'])) header('Allow: ' . $_GET['allow']);
echo "status\n";
""",
    "method.php": r"""<?php
header('Content-Type: text/plain');
if ($_SERVER['REQUEST_METHOD'] === 'OPTIONS') {
    header('Allow: GET, POST, PUT, PATCH, BREW, OPTIONS');
    http_response_code(204);
    exit;
}
echo $_SERVER['REQUEST_METHOD'], ' ', file_get_contents('php://input');
""",
    "front/index.php": r"""<?php
echo 'front ', $_SERVER['REQUEST_URI'], ' ', $_SERVER['QUERY_STRING'];
""",
    "uploads/evil.jpg": "<?php file_put_contents(__DIR__ . '/../state/evil', 'ran'); echo 'EVIL';",
}


@unittest.skipUnless(find_php_fpm(), "php-fpm is not installed (scripts/deps.sh test)")
class Php(ConfigCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="verbd-php-")
        for name, text in SCRIPTS.items():
            path = os.path.join(cls.root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        os.makedirs(os.path.join(cls.root, "state"))
        for dirpath, dirnames, filenames in os.walk(cls.root):
            os.chmod(dirpath, 0o755)
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o644)
        os.chmod(os.path.join(cls.root, "state"), 0o777)
        cls.fpm = PhpFpm(children=4, ini={"post_max_size": "0", "upload_max_filesize": "64M",
                                          "output_buffering": "0", "log_errors": "1"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.fpm.cleanup()
        shutil.rmtree(cls.root, True)

    def start(self, locations="", extra="", head=None):
        text = ((head or self.HEAD) + "location / { static %s; }\n"
                "location /app/ { fastcgi unix:%s; root %s; "
                "fastcgi_split_path_info \"^(.+?\\.php)(/.*)$\"; %s }\n%s"
                % (self.root, self.fpm.socket, self.root, extra, locations))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        return srv

    def ask(self, method, target, headers=None, body=b"", srv=None):
        c = (srv or self.srv).connect(timeout=30)
        self.addCleanup(c.close)
        headers = dict(headers or {})
        if body and "Transfer-Encoding" not in headers:
            headers["Content-Length"] = str(len(body))
        c.send(build_request(method, target, headers=headers, body=body))
        return c.read_response(method)

    def env(self, method, target, **kw):
        r = self.ask(method, target, **kw)
        self.assertEqual(r.status, 200, r)
        return json.loads(r.body)

    def ran(self):
        try:
            with open(os.path.join(self.root, "state", "ran")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    # ---- CGI/1.1 variables --------------------------------------------------------------

    def test_cgi_variables(self):
        srv = self.start()
        port = srv.port
        e = self.env("GET", "/app/env.php/extra/path?a=1&b=two", headers={"X-Custom": "yes"})
        self.assertEqual(e["REQUEST_METHOD"], "GET")
        self.assertEqual(e["SCRIPT_NAME"], "/app/env.php")
        self.assertEqual(e["SCRIPT_FILENAME"], os.path.join(self.root, "env.php"))
        self.assertEqual(e["PATH_INFO"], "/extra/path")
        self.assertEqual(e["DOCUMENT_ROOT"], self.root)
        self.assertEqual(e["REQUEST_URI"], "/app/env.php/extra/path?a=1&b=two")
        self.assertEqual(e["QUERY_STRING"], "a=1&b=two")
        self.assertEqual(e["get"], {"a": "1", "b": "two"})
        self.assertEqual(e["SERVER_NAME"], "localhost")
        self.assertEqual(e["SERVER_PORT"], str(port))
        self.assertEqual(e["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1")
        self.assertTrue(e["REMOTE_PORT"].isdigit())
        self.assertIsNone(e["HTTPS"])
        self.assertEqual(e["GATEWAY_INTERFACE"], "CGI/1.1")
        self.assertEqual(e["HTTP_HOST"], "localhost")
        self.assertEqual(e["HTTP_X_CUSTOM"], "yes")

    def test_proxy_field_never_becomes_http_proxy(self):
        # httpoxy: a client's Proxy field must not set the application's
        # HTTP_PROXY (which HTTP libraries take for their proxy).
        self.start()
        e = self.env("GET", "/app/env.php", headers={"Proxy": "http://evil.example:1/",
                                                     "X_Multi": "underscore", "X-Multi": "dash"})
        self.assertIsNone(e["HTTP_PROXY"])
        self.assertFalse(e["getenv_http_proxy"])
        # A name with '_' would pass for another field's variable.
        self.assertEqual(e["HTTP_X_MULTI"], "dash")

    def test_fastcgi_param_adds_and_overrides(self):
        self.start(extra="fastcgi_param APP_ENV \"test-$fastcgi_script_name\"; "
                         "fastcgi_param SERVER_NAME app.example;")
        e = self.env("GET", "/app/env.php")
        self.assertEqual(e["APP_ENV"], "test-/app/env.php")
        self.assertEqual(e["SERVER_NAME"], "app.example")

    def test_request_uri_is_what_the_client_sent(self):
        # Whatever a rewrite makes of the target, REQUEST_URI stays the
        # client's (PHP routers read it); QUERY_STRING is the new one.
        self.start(locations="location /r/ { rewrite ^/r/(.*)$ /app/env.php?x=$1 last; "
                             "static %s; }\n" % self.root)
        e = self.env("GET", "/r/abc?b=2")
        self.assertEqual(e["REQUEST_URI"], "/r/abc?b=2")
        self.assertEqual(e["QUERY_STRING"], "x=abc&b=2")
        e = self.env("GET", "http://localhost/app/env.php?c=3")
        self.assertEqual(e["REQUEST_URI"], "/app/env.php?c=3")

    def test_index_for_a_directory(self):
        self.start(locations="location /front/ { fastcgi unix:%s; root %s/front; }\n"
                   % (self.fpm.socket, self.root))
        r = self.ask("GET", "/front/?x=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"front /front/?x=1 x=1")

    # ---- forms and bodies -----------------------------------------------------------

    def test_post_url_encoded(self):
        self.start()
        e = self.env("POST", "/app/env.php", body=b"name=verbd&list%5B%5D=1&list%5B%5D=2",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(e["post"], {"name": "verbd", "list": ["1", "2"]})
        self.assertEqual(e["CONTENT_TYPE"], "application/x-www-form-urlencoded")
        self.assertEqual(e["CONTENT_LENGTH"], "36")

    def test_post_multipart(self):
        self.start()
        data = os.urandom(200000)
        b = "----verbd-boundary"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, b)).encode()
        body += data + ("\r\n--%s--\r\n" % b).encode()
        e = self.env("POST", "/app/env.php", body=body,
                     headers={"Content-Type": "multipart/form-data; boundary=%s" % b})
        self.assertEqual(e["post"], {"title": "hello"})
        self.assertEqual(e["files"]["file"], {"name": "r.bin", "size": len(data),
                                              "md5": hashlib.md5(data).hexdigest()})

    def test_chunked_body_gets_a_length(self):
        self.start()
        r = self.ask("POST", "/app/upload.php", headers={"Transfer-Encoding": "chunked"},
                     body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"11 " + hashlib.sha256(b"hello world").hexdigest().encode())

    def test_chunked_body_over_the_bound(self):
        self.start(extra="fastcgi_chunked_body 1k;")
        chunk = b"x" * 600
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
        r = self.ask("POST", "/app/upload.php", headers={"Transfer-Encoding": "chunked"},
                     body=body)
        self.assertEqual(r.status, 413, r)

    def test_upload_streams_with_bounded_memory(self):
        # 100 MB through to PHP, which hashes it; verbd's memory stays flat.
        size = 100 * 1000 * 1000
        srv = self.start(head="listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\n")
        sampler = Sampler(srv.pid)
        base = sampler.total()
        sampler.start()
        c = srv.connect(timeout=120)
        self.addCleanup(c.close)
        c.send(build_request("POST", "/app/upload.php",
                             headers={"Content-Length": str(size),
                                      "Content-Type": "application/octet-stream"}))
        block = bytes(range(256)) * 4096
        h = hashlib.sha256()
        sent = 0
        while sent < size:
            part = block[:min(len(block), size - sent)]
            c.sock.sendall(part)
            h.update(part)
            sent += len(part)
        r = c.read_response()
        sampler.done.set()
        sampler.join()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body.decode(), "%d %s" % (size, h.hexdigest()))
        if measured_as_built():
            self.assertLess(sampler.peak - base, 8 * 1024,
                            "verbd grew by %d KiB for a 100 MB upload" % (sampler.peak - base))

    def test_large_response_to_a_slow_reader(self):
        srv = self.start(head="listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\n")
        sampler = Sampler(srv.pid)
        base = sampler.total()
        sampler.start()
        c = srv.connect(timeout=60, rcvbuf=16384)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/app/big.php?mb=48"))
        got = 0
        c.sock.settimeout(60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            data = c.sock.recv(65536)
            if not data:
                break
            got += len(data)
            if b"0\r\n\r\n" == data[-5:]:
                break
            if got < 4 << 20:
                time.sleep(0.002)  # slow at first: PHP is ahead and must wait
        sampler.done.set()
        sampler.join()
        self.assertGreater(got, 48 << 20)
        if measured_as_built():
            self.assertLess(sampler.peak - base, 8 * 1024,
                            "verbd grew by %d KiB for a 48 MiB answer" % (sampler.peak - base))

    # ---- the method decision --------------------------------------------------------

    def test_default_methods_and_the_refusals(self):
        self.start()
        self.assertEqual(self.ask("GET", "/app/env.php").status, 200)
        self.assertEqual(self.ask("HEAD", "/app/env.php").status, 200)
        self.assertEqual(self.ask("POST", "/app/env.php").status, 200)
        before = len(self.ran())
        # Nothing on this server implements PUT or PROPFIND: 501.
        for m in ("PUT", "PROPFIND", "DELETE", "BREW"):
            r = self.ask(m, "/app/env.php")
            self.assertEqual(r.status, 501, (m, r))
        # POST is implemented (by PHP) but not for static files: 405.
        r = self.ask("POST", "/index.html")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.ask("OPTIONS", "/app/env.php")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")
        self.assertEqual(len(self.ran()), before, "a refusal or OPTIONS reached PHP")

    def test_put_is_405_where_webdav_implements_it(self):
        dav = tempfile.mkdtemp(prefix="verbd-dav-")
        self.addCleanup(shutil.rmtree, dav, True)
        self.start(locations="location /dav/ { webdav %s; }\n" % dav)
        r = self.ask("PUT", "/app/env.php", body=b"x")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")

    def test_methods_an_api_lists(self):
        self.start(locations="location /api/ { fastcgi unix:%s; root %s; "
                             "methods GET HEAD POST PUT DELETE; }\n" % (self.fpm.socket, self.root))
        r = self.ask("PUT", "/api/method.php", body=b"payload")
        self.assertEqual((r.status, r.body), (200, b"PUT payload"))
        r = self.ask("DELETE", "/api/method.php")
        self.assertEqual((r.status, r.body), (200, b"DELETE "))
        # PUT is implemented, not on /app/: 405 there with its own Allow.
        r = self.ask("PUT", "/app/method.php", body=b"x")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")
        self.assertEqual(self.ask("PATCH", "/api/method.php").status, 501)

    def test_options_forwarded_when_methods_lists_it(self):
        self.start(locations="location /api/ { fastcgi unix:%s; root %s; "
                             "methods GET POST PUT OPTIONS; }\n" % (self.fpm.socket, self.root))
        r = self.ask("OPTIONS", "/api/method.php")
        self.assertEqual(r.status, 204, r)
        # The application's Allow, cut down to what verbd allows there.
        self.assertEqual(r.header("Allow"), "GET, POST, PUT, OPTIONS")

    def test_application_405_allow_cut_down(self):
        self.start()
        r = self.ask("POST", "/app/status.php?code=405&allow=GET,%20PUT,%20BREW")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.header("Allow"), "GET")

    def test_application_status_passes(self):
        self.start()
        for code in (201, 404, 410, 503):
            r = self.ask("GET", "/app/status.php?code=%d" % code)
            self.assertEqual(r.status, code, r)

    def test_head_mirrors_get(self):
        self.start()
        g = self.ask("GET", "/app/status.php")
        h = self.ask("HEAD", "/app/status.php")
        self.assertEqual(h.status, g.status)
        self.assertEqual(h.body, b"")
        for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
            self.assertEqual(h.header(name), g.header(name), name)

    # ---- scripts and paths ----------------------------------------------------------

    def test_missing_script_is_404_before_php(self):
        self.start()
        r = self.ask("GET", "/app/nope.php")
        self.assertEqual(r.status, 404)
        # verbd's own answer, not PHP-FPM's "File not found."
        self.assertTrue(r.body.startswith(b"404 Not Found"), r.body)

    def test_a_file_that_is_not_a_script_never_runs(self):
        # The cgi.fix_pathinfo class: /uploads/evil.jpg/x.php must not run
        # evil.jpg (PHP code in an upload) whatever PHP's own settings.
        self.start()
        for target in ("/app/uploads/evil.jpg/x.php", "/app/uploads/evil.jpg%00.php",
                       "/app/uploads/evil.jpg/.php"):
            r = self.ask("GET", target)
            self.assertIn(r.status, (400, 404), (target, r))
            self.assertNotIn(b"EVIL", r.body)
        self.assertFalse(os.path.exists(os.path.join(self.root, "state", "evil")))

    def test_traversal_never_leaves_the_root(self):
        self.start()
        for target in ("/app/../../etc/passwd", "/app/%2e%2e/%2e%2e/etc/passwd",
                       "/app/..%2f..%2fetc/passwd"):
            r = self.ask("GET", target)
            self.assertNotEqual(r.status, 200, (target, r))
            self.assertNotIn(b"root:", r.body)

    def test_front_controller_with_try_files(self):
        # WordPress, Laravel, Symfony: every path that is not a file goes to
        # one script, which routes by REQUEST_URI.
        front = os.path.join(self.root, "front")
        self.start(locations="location /front/ { static %s; try_files $uri /front/index.php?$args; }\n"
                             "location = /front/index.php { fastcgi unix:%s; root %s; }\n"
                   % (front, self.fpm.socket, self.root))
        r = self.ask("GET", "/front/blog/2026/hello?page=2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"front /front/blog/2026/hello?page=2 page=2")

    def test_php_by_regular_expression(self):
        # nginx's usual PHP setup: files by prefix, scripts by pattern.
        head = self.HEAD
        text = (head + "location / { static %s; }\n"
                "location ~ \\.php$ { fastcgi unix:%s; root %s; }\n"
                % (self.root, self.fpm.socket, self.root))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        e = self.env("GET", "/env.php?q=1")
        self.assertEqual(e["SCRIPT_NAME"], "/env.php")
        self.assertEqual(e["SCRIPT_FILENAME"], os.path.join(self.root, "env.php"))
        r = self.ask("GET", "/uploads/evil.jpg")
        self.assertEqual(r.status, 200)  # a file, served as one: never run
        self.assertIn(b"<?php", r.body)
        r = self.ask("GET", "/uploads/evil.jpg/x.php")
        self.assertEqual(r.status, 404, r)
        self.assertFalse(os.path.exists(os.path.join(self.root, "state", "evil")))
        r = self.ask("POST", "/uploads/evil.jpg")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD, OPTIONS"))
        r = self.ask("OPTIONS", "/env.php")
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")
        self.assertEqual(self.ask("PUT", "/env.php").status, 501)

    # ---- failures -------------------------------------------------------------------

    def test_application_crashes_mid_response(self):
        srv = self.start()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/app/crash.php"))
        try:
            r = c.read_response()
            self.fail("a cut response was read whole: %r" % r)
        except Exception as e:  # the body ends with the connection, unterminated
            self.assertIn(type(e).__name__, ("ConnectionClosed", "ProtocolError"), e)
        # Logged, naming the application (a reset or an early close).
        self.assertTrue(F.wait_for(lambda: "[error]" in srv.stderr_text() and
                                   self.fpm.socket in srv.stderr_text()), srv.stderr_text())

    def test_client_goes_away_from_a_slow_script(self):
        srv = self.start()
        c = srv.connect(timeout=10)
        c.send(build_request("GET", "/app/slow.php?s=2"))
        time.sleep(0.3)
        c.close()
        # verbd is not held up: other requests are served at once.
        t0 = time.monotonic()
        r = self.ask("GET", "/app/status.php")
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, 1.5)

    def test_unreachable_application(self):
        srv = self.start(locations="location /gone/ { fastcgi unix:%s/none.sock; root %s; }\n"
                                   % (self.root, self.root))
        r = self.ask("GET", "/gone/env.php")
        self.assertEqual(r.status, 502, r)
        self.assertIn("none.sock", srv.stderr_text())

    def test_stderr_goes_to_the_error_log(self):
        srv = self.start()
        r = self.ask("GET", "/app/stderr.php?n=42")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(F.wait_for(lambda: "verbd-test-stderr-42" in srv.stderr_text()),
                        srv.stderr_text())

    def test_http2_client(self):
        srv = self.start()
        import subprocess
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-d", "a=1",
                            "http://127.0.0.1:%d/app/env.php" % srv.port],
                           capture_output=True, timeout=30)
        e = json.loads(p.stdout)
        self.assertEqual(e["SERVER_PROTOCOL"], "HTTP/2.0")
        self.assertEqual(e["REQUEST_URI"], "/app/env.php")
        self.assertEqual(e["post"], {"a": "1"})


class Protocol(ConfigCase):
    """What verbd sends an application and does with what it sends back."""

    def setUp(self):
        super().setUp()
        self.app = F.FcgiApp(self.handle)
        self.app.start()
        self.addCleanup(self.app.stop)
        self.handlers = {}
        os.makedirs(os.path.join(self.dir, "root"))
        with open(os.path.join(self.dir, "root", "x.php"), "w") as f:
            f.write("")

    def handle(self, req):
        h = self.handlers.get(req.params.get("SCRIPT_NAME"), F.echo)
        h(req)

    def start(self, extra="", head=None):
        text = ((head or self.HEAD) + "location / { fastcgi unix:%s; root %s/root; "
                "fastcgi_check_script off; %s }\n" % (self.app.socket, self.dir, extra))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        return srv

    def ask(self, method, target, headers=None, body=b"", conn=None):
        c = conn or self.srv.connect(timeout=10)
        if conn is None:
            self.addCleanup(c.close)
        headers = dict(headers or {})
        if body and "Transfer-Encoding" not in headers:
            headers["Content-Length"] = str(len(body))
        c.send(build_request(method, target, headers=headers, body=body))
        return c.read_response(method)

    def test_records_and_keep_conn(self):
        self.start()
        c = self.srv.connect(timeout=10)
        self.addCleanup(c.close)
        for i in range(3):
            r = self.ask("POST", "/a/b?x=%d" % i, body=b"body%d" % i, conn=c)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.app.errors, [])
        self.assertEqual(len(self.app.requests), 3)
        self.assertTrue(all(q.keep_conn for q in self.app.requests))
        # One connection to the application served all three.
        self.assertEqual(self.app.accepted, 1)
        q = self.app.requests[2]
        self.assertEqual(q.stdin, b"body2")
        self.assertEqual(q.params["QUERY_STRING"], "x=2")
        self.assertEqual(q.params["CONTENT_LENGTH"], "5")

    def test_what_never_passes_as_http_variables(self):
        self.start()
        r = self.ask("GET", "/x", headers={"Proxy": "http://evil.example:1/", "X_Forwarded_For":
                                           "1.2.3.4", "X-Forwarded-For": "5.6.7.8",
                                           "Cookie": "a=1", "cookie": "b=2", "Accept": "x/y"})
        self.assertEqual(r.status, 200, r)
        p = self.app.requests[0].params
        self.assertNotIn("HTTP_PROXY", p)
        self.assertEqual(p["HTTP_X_FORWARDED_FOR"], "5.6.7.8")
        self.assertEqual(p["HTTP_COOKIE"], "a=1; b=2")
        self.assertEqual(p["HTTP_ACCEPT"], "x/y")
        self.assertNotIn("HTTP_CONTENT_LENGTH", p)

    def test_large_params_and_body_records(self):
        self.start(head=self.HEAD + "max_header 256k;\n")
        big = "v" * 70000  # a field value over one record's 65535 bytes
        body = os.urandom(300000)
        r = self.ask("POST", "/x", headers={"X-Big": big}, body=body)
        self.assertEqual(r.status, 200, r)
        q = self.app.requests[0]
        self.assertEqual(q.params["HTTP_X_BIG"], big)
        self.assertEqual(q.stdin, body)

    def test_local_redirect(self):
        def redirect(req):
            req.stdout(b"Location: /other?from=app\r\n\r\n")
            req.end()
        self.handlers["/first"] = redirect
        self.start()
        r = self.ask("POST", "/first", body=b"data")
        self.assertEqual(r.status, 200, r)
        second = self.app.requests[-1]
        self.assertEqual(second.params["SCRIPT_NAME"], "/other")
        self.assertEqual(second.params["QUERY_STRING"], "from=app")
        self.assertEqual(second.params["REQUEST_METHOD"], "GET")

    def test_client_redirect(self):
        def redirect(req):
            req.stdout(b"Location: https://example.org/x\r\n\r\n")
            req.end()
        self.handlers["/r"] = redirect
        self.start()
        r = self.ask("GET", "/r")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.header("Location"), "https://example.org/x")

    def test_lf_line_ends_and_status(self):
        def lf(req):
            req.stdout(b"Status: 201 Created\nContent-Type: text/plain\nX-App: 1\n\nmade\n")
            req.end()
        self.handlers["/lf"] = lf
        self.start()
        r = self.ask("GET", "/lf")
        self.assertEqual((r.status, r.body, r.header("X-App")), (201, b"made\n", "1"))
        self.assertIsNone(r.header("Status"))

    def test_head_split_byte_by_byte(self):
        def slow(req):
            for b in b"Content-Type: text/plain\r\n\r\nhello":
                req.stdout(bytes([b]))
            req.end()
        self.handlers["/s"] = slow
        self.start()
        r = self.ask("GET", "/s")
        self.assertEqual((r.status, r.body), (200, b"hello"))

    def bad(self, name, fn, status=502):
        self.handlers[name] = fn
        r = self.ask("GET", name)
        self.assertEqual(r.status, status, r)
        return r

    def test_malformed_answers_are_502(self):
        self.start()
        self.bad("/version", lambda q: q.raw(b"\x02\x06\x00\x01\x00\x00\x00\x00"))
        self.bad("/other-id", lambda q: (q.raw(F.record(F.STDOUT, 7, b"x")), q.end()))
        self.bad("/params", lambda q: q.raw(F.record(F.PARAMS, 1, b"x")))
        self.bad("/no-head", lambda q: (q.stdout(b"no blank line"), q.end()))
        self.bad("/bad-status", lambda q: (q.stdout(b"Status: abc\r\n\r\n"), q.end()))
        self.bad("/bad-field", lambda q: (q.stdout(b"Bad Field: x\r\n\r\n"), q.end()))
        self.bad("/huge-head", lambda q: (q.stdout(b"X-A: " + b"a" * 40000 + b"\r\n\r\n"),
                                          q.end()))
        self.bad("/closed", lambda q: q.close())
        self.assertTrue(self.srv.alive())
        self.assertIn("fastcgi", self.srv.stderr_text())

    def test_cut_after_the_head(self):
        def cut(req):
            req.stdout(b"Content-Length: 100\r\n\r\n" + b"x" * 10)
            req.close()
        self.handlers["/cut"] = cut
        self.start()
        c = self.srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/cut"))
        with self.assertRaises(Exception):
            c.read_response()

    def test_bodies_of_concurrent_answers_stay_apart(self):
        # Answers are read into one buffer per worker and lent to the
        # responses: with compression, a slow reader and several answers
        # under way at once, every body must still arrive exactly.
        import gzip
        import zlib

        def big(req):
            tag = req.params["QUERY_STRING"].encode()
            body = b"".join(b"%s %06d %s\n" % (tag, i, hashlib.sha256(tag + b"%d" % i)
                                                .hexdigest().encode()) for i in range(6000))
            req.stdout(b"Content-Type: text/plain\r\n\r\n")
            for i in range(0, len(body), 50000):
                req.stdout(body[i:i + 50000])
            req.end()
        self.handlers["/big"] = big
        self.start(extra="gzip on; gzip_types text/plain;")
        conns = []
        for i in range(6):
            # The first reader is slow (a small receive buffer, read last):
            # the compressor holds its input while the others are read.
            c = self.srv.connect(timeout=20, rcvbuf=4096 if i == 1 else None)
            self.addCleanup(c.close)
            enc = {"Accept-Encoding": "gzip"} if i % 2 else {}
            c.send(build_request("GET", "/big?t%d" % i, headers=enc))
            conns.append((c, i))
            time.sleep(0.1)
        conns.append(conns.pop(1))
        for c, i in conns:
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            body = gzip.decompress(r.body) if i % 2 else r.body
            tag = b"t%d" % i
            want = b"".join(b"%s %06d %s\n" % (tag, k, hashlib.sha256(tag + b"%d" % k)
                                                .hexdigest().encode()) for k in range(6000))
            self.assertEqual(zlib.crc32(body), zlib.crc32(want), (i, len(body), len(want)))

    def test_stderr_is_rate_limited(self):
        def noisy(req):
            req.stderr(b"".join(b"noise %d\n" % i for i in range(500)))
            req.stdout(b"\r\nok")
            req.end()
        self.handlers["/noisy"] = noisy
        self.start()
        r = self.ask("GET", "/noisy")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        r = self.ask("GET", "/noisy")
        text = self.srv.stderr_text()
        self.assertIn("noise 0", text)
        self.assertLess(text.count("noise "), 100, "500 stderr lines were all logged")

    def test_abort_when_the_client_goes_away(self):
        seen = []

        def slow(req):
            seen.append(req.wait_abort(5))
        self.handlers["/slow"] = slow
        self.start()
        c = self.srv.connect(timeout=10)
        c.send(build_request("GET", "/slow"))
        self.assertTrue(F.wait_for(lambda: self.app.requests))
        c.close()
        self.assertTrue(F.wait_for(lambda: seen, 6))
        self.assertEqual(seen, [True])

    def test_application_501_is_learnt(self):
        def refuse(req):
            req.stdout(b"Status: 501 Not Implemented\r\n\r\nno")
            req.end()
        self.handlers["/r"] = refuse
        self.start(extra="methods GET HEAD POST PATCH;")
        self.assertEqual(self.ask("PATCH", "/r").status, 501)
        n = len(self.app.requests)
        r = self.ask("PATCH", "/r")
        self.assertEqual(r.status, 501)
        self.assertEqual(len(self.app.requests), n, "a learnt refusal reached the application")
        allow = self.ask("OPTIONS", "/r").header("Allow")
        self.assertNotIn("PATCH", allow)

    def test_upstream_group_fails_over(self):
        # Two applications in a group; the first is down: requests go to the
        # second, and the dead one is named in the log once, then skipped.
        text = (self.HEAD + "upstream app {\n    server unix:%s/gone.sock max_fails=1 fail_timeout=30s;\n"
                "    server unix:%s;\n}\n"
                "location / { fastcgi app; root %s/root; fastcgi_check_script off; }\n"
                % (self.dir, self.app.socket, self.dir))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        for _ in range(4):
            self.assertEqual(self.ask("GET", "/x").status, 200)
        self.assertEqual(len(self.app.requests), 4)
        self.assertEqual(srv.stderr_text().count("trying another"), 1, srv.stderr_text())

    def test_read_timeout_is_504(self):
        def stall(req):
            time.sleep(2)
        self.handlers["/stall"] = stall
        self.start(extra="fastcgi_read_timeout 500ms;")
        self.assertEqual(self.ask("GET", "/stall").status, 504)


class Config(ConfigCase):
    def test_errors(self):
        head = self.HEAD
        for loc, msg in (
                ("fastcgi unix:/x; fastcgi_split_path_info \"^(.+)$\";", "needs two"),
                ("fastcgi unix:/x; fastcgi_split_path_info \"(\";", "fastcgi_split_path_info"),
                ("fastcgi unix:/x; fastcgi_param HTTP_PROXY x;", "httpoxy"),
                ("fastcgi unix:/x; fastcgi_param A $nosuch;", "unknown variable"),
                ("fastcgi unix:/x; fastcgi_param A b c;", "if_not_empty"),
                ("fastcgi nohost;", "fastcgi"),
                ("fastcgi unix:/x; methods GET TRACE;", "TRACE"),
                ("fastcgi unix:/x; index a/b;", "index")):
            errs = self.errors(head + "location / { %s }\n" % loc)
            self.assertTrue(any(msg in e[3] for e in errs), (loc, errs))

    def test_describe(self):
        path = self.write("verbd.conf", self.HEAD + "location / { fastcgi unix:/x; }\n"
                          "location /api/ { fastcgi unix:/x; methods GET PUT; }\n")
        from harness import run_verbd
        out = run_verbd("-M", "-c", path).stdout.decode()
        self.assertIn("location /: GET, HEAD, POST, OPTIONS", out)
        self.assertIn("location /api/: GET, HEAD, PUT, OPTIONS", out)


if __name__ == "__main__":
    unittest.main()
