"""`verbd probe --http2 URL`: the same table over HTTP/2 (h2c with prior
knowledge for http://, ALPN h2 for https://), then the same plan over
HTTP/1.1, and where the answers differ -- against verbd (h2c and TLS),
nginx with HTTP/2 on TLS, a small server whose HTTP/2 answers differ from
its HTTP/1.1 ones, and servers that do not speak HTTP/2 (a clear message,
never a hang).  The probe's rule holds over HTTP/2 too: nothing unsafe is
sent unless asked, and with --unsafe only to resources it made itself."""

import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import unittest

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:  # a Python other than the system's: Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import h2.config
    import h2.connection
    import h2.events

from harness import plain_and_tls_listen, test_certificate
from test_config import config_server
from peers import Nginx, find_program
from test_probe import DEFAULT_ORDER, UNSAFE, ProbeTestCase, by_label, label, probe, probe_json, tree

NGINX = find_program("nginx")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
LOG_RE = re.compile(r'"(\S+) (\S+) (HTTP/[0-9.]+)" (\d+)')


class VerbdCase(ProbeTestCase):
    """verbd on a plain and a TLS address, a web root at / and WebDAV at
    /dav/; `http2` as the test says."""

    def start_verbd(self, http2="on"):
        self.dir = tempfile.mkdtemp(prefix="verbd-probe-h2-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.www = os.path.join(self.dir, "www")
        self.dav = os.path.join(self.dir, "dav")
        os.makedirs(self.www)
        os.makedirs(self.dav)
        for path, data in (("www/index.html", b"hello\n"), ("dav/precious.txt", b"precious\n")):
            with open(os.path.join(self.dir, path), "wb") as f:
                f.write(data)
        self.plain, self.tls, listen = plain_and_tls_listen()
        self.log = os.path.join(self.dir, "access.log")
        conf = os.path.join(self.dir, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 1;\naccess_log %s;\nserver {\n%s    http2 %s;\n"
                    "    location / { static %s; }\n    location /dav/ { webdav %s; }\n}\n"
                    % (self.log, listen, http2, self.www, self.dav))
        srv = config_server(conf).start()
        self.addCleanup(srv.cleanup)

    def requests(self):
        """(method, target, protocol, status) of each access-log line."""
        with open(self.log) as f:
            return [m.groups() for m in map(LOG_RE.search, f) if m]

    def url(self, path, tls=False):
        return ("https://127.0.0.1:%d%s" if tls else "http://127.0.0.1:%d%s") % (
            self.tls if tls else self.plain, path)


class AgainstVerbd(VerbdCase):
    def check_same_over_both(self, tls):
        self.start_verbd()
        args = ["--insecure"] if tls else []
        data = probe_json("--http2", *args, self.url("/dav/", tls))
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(data["protocol"], "h2")
        self.assertEqual(data["http1_differences"], [])
        self.assertEqual(data["inconsistencies"], [])
        self.assertEqual([label(p) for p in data["probes"]], DEFAULT_ORDER)
        probes = by_label(data)
        self.assertEqual(probes["OPTIONS"]["status"], 204)
        self.assertIn("PROPFIND", probes["OPTIONS"]["allow"])
        self.assertEqual(probes["OPTIONS"]["dav"], "1, 2")
        self.assertEqual(probes["PROPFIND"]["status"], 207)
        self.assertEqual(probes["GET"]["status"], 200)
        for m in ("TRACE", "VERBDPROBE", "QUERY"):
            self.assertEqual(probes[m]["status"], 501, m)
        self.assertIn("HTTP/1.1 and HTTP/2 get the same answers.", data["verdict"])
        if tls:
            self.assertEqual(data["tls"]["alpn"], "h2")
        # Every probe sent went both ways: once in HTTP/2, once in HTTP/1.1.
        sent = [r for r in self.requests()]
        over = {v: [(m, t) for m, t, p, _ in sent if p == v] for v in ("HTTP/2.0", "HTTP/1.1")}
        tried = sum(1 for p in data["probes"] if p["tried"])
        self.assertEqual(len(over["HTTP/2.0"]), tried, sent)
        self.assertEqual(len(over["HTTP/1.1"]), tried, sent)
        self.assertIn(("OPTIONS", "*"), over["HTTP/2.0"])
        self.assertEqual(len(sent), 2 * tried)

    def test_h2c_same_answers_as_http1(self):
        self.check_same_over_both(False)

    def test_h2_over_tls_same_answers_as_http1(self):
        self.check_same_over_both(True)

    def test_table_names_the_protocol_and_the_comparison(self):
        self.start_verbd()
        rc, out, err, _ = probe("--http2", self.url("/"))
        self.assertEqual(rc, 0, (out, err))
        self.assertIn("over HTTP/2 (h2c, prior knowledge)", out.splitlines()[0])
        self.assertIn("HTTP/1.1 and HTTP/2: the same answers to every probe", out)

    def test_default_run_changes_nothing(self):
        self.start_verbd()
        before = tree(self.dav), tree(self.www)
        data = probe_json("--http2", self.url("/dav/precious.txt"))
        self.assertEqual(data["_rc"], 0, data)
        for m in UNSAFE:
            self.assertEqual(by_label(data)[m]["class"], "not_tried", m)
        self.assertEqual((tree(self.dav), tree(self.www)), before)
        self.assertFalse({m for m, _, _, _ in self.requests()} & set(UNSAFE))

    def test_unsafe_uses_only_its_own_resources_each_way(self):
        self.start_verbd()
        before = tree(self.dav)
        data = probe_json("--http2", "--unsafe", "--insecure", self.url("/dav/precious.txt",
                                                                        tls=True))
        self.assertEqual(data["_rc"], 0, data)
        probes = by_label(data)
        for m in ("PUT", "COPY", "MOVE", "DELETE", "MKCOL"):
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(tree(self.dav), before)
        # Each protocol's run made its own scratch resource, under a new
        # random name, and sent unsafe methods nowhere else.
        scratch = {}
        for m, t, p, _ in self.requests():
            if m in UNSAFE:
                self.assertRegex(t, r"^/dav/verbd-probe-[0-9a-f]{32}")
                if m == "PUT":
                    scratch.setdefault(p, set()).add(t[:len("/dav/verbd-probe-") + 32])
        self.assertEqual(set(scratch), {"HTTP/2.0", "HTTP/1.1"})
        self.assertEqual(len(scratch["HTTP/2.0"] | scratch["HTTP/1.1"]), 2, scratch)

    def test_http2_off_is_a_clear_error_on_both_addresses(self):
        self.start_verbd(http2="off")
        rc, out, err, secs = probe("--http2", self.url("/"))
        self.assertOneLineError(rc, out, err, "answered the HTTP/2 connection preface in HTTP/1 "
                                "(\"HTTP/1.1 505 HTTP Version Not Supported\")")
        self.assertIn("does not speak h2c", err)
        self.assertLess(secs, 3)
        rc, out, err, secs = probe("--http2", "--insecure", self.url("/", tls=True))
        self.assertOneLineError(rc, out, err, "does not offer HTTP/2 over TLS: asked for ALPN h2, "
                                "it chose \"http/1.1\"")
        self.assertLess(secs, 3)
        self.assertEqual(self.requests(), [])


def listen(test, handle):
    """A loopback listener for the test's lifetime; each connection goes
    to handle(conn) in a thread of its own and is closed at the end of the
    test.  Returns the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    test.addCleanup(s.close)
    held = []
    test.addCleanup(lambda: [c.close() for c in held])

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            held.append(c)
            threading.Thread(target=handle, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


class SilentAndClosingServers(ProbeTestCase):
    def listener(self, handle):
        return listen(self, handle)

    def test_silent_server_hits_the_timeout(self):
        port = self.listener(lambda c: None)
        rc, out, err, secs = probe("--http2", "--timeout", "1", "http://127.0.0.1:%d/" % port)
        self.assertOneLineError(rc, out, err, "no answer to the HTTP/2 connection preface within "
                                "1s")
        self.assertLess(secs, 4)

    def test_server_that_closes_is_named(self):
        port = self.listener(lambda c: c.close())
        rc, out, err, _ = probe("--http2", "http://127.0.0.1:%d/" % port)
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("no h2c on this port", err)


def differing_server(test):
    """A server on one port that speaks HTTP/1.1 and h2c (prior knowledge)
    with the same answers, except TRACE: 405 over HTTP/2, 501 over
    HTTP/1.1.  Returns its port."""

    def answer(method, h2c):
        if method in ("GET", "HEAD"):
            return 200, [("content-type", "text/plain"), ("content-length", "3")], b"hi\n"
        if method == "OPTIONS":
            return 204, [("allow", "GET, HEAD, OPTIONS")], b""
        if method == "TRACE" and h2c:
            return 405, [("allow", "GET, HEAD, OPTIONS"), ("content-length", "0")], b""
        return 501, [("content-length", "0")], b""

    def h1(c, first):
        data = first
        while b"\r\n\r\n" not in data:
            more = c.recv(65536)
            if not more:
                return
            data += more
        method = data.split(b" ", 1)[0].decode("latin-1")
        status, fields, body = answer(method, False)
        head = "HTTP/1.1 %d X\r\n" % status + "".join("%s: %s\r\n" % f for f in fields)
        if not any(k == "content-length" for k, _ in fields):
            head += "content-length: 0\r\n"
        c.sendall((head + "connection: close\r\n\r\n").encode() +
                  (b"" if method == "HEAD" else body))

    def h2c(c, first):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        data = first
        while True:
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    method = dict(ev.headers)[":method"]
                    status, fields, body = answer(method, True)
                    end = method == "HEAD" or not body
                    conn.send_headers(ev.stream_id, [(":status", str(status))] + fields,
                                      end_stream=end)
                    if not end:
                        conn.send_data(ev.stream_id, body, end_stream=True)
            c.sendall(conn.data_to_send())
            data = c.recv(65536)
            if not data:
                return

    def serve_one(c):
        try:
            first = b""
            while len(first) < len(PREFACE) and PREFACE.startswith(first):
                more = c.recv(len(PREFACE) - len(first))
                if not more:
                    return
                first += more
            (h2c if first == PREFACE else h1)(c, first)
        except OSError:
            pass
        finally:
            c.close()

    return listen(test, serve_one)


class Differences(ProbeTestCase):
    def test_an_answer_that_differs_is_reported(self):
        port = differing_server(self)
        data = probe_json("--http2", "http://127.0.0.1:%d/" % port)
        self.assertEqual(data["_rc"], 1, data)
        self.assertEqual(by_label(data)["TRACE"]["status"], 405)
        diffs = data["http1_differences"]
        self.assertEqual([d["method"] for d in diffs], ["TRACE"], diffs)
        self.assertEqual(diffs[0]["message"],
                         "HTTP/1.1: 501; HTTP/2: 405, Allow: GET, HEAD, OPTIONS")
        self.assertIn("Over HTTP/1.1 1 answer differs from HTTP/2's", data["verdict"])
        rc, out, err, _ = probe("--http2", "http://127.0.0.1:%d/" % port)
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("HTTP/1.1 and HTTP/2 differ (1)", out)
        self.assertIn("TRACE: HTTP/1.1: 501; HTTP/2: 405, Allow: GET, HEAD, OPTIONS", out)

    def test_without_http2_nothing_is_compared(self):
        port = differing_server(self)
        data = probe_json("http://127.0.0.1:%d/" % port)
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(data["protocol"], "http/1.1")
        self.assertNotIn("http1_differences", data)


@unittest.skipUnless(NGINX, "nginx is not installed (Debian package: nginx)")
class AgainstNginxHttp2(ProbeTestCase):
    """nginx with HTTP/2 on a TLS address (`listen ... ssl http2`, the form
    nginx 1.22 knows) and a TLS address without it."""

    @classmethod
    def setUpClass(cls):
        cert, key = test_certificate()
        cls.nginx = Nginx("""    log_format p '$request_method|$uri|$server_protocol|$status';
    access_log {d}/access.log p;
    ssl_certificate %s;
    ssl_certificate_key %s;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        root {root};
        location /dav/ {{ dav_methods PUT DELETE MKCOL COPY MOVE; }}
    }}
    server {{
        listen 127.0.0.1:{port2} ssl;
        root {root};
    }}
