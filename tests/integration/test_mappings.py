"""The method decision across several handler mappings (issue 3, "Semantics
across mappings"), on servers built from a config file (verbd -c FILE):

- 501 for a method no enabled mapping implements, on every target;
- 405 with the mapping's exact Allow where another mapping implements it;
- OPTIONS agreeing with 405's Allow on every mapping; OPTIONS * = the union;
- HEAD mirroring GET on every mapping;
- longest-prefix and `location = /path` selection;
- unknown_method 405, refusal_cache, per-location `header`;
- refusals name the location, and no response reveals a file-system path.

Mappings with C handlers (different method lists per mapping, extension
methods) are covered by test_examples.py through examples/hello.c."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import Server, VerbdTestCase, build_request, verbd_bin

METHODS_OUTSIDE = ["POST", "PUT", "DELETE", "PATCH", "PROPFIND", "MKCOL", "QUERY", "CONNECT",
                   "BREW", "get"]


class Site:
    """A temporary directory with three document roots and a secret beside
    them:

        BASE/secret           never served
        BASE/root/            location /
            index.html f.txt exactly exact/index.html ro-not/x.txt
        BASE/ro/              location /ro/
            index.html f.txt link_out -> ../secret
        BASE/exact/           location = /exact
            index.html exact
    """

    def __init__(self):
        self.base = os.path.realpath(tempfile.mkdtemp(prefix="verbd-mappings-"))
        self.files = {}
        self.write("secret", b"MAPPINGS-SECRET\n")
        self.write("root/index.html", b"<p>ROOT-INDEX</p>\n")
        self.write("root/f.txt", b"ROOT-FILE\n")
        self.write("root/exactly", b"ROOT-EXACTLY\n")
        self.write("root/exact/index.html", b"ROOT-EXACT-DIR\n")
        self.write("root/ro-not/x.txt", b"ROOT-RO-NOT\n")
        self.write("ro/index.html", b"<p>RO-INDEX</p>\n")
        self.write("ro/f.txt", b"RO-FILE\n")
        os.symlink("../secret", os.path.join(self.base, "ro", "link_out"))
        self.write("exact/index.html", b"EXACT-INDEX\n")
        self.write("exact/exact", b"EXACT-FILE\n")

    def write(self, rel, data):
        p = os.path.join(self.base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.files[rel] = data

    def path(self, rel=""):
        return os.path.join(self.base, rel)

    def config(self, text, name="verbd.conf"):
        """Writes a config file; {base} in text is the site's directory."""
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text.replace("{base}", self.base))
        return p

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


class ConfServer(Server):
    """Runs `verbd -c FILE ARGS`: the config says where to listen."""

    def __init__(self, conf, *args):
        super().__init__(None, *args)
        self.conf = conf

    def command(self):
        return [verbd_bin(), "-c", self.conf] + self.args


BASE_CONF = """\
# Two static mappings with different method lists, and an exact one.
listen 127.0.0.1:0;
access_log off;
workers 1;

location / {
    static {base}/root;
    trace on;
}
location /ro/ {
    static {base}/ro;
    methods GET HEAD;
    header X-Frame-Options DENY;
}
location = /exact {
    static {base}/exact;
}
"""

UNION = "GET, HEAD, OPTIONS, TRACE"
ALLOW = {"/": "GET, HEAD, OPTIONS, TRACE", "/ro/": "GET, HEAD, OPTIONS",
         "= /exact": "GET, HEAD, OPTIONS"}
# Targets and the location that serves each.
TARGETS = [("/", "/"), ("/f.txt", "/"), ("/missing", "/"), ("/exactly", "/"), ("/exact/", "/"),
           ("/ro-not/x.txt", "/"), ("/ro/", "/ro/"), ("/ro/f.txt", "/ro/"),
           ("/ro/missing", "/ro/"), ("/ro/sub/deeper", "/ro/"), ("/exact", "= /exact")]


