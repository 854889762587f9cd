"""Access control (docs/config.md, "Access control"): allow/deny by address
over IPv4 and IPv6, HTTP Basic authentication against htpasswd files of
every scheme verbd reads, satisfy any|all, the file read again on SIGHUP,
and the method decision around them: 501 and the configured-set 405 come
before access control, the module's view of the resource only after it,
and an OPTIONS without access gets the configured set."""

import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
import unittest

from harness import run_verbd, Conn, build_request, free_port
from test_config import ConfigCase, read, wait_for

REALM_FIELD = 'Basic realm="Staff only", charset="UTF-8"'
FORBIDDEN_BODY = b"403 Forbidden\nAccess to this location is forbidden.\n"


def basic(user, password):
    raw = ("%s:%s" % (user, password)).encode()
    return "Basic " + base64.b64encode(raw).decode()


def run(cmd, data=None):
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=True)
    return p.stdout.decode().strip()


def entry(scheme, user, password, cost=4):
    """One htpasswd line, made by the tools an operator uses."""
    if scheme == "bcrypt":
        return run(["htpasswd", "-nbB", "-C", str(cost), user, password])
    if scheme == "bcrypt-2b":
        # The $2b$ spelling (OpenBSD, Python's crypt): the same hash as $2y$.
        line = run(["htpasswd", "-nbB", "-C", str(cost), user, password])
        return line.replace(":$2y$", ":$2b$", 1)
    flag = {"sha512": "-6", "sha256": "-5", "apr1": "-apr1"}[scheme]
    return "%s:%s" % (user, run(["openssl", "passwd", flag, "-stdin"], password.encode()))


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@unittest.skipUnless(shutil.which("htpasswd") and shutil.which("openssl"),
                     "htpasswd (apache2-utils) and openssl make the test's password files")
class AccessCase(ConfigCase):
    HEAD = "listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\nerror_log error.log info;\n"

    def setUp(self):
        super().setUp()
        self.www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(self.www, "dir"))
        self.write("www/index.html", "index\n")
        self.write("www/dir/file.txt", "file\n")
        self.dav = os.path.join(self.dir, "dav")
        os.makedirs(os.path.join(self.dav, "coll"))
        self.write("dav/file.txt", "dav file\n")

    def users(self, *lines, name="users"):
        return self.write(name, "\n".join(lines) + "\n")

    def ask(self, method, target, headers=None, conn=None, server=None):
        c = conn or self.connect(server=server)
        c.send(build_request(method, target, headers))
        return c.read_response(method)

    def auth(self, user, password):
        return {"Authorization": basic(user, password)}

    def error_log(self):
        return read(os.path.join(self.dir, "error.log")).decode("utf-8", "replace")