""" % (cert, key), ports=2)
        os.makedirs(os.path.join(cls.nginx.root, "dav"))
        with open(os.path.join(cls.nginx.root, "index.html"), "w") as f:
            f.write("hello over h2\n")
        cls.addClassCleanup(cls.nginx.cleanup)
        cls.nginx.start()
        cls.dir, (cls.h2, cls.h1) = cls.nginx.dir, cls.nginx.ports

    def log(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return [l.rstrip("\n").split("|") for l in f if l.strip()]

    def test_nginx_over_h2_and_http1(self):
        before = tree(os.path.join(self.dir, "root"))
        data = probe_json("--http2", "--insecure", "https://127.0.0.1:%d/dav/" % self.h2)
        self.assertIn(data["_rc"], (0, 1), data)
        self.assertEqual(data["protocol"], "h2")
        self.assertEqual(data["tls"]["alpn"], "h2")
        probes = by_label(data)
        self.assertEqual(probes["GET"]["status"], 403)  # a directory without an index
        # Whatever nginx answers, each difference names a probe that went
        # both ways with different answers, and the exit status says so.
        for d in data["http1_differences"]:
            self.assertIn(d["method"], by_label(data))
            self.assertRegex(d["message"], r"^HTTP/1\.1: .*; HTTP/2: ")
        self.assertEqual(data["_rc"], 1 if data["http1_differences"] or
                         data["inconsistencies"] else 0)
        protocols = [r[2] for r in self.log()]
        self.assertIn("HTTP/2.0", protocols)
        self.assertIn("HTTP/1.1", protocols)
        self.assertFalse({r[0] for r in self.log()} & set(UNSAFE))
        self.assertEqual(tree(os.path.join(self.dir, "root")), before)

    def test_nginx_without_http2_is_a_clear_error(self):
        rc, out, err, secs = probe("--http2", "--insecure", "https://127.0.0.1:%d/" % self.h1)
        self.assertOneLineError(rc, out, err, "does not offer HTTP/2 over TLS: asked for ALPN h2, "
                                "it chose \"http/1.1\"")
        self.assertLess(secs, 3)


if __name__ == "__main__":
    unittest.main()