class MappingTestCase(VerbdTestCase):
    conf = BASE_CONF

    def setUp(self):
        self.site = Site()
        self.addCleanup(self.site.cleanup)
        self.conns = []
        self._servers = []
        self.server = self.start_conf(self.conf)

    def start_conf(self, text, name="verbd.conf"):
        srv = ConfServer(self.site.config(text, name))
        self.addCleanup(srv.cleanup)
        srv.start()
        self._servers.append(srv)
        return srv

    def request(self, method, target, headers=None, body=b"", conn=None):
        headers = list(headers or [])
        if body and not any(k.lower() in ("content-length", "transfer-encoding")
                            for k, _ in headers):
            headers.append(("Content-Length", str(len(body))))
        c = conn or self.connect()
        c.send(build_request(method, target, headers, body))
        r = c.read_response(method)
        self.assertNoFsPath(r)          # on every response of this file
        return c, r

    def assertUsable(self, c):
        c.send(build_request("GET", "/f.txt"))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"ROOT-FILE\n")

    def assertOptions(self, r):
        self.assertIn(r.status, (200, 204), r)
        self.assertWellFormed(r, "OPTIONS")
        if r.status == 200:
            self.assertEqual(r.header("Content-Length"), "0", r)

    def assertNoFsPath(self, r):
        raw = r.raw_head + r.body
        for needle in (self.site.base.encode(), b"/tmp/", tempfile.gettempdir().encode() + b"/"):
            self.assertNotIn(needle, raw, "a response reveals a file-system path: %r" % r)


# --------------------------------------------------------------------------
# The configuration is accepted
# --------------------------------------------------------------------------

