"""`verbd probe https://...`: certificate verification on by default
(against a test CA given with --cacert; a self-signed certificate and a
certificate for another name fail with the verifier's reason), --insecure,
SNI, the TLS version, cipher and ALPN result in the table and the JSON, the
--timeout deadline over a handshake that never comes, and the probe's
safety rules over TLS -- against nginx on loopback with certificates made
at test time by the openssl command, and small Python servers."""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from peers import Nginx, find_program
from test_probe import UNSAFE, ProbeTestCase, by_label, probe, probe_json, tree

OPENSSL = shutil.which("openssl")
NGINX = find_program("nginx")


def openssl(*args, cwd):
    p = subprocess.run([OPENSSL] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args),
                                                          p.stdout.decode("utf-8", "replace")))


def make_certificates(d):
    """In d: a test CA (ca.pem); leaf.pem/leaf.key for localhost and
    127.0.0.1, signed by it; wrong.pem/wrong.key for other.example and
    127.0.0.2, signed by it; self.pem/self.key, self-signed for localhost
    and 127.0.0.1.  All ECDSA P-256."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=verbd probe test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, cn, san in (("leaf", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("wrong", "other.example", "DNS:other.example,IP:127.0.0.2")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        openssl("req", *key, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                "-extfile", name + ".ext", cwd=d)
    openssl("req", "-x509", *key, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            cwd=d)


@unittest.skipUnless(OPENSSL, "the openssl command is not installed (Debian package: openssl)")
@unittest.skipUnless(NGINX, "nginx is not installed (Debian package: nginx)")
class AgainstNginxTls(ProbeTestCase):
    """nginx with TLS 1.2 and 1.3 on three loopback ports: `leaf` (signed by
    the test CA, for localhost and 127.0.0.1, with a dav location), `self`
    (self-signed) and `wrong` (signed by the test CA for another name).  Its
    access log records the SNI name, protocol and ALPN of each request."""

    @classmethod
    def setUpClass(cls):
        names = ("leaf", "self", "wrong")
        servers = "".join("""
    server {{{{
        listen 127.0.0.1:{{{port}}} ssl;
        ssl_certificate {{d}}/{name}.pem;
        ssl_certificate_key {{d}}/{name}.key;
        root {{root}};
        location /dav/ {{{{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_access user:rw group:rw all:r;
        }}}}
    }}}}""".format(name=name, port="port" if i == 0 else "port%d" % (i + 1))
                          for i, name in enumerate(names))
        cls.nginx = Nginx("""    log_format tls '$ssl_server_name|$ssl_protocol|$ssl_alpn_protocol|$request_method|$uri|'
                   '$http_destination';
    access_log {d}/access.log tls;
    ssl_protocols TLSv1.2 TLSv1.3;
