"""HTTPS: TLS listeners with certificates made at test time.  SNI picks the
certificate and the server (a name no server has gets the default); old
protocols and non-AEAD ciphers are refused; sessions resume across
workers; a reload swaps a certificate without dropping a download, and a
broken pair on reload keeps the old one; a stalled handshake is closed at
its timeout; plain HTTP to a TLS port gets 400; redirect_to_https and 421."""

import os
import signal
import socket
import ssl
import subprocess
import time

from harness import Conn, TLSSocket, build_request, free_port, run_verbd, tls_client_context
from test_config import ConfigCase, config_server


def make_cert(directory, name, days=30, issuer=None):
    """A certificate for `name` (ECDSA P-256) in directory: (cert, key)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    str(days), "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def peer_name(conn):
    """The CN of the certificate the server presented."""
    der = conn.sock.obj.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                       stdout=subprocess.PIPE, check=True)
    return p.stdout.decode().strip().split("CN = ")[-1].split("CN=")[-1]


class TLSCase(ConfigCase):
    def setUp(self):
        super().setUp()
        for site in ("a", "b"):
            self.write(site + "/index.html", site)
        self.write("big/file.bin", os.urandom(4 << 20))
        self.a = make_cert(self.dir, "a.example")
        self.b = make_cert(self.dir, "b.example")
        self.port = free_port()

    def config(self, extra="", head="access_log off;\nworkers 1;\nheader_timeout 1s;\n"):
        return head + """