class AddressRules(AccessCase):
    def test_first_match_wins_ipv4(self):
        self.serve(self.HEAD + """
location / { static www; }
location /in/ { static www; allow 127.0.0.1; deny all; }
location /out/ { static www; deny 127.0.0.0/8; allow all; }
location /first/ { static www; allow 127.0.0.1; deny 127.0.0.1; }
location /second/ { static www; deny 127.0.0.1; allow 127.0.0.1; }
location /other/ { static www; allow 10.0.0.0/8; deny all; }
location /nomatch/ { static www; allow 10.0.0.0/8; }
""")
        self.assertEqual(self.ask("GET", "/in/index.html").status, 200)
        r = self.ask("GET", "/out/index.html")
        self.assertEqual((r.status, r.body), (403, FORBIDDEN_BODY))
        self.assertIsNone(r.header("WWW-Authenticate"))
        self.assertEqual(r.media_type(), "text/plain")
        self.assertEqual(self.ask("GET", "/first/index.html").status, 200)
        self.assertEqual(self.ask("GET", "/second/index.html").status, 403)
        self.assertEqual(self.ask("GET", "/other/index.html").status, 403)
        # No rule matches: the address rules neither grant nor refuse.
        self.assertEqual(self.ask("GET", "/nomatch/index.html").status, 200)
        self.assertEqual(self.ask("GET", "/index.html").status, 200)
        # HEAD: the 403's head, no body.
        r = self.ask("HEAD", "/out/index.html")
        self.assertEqual((r.status, r.body), (403, b""))

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_and_ipv4_mapped_rules(self):
        text = ("access_log off;\nworkers 1;\nlisten 127.0.0.1:0;\nlisten [::1]:0;\n"
                "location / { static www; }\n"
                "location /v6/ { static www; deny ::1; allow all; }\n"
                "location /only6/ { static www; allow ::1/128; deny all; }\n"
                "location /net6/ { static www; allow 2001:db8::/32; allow ::/64; deny all; }\n"
                # ::ffff:127.0.0.1 names the IPv4 client 127.0.0.1.
                "location /mapped/ { static www; deny ::ffff:127.0.0.1; allow all; }\n"
                "location /mapped-net/ { static www; allow ::ffff:127.0.0.0/104; deny all; }\n")
        srv = self.serve(text)
        self.assertTrue(wait_for(lambda: len(srv.addresses) >= 2, 5), srv.addresses)
        hosts = {("6" if ":" in h.strip("[]") else "4"): (h.strip("[]"), p)
                 for h, p in srv.addresses}
        self.assertEqual(set(hosts), {"4", "6"}, srv.addresses)

        def status(fam, target):
            c = Conn(*hosts[fam])
            self.conns.append(c)
            return c.request("GET", target).status

        self.assertEqual(status("6", "/v6/index.html"), 403)
        self.assertEqual(status("4", "/v6/index.html"), 200)
        self.assertEqual(status("6", "/only6/index.html"), 200)
        self.assertEqual(status("4", "/only6/index.html"), 403)
        self.assertEqual(status("6", "/net6/index.html"), 200)  # ::1 is in ::/64
        self.assertEqual(status("4", "/net6/index.html"), 403)
        self.assertEqual(status("4", "/mapped/index.html"), 403)
        self.assertEqual(status("6", "/mapped/index.html"), 200)
        self.assertEqual(status("4", "/mapped-net/index.html"), 200)
        self.assertEqual(status("6", "/mapped-net/index.html"), 403)

    def test_inherited_from_top_level_and_server_as_a_whole(self):
        # A level with any allow/deny replaces the outer list (as in nginx):
        # /own/ does not inherit "deny all", so 127.0.0.1 matches nothing.
        self.serve(self.HEAD + """
deny all;
location / { static www; }
location /own/ { static www; allow 10.0.0.1; }
location /open/ { static www; allow all; }
""")
        self.assertEqual(self.ask("GET", "/index.html").status, 403)
        self.assertEqual(self.ask("GET", "/own/index.html").status, 200)
        self.assertEqual(self.ask("GET", "/open/index.html").status, 200)

    def test_server_block_replaces_top_level_rules(self):
        port = free_port()
        self.serve("""access_log off;
workers 1;
deny all;
server {
    listen 127.0.0.1:%d;
    allow 127.0.0.1;
    location / { static www; }
    location /no/ { static www; deny all; }
}
""" % port)
        self.assertEqual(self.ask("GET", "/index.html").status, 200)
        self.assertEqual(self.ask("GET", "/no/index.html").status, 403)

    def test_config_errors_and_warnings(self):
        self.assertOneError(self.HEAD + "location / {\n static www;\n allow 10.0.0.0/33;\n}\n",
                            7, 8, '"10.0.0.0/33" is not an address', exact=False)
        self.assertOneError(self.HEAD + "location / {\n static www;\n deny example.com;\n}\n",
                            7, 7, '"example.com" is not an address', exact=False)
        self.assertOneError(self.HEAD + "location / {\n static www;\n allow;\n}\n",
                            7, 2, "allow takes 1 argument")
        rc, out, err = self.check(self.HEAD + "location / { static www; allow 10.1.2.3/8; }\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("warning", err)
        self.assertIn("has host bits set; it means 10.0.0.0/8", err)


class BasicAuth(AccessCase):
    def serve_auth(self, users_path, extra="", loc_extra=""):
        return self.serve(self.HEAD + extra + """
location / { static www; }
location /priv/ { static www; auth_basic "Staff only"; auth_basic_user_file %s; %s }
""" % (users_path, loc_extra))

    def test_challenge(self):
        self.serve_auth(self.users(entry("bcrypt", "alice", "s3cret")))
        r = self.ask("GET", "/priv/index.html")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header_all("WWW-Authenticate"), [REALM_FIELD])
        self.assertEqual(r.body, b"401 Unauthorized\nAuthentication is required for this "
                                 b"location.\n")
        r = self.ask("HEAD", "/priv/index.html")
        self.assertEqual((r.status, r.header("WWW-Authenticate"), r.body), (401, REALM_FIELD, b""))
        r = self.ask("GET", "/priv/index.html", self.auth("alice", "s3cret"))
        self.assertEqual((r.status, r.body), (200, b"index\n"))
        self.assertIsNone(r.header("WWW-Authenticate"))
        # An unguarded location never asks.
        self.assertEqual(self.ask("GET", "/index.html").status, 200)

    def test_verbd_M_shows_the_guards(self):
        path = self.users(entry("bcrypt", "alice", "s3cret"))
        conf = os.path.join(self.dir, "guards.conf")
        with open(conf, "w") as f:
            f.write(self.HEAD + "location / { static www; }\nlocation /priv/ { static www; "
                    "allow 127.0.0.1; deny all; auth_basic x; auth_basic_user_file %s; "
                    "satisfy any; }\n" % path)
        out = run_verbd("-M", "-c", conf).stdout.decode()
        lines = out.splitlines()
        at = lines.index("  location /priv/: GET, HEAD, OPTIONS")
        self.assertEqual(lines[at + 1], "    guards: access auth_basic (satisfy any)")
        self.assertNotIn("guards:", lines[lines.index("  location /: GET, HEAD, OPTIONS") + 1])

    def test_access_log_names_the_user_let_in(self):
        # The Common Log Format's third field: the user auth_basic let in,
        # never a name that was refused.
        log = os.path.join(self.dir, "access.log")
        self.serve_auth(self.users(entry("bcrypt", "alice", "s3cret")),
                        extra="access_log %s;\n" % log)
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("alice", "s3cret")).status,
                         200)
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("mallory", "x")).status,
                         401)
        self.assertEqual(self.ask("GET", "/index.html", self.auth("alice", "s3cret")).status, 200)
        self.server.stop()
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 3, lines)
        self.assertIn(" - alice [", lines[0])
        self.assertIn(" - - [", lines[1])
        self.assertNotIn("mallory", lines[1])
        # An unguarded location checks no credentials: it names nobody.
        self.assertIn(" - - [", lines[2])

    def test_every_scheme_right_and_wrong(self):
        schemes = ["bcrypt", "bcrypt-2b", "sha512", "sha256", "apr1"]
        lines = [entry(s, "u-" + s, "pw-" + s) for s in schemes]
        self.serve_auth(self.users(*lines))
        for s in schemes:
            with self.subTest(scheme=s):
                r = self.ask("GET", "/priv/index.html", self.auth("u-" + s, "pw-" + s))
                self.assertEqual(r.status, 200, lines)
                r = self.ask("GET", "/priv/index.html", self.auth("u-" + s, "pw-" + s + "x"))
                self.assertEqual((r.status, r.header("WWW-Authenticate")), (401, REALM_FIELD))
                r = self.ask("GET", "/priv/index.html", self.auth("u-" + s, ""))
                self.assertEqual(r.status, 401)
                # Another user's password is not this one's.
                other = schemes[(schemes.index(s) + 1) % len(schemes)]
                r = self.ask("GET", "/priv/index.html", self.auth("u-" + s, "pw-" + other))
                self.assertEqual(r.status, 401)
        r = self.ask("GET", "/priv/index.html", self.auth("nobody", "pw-bcrypt"))
        self.assertEqual(r.status, 401)
        log = self.error_log()
        self.assertIn('wrong password for user "u-sha512"', log)
        self.assertIn("unknown user", log)

    def test_apr1_loads_with_a_warning(self):
        path = self.users(entry("apr1", "old", "pw"))
        rc, out, err = self.check(self.HEAD + "location / { static www; auth_basic x; "
                                  "auth_basic_user_file %s; }\n" % path)
        self.assertEqual(rc, 0, err)
        self.assertIn("warning: auth_basic_user_file: %s: 1 entry uses $apr1$ (MD5), which is "
                      "weak" % path, err)
        # Inherited by three locations: said once, at its line.
        rc, out, err = self.check(self.HEAD + "auth_basic x;\nauth_basic_user_file %s;\n"
                                  "location / { static www; }\nlocation /a/ { static www; }\n"
                                  "location /b/ { static www; }\n" % path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err.count("warning"), 1, err)
        self.assertIn("verbd.conf:6:22: warning", err)

    def test_refused_entries(self):
        good = entry("bcrypt", "alice", "pw")
        cases = [
            ("bob:plaintext", "a plain-text password is refused"),
            ("bob:abJnggxhB/yWI", "DES crypt is refused"),
            ("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unsalted SHA-1"),
            ("bob:$1$abc$0123456789012345678901", "an unsupported scheme"),
            ("bob:" + entry("bcrypt", "x", "pw", cost=13).split(":", 1)[1],
             "bcrypt cost 13 is over 12"),
            ("bob:$6$rounds=900000$salt$" + "a" * 86, "SHA-crypt rounds 900000 are over 500000"),
            ("bob:$2y$05$tooshort", "a malformed bcrypt hash"),
            ("no colon here", 'no ":" between user and password hash'),
            (good, 'user "alice" is listed twice'),
        ]
        for line, msg in cases:
            with self.subTest(line=line):
                path = self.users("# staff", good, "", line, name="bad-users")
                errs = self.errors(self.HEAD + "location / {\n static www;\n auth_basic x;\n"
                                   " auth_basic_user_file bad-users;\n}\n")
                self.assertEqual(len(errs), 1, errs)
                f, line_no, col, m = errs[0]
                self.assertEqual((line_no, col), (8, 23), errs)
                self.assertIn(msg, m)
                if "twice" not in msg:
                    self.assertIn("%s:4: " % path, m)

    def test_auth_basic_needs_a_user_file(self):
        self.assertOneError(self.HEAD + "location /p/ {\n static www;\n auth_basic x;\n}\n", 5, 1,
                            "location /p/: auth_basic needs auth_basic_user_file", exact=False)
        self.assertOneError(self.HEAD + "location / { static www; auth_basic_user_file nope; }\n",
                            5, 47, "nope: No such file or directory", exact=False)

    def test_misspelt_directive_gets_a_hint(self):
        self.assertOneError(self.HEAD + "location / { static www; auth_basic_userfile x; }\n",
                            5, 26, 'unknown directive "auth_basic_userfile" (did you mean '
                            'auth_basic_user_file?)')

    def test_auth_basic_off_and_inheritance(self):
        path = self.users(entry("sha512", "alice", "pw"))
        self.serve(self.HEAD + """
auth_basic "Staff only";
auth_basic_user_file %s;
location / { static www; }
location /pub/ { static www; auth_basic off; }
location /other/ { static www; auth_basic "Other realm"; }
""" % path)
        r = self.ask("GET", "/index.html")
        self.assertEqual((r.status, r.header("WWW-Authenticate")), (401, REALM_FIELD))
        self.assertEqual(self.ask("GET", "/pub/index.html").status, 200)
        r = self.ask("GET", "/other/index.html")
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Other realm", charset="UTF-8"')
        r = self.ask("GET", "/other/index.html", self.auth("alice", "pw"))
        self.assertEqual(r.status, 200)

    def test_realm_is_quoted(self):
        path = self.users(entry("sha256", "alice", "pw"))
        self.serve(self.HEAD + 'location / { static www; auth_basic "say \\"hi\\" \\\\ o/";'
                   " auth_basic_user_file %s; }\n" % path)
        r = self.ask("GET", "/index.html")
        self.assertEqual(r.header("WWW-Authenticate"),
                         'Basic realm="say \\"hi\\" \\\\ o/", charset="UTF-8"')

    def test_malformed_authorization_is_401(self):
        self.serve_auth(self.users(entry("sha512", "alice", "pw"), entry("sha512", "", "x")
                                   .replace(":", "bob:", 1)))
        good = base64.b64encode(b"alice:pw").decode()
        values = [
            "", "Basic", "Basic ", "Basic  ", "basic", "Bearer " + good, "Digest " + good,
            "Basic " + good + " extra", "Basic " + good[:-1], "Basic " + good + "=",
            "Basic " + good.replace("=", "") + "==", "Basic ====", "Basic a", "Basic !!!!",
            "Basic " + base64.b64encode(b"alicepw").decode(),            # no colon
            "Basic " + base64.b64encode(b"alice:p\x00w").decode(),       # NUL
            "Basic " + base64.b64encode(b"alice:pw\n").decode(),         # control character
            "Basic " + base64.b64encode(b"alice\x7f:pw").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:\xc3\x28").decode(),  # not UTF-8
            "Basic " + base64.b64encode(b":").decode(),
            "Basic " + base64.b64encode(b"a" * 5000 + b":pw").decode(),  # too long
            "Basic " + "A" * 7000,
            "Basic" + good,                                               # no space
            "Basic\t" + good,
            "Basic " + base64.b64encode(b"ALICE:pw").decode(),
            "Basic " + base64.b64encode(b"alice:PW").decode(),
            "Basic " + base64.b64encode(b"alice:pw ").decode(),
            "Basic " + base64.urlsafe_b64encode(b"alice:pw?>?>").decode(),
        ]
        c = self.connect()
        for v in values:
            with self.subTest(value=v[:60]):
                r = self.ask("GET", "/priv/index.html", [("Authorization", v)], conn=c)
                self.assertEqual((r.status, r.header("WWW-Authenticate")), (401, REALM_FIELD))
        # Two Authorization fields, even both right: 401.
        r = self.ask("GET", "/priv/index.html", [("Authorization", "Basic " + good)] * 2, conn=c)
        self.assertEqual(r.status, 401)
        # The scheme in any case, extra spaces: still the credentials.
        for v in ("Basic " + good, "BASIC " + good, "basic   " + good):
            r = self.ask("GET", "/priv/index.html", [("Authorization", v)], conn=c)
            self.assertEqual(r.status, 200, v)
        self.assertTrue(self.server.alive())

    def test_unknown_user_costs_a_hash_too(self):
        # bcrypt at cost 8 takes milliseconds: a refusal that skipped the
        # hash for unknown users would be many times faster.
        self.serve_auth(self.users(entry("bcrypt", "alice", "right", cost=8)))
        c = self.connect(timeout=20)
        times = {"wrong": [], "unknown": []}
        for i in range(240):
            kind = "wrong" if i % 2 else "unknown"
            user = "alice" if kind == "wrong" else "mallory%d" % i
            # A new password each time: the verified cache never answers.
            hdr = self.auth(user, "guess-%d" % i)
            t0 = time.perf_counter()
            r = self.ask("GET", "/priv/index.html", hdr, conn=c)
            times[kind].append(time.perf_counter() - t0)
            self.assertEqual(r.status, 401)
        wrong, unknown = statistics.median(times["wrong"]), statistics.median(times["unknown"])
        ratio = unknown / wrong
        self.assertTrue(0.5 <= ratio <= 2.0, "unknown user %.2f ms, wrong password %.2f ms"
                        % (unknown * 1000, wrong * 1000))
        # ... and the hash did run (this is not two fast refusals).
        self.assertGreater(wrong, 0.001, "a bcrypt cost 8 hash in %.3f ms?" % (wrong * 1000))

    def test_sighup_reads_the_user_file_again(self):
        path = self.users(entry("bcrypt", "alice", "one"))
        self.serve_auth(path)
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("alice", "one")).status, 200)
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("alice", "two")).status, 401)
        self.users(entry("bcrypt", "alice", "two"), entry("sha512", "bob", "b"))
        self.server.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.ask("GET", "/priv/index.html",
                                                  self.auth("alice", "two")).status == 200, 5),
                        self.error_log())
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("alice", "one")).status, 401)
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("bob", "b")).status, 200)
        # A user file that no longer loads keeps the running configuration.
        self.users("alice:plain")
        self.server.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload of" in self.error_log(), 5), self.error_log())
        self.assertIn("a plain-text password is refused", self.error_log())
        self.assertEqual(self.ask("GET", "/priv/index.html", self.auth("bob", "b")).status, 200)


