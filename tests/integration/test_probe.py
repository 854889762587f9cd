"""`verbd probe URL`: classification, inconsistencies, what it sends where
(nothing unsafe by default; with --unsafe only to a resource it created
itself or the --scratch URL), bounded reads, output and exit status --
against verbd itself, a deliberately broken server (broken_server.py), a
server that applies every method it gets (apply_server.py), and, when
installed, nginx (static and dav) and Apache httpd (static and mod_dav) on
loopback with their own configs."""

import hashlib
import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Server, free_port, run_verbd, verbd_bin, webroot
from peers import Apache, Nginx, find_httpd, find_program

HERE = os.path.dirname(os.path.abspath(__file__))
BROKEN = os.path.join(HERE, "broken_server.py")
APPLY = os.path.join(HERE, "apply_server.py")
# Sent by default: to the URL, or (made-up ones, and PROPFIND and QUERY
# where OPTIONS does not list them) to a random path that does not exist.
SAFE = ["OPTIONS", "GET", "HEAD", "TRACE", "PROPFIND", "QUERY"]
# Registered methods that may change something: never sent by default.
UNSAFE = ["PUT", "POST", "PATCH", "PROPPATCH", "LOCK", "UNLOCK", "COPY", "MOVE", "DELETE", "MKCOL"]
DEFAULT_ORDER = ["OPTIONS", "OPTIONS *", "GET", "HEAD", "TRACE", "VERBDPROBE", "PROPFIND",
                 "QUERY"] + UNSAFE
ETAG_RE = re.compile(r'^"(verbd-probe-[0-9a-f]{32})"$')