server {
    listen 127.0.0.1:%(port)d tls;
    server_name a.example;
    tls_certificate %(ac)s;
    tls_certificate_key %(ak)s;
    location / { static a; }
    location /big/ { static big; }
}
server {
    listen 127.0.0.1:%(port)d tls default_server;
    server_name b.example;
    tls_certificate %(bc)s;
    tls_certificate_key %(bk)s;
    location / { static b; }
    location /dav/ { webdav b; }
}
%(extra)s""" % {"port": self.port, "ac": self.a[0], "ak": self.a[1], "bc": self.b[0],
                "bk": self.b[1], "extra": extra}

    def start(self, text):
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.assertTrue(srv.tls)
        return srv

    def tls_conn(self, sni, context=None):
        c = Conn("127.0.0.1", self.port, tls=True, server_hostname=sni, context=context)
        self.addCleanup(c.close)
        return c

    def get(self, c, target="/", host=None, method="GET"):
        c.send(build_request(method, target, host=host or "x"))
        return c.read_response(method)


class SNI(TLSCase):
    def test_sni_picks_certificate_and_server(self):
        self.start(self.config())
        for name in ("a.example", "b.example"):
            c = self.tls_conn(name)
            self.assertEqual(peer_name(c), name)
            r = self.get(c, host=name)
            self.assertEqual(r.body, name[0].encode())

    def test_unknown_name_and_no_sni_get_the_default(self):
        self.start(self.config())
        for sni in ("nobody.example", None):
            c = self.tls_conn(sni)
            self.assertEqual(peer_name(c), "b.example")
            self.assertEqual(self.get(c, host="b.example").body, b"b")

    def test_host_of_another_server_is_misdirected(self):
        self.start(self.config())
        c = self.tls_conn("a.example")
        r = self.get(c, host="b.example")
        self.assertEqual(r.status, 421)
        # The same connection still serves its own name.
        self.assertEqual(self.get(c, host="a.example").body, b"a")

    def test_verified_by_a_client_that_trusts_the_certificate(self):
        self.start(self.config())
        ctx = tls_client_context(cafile=self.a[0])
        c = self.tls_conn("a.example", context=ctx)
        self.assertEqual(self.get(c, host="a.example").status, 200)


class Protocols(TLSCase):
    def handshake(self, **ctx_opts):
        ctx = tls_client_context()
        for k, v in ctx_opts.items():
            if k == "ciphers":
                ctx.set_ciphers(v)
            elif k == "alpn":
                ctx.set_alpn_protocols(v)
            else:
                setattr(ctx, k, v)
        return Conn("127.0.0.1", self.port, tls=True, server_hostname="a.example", context=ctx)

    def test_old_protocols_refused(self):
        self.start(self.config())
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = version
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                Conn("127.0.0.1", self.port, tls=True, context=ctx)

    def test_tls12_without_aead_refused_with_aead_accepted(self):
        self.start(self.config())
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            self.handshake(maximum_version=ssl.TLSVersion.TLSv1_2,
                           ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384")
        c = self.handshake(maximum_version=ssl.TLSVersion.TLSv1_2,
                           ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(c.sock.version(), "TLSv1.2")
        self.assertEqual(c.sock.obj.cipher()[0], "ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_alpn(self):
        self.start(self.config())
        c = self.handshake(alpn=["h2", "http/1.1"])
        self.assertEqual(c.sock.obj.selected_alpn_protocol(), "h2")
        c = self.handshake(alpn=["spdy/3", "http/1.1"])
        self.assertEqual(c.sock.obj.selected_alpn_protocol(), "http/1.1")
        with self.assertRaisesRegex(ssl.SSLError, "NO_APPLICATION_PROTOCOL|no application"):
            self.handshake(alpn=["spdy/3"])


def server_pid_of(port, client_port, pids):
    """Which of pids holds the server side of the connection from
    client_port: its socket inode from /proc/net/tcp, then /proc/PID/fd."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, remote = parts[1], parts[2]
            if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
                inode = parts[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                    return pid
        except OSError:
            pass
    return None


def resumed_tls(raw, ctx, name, session):
    """A TLSSocket over raw offering `session` for resumption."""
    s = TLSSocket.__new__(TLSSocket)
    s.raw, s.inc, s.out = raw, ssl.MemoryBIO(), ssl.MemoryBIO()
    s.obj = ctx.wrap_bio(s.inc, s.out, server_hostname=name, session=session)
    while True:
        try:
            s.obj.do_handshake()
            s._flush()
            return s
        except ssl.SSLWantReadError:
            s._flush()
            s._pull()


class Resumption(TLSCase):
    def workers(self, srv, n):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(srv.pid)], stdout=subprocess.PIPE).stdout
            pids = [int(p) for p in out.split()]
            if len(pids) == n:
                return pids
            time.sleep(0.05)
        self.fail("%d workers did not start" % n)

    def test_resumption_across_workers(self):
        """A session from one worker resumes on another: the issuing worker
        is killed (its supervisor starts a new one), so whichever takes the
        next connection is not the one that issued the session."""
        srv = self.start(self.config(head="access_log off;\nworkers 2;\n"))
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            workers = self.workers(srv, 2)
            ctx = tls_client_context()
            ctx.maximum_version = version
            first = self.tls_conn("a.example", context=ctx)
            self.get(first, host="a.example")  # TLS 1.3 tickets arrive after the handshake
            session = first.sock.obj.session
            issuer = server_pid_of(self.port, first.sock.raw.getsockname()[1], workers)
            self.assertIn(issuer, workers)
            first.close()
            os.kill(issuer, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while issuer in self.workers(srv, 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            now = self.workers(srv, 2)
            self.assertNotIn(issuer, now)
            raw = socket.create_connection(("127.0.0.1", self.port))
            self.addCleanup(raw.close)
            s = resumed_tls(raw, ctx, "a.example", session)
            self.assertTrue(s.obj.session_reused, version)
            s.sendall(build_request("GET", "/", host="a.example"))
            self.assertIn(b"200 OK", s.recv(4096))
            self.assertIn(server_pid_of(self.port, raw.getsockname()[1], now), now)

    def test_other_secret_does_not_resume(self):
        """Tickets are bound to this server's secret: another verbd (another
        secret) with the same certificate makes a full handshake."""
        srv = self.start(self.config())
        ctx = tls_client_context()
        first = self.tls_conn("a.example", context=ctx)
        self.get(first, host="a.example")
        session = first.sock.obj.session
        first.close()
        srv.stop()
        srv = self.start(self.config())
        raw = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(raw.close)
        s = resumed_tls(raw, ctx, "a.example", session)
        self.assertFalse(s.obj.session_reused)


class Reload(TLSCase):
    def serve_name(self):
        c = self.tls_conn("a.example")
        return peer_name(c)

    def test_reload_swaps_certificate_and_keeps_a_download(self):
        srv = self.start(self.config())
        c = Conn("127.0.0.1", self.port, tls=True, server_hostname="a.example", rcvbuf=4096)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/big/file.bin", host="a.example"))
        c._fill()  # the download has begun
        # The new certificate for a.example has another name: tell them apart.
        other = make_cert(self.dir, "a2.example")
        os.replace(other[0], self.a[0])
        os.replace(other[1], self.a[1])
        os.kill(srv.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.serve_name() != "a2.example" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.serve_name(), "a2.example")
        r = c.read_response("GET")
        self.assertEqual(r.status, 200)
        with open(os.path.join(self.dir, "big/file.bin"), "rb") as f:
            self.assertEqual(r.body, f.read())

    def test_broken_pair_on_reload_keeps_the_old_one(self):
        err = os.path.join(self.dir, "error.log")
        srv = self.start(self.config(head="access_log off;\nworkers 1;\nerror_log %s;\n" % err))
        with open(self.b[1], "rb") as f:
            other_key = f.read()
        with open(self.a[1], "wb") as f:
            f.write(other_key)  # a.example's key no longer matches its certificate
        os.kill(srv.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        text = ""
        while "reload" not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            with open(err) as f:
                text = f.read()
        self.assertIn("the running configuration stays", text)
        self.assertIn(self.a[0], text)
        self.assertEqual(self.serve_name(), "a.example")


class Limits(TLSCase):
    def test_stalled_handshake_closed_at_its_timeout(self):
        self.start(self.config())
        s = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(s.close)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello, cut short
        s.settimeout(5)
        start = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        self.assertLess(time.monotonic() - start, 4)  # header_timeout 1s

    def test_plain_http_to_a_tls_port(self):
        self.start(self.config())
        c = Conn("127.0.0.1", self.port)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/", host="a.example"))
        r = c.read_response("GET")
        self.assertEqual(r.status, 400)
        self.assertIn(b"HTTPS", r.body.upper())


class Redirect(TLSCase):
    def test_redirect_to_https(self):
        plain = free_port()
        self.write("acme/token", "proof")
        self.start(self.config(extra="""
server {
    listen 127.0.0.1:%d;
    server_name a.example b.example;
    location /.well-known/acme-challenge/ { static acme; }
    redirect_to_https;
}
""" % plain))
        def ask(method, target, host):
            c = Conn("127.0.0.1", plain)
            self.addCleanup(c.close)
            c.send(build_request(method, target, host=host))
            return c.read_response(method)
        r = ask("GET", "/x?y=1", "a.example")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://a.example:%d/x?y=1" % self.port)
        r = ask("PUT", "/dav/f", "b.example:80")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.header("Location"), "https://b.example:%d/dav/f" % self.port)
        # a.example implements no PUT: the plain server's own answer.
        self.assertEqual(ask("PUT", "/f", "a.example").status, 501)
        self.assertEqual(ask("PROPFIND", "/f", "b.example").status, 308)
        self.assertEqual(ask("BREW", "/f", "b.example").status, 501)
        # What the plain server maps itself is served, not redirected.
        r = ask("GET", "/.well-known/acme-challenge/token", "a.example")
        self.assertEqual((r.status, r.body), (200, b"proof"))


class ConfigChecks(TLSCase):
    def error(self, text):
        code, out, err = self.check(text)
        self.assertNotEqual(code, 0, out)
        return err

    def test_mismatched_pair_is_an_error_at_its_line(self):
        text = self.config().replace(self.a[1], self.b[1], 1)
        err = self.error(text)
        self.assertRegex(err, r"verbd.conf:8:21: .*%s" % self.a[0].replace(".", r"\."))

    def test_listen_tls_needs_a_certificate(self):
        err = self.error("server { listen 127.0.0.1:%d tls; location / { static a; } }\n"
                         % self.port)
        self.assertIn("tls needs tls_certificate and tls_certificate_key", err)
        err = self.error(self.config().replace("    tls_certificate_key %s;\n" % self.a[1], ""))
        self.assertIn("tls_certificate needs tls_certificate_key", err)

    def test_tls_and_plain_on_one_address(self):
        text = self.config() + ("server { listen 127.0.0.1:%d; server_name c; "
                                "location / { static a; } }\n" % self.port)
        path = self.write("verbd.conf", text)
        p = run_verbd("-c", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("plain here, tls in another server", p.stderr.decode())

    def test_expiring_certificate_warns(self):
        self.a = make_cert(self.dir, "soon.example", days=10)
        code, out, err = self.check(self.config())
        self.assertEqual(code, 0, err)
        self.assertIn("expires in", out + err)

    def test_old_protocol_refused_in_config(self):
        err = self.error(self.config().replace("    location / { static a; }",
                                               "    tls_protocols TLSv1.1 TLSv1.2;\n"
                                               "    location / { static a; }", 1))
        self.assertIn("TLSv1.1", err)