class ConfigLoads(MappingTestCase):
    def test_check_says_ok(self):
        conf = self.site.path("verbd.conf")
        p = subprocess.run([verbd_bin(), "-t", "-c", conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn(conf + ": ok", p.stdout.decode() + p.stderr.decode())

    def test_listens_where_the_config_says(self):
        self.assertEqual(self.server.host, "127.0.0.1")
        self.assertNotEqual(self.server.port, 0)

    def test_access_log_off_prints_nothing_per_request(self):
        self.request("GET", "/f.txt")
        self.server.stop()
        self.assertFalse(any("GET /f.txt" in l for l in self.server.stdout_lines),
                         self.server.stdout_lines)


# --------------------------------------------------------------------------
# 501, 405, OPTIONS, HEAD across the mappings
# --------------------------------------------------------------------------

class Decision(MappingTestCase):
    def test_501_for_what_no_mapping_enables(self):
        for method in METHODS_OUTSIDE:
            for target, _ in TARGETS:
                if method == "CONNECT":
                    continue        # origin-form CONNECT is a 400; below
                with self.subTest(method=method, target=target):
                    c, r = self.request(method, target)
                    self.assertStatus(r, 501)
                    self.assertIsNone(r.header("Retry-After"), r)
                    self.assertIsNone(r.header("Cache-Control"), r)
                    self.assertIn(("The method %s " % method).encode(), r.body)
                    self.assertIn(UNION.encode(), r.body)
                    self.assertUsable(c)

    def test_connect_is_501(self):
        c = self.connect()
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        r = c.read_response("CONNECT")
        self.assertStatus(r, 501)

    def test_501_with_a_body_keeps_the_connection_in_sync(self):
        c, r = self.request("POST", "/ro/f.txt", [("Content-Type", "text/plain")],
                            b"GET /ro/f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertStatus(r, 501)
        self.assertUsable(c)
        self.assertOpen(c)

    def test_trace_is_405_where_not_enabled(self):
        for target, loc in TARGETS:
            if loc == "/":
                continue
            with self.subTest(target=target):
                c, r = self.request("TRACE", target)
                self.assertStatus(r, 405)
                self.assertEqual(r.header("Allow"), ALLOW[loc])
                self.assertUsable(c)

    def test_trace_is_served_where_enabled(self):
        _, r = self.request("TRACE", "/f.txt", [("X-Probe", "1"), ("Cookie", "s=1"),
                                                 ("Authorization", "Basic eDp5")])
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), "message/http")
        self.assertIn(b"X-Probe: 1", r.body)
        self.assertNotIn(b"s=1", r.body)
        self.assertNotIn(b"eDp5", r.body)

    def test_405_body_names_the_method_and_the_location(self):
        _, r = self.request("TRACE", "/ro/f.txt")
        self.assertIn(b"TRACE", r.body)
        self.assertIn(b"location /ro/", r.body)
        self.assertIn(b"GET, HEAD, OPTIONS", r.body)
        _, r = self.request("TRACE", "/exact")
        self.assertIn(b"location = /exact", r.body)

    def test_405_and_501_are_cacheable_without_explicit_freshness(self):
        for method, target in (("TRACE", "/ro/"), ("BREW", "/ro/")):
            with self.subTest(method=method):
                _, r = self.request(method, target)
                self.assertIsNone(r.header("Cache-Control"), r)
                self.assertIsNone(r.header("Expires"), r)

    def test_options_agrees_with_405_on_every_mapping(self):
        probe = ["GET", "HEAD", "OPTIONS", "TRACE"] + METHODS_OUTSIDE
        for target, loc in TARGETS:
            with self.subTest(target=target):
                _, o = self.request("OPTIONS", target)
                self.assertOptions(o)
                allow = o.header("Allow")
                self.assertEqual(allow, ALLOW[loc])
                allowed = [m.strip() for m in allow.split(",")]
                for method in probe:
                    if method == "CONNECT":
                        continue
                    _, r = self.request(method, target)
                    if method in allowed:
                        self.assertNotIn(r.status, (405, 501), (method, r))
                    else:
                        self.assertIn(r.status, (405, 501), (method, r))
                    if r.status == 405:
                        self.assertEqual(r.header("Allow"), allow, (method, r))

    def test_options_star_is_the_union(self):
        _, r = self.request("OPTIONS", "*")
        self.assertOptions(r)
        self.assertEqual(r.header("Allow"), UNION)
        self.assertIsNone(r.header("X-Frame-Options"))

    def test_head_mirrors_get_on_every_mapping(self):
        for target, _ in TARGETS + [("/ro", "/ro/"), ("/ro/link_out", "/ro/")]:
            with self.subTest(target=target):
                c, get = self.request("GET", target)
                _, head = self.request("HEAD", target, conn=c)
                self.assertEqual(head.status, get.status, (head, get))
                self.assertWellFormed(head, "HEAD")
                strip = lambda r: [(k.lower(), v) for k, v in r.headers if k.lower() != "date"]
                self.assertEqual(strip(head), strip(get))
                self.assertOpen(c)


# --------------------------------------------------------------------------
# Which mapping serves a target
# --------------------------------------------------------------------------

class Selection(MappingTestCase):
    def body_of(self, target):
        _, r = self.request("GET", target)
        return r

    def test_longest_prefix_wins(self):
        r = self.body_of("/ro/f.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"RO-FILE\n")
        r = self.body_of("/ro/")
        self.assertEqual(r.body, b"<p>RO-INDEX</p>\n")
        r = self.body_of("/f.txt")
        self.assertEqual(r.body, b"ROOT-FILE\n")

    def test_prefix_matches_on_segment_boundaries(self):
        r = self.body_of("/ro-not/x.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"ROOT-RO-NOT\n")
        self.assertIsNone(r.header("X-Frame-Options"))

    def test_prefix_without_its_slash_redirects_into_the_location(self):
        r = self.body_of("/ro")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/ro/")

    def test_selection_after_normalisation(self):
        for target, body in (("/ro/./f.txt", b"RO-FILE\n"), ("/x/../ro/f.txt", b"RO-FILE\n"),
                             ("/ro//f.txt", b"RO-FILE\n"), ("/%72o/f.txt", b"RO-FILE\n"),
                             ("/ro/../f.txt", b"ROOT-FILE\n")):
            with self.subTest(target=target):
                r = self.body_of(target)
                self.assertStatus(r, 200)
                self.assertEqual(r.body, body)
        # The method decision follows the normalised path too.
        _, r = self.request("TRACE", "/x/../ro/f.txt")
        self.assertStatus(r, 405)
        _, r = self.request("TRACE", "/ro/../f.txt")
        self.assertStatus(r, 200)

    def test_exact_location_matches_only_its_path(self):
        _, r = self.request("TRACE", "/exact")
        self.assertStatus(r, 405)
        self.assertIn(b"location = /exact", r.body)
        for target in ("/exact/", "/exactly", "/exact/index.html"):
            with self.subTest(target=target):
                _, r = self.request("TRACE", target)
                self.assertStatus(r, 200)      # the "/" location, where TRACE is on
        self.assertEqual(self.body_of("/exactly").body, b"ROOT-EXACTLY\n")
        self.assertEqual(self.body_of("/exact/").body, b"ROOT-EXACT-DIR\n")

    def test_exact_location_serves_its_path(self):
        # "= /exact" serves the file of that name in its root (as "=
        # /robots.txt" serves robots.txt), not the root's index, and does not
        # send the client to a path this location does not serve.
        r = self.body_of("/exact")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"EXACT-FILE\n")


# --------------------------------------------------------------------------
# Directives with an effect on refusals and headers
# --------------------------------------------------------------------------

class PerLocationHeader(MappingTestCase):
    def test_present_on_the_locations_responses(self):
        cases = [("GET", "/ro/f.txt", 200), ("GET", "/ro/", 200), ("HEAD", "/ro/f.txt", 200),
                 ("GET", "/ro/missing", 404), ("TRACE", "/ro/f.txt", 405),
                 ("OPTIONS", "/ro/", 204), ("GET", "/ro", 301), ("GET", "/ro/link_out", 403)]
        for method, target, status in cases:
            with self.subTest(method=method, target=target):
                _, r = self.request(method, target)
                if method == "OPTIONS":
                    self.assertOptions(r)
                else:
                    self.assertEqual(r.status, status, r)
                self.assertEqual(r.header_all("X-Frame-Options"), ["DENY"], r)

    def test_present_on_304(self):
        _, r = self.request("GET", "/ro/f.txt")
        _, r = self.request("GET", "/ro/f.txt", [("If-None-Match", r.header("ETag"))])
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.header("X-Frame-Options"), "DENY", r)

    def test_present_on_501_under_the_location(self):
        # The 501 is decided before the mapping, but the target is still
        # under /ro/: a security header there belongs on every answer.
        _, r = self.request("BREW", "/ro/f.txt")
        self.assertStatus(r, 501)
        self.assertEqual(r.header("X-Frame-Options"), "DENY", r)

    def test_absent_elsewhere(self):
        cases = [("GET", "/f.txt"), ("GET", "/missing"), ("OPTIONS", "/"), ("GET", "/exact"),
                 ("TRACE", "/exact"), ("BREW", "/f.txt"), ("OPTIONS", "*"),
                 ("GET", "/ro-not/x.txt")]
        for method, target in cases:
            with self.subTest(method=method, target=target):
                _, r = self.request(method, target)
                self.assertIsNone(r.header("X-Frame-Options"), r)


REFUSAL_CACHE_CONF = BASE_CONF.replace("workers 1;", "workers 1;\nrefusal_cache max-age=60;")


class RefusalCache(MappingTestCase):
    conf = REFUSAL_CACHE_CONF

    def test_on_405(self):
        _, r = self.request("TRACE", "/ro/f.txt")
        self.assertStatus(r, 405)
        self.assertEqual(r.header_all("Cache-Control"), ["max-age=60"], r)

    def test_on_501(self):
        for target in ("/", "/ro/", "/exact", "/missing"):
            with self.subTest(target=target):
                _, r = self.request("BREW", target)
                self.assertStatus(r, 501)
                self.assertEqual(r.header_all("Cache-Control"), ["max-age=60"], r)

    def test_not_on_other_responses(self):
        cases = [("GET", "/f.txt"), ("HEAD", "/f.txt"), ("GET", "/missing"), ("OPTIONS", "/ro/"),
                 ("OPTIONS", "*"), ("GET", "/ro"), ("TRACE", "/f.txt"), ("GET", "/ro/link_out")]
        for method, target in cases:
            with self.subTest(method=method, target=target):
                _, r = self.request(method, target)
                self.assertNotIn(r.status, (405, 501), r)
                self.assertIsNone(r.header("Cache-Control"), r)

    def test_not_on_parse_errors(self):
        c = self.connect()
        c.send(b"GET /f.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 400, r)
        self.assertIsNone(r.header("Cache-Control"), r)


UNKNOWN_405_CONF = BASE_CONF.replace("workers 1;", "workers 1;\nunknown_method 405;")


class UnknownMethod405(MappingTestCase):
    conf = UNKNOWN_405_CONF

    def test_unknown_method_is_405_with_the_mappings_allow(self):
        for method in ("BREW", "POST", "PROPFIND", "get"):
            for target, loc in TARGETS:
                with self.subTest(method=method, target=target):
                    c, r = self.request(method, target)
                    self.assertStatus(r, 405)
                    self.assertEqual(r.header("Allow"), ALLOW[loc])
                    self.assertIn(method.encode(), r.body)
                    self.assertUsable(c)

    def test_options_still_agrees(self):
        for target, loc in TARGETS:
            with self.subTest(target=target):
                _, o = self.request("OPTIONS", target)
                _, r = self.request("BREW", target)
                self.assertEqual(o.header("Allow"), r.header("Allow"))

    def test_options_star_unchanged(self):
        _, r = self.request("OPTIONS", "*")
        self.assertEqual(r.header("Allow"), UNION)

    def test_implemented_methods_unchanged(self):
        _, r = self.request("GET", "/ro/f.txt")
        self.assertStatus(r, 200)
        _, r = self.request("TRACE", "/ro/f.txt")
        self.assertStatus(r, 405)


NO_TRACE_CONF = """\
listen 127.0.0.1:0;
access_log off;
workers 1;
location / {
    static {base}/root;
}
location /ro/ {
    static {base}/ro;
    methods GET HEAD;
}
"""


class NothingEnablesTrace(MappingTestCase):
    conf = NO_TRACE_CONF

    def test_trace_is_501_everywhere(self):
        for target in ("/", "/f.txt", "/ro/", "/ro/f.txt", "/missing"):
            with self.subTest(target=target):
                _, r = self.request("TRACE", target)
                self.assertStatus(r, 501)

    def test_union_has_no_trace(self):
        _, r = self.request("OPTIONS", "*")
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_a_dormant_modules_methods_are_501_and_the_body_says_why(self):
        # Every built-in module other than static is enabled nowhere here;
        # a method only such a module implements is 501, and the body names
        # the module (issue 3, "Telling the operator why").
        p = subprocess.run([verbd_bin(), "-M"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(p.returncode, 0, p)
        dormant = {}
        for line in p.stdout.decode().splitlines():
            m = re.match(r"^module (\S+): (.*)$", line)
            # A gateway (proxy) implements every method: not a list.
            if m and m.group(1) != "static" and not m.group(2).startswith("every method"):
                for method in m.group(2).split(", "):
                    # a gateway's "every method but ..." names no method
                    if not re.fullmatch(r"[A-Z-]+", method):
                        continue
                    if method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
                        dormant.setdefault(method, m.group(1))
        if not dormant:
            self.skipTest("static is the only built-in module (verbd -M)")
        for method, module in dormant.items():
            with self.subTest(method=method):
                _, r = self.request(method, "/ro/f.txt")
                self.assertStatus(r, 501)
                self.assertIn(module.encode(), r.body)
                self.assertNoFsPath(r)


# --------------------------------------------------------------------------
# Nothing reveals where the files are
# --------------------------------------------------------------------------

class NoPathsRevealed(MappingTestCase):
    def test_no_response_names_a_file_system_path(self):
        cases = [("GET", "/missing"), ("GET", "/ro/missing"), ("GET", "/ro/link_out"),
                 ("GET", "/ro"), ("GET", "/exact"), ("TRACE", "/ro/"), ("TRACE", "/exact"),
                 ("BREW", "/ro/"), ("POST", "/"), ("OPTIONS", "/ro/"), ("OPTIONS", "*"),
                 ("GET", "/ro/f.txt/"), ("GET", "/ro/%2e%2e/%2e%2e/secret"),
                 ("GET", "/ro/%00"), ("GET", "/ro/a%2Fb"), ("DELETE", "/ro/f.txt")]
        for method, target in cases:
            with self.subTest(method=method, target=target):
                c = self.connect()
                c.send(build_request(method, target))
                r = c.read_response(method)
                self.assertNotIn(b"MAPPINGS-SECRET", r.body)
                self.assertNoFsPath(r)


if __name__ == "__main__":
    unittest.main()