""" + servers, ports=len(names))
        cls.addClassCleanup(cls.nginx.cleanup)
        cls.dir, cls.root = cls.nginx.dir, cls.nginx.root
        cls.ports = dict(zip(names, cls.nginx.ports))
        make_certificates(cls.dir)
        cls.ca = os.path.join(cls.dir, "ca.pem")
        os.makedirs(os.path.join(cls.root, "dav"))
        for name, data in (("index.html", b"hello over TLS\n"),
                           ("dav/precious.txt", b"precious\n"),
                           ("big.bin", b"x" * (2 * 1024 * 1024))):
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        cls.nginx.start()

    def url(self, server, path="/", host="localhost"):
        return "https://%s:%d%s" % (host, self.ports[server], path)

    def access_log(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return [l.rstrip("\n").split("|") for l in f if l.strip()]

    def requests_for(self, path):
        return [r for r in self.access_log() if r[4] == path]

    def assertVerifyFails(self, args, reason):
        rc, out, err, _ = probe("--method", "GET", *args)
        self.assertOneLineError(rc, out, err, "certificate verify failed: " + reason)
        self.assertIn("(use --insecure to skip verification)", err)

    # -- verification on, against the test CA --

    def test_verified_with_cacert_reports_tls13_and_alpn(self):
        data = probe_json("--cacert", self.ca, self.url("leaf"))
        self.assertIn(data["_rc"], (0, 1), data)  # 1: nginx's 405s carry no Allow
        self.assertEqual(data["url"], self.url("leaf"))
        self.assertEqual(data["tls"]["version"], "TLSv1.3", data["tls"])
        self.assertEqual(data["tls"]["alpn"], "http/1.1", data["tls"])
        self.assertTrue(data["tls"]["cipher"].startswith("TLS_"), data["tls"])
        self.assertIs(data["tls"]["verified"], True)
        probes = by_label(data)
        self.assertEqual(probes["GET"]["status"], 200)
        self.assertEqual(probes["GET"]["body_bytes"], len(b"hello over TLS\n"))
        self.assertEqual(probes["HEAD"]["status"], 200)
        self.assertTrue(data["server"].startswith("nginx"), data["server"])

    def test_table_shows_the_tls_line_once(self):
        rc, out, err, _ = probe("--cacert", self.ca, "--method", "GET", "--method", "HEAD",
                                self.url("leaf", "/index.html"))
        self.assertEqual(rc, 0, (out, err))
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("verbd probe " + self.url("leaf", "/index.html")),
                        out)
        tls = [l for l in lines if l.startswith("TLS: ")]
        self.assertEqual(len(tls), 1, out)
        self.assertRegex(tls[0], r"^TLS: TLSv1\.3, cipher TLS_\w+, ALPN http/1\.1, "
                                 r"certificate verified$")
        self.assertEqual(lines[1], tls[0], "the TLS line follows the title")

    def test_sni_names_the_host_and_never_an_ip_literal(self):
        for host, sni in (("localhost", "localhost"), ("127.0.0.1", "-")):
            with self.subTest(host=host):
                path = "/index.html?sni-" + host
                data = probe_json("--cacert", self.ca, "--method", "GET",
                                  self.url("leaf", path, host=host))
                self.assertEqual(data["_rc"], 0, data)
                self.assertIs(data["tls"]["verified"], True)
                seen = [r for r in self.requests_for("/index.html")]
                self.assertTrue(seen, self.access_log())
                self.assertEqual(seen[-1][:3], [sni, "TLSv1.3", "http/1.1"], seen[-1])

    def test_system_store_does_not_trust_the_test_ca(self):
        # Verification is on without --cacert: the system's CAs do not know ours.
        self.assertVerifyFails([self.url("leaf")], "unable to get local issuer certificate")

    def test_bounded_body_over_tls(self):
        data = probe_json("--cacert", self.ca, "--method", "GET", self.url("leaf", "/big.bin"))
        self.assertEqual(data["_rc"], 0, data)
        get = by_label(data)["GET"]
        self.assertTrue(get["truncated"], get)
        self.assertEqual(get["body_bytes"], 1024 * 1024)

    # -- verification failures --

    def test_self_signed_fails_without_insecure(self):
        self.assertVerifyFails([self.url("self")], "self-signed certificate")
        # Trusting the test CA does not make a certificate it did not sign good.
        self.assertVerifyFails(["--cacert", self.ca, self.url("self")],
                               "self-signed certificate")

    def test_insecure_skips_verification(self):
        for opt in ("--insecure", "-k"):
            with self.subTest(opt=opt):
                data = probe_json(opt, "--method", "GET", self.url("self", "/index.html"))
                self.assertEqual(data["_rc"], 0, data)
                self.assertIs(data["tls"]["verified"], False)
                self.assertEqual(data["tls"]["alpn"], "http/1.1")
                self.assertEqual(by_label(data)["GET"]["status"], 200)
        rc, out, err, _ = probe("-k", "--method", "GET", self.url("self", "/index.html"))
        self.assertEqual(rc, 0, err)
        self.assertIn(", certificate not verified (--insecure)\n", out)

    def test_wrong_host_name_fails(self):
        self.assertVerifyFails(["--cacert", self.ca, self.url("wrong")], "hostname mismatch")
        self.assertVerifyFails(["--cacert", self.ca, self.url("wrong", host="127.0.0.1")],
                               "IP address mismatch")
        # The same certificate is fine for a client that does not check.
        data = probe_json("-k", "--method", "GET", self.url("wrong", "/index.html"))
        self.assertEqual(data["_rc"], 0, data)

    def test_bad_cacert_file_is_a_usage_error(self):
        key = os.path.join(self.dir, "leaf.key")
        for path, text in ((os.path.join(self.dir, "missing.pem"), "No such file"),
                           (key, "no usable PEM certificate")):
            with self.subTest(path=path):
                rc, out, err, _ = probe("--cacert", path, self.url("leaf"))
                self.assertOneLineError(rc, out, err, "--cacert " + path)
                self.assertIn(text, err)

    # -- the safety rules hold over TLS --

    def test_default_run_changes_nothing_over_tls(self):
        before = tree(self.root)
        data = probe_json("--cacert", self.ca, self.url("leaf", "/dav/precious.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        for m in UNSAFE:
            self.assertEqual(by_label(data)[m]["class"], "not_tried", m)
        self.assertEqual(tree(self.root), before)
        sent = {r[3] for r in self.access_log()}
        self.assertFalse(sent & set(UNSAFE), sent)

    def test_unsafe_over_tls_uses_only_its_own_resource(self):
        before = tree(self.root)
        data = probe_json("--cacert", self.ca, "--unsafe", self.url("leaf", "/dav/precious.txt"))
        self.assertIn(data["_rc"], (0, 1), data)
        scratch = data["scratch"]["path"]
        self.assertRegex(scratch, r"^/dav/verbd-probe-[0-9a-f]{32}$")
        probes = by_label(data)
        for m in ("PUT", "COPY", "MOVE", "DELETE", "MKCOL"):
            self.assertEqual(probes[m]["class"], "allowed", probes[m])
        moved = 0
        for r in self.access_log():
            if r[3] in UNSAFE:
                self.assertTrue(r[4].startswith(scratch), r)
            if r[3] in ("COPY", "MOVE"):
                # The Destination names the same origin: https, this port.
                self.assertTrue(r[5].startswith(self.url("leaf", scratch)), r)
                moved += 1
        self.assertEqual(moved, 2)
        self.assertEqual(data["scratch"]["left_behind"], [])
        self.assertEqual(tree(self.root), before)


class StalledAndPlainServers(ProbeTestCase):
    """Servers that do not speak TLS the way the probe expects."""

    def listener(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.addCleanup(s.close)
        return s

    def stalling_server(self, trickle):
        """Accepts TCP connections and never completes a handshake: says
        nothing, or (trickle) starts a 16 KiB handshake record and sends it
        one byte every 0.1 s."""
        lst = self.listener()
        stop = threading.Event()
        self.addCleanup(stop.set)

        def hold(c):
            with c:
                if trickle:
                    c.sendall(b"\x16\x03\x03\x40\x00")
                while not stop.wait(0.1):
                    if trickle:
                        try:
                            c.sendall(b"\x00")
                        except OSError:
                            return

        def serve():
            lst.settimeout(0.2)
            while not stop.is_set():
                try:
                    c, _ = lst.accept()
                except OSError:
                    continue
                threading.Thread(target=hold, args=(c,), daemon=True).start()
        threading.Thread(target=serve, daemon=True).start()
        return lst.getsockname()[1]

    def test_stalled_handshake_hits_the_timeout(self):
        for trickle in (False, True):
            with self.subTest(trickle=trickle):
                port = self.stalling_server(trickle)
                rc, out, err, secs = probe("--timeout", "1", "--method", "GET",
                                           "https://127.0.0.1:%d/" % port)
                self.assertOneLineError(rc, out, err, "TLS handshake with 127.0.0.1:%d not "
                                                      "complete within 1s" % port)
                self.assertGreaterEqual(secs, 0.9)
                self.assertLess(secs, 4, "the handshake must end at --timeout")

    def test_plain_http_port_is_named(self):
        srv = self.verbd()
        rc, out, err, _ = probe("--method", "GET", "https://127.0.0.1:%d/" % srv.port)
        self.assertOneLineError(rc, out, err, "(is it a plain http:// port?)")

    @unittest.skipUnless(OPENSSL, "the openssl command is not installed")
    def test_server_without_alpn_reports_none(self):
        d = tempfile.mkdtemp(prefix="verbd-probe-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        make_certificates(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key"))
        lst = self.listener()

        def serve():
            lst.settimeout(10)
            try:
                c, _ = lst.accept()
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.settimeout(5)
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        chunk = t.recv(4096)
                        if not chunk:
                            return
                        buf += chunk
                    t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                              b"Connection: close\r\n\r\nok\n")
            except (OSError, ssl.SSLError):
                pass
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        data = probe_json("--cacert", os.path.join(d, "ca.pem"), "--method", "GET",
                          "https://localhost:%d/" % lst.getsockname()[1])
        th.join(10)
        self.assertEqual(data["_rc"], 0, data)
        self.assertEqual(data["tls"]["alpn"], "none", data["tls"])
        self.assertEqual(by_label(data)["GET"]["status"], 200)


if __name__ == "__main__":
    unittest.main()