def probe(*args, env=None, timeout=60):
    """Runs `verbd probe ARGS`; returns (status, stdout, stderr, seconds)."""
    t = time.monotonic()
    p = subprocess.run([verbd_bin(), "probe"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    return (p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"),
            time.monotonic() - t)


def probe_json(*args, **kw):
    rc, out, err, secs = probe("--json", *args, **kw)
    try:
        data = json.loads(out)
    except ValueError:
        raise AssertionError("probe printed no JSON (exit %d)\nstdout: %s\nstderr: %s"
                             % (rc, out, err)) from None
    data["_rc"], data["_secs"], data["_stderr"] = rc, secs, err
    return data


def label(p):
    return p["method"] + (" *" if p["target"] == "*" else "")


def by_label(data):
    return {label(p): p for p in data["probes"]}


def findings(data, kind, method=None, rfc=None, text=None):
    out = []
    for f in data[kind]:
        if method is not None and method not in f["methods"]:
            continue
        if rfc is not None and f["rfc"] != rfc:
            continue
        if text is not None and text not in f["message"]:
            continue
        out.append(f)
    return out


def tree(root):
    """Every file and directory under root: relative path -> sha256 of the
    content (files), "dir" (directories) or the link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def unsafe_requests(log):
    """The requests of a server's log whose method is registered and unsafe."""
    return [r for r in log if r["method"] in UNSAFE + ["ACL", "BIND", "REBIND", "UNBIND"]]


def header(r, name):
    for k, v in r["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def dest_path(r):
    d = header(r, "Destination")
    return None if d is None else "/" + d.split("/", 3)[3]


class BrokenServer:
    """broken_server.py MODE (or another helper server of this folder) on
    127.0.0.1, with its request log."""

    def __init__(self, mode, script=BROKEN):
        self.mode = mode
        fd, self.log = tempfile.mkstemp(prefix="verbd-broken-", suffix=".jsonl")
        os.close(fd)
        self.proc = subprocess.Popen([sys.executable, script, mode, "--log", self.log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if r else ""
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", line)
        if not m:
            self.stop()
            raise AssertionError("%s %s did not start: %r" % (script, mode, line))
        self.url = m.group(1)

    def requests(self):
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        try:
            os.unlink(self.log)
        except OSError:
            pass


class ProbeTestCase(unittest.TestCase):
    def broken(self, mode):
        srv = BrokenServer(mode)
        self.addCleanup(srv.stop)
        return srv

    def applying(self, root):
        """apply_server.py on root: acts on every method it gets."""
        srv = BrokenServer(root, script=APPLY)
        self.addCleanup(srv.stop)
        return srv

    def verbd(self, *args):
        srv = Server(webroot().root, "--workers", "1", *args).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        return srv

    def assertFinding(self, data, kind, method, rfc, text):
        self.assertTrue(findings(data, kind, method, rfc, text),
                        "no %s for %s [%s] containing %r in\n%s" % (
                            kind, method, rfc, text, json.dumps(data[kind], indent=1,
                                                                ensure_ascii=False)))

    def assertOneLineError(self, rc, out, err, contains=None):
        self.assertEqual(rc, 2, (out, err))
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("verbd probe: "), err)
        if contains:
            self.assertIn(contains, err)


class CommandLine(ProbeTestCase):
    def test_help_explains_the_safety_design(self):
        rc, out, err, _ = probe("--help")
        self.assertEqual(rc, 0, err)
        for s in ("changes nothing", "not tried (unsafe)", "--unsafe", "--scratch URL",
                  "If-None-Match: *", "random path that does not exist", "Content-Length: 0",
                  "--method", "--header", "--json", "NO_COLOR", "Exit status"):
            self.assertIn(s, out)

    def test_main_usage_mentions_probe(self):
        p = run_verbd("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"verbd probe URL", p.stdout)
        self.assertIn(b"--unsafe", p.stdout)

    def test_invalid_urls_exit_2_with_one_line(self):
        for url in ["localhost:8080/", "ftp://example.com/", "http://", "http:///x",
                    "http://[::1/", "http://host:99999/", "http://host:0/", "http://a b/",
                    "http://user:pw@host/", "http://ho^st/", "https://", "https://[::1/",
                    "https://host:0/", "httpx://host/"]:
            with self.subTest(url=url):
                rc, out, err, _ = probe(url)
                self.assertOneLineError(rc, out, err, "invalid URL")

    def test_https_to_a_closed_port_exits_2(self):
        rc, out, err, _ = probe("--timeout", "2", "https://127.0.0.1:%d/" % free_port())
        self.assertOneLineError(rc, out, err, "cannot connect")

    def test_unreachable_server_exits_2(self):
        rc, out, err, secs = probe("--timeout", "2", "http://127.0.0.1:%d/" % free_port())
        self.assertOneLineError(rc, out, err, "cannot connect")
        self.assertLess(secs, 10)

    def test_bad_options_exit_2(self):
        url = "http://127.0.0.1:1/"
        for args in (["--header", "no colon", url], ["--header", "If-Match: \"x\"", url],
                     ["--header", "Content-Length: 5", url], ["--header", "Connection: x", url],
                     ["--method", "GE T", url], ["--method", "", url], ["--timeout", "0", url],
                     ["--timeout", "x", url], ["--bogus", url], [], [url, url],
                     ["--header", "Destination: http://127.0.0.1:1/x", url],
                     ["--header", "Overwrite: T", url],
                     ["--scratch", "http://127.0.0.1:1/s", url],
                     ["--unsafe", "--scratch", "http://127.0.0.1:2/s", url],
                     ["--unsafe", "--scratch", "ftp://127.0.0.1:1/s", url]):
            with self.subTest(args=args):
                rc, out, err, _ = probe(*args)
                self.assertOneLineError(rc, out, err)


class AgainstVerbd(ProbeTestCase):
    def test_verbd_is_consistent(self):
        srv = self.verbd()
        for path in ("/", "/index.html", "/missing", "/sub/file.txt"):
            with self.subTest(path=path):
                data = probe_json("http://127.0.0.1:%d%s" % (srv.port, path))
                self.assertEqual(data["_rc"], 0, data)
                self.assertTrue(data["consistent"])
                self.assertEqual(data["inconsistencies"], [])
                self.assertEqual(data["notes"], [])
                self.assertEqual([label(p) for p in data["probes"]], DEFAULT_ORDER)
                probes = by_label(data)
                self.assertEqual(probes["OPTIONS"]["allow"], "GET, HEAD, OPTIONS")
                self.assertEqual(probes["OPTIONS *"]["allow"], "GET, HEAD, OPTIONS")
                for m in ("OPTIONS", "OPTIONS *"):
                    self.assertEqual(probes[m]["class"], "allowed")
                want_get = "other" if path == "/missing" else "allowed"
                self.assertEqual(probes["GET"]["class"], want_get)
                self.assertEqual(probes["HEAD"]["class"], want_get)
                for m in ("TRACE", "VERBDPROBE", "PROPFIND", "QUERY"):
                    self.assertEqual(probes[m]["status"], 501, m)
                    self.assertEqual(probes[m]["class"], "not_implemented", m)
                for m in UNSAFE:
                    self.assertEqual(probes[m]["class"], "not_tried", m)
                    self.assertIsNone(probes[m]["status"], m)
                    self.assertIn("not in this resource's Allow", probes[m]["known"], m)
                self.assertIn("Not implemented by the server at all (501): TRACE, PROPFIND, "
                              "QUERY.", data["verdict"])
                self.assertIn("Not tried (unsafe): PUT", data["verdict"])

    def test_verbd_with_trace_does_not_echo_the_cookie(self):
        srv = self.verbd("--trace")
        data = probe_json("http://127.0.0.1:%d/" % srv.port)
        self.assertEqual(data["_rc"], 0, data)
        probes = by_label(data)
        self.assertEqual(probes["TRACE"]["status"], 200)
        self.assertEqual(probes["TRACE"]["class"], "allowed")
        self.assertEqual(probes["OPTIONS"]["allow"], "GET, HEAD, OPTIONS, TRACE")
        self.assertEqual(data["inconsistencies"], [])

    def test_method_option_probes_only_those_and_is_case_sensitive(self):
        srv = self.verbd()
        data = probe_json("--method", "get", "-m", "PUT", "--method", "GET",
                          "http://127.0.0.1:%d/" % srv.port)
        self.assertEqual(data["_rc"], 0, data)
        # Safe and unknown ones first, in the order given; unsafe ones last.
        self.assertEqual([(p["method"], p["status"], p["where"]) for p in data["probes"]],
                         [("get", 501, "missing"), ("GET", 200, "resource"),
                          ("PUT", None, "scratch")])
        self.assertEqual(data["probes"][2]["class"], "not_tried")
        self.assertIn("only with --unsafe", data["probes"][2]["explanation"])
        self.assertTrue(any("case-sensitive" in a for a in data["advice"]), data["advice"])

    def test_ipv6_literal_url(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        srv = self.verbd("--listen", "[::1]:0")
        data = probe_json("http://[::1]:%d/" % srv.port)
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(data["url"], "http://[::1]:%d/" % srv.port)
        self.assertEqual(by_label(data)["GET"]["status"], 200)

    def test_table_is_plain_and_aligned_when_piped(self):
        srv = self.verbd()
        rc, out, err, _ = probe("http://127.0.0.1:%d/" % srv.port)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\x1b", out)
        lines = out.splitlines()
        header = next(i for i, l in enumerate(lines) if l.startswith("METHOD"))
        col = lines[header].index("RESULT")
        rows = lines[header + 1:header + 1 + len(DEFAULT_ORDER)]
        self.assertEqual([r[:len(m)] for r, m in zip(rows, DEFAULT_ORDER)], DEFAULT_ORDER)
        for r in rows:
            self.assertIn(r[col:].split("  ")[0],
                          ("allowed", "not implemented", "not tried (unsafe)"), r)
        self.assertIn("Verdict: Consistent", out)

    def test_verbd_webdav_files_stay_byte_identical(self):
        base = tempfile.mkdtemp(prefix="verbd-probe-dav-")
        self.addCleanup(shutil.rmtree, base, True)
        served = os.path.join(base, "served")
        os.makedirs(os.path.join(served, "dav", "sub"))
        for name, text in (("dav/precious.txt", "precious\n"), ("dav/sub/x.txt", "x\n")):
            with open(os.path.join(served, name), "w") as f:
                f.write(text)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 1;\nlocation /dav/ { webdav %s; }\n" % os.path.join(served, "dav"))
        srv = Server(None, "-c", conf).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        share = os.path.join(served, "dav")  # its database lives beside it
        before = tree(share)
        for path in ("/dav/precious.txt", "/dav/", "/dav/sub/", "/dav/missing.txt"):
            with self.subTest(path=path):
                data = probe_json("http://127.0.0.1:%d%s" % (srv.port, path))
                self.assertEqual(data["_rc"], 0, data)
                self.assertEqual(tree(share), before)
                self.assertEqual(by_label(data)["PUT"]["class"], "not_tried")
                self.assertEqual(by_label(data)["PROPFIND"]["where"], "resource")
        data = probe_json("--unsafe", "http://127.0.0.1:%d/dav/precious.txt" % srv.port)
        self.assertEqual(data["_rc"], 0, data)
        probes = by_label(data)
        for m in ("PUT", "DELETE", "MKCOL", "COPY", "MOVE", "LOCK", "PROPPATCH"):
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(tree(share), before)

    def run_on_tty(self, url, env):
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([verbd_bin(), "probe", url], stdin=subprocess.DEVNULL,
                                 stdout=slave, stderr=subprocess.PIPE, env=env)
            os.close(slave)
            out = b""
            while True:
                r, _, _ = select.select([master], [], [], 30)
                if not r:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            p.wait(timeout=30)
            p.stderr.close()
            return p.returncode, out.decode("utf-8", "replace")
        finally:
            os.close(master)

    def test_colour_on_a_terminal_unless_no_color(self):
        srv = self.verbd()
        url = "http://127.0.0.1:%d/" % srv.port
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        env["TERM"] = "xterm"
        rc, out = self.run_on_tty(url, env)
        self.assertEqual(rc, 0, out)
        self.assertIn("\x1b[", out)
        env["NO_COLOR"] = "1"
        rc, out = self.run_on_tty(url, env)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("\x1b[", out)
        self.assertIn("Verdict:", out)


class AgainstBrokenServer(ProbeTestCase):
    def test_every_inconsistency_is_reported_with_its_rfc(self):
        srv = self.broken("broken")
        data = probe_json("--unsafe", srv.url)
        self.assertEqual(data["_rc"], 1, data)
        self.assertFalse(data["consistent"])
        P = "inconsistencies"
        expected = [
            ("PROPPATCH", "RFC 9110 §15.5.6", "405 without an Allow"),
            ("DELETE", "RFC 9110 §10.2.1", "disagrees with the Allow of OPTIONS"),
            ("DELETE", "RFC 9110 §10.2.1", "listed in the Allow of OPTIONS, yet answered 405"),
            ("POST", "RFC 9110 §10.2.1", "listed in the Allow of OPTIONS, yet answered 501"),
            ("VERBDPROBE", "RFC 9110 §9.1", "made-up method was answered 200"),
            ("POST", "RFC 9110 §15.6.2", "501 with Retry-After: 120"),
            ("HEAD", "RFC 9110 §9.3.2", "Content-Length differs: 5 (GET) vs 6 (HEAD)"),
            ("HEAD", "RFC 9110 §9.3.2", 'ETag differs: "a" (GET) vs "b" (HEAD)'),
            ("HEAD", "RFC 9110 §9.3.2", "Last-Modified differs"),
            ("HEAD", "RFC 9110 §9.3.2", "Content-Type differs: text/plain (GET) vs text/html"),
            ("HEAD", "RFC 9110 §9.3.2", "the response to HEAD carried 6 bytes of content"),
            ("TRACE", "RFC 9110 §9.3.8", "echoed the Cookie"),
            ("OPTIONS *", "RFC 9110 §9.3.7", "answered 400 instead of 2xx"),
            ("PROPFIND", "RFC 9112 §5", "obsolete line folding"),
            ("MKCOL", "RFC 9112 §6.2", "both Transfer-Encoding and Content-Length"),
            ("COPY", "RFC 9112 §7.1", "malformed chunked body"),
            ("MOVE", "RFC 9112 §8", "before the end of the body"),
            ("QUERY", "RFC 9110 §15.3.5", "a 204 response carried 8 bytes"),
        ]
        for method, rfc, text in expected:
            with self.subTest(method=method, text=text):
                self.assertFinding(data, P, method, rfc, text)
        self.assertFinding(data, "notes", "LOCK", None, "connection closed without a response")
        self.assertFinding(data, "notes", "PATCH", "RFC 9110 §10.2.1",
                           "not listed in the Allow of OPTIONS")
        probes = by_label(data)
        self.assertEqual(probes["PROPFIND"]["class"], "malformed")
        self.assertEqual(probes["LOCK"]["class"], "no_answer")
        self.assertEqual(probes["PROPPATCH"]["class"], "not_allowed")
        self.assertEqual(probes["POST"]["class"], "not_implemented")
        # Unsafe methods went to the probe's own scratch resource, where
        # the 405s are held to that resource's OPTIONS.
        self.assertTrue(data["scratch"]["ready"], data["scratch"])
        self.assertEqual(probes["DELETE"]["target"], data["scratch"]["path"])
        self.assertEqual(probes["DELETE"]["where"], "scratch")
        self.assertIn("inconsistenc", data["verdict"])

    def test_missing_head_and_unknown_method_405(self):
        srv = self.broken("nohead")
        data = probe_json(srv.url)
        self.assertEqual(data["_rc"], 1, data)
        self.assertFinding(data, "inconsistencies", "HEAD", "RFC 9110 §9.1",
                           "GET works but HEAD is answered 501")
        self.assertFinding(data, "inconsistencies", "HEAD", "RFC 9110 §10.2.1",
                           "listed in the Allow of OPTIONS, yet answered 501")
        # 405 for an unknown method is a SHOULD: a note, not an inconsistency.
        self.assertFinding(data, "notes", "VERBDPROBE", "RFC 9110 §9.1", "answered 405")
        self.assertEqual(findings(data, "inconsistencies", "VERBDPROBE"), [])
        self.assertEqual(len(data["inconsistencies"]), 2, data["inconsistencies"])

    def test_consistent_server_passes(self):
        srv = self.broken("good")
        data = probe_json(srv.url)
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(data["inconsistencies"], [])
        self.assertEqual(data["notes"], [])
        put = by_label(data)["PUT"]
        self.assertEqual((put["status"], put["class"]), (None, "not_tried"))
        self.assertIn("listed in the Allow of OPTIONS", put["known"])
        self.assertEqual(by_label(data)["DELETE"]["known"],
                         "not in this resource's Allow; OPTIONS * does not list it")

    def test_default_requests_are_safe_and_carry_no_content(self):
        srv = self.broken("good")
        url_target = "/some/thing.txt?q=1"
        self.assertEqual(probe_json(srv.url + url_target[1:])["_rc"], 0)
        first = srv.requests()
        self.assertEqual(probe_json(srv.url + url_target[1:])["_rc"], 0)
        second = srv.requests()[len(first):]
        seen = set()
        for reqs in (first, second):
            # Only safe methods and the made-up one are sent, once each.
            self.assertEqual(sorted(r["method"] for r in reqs),
                             sorted(SAFE + ["OPTIONS", "VERBDPROBE"]))
            tags, missing = set(), set()
            for r in reqs:
                m = r["method"]
                h = {}
                for k, v in r["headers"]:
                    h.setdefault(k.lower(), []).append(v)
                with self.subTest(method=m):
                    self.assertEqual(r["body"], "", "the probe sent content")
                    self.assertEqual(h.get("connection"), ["close"])
                    self.assertTrue(h.get("user-agent", [""])[0].startswith("verbd-probe/"))
                    self.assertNotIn("destination", h)
                    self.assertNotIn("if-none-match", h)
                    if m in ("VERBDPROBE", "PROPFIND", "QUERY"):
                        # Not listed by OPTIONS here: a random path beside
                        # the URL that does not exist, and no content.
                        self.assertRegex(r["target"], r"^/some/verbd-probe-missing-[0-9a-f]{32}$")
                        missing.add(r["target"])
                        self.assertEqual(h.get("content-length"), ["0"])
                    elif m == "OPTIONS" and r["target"] == "*":
                        pass
                    else:
                        self.assertEqual(r["target"], url_target)
                        self.assertNotIn("content-length", h)
                    if m == "VERBDPROBE":
                        self.assertEqual(len(h.get("if-match", [])), 1, h)
                        tag = ETAG_RE.match(h["if-match"][0])
                        self.assertTrue(tag, h["if-match"])
                        self.assertEqual(h.get("if"), ['(["%s"])' % tag.group(1)])
                        tags.add(tag.group(1))
                    else:
                        self.assertNotIn("if-match", h)
                        self.assertNotIn("if", h)
                    if m == "PROPFIND":
                        self.assertEqual(h.get("depth"), ["0"])
                    if m == "TRACE":
                        self.assertEqual(len(h.get("cookie", [])), 1)
            self.assertEqual(len(tags), 1, "one random tag per run")
            self.assertEqual(len(missing), 1, "one random missing path per run")
            seen |= tags | missing
        self.assertEqual(len(seen), 4, "the tag and the path are random, not fixed")

    def test_propfind_goes_to_the_url_only_where_options_lists_it(self):
        srv = self.broken("broken")  # OPTIONS lists neither PROPFIND nor QUERY
        probe_json(srv.url)
        for r in srv.requests():
            if r["method"] in ("PROPFIND", "QUERY"):
                self.assertIn("verbd-probe-missing-", r["target"])
        root = tempfile.mkdtemp(prefix="verbd-apply-")
        self.addCleanup(shutil.rmtree, root, True)
        open(os.path.join(root, "f.txt"), "w").write("x\n")
        srv = self.applying(root)  # OPTIONS lists PROPFIND, and says DAV: 1, 2
        data = probe_json(srv.url + "f.txt")
        self.assertEqual(by_label(data)["PROPFIND"]["target"], "/f.txt")
        self.assertEqual(by_label(data)["PROPFIND"]["status"], 207)

    def test_unsafe_without_a_resource_of_its_own_sends_nothing_else(self):
        # The good server answers 500 to the probe's creating PUT: without a
        # 201 the probe has no resource of its own, so nothing else unsafe
        # is sent anywhere.
        srv = self.broken("good")
        data = probe_json("--unsafe", srv.url + "dir/x")
        sent = unsafe_requests(srv.requests())
        self.assertEqual([r["method"] for r in sent], ["PUT"])
        self.assertRegex(sent[0]["target"], r"^/dir/verbd-probe-[0-9a-f]{32}$")
        self.assertEqual(header(sent[0], "If-None-Match"), "*")
        self.assertFalse(data["scratch"]["ready"])
        self.assertIn("answered 500", data["scratch"]["why"])
        probes = by_label(data)
        for m in UNSAFE[1:]:
            self.assertEqual(probes[m]["class"], "not_tried", m)
        self.assertTrue(any("answered 500" in a for a in data["advice"]), data["advice"])

    def test_header_option_for_credentials(self):
        srv = self.broken("auth")
        data = probe_json("--method", "GET", "--method", "HEAD", srv.url)
        self.assertEqual([p["class"] for p in data["probes"]],
                         ["needs_credentials", "needs_credentials"])
        self.assertIn("Needs credentials: GET, HEAD", data["verdict"])
        self.assertTrue(any("Authorization" in a for a in data["advice"]))
        before = len(srv.requests())
        data = probe_json("--header", "Authorization: Bearer s3cret", srv.url)
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(by_label(data)["GET"]["class"], "allowed")
        reqs = srv.requests()[before:]
        self.assertEqual(len(reqs), len(DEFAULT_ORDER) - len(UNSAFE))
        for r in reqs:
            self.assertIn(["Authorization", "Bearer s3cret"], r["headers"])

    def test_endless_header_is_bounded(self):
        srv = self.broken("endless-header")
        data = probe_json("--method", "GET", srv.url)
        self.assertEqual(data["_rc"], 1, data)
        self.assertLess(data["_secs"], 10)
        self.assertEqual(data["probes"][0]["class"], "malformed")
        self.assertFinding(data, "inconsistencies", "GET", "RFC 9112 §5", "malformed response")

    def test_endless_body_is_bounded(self):
        srv = self.broken("endless-body")
        data = probe_json("--method", "GET", srv.url)
        self.assertEqual(data["_rc"], 0, data)
        self.assertLess(data["_secs"], 10)
        get = data["probes"][0]
        self.assertEqual(get["status"], 200)
        self.assertTrue(get["truncated"])
        self.assertEqual(get["body_bytes"], 1024 * 1024)
        self.assertFinding(data, "notes", "GET", None, "stopped reading")

    def test_trickling_server_is_cut_off_by_the_timeout(self):
        srv = self.broken("trickle")
        rc, out, err, secs = probe("--timeout", "1", "--method", "GET", "--method", "HEAD",
                                   srv.url)
        self.assertLess(secs, 6, "each exchange must end within --timeout")
        self.assertEqual(rc, 2, out)
        self.assertIn("no complete response within 1s", out)

    def test_not_http_is_malformed(self):
        srv = self.broken("garbage")
        data = probe_json("--method", "GET", srv.url)
        self.assertEqual(data["_rc"], 1, data)
        self.assertFinding(data, "inconsistencies", "GET", "RFC 9112 §4", "status line")

    def test_server_that_never_answers_exits_2(self):
        srv = self.broken("silent")
        rc, out, err, _ = probe("--method", "GET", srv.url)
        self.assertEqual(rc, 2, out)
        self.assertIn("answered no request", err)


class AgainstApplyingServer(ProbeTestCase):
    """apply_server.py acts on every method it gets and ignores every
    precondition, as many real servers do: whatever reaches a file changes
    it."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="verbd-apply-")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.makedirs(os.path.join(self.root, "sub", "deep"))
        os.makedirs(os.path.join(self.root, "scratch"))
        for name, text in (("precious.txt", "do not touch\n"), ("sub/a.txt", "a\n"),
                           ("sub/deep/b.txt", "b\n"), ("scratch/s.txt", "mine to lose\n")):
            with open(os.path.join(self.root, name), "w") as f:
                f.write(text)
        self.before = tree(self.root)
        self.srv = self.applying(self.root)

    def url(self, path):
        return self.srv.url + path.lstrip("/")

    def test_default_changes_nothing(self):
        for path in ("/precious.txt", "/sub/", "/sub/deep/b.txt", "/missing.txt", "/"):
            with self.subTest(path=path):
                data = probe_json(self.url(path))
                self.assertIn(data["_rc"], (0, 1), data)
                self.assertEqual(tree(self.root), self.before,
                                 "the probe changed the server's files")
                self.assertEqual(unsafe_requests(self.srv.requests()), [])
                probes = by_label(data)
                # What can be learnt without sending them is still shown.
                self.assertEqual(data["dav"], "1, 2")
                self.assertEqual(data["accept_patch"], "text/plain")
                for m in UNSAFE:
                    self.assertEqual(probes[m]["class"], "not_tried", m)
                    self.assertIn("listed in the Allow of OPTIONS", probes[m]["known"], m)
                self.assertIn("Accept-Patch: text/plain", probes["PATCH"]["known"])
                self.assertIn("class 2: locking", probes["LOCK"]["known"])
        rc, out, err, _ = probe(self.url("/precious.txt"))
        self.assertIn("not tried (unsafe)", out)
        self.assertIn("--unsafe", out)
        self.assertEqual(tree(self.root), self.before)

    def assertOnlyOwnResources(self, allowed):
        """Every unsafe request (and its Destination) went to a path for
        which allowed(path) holds, and every file that was there before is
        unchanged."""
        sent = unsafe_requests(self.srv.requests())
        self.assertTrue(sent, "no unsafe method was sent")
        for r in sent:
            for path in (r["target"], dest_path(r)):
                if path is not None:
                    self.assertTrue(allowed(path), "%s went to %s" % (r["method"], path))
        return sent

    def test_unsafe_touches_only_what_the_probe_created(self):
        data = probe_json("--unsafe", self.url("/sub/a.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        scratch = data["scratch"]["path"]
        self.assertRegex(scratch, r"^/sub/verbd-probe-[0-9a-f]{32}$")
        self.assertTrue(data["scratch"]["ready"])
        sent = self.assertOnlyOwnResources(lambda p: p.startswith(scratch)
                                           and p.rstrip("/")[1:] not in self.before)
        # It first created its resource, and asked never to replace one.
        self.assertEqual((sent[0]["method"], sent[0]["target"]), ("PUT", scratch))
        self.assertEqual(header(sent[0], "If-None-Match"), "*")
        for r in sent:
            if r["method"] in ("COPY", "MOVE"):
                self.assertEqual(header(r, "Overwrite"), "F")
        # Everything unsafe was tried there, and all of it is gone again.
        probes = by_label(data)
        for m in UNSAFE:
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
            self.assertEqual(probes[m]["where"], "scratch")
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(tree(self.root), self.before)

    def test_scratch_url_is_honoured(self):
        scratch = "/scratch/s.txt"
        data = probe_json("--unsafe", "--scratch", self.url(scratch), self.url("/precious.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        self.assertEqual(data["scratch"]["path"], scratch)
        self.assertTrue(data["scratch"]["given"])
        sent = self.assertOnlyOwnResources(lambda p: p == scratch or (
            p.startswith(scratch + "-verbd-probe-") and p.rstrip("/")[1:] not in self.before))
        self.assertEqual((sent[0]["method"], sent[0]["target"]), ("PUT", scratch))
        self.assertIsNone(header(sent[0], "If-None-Match"))
        self.assertEqual(by_label(data)["DELETE"]["target"], scratch)
        # The scratch resource may be gone; nothing else changed, and what
        # the probe made next to it was removed.
        after = tree(self.root)
        after.pop("scratch/s.txt", None)
        expected = dict(self.before)
        del expected["scratch/s.txt"]
        self.assertEqual(after, expected)
        self.assertEqual(data["scratch"]["left_behind"], [])

    def test_scratch_collection_is_where_the_probe_creates(self):
        data = probe_json("--unsafe", "--scratch", self.url("/scratch/"), self.url("/precious.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        self.assertRegex(data["scratch"]["path"], r"^/scratch/verbd-probe-[0-9a-f]{32}$")
        self.assertFalse(data["scratch"]["given"])
        self.assertOnlyOwnResources(lambda p: p.startswith(data["scratch"]["path"]))
        self.assertEqual(tree(self.root), self.before)

    def test_unsafe_method_option_creates_its_resource_first(self):
        data = probe_json("--unsafe", "--method", "DELETE", "--method", "GET",
                          self.url("/precious.txt"))
        self.assertEqual([(p["method"], p["where"]) for p in data["probes"]],
                         [("GET", "resource"), ("PUT", "scratch"), ("DELETE", "scratch")])
        self.assertEqual(data["probes"][2]["status"], 204)
        self.assertEqual(tree(self.root), self.before)


class AgainstNginxDav(ProbeTestCase):
    """nginx's dav module (dav_methods PUT DELETE MKCOL COPY MOVE): it
    ignores If-Match, so only not sending unsafe methods protects its files."""

    def setUp(self):
        if not find_program("nginx"):
            self.skipTest("nginx is not installed (Debian package: nginx)")
        nginx = Nginx("""    access_log {d}/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /dav/ {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_access user:rw group:rw all:r;
        }}
    }}
""")
        self.addCleanup(nginx.cleanup)
        self.dir, self.root, self.port = nginx.dir, nginx.root, nginx.ports[0]
        os.makedirs(os.path.join(self.root, "dav", "sub"))
        for name, text in (("index.html", "hello\n"), ("dav/precious.txt", "precious\n"),
                           ("dav/sub/x.txt", "x\n")):
            with open(os.path.join(self.root, name), "w") as f:
                f.write(text)
        self.before = tree(self.root)
        nginx.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def access_log(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return [l.split('"')[1].split(" ") for l in f if '"' in l]

    def test_default_changes_nothing(self):
        for path in ("/dav/precious.txt", "/dav/", "/dav/sub/x.txt", "/dav/missing.txt"):
            with self.subTest(path=path):
                data = probe_json(self.url(path))
                self.assertIn(data["_rc"], (0, 1), data)
                self.assertEqual(tree(self.root), self.before,
                                 "the probe changed nginx's files")
                probes = by_label(data)
                for m in UNSAFE:
                    self.assertEqual(probes[m]["class"], "not_tried", m)
        methods = {l[0] for l in self.access_log()}
        self.assertFalse(methods & set(UNSAFE), methods)

    def test_unsafe_uses_only_its_own_resource(self):
        data = probe_json("--unsafe", self.url("/dav/precious.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        scratch = data["scratch"]["path"]
        self.assertRegex(scratch, r"^/dav/verbd-probe-[0-9a-f]{32}$")
        probes = by_label(data)
        for m in ("PUT", "DELETE", "MKCOL", "COPY", "MOVE"):
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
        for method, target, _ in self.access_log():
            if method in UNSAFE:
                self.assertTrue(target.startswith(scratch), (method, target))
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(tree(self.root), self.before)


class AgainstNginx(ProbeTestCase):
    """Stock nginx serving static files: its 405s carry no Allow."""

    def setUp(self):
        if not find_program("nginx"):
            self.skipTest("nginx is not installed (Debian package: nginx)")
        nginx = Nginx("""    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
""")
        self.addCleanup(nginx.cleanup)
        with open(os.path.join(nginx.root, "index.html"), "w") as f:
            f.write("hello from nginx\n")
        nginx.start()
        self.port = nginx.ports[0]

    def test_nginx_405_without_allow_is_reported(self):
        data = probe_json("http://127.0.0.1:%d/" % self.port)
        self.assertEqual(data["_rc"], 1, data)
        self.assertTrue(data["server"].startswith("nginx"), data["server"])
        probes = by_label(data)
        self.assertEqual(probes["GET"]["class"], "allowed")
        self.assertEqual(probes["HEAD"]["class"], "allowed")
        refused = [m for m in DEFAULT_ORDER if probes[m]["status"] == 405]
        self.assertIn("OPTIONS", refused)
        self.assertIn("TRACE", refused)
        for m in UNSAFE:
            self.assertEqual(probes[m]["class"], "not_tried", m)
        for m in refused:
            self.assertIsNone(probes[m]["allow"], m)
            self.assertEqual(probes[m]["class"], "not_allowed")
        f = findings(data, "inconsistencies", rfc="RFC 9110 §15.5.6", text="405 without an Allow")
        self.assertEqual(len(f), 1, data["inconsistencies"])
        self.assertEqual(f[0]["methods"], refused)
        # HEAD mirrors GET on nginx: nothing to report there.
        self.assertEqual(findings(data, "inconsistencies", "HEAD"), [])

    def test_nginx_table_names_the_rfc(self):
        rc, out, err, _ = probe("http://127.0.0.1:%d/index.html" % self.port)
        self.assertEqual(rc, 1, err)
        self.assertIn("405 without an Allow header field", out)
        self.assertIn("[RFC 9110 §15.5.6]", out)


class AgainstApache(ProbeTestCase):
    """Apache httpd, its own config: static files on one port with TRACE
    enabled, the same with TraceEnable off on another, WebDAV on /dav/."""

    MODULES = ["mpm_prefork", "authz_core", "mime", "dir", "dav", "dav_fs"]

    def setUp(self):
        if not find_httpd():
            self.skipTest("Apache httpd is not installed (Debian package: apache2)")
        self.httpd = Apache(self.MODULES, """DavLockDB {d}/davlock
TraceEnable on
<Directory {root}>
    Require all granted
</Directory>
<Location /dav/>
    Dav On
</Location>
<VirtualHost 127.0.0.1:{port2}>
    TraceEnable off
</VirtualHost>
""", ports=2)
        self.addCleanup(self.httpd.cleanup)
        self.dir, self.root = self.httpd.dir, self.httpd.root
        self.port, self.port_notrace = self.httpd.ports
        os.makedirs(os.path.join(self.root, "dav"))
        with open(os.path.join(self.root, "index.html"), "w") as f:
            f.write("hello from apache\n")
        with open(os.path.join(self.root, "dav", "file.txt"), "w") as f:
            f.write("dav file\n")
        try:
            self.httpd.start()
        except RuntimeError as e:
            self.fail(str(e))

    def tree(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in sorted(dirnames + filenames):
                p = os.path.join(dirpath, n)
                out.append((os.path.relpath(p, self.root), os.path.getsize(p)))
        return sorted(out)

    def test_static_files_with_trace_enabled(self):
        data = probe_json("http://127.0.0.1:%d/" % self.port)
        self.assertEqual(data["_rc"], 1, data)
        self.assertTrue(data["server"].startswith("Apache"), data["server"])
        probes = by_label(data)
        allow = [m.strip() for m in probes["OPTIONS"]["allow"].split(",")]
        for m in ("GET", "HEAD", "POST", "OPTIONS", "TRACE"):
            self.assertIn(m, allow)
        self.assertEqual(probes["VERBDPROBE"]["class"], "not_implemented")
        self.assertEqual(probes["PUT"]["class"], "not_tried")
        self.assertIn("not in this resource's Allow", probes["PUT"]["known"])
        self.assertIn("listed in the Allow of OPTIONS", probes["POST"]["known"])
        self.assertEqual(probes["TRACE"]["status"], 200)
        # TraceEnable on: Apache echoes the whole request, Cookie included.
        self.assertFinding(data, "inconsistencies", "TRACE", "RFC 9110 §9.3.8", "Cookie")
        self.assertEqual(findings(data, "inconsistencies", rfc="RFC 9110 §15.5.6"), [])

    def test_trace_disabled(self):
        data = probe_json("http://127.0.0.1:%d/" % self.port_notrace)
        probes = by_label(data)
        self.assertIn(probes["TRACE"]["status"], (403, 405, 501))
        self.assertEqual(findings(data, "inconsistencies", "TRACE", "RFC 9110 §9.3.8"), [])

    def test_webdav_default_changes_nothing(self):
        before = self.tree()
        for path in ("/dav/missing", "/dav/file.txt", "/dav/"):
            with self.subTest(path=path):
                data = probe_json("http://127.0.0.1:%d%s" % (self.port, path))
                self.assertIn(data["_rc"], (0, 1), data)
                probes = by_label(data)
                for m in UNSAFE:
                    self.assertEqual(probes[m]["class"], "not_tried", m)
                self.assertIsNotNone(data["dav"])
                if path == "/dav/missing":
                    allow = [m.strip() for m in probes["OPTIONS"]["allow"].split(",")]
                    for m in ("PUT", "MKCOL", "LOCK"):
                        self.assertIn(m, allow)
                        self.assertIn("listed in the Allow of OPTIONS", probes[m]["known"])
                # mod_dav says DAV: 1,2 and lists PROPFIND: sent to the URL.
                self.assertEqual(probes["PROPFIND"]["where"], "resource")
        self.assertEqual(self.tree(), before, "the probe changed the server's files")

    def test_webdav_unsafe_uses_only_its_own_resource(self):
        before = self.tree()
        data = probe_json("--unsafe", "http://127.0.0.1:%d/dav/file.txt" % self.port)
        self.assertIn(data["_rc"], (0, 1), data)
        self.assertTrue(data["scratch"]["ready"], data["scratch"])
        probes = by_label(data)
        for m in ("PUT", "DELETE", "MKCOL", "COPY", "MOVE"):
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(self.tree(), before, "the probe left something behind")


if __name__ == "__main__":
    unittest.main()