class Satisfy(AccessCase):
    def start(self, rules):
        path = self.users(entry("sha256", "alice", "pw"))
        self.serve(self.HEAD + "location / { static www; %s auth_basic \"Staff only\"; "
                   "auth_basic_user_file %s; }\n" % (rules, path))

    def test_all_is_the_default(self):
        self.start("allow 127.0.0.1; deny all;")
        self.assertEqual(self.ask("GET", "/index.html").status, 401)
        self.assertEqual(self.ask("GET", "/index.html", self.auth("alice", "pw")).status, 200)

    def test_all_refuses_a_denied_address_even_with_a_password(self):
        self.start("satisfy all; deny all;")
        r = self.ask("GET", "/index.html", self.auth("alice", "pw"))
        self.assertEqual((r.status, r.header("WWW-Authenticate")), (403, None))
        r = self.ask("GET", "/index.html")
        self.assertEqual((r.status, r.header("WWW-Authenticate")), (403, None))

    def test_any_lets_an_allowed_address_in_without_a_password(self):
        self.start("satisfy any; allow 127.0.0.1; deny all;")
        self.assertEqual(self.ask("GET", "/index.html").status, 200)
        self.assertEqual(self.ask("GET", "/index.html", self.auth("alice", "no")).status, 200)

    def test_any_with_a_denied_address_asks_for_a_password(self):
        self.start("satisfy any; deny all;")
        r = self.ask("GET", "/index.html")
        self.assertEqual((r.status, r.header("WWW-Authenticate")), (401, REALM_FIELD))
        self.assertEqual(self.ask("GET", "/index.html", self.auth("alice", "no")).status, 401)
        self.assertEqual(self.ask("GET", "/index.html", self.auth("alice", "pw")).status, 200)

    def test_any_only_addresses(self):
        self.serve(self.HEAD + "satisfy any;\nlocation / { static www; deny all; }\n")
        self.assertEqual(self.ask("GET", "/index.html").status, 403)

    def test_bad_value(self):
        self.assertOneError(self.HEAD + "location / { static www; satisfy some; }\n", 5, 34,
                            'satisfy: expected any or all, not "some"')


class MethodDecision(AccessCase):
    """DESIGN.md, "Access control": 501 and the configured-set 405 before
    authentication; the module's view after it; OPTIONS without access
    gets the location's configured set."""

    def start(self, extra=""):
        path = self.users(entry("sha512", "alice", "pw"))
        guard = 'auth_basic "Staff only"; auth_basic_user_file %s;' % path
        self.serve(self.HEAD + """
location / { static www; %(g)s trace on; }
location /dav/ { webdav dav; %(g)s }
location /ro/ { webdav dav; methods GET PROPFIND; %(g)s }
location /denied/ { webdav dav; deny all; }
%(x)s""" % {"g": guard, "x": extra})

    def test_501_before_authentication(self):
        self.start()
        for target in ("/index.html", "/dav/file.txt", "/nowhere"):
            r = self.ask("FROB", target)
            self.assertEqual((r.status, r.header("WWW-Authenticate")), (501, None), target)
        r = self.ask("FROB", "/denied/file.txt")
        self.assertEqual(r.status, 501)

    def test_configured_405_before_authentication(self):
        self.start()
        # static does not do PUT, webdav does: 405 at /, with the
        # location's configured set and no challenge.
        r = self.ask("PUT", "/index.html")
        self.assertEqual((r.status, r.header("Allow"), r.header("WWW-Authenticate")),
                         (405, "GET, HEAD, OPTIONS, TRACE", None))
        r = self.ask("DELETE", "/ro/file.txt")
        self.assertEqual((r.status, r.header("Allow"), r.header("WWW-Authenticate")),
                         (405, "GET, HEAD, OPTIONS, PROPFIND", None))
        self.assertEqual(self.ask("PUT", "/ro/x").status, 405)
        # The same with credentials: the configured set, not the resource's.
        r = self.ask("DELETE", "/ro/coll/", self.auth("alice", "pw"))
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD, OPTIONS, PROPFIND"))

    def test_module_view_only_after_access(self):
        self.start()
        # MKCOL and PUT on an existing collection: the module's 405, which
        # tells that the resource is a collection, only for alice.
        for method in ("MKCOL", "PUT"):
            r = self.ask(method, "/dav/coll/")
            self.assertEqual((r.status, r.header("Allow"), r.header("WWW-Authenticate")),
                             (401, None, REALM_FIELD), method)
            r = self.ask(method, "/dav/coll/", self.auth("alice", "pw"))
            self.assertEqual(r.status, 405, method)
            self.assertNotIn("PUT", r.header("Allow"))
            self.assertNotIn("MKCOL", r.header("Allow"))
        # A missing resource: 401, not 404.
        self.assertEqual(self.ask("GET", "/dav/missing").status, 401)
        self.assertEqual(self.ask("GET", "/dav/missing", self.auth("alice", "pw")).status, 404)
        # Denied by address: 403 whatever the resource.
        self.assertEqual(self.ask("MKCOL", "/denied/coll/").status, 403)
        self.assertEqual(self.ask("GET", "/denied/missing").status, 403)
        # TRACE, where enabled, is access-controlled like any method.
        self.assertEqual(self.ask("TRACE", "/index.html").status, 401)
        r = self.ask("TRACE", "/index.html", self.auth("alice", "pw"))
        self.assertEqual(r.status, 200)
        self.assertNotIn(b"Authorization", r.body)

    def test_options_without_access_gets_the_configured_set(self):
        self.start()
        configured = ("GET, HEAD, PUT, DELETE, OPTIONS, COPY, LOCK, MKCOL, MOVE, PROPFIND, "
                      "PROPPATCH, UNLOCK")
        r = self.ask("OPTIONS", "/dav/coll/")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), configured)
        self.assertEqual(r.header("DAV"), "1, 2")
        self.assertEqual(r.header("WWW-Authenticate"), REALM_FIELD)
        # With access: the resource's own set (a collection takes no PUT).
        r = self.ask("OPTIONS", "/dav/coll/", self.auth("alice", "pw"))
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"),
                         "GET, HEAD, DELETE, OPTIONS, COPY, LOCK, MOVE, PROPFIND, PROPPATCH, "
                         "UNLOCK")
        self.assertIsNone(r.header("WWW-Authenticate"))
        # Wrong credentials are no access.
        r = self.ask("OPTIONS", "/dav/coll/", self.auth("alice", "nope"))
        self.assertEqual((r.status, r.header("Allow")), (204, configured))
        # Refused by address: the configured set, nothing to log in with.
        r = self.ask("OPTIONS", "/denied/coll/")
        self.assertEqual((r.status, r.header("Allow"), r.header("WWW-Authenticate")),
                         (204, configured, None))
        # OPTIONS * is the server's, as ever.
        c = self.connect()
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response("OPTIONS").status, 204)


if __name__ == "__main__":
    unittest.main()
