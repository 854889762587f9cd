"""Virtual hosts: `server { }` blocks sharing an address, chosen by Host
(exact name, then the longest leading wildcard, then the longest trailing
one, else the address's default), each an origin server of its own for the
method decision, OPTIONS *, verbd -M and its access log."""

import os
import re
import signal
import time

from harness import build_request, free_port, run_verbd
from test_config import ConfigCase, config_server


def sites_config(port, extra_a="", extra_b="", head="access_log off;\nworkers 1;\n"):
    return head + """
server {
    listen 127.0.0.1:%(port)d;
    server_name static.example *.example.org *.deep.example.org www.example.*;
    location / { static static; }
    %(a)s
}
server {
    listen 127.0.0.1:%(port)d default_server;
    server_name dav.example www.example.org _;
    location / { static dav-www; methods GET HEAD; }
    location /dav/ { webdav dav; }
    %(b)s
}
server {
    listen 127.0.0.1:%(port)d;
    server_name deep.example.org;
    location / { static deep; methods GET; }
}
""" % {"port": port, "a": extra_a, "b": extra_b}


class VirtualHosts(ConfigCase):
    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.dir, "dav"))
        for site in ("static", "dav-www", "deep"):
            self.write(site + "/index.html", site)

    def start(self, text):
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        return srv

    def ask(self, srv, method, target="/", host="localhost", headers=None, version="HTTP/1.1"):
        c = srv.connect()
        self.addCleanup(c.close)
        c.send(build_request(method, target, headers=headers, host=host, version=version))
        return c.read_response(method)

    def which(self, srv, host, target="/", **kw):
        """Which site answered: each serves its own index.html."""
        r = self.ask(srv, "GET", target, host=host, **kw)
        self.assertEqual(r.status, 200, host)
        return {"static": "static", "dav-www": "dav", "deep": "deep"}[r.body.decode()]

    def test_host_selects_the_site(self):
        srv = self.start(sites_config(free_port()))
        cases = {
            "static.example": "static",       # exact
            "dav.example": "dav",             # exact
            "a.example.org": "static",        # *.example.org
            "www.example.org": "dav",         # exact beats the wildcard
            "x.deep.example.org": "static",   # the longer leading wildcard
            "deep.example.org": "deep",       # exact
            "www.example.net": "static",      # trailing wildcard
            "nobody.example": "dav",          # no match: the default_server
            "_": "dav",                       # "_" names nothing; the default answers
            "STATIC.Example.:8080": "static",  # case, a final dot and the port
        }
        for host, site in cases.items():
            self.assertEqual(self.which(srv, host), site, host)

    def test_without_default_server_the_first_listed_is_default(self):
        port = free_port()
        text = sites_config(port).replace(" default_server;", ";")
        srv = self.start(text)
        self.assertEqual(self.which(srv, "nobody.example"), "static")

    def test_http10_without_host_gets_the_default(self):
        srv = self.start(sites_config(free_port()))
        c = srv.connect()
        self.addCleanup(c.close)
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(c.read_response("GET").body, b"dav-www")

    def test_absolute_target_wins_over_host(self):
        srv = self.start(sites_config(free_port()))
        self.assertEqual(self.which(srv, "dav.example", target="http://static.example/"), "static")
        self.assertEqual(self.which(srv, "static.example", target="http://dav.example/"), "dav")

    def test_method_decision_is_per_site(self):
        srv = self.start(sites_config(free_port()))
        # PATCH: implemented by no mapping of either site.
        self.assertEqual(self.ask(srv, "PATCH", "/", host="static.example").status, 501)
        self.assertEqual(self.ask(srv, "PATCH", "/", host="dav.example").status, 501)
        # PUT: the WebDAV site implements it (405 outside /dav/), the other not.
        self.assertEqual(self.ask(srv, "PUT", "/x", host="static.example").status, 501)
        r = self.ask(srv, "PUT", "/x", host="dav.example")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_options_asterisk_answers_for_the_host(self):
        srv = self.start(sites_config(free_port()))
        r = self.ask(srv, "OPTIONS", "*", host="static.example")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.ask(srv, "OPTIONS", "*", host="dav.example")
        self.assertIn("PROPFIND", r.header("Allow"))
        self.assertIn("PUT", r.header("Allow"))

    def test_unknown_method_setting_per_site(self):
        srv = self.start(sites_config(free_port(), extra_a="unknown_method 405;"))
        r = self.ask(srv, "BREW", "/", host="static.example")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertEqual(self.ask(srv, "BREW", "/", host="dav.example").status, 501)

    def test_access_log_per_site(self):
        a = os.path.join(self.dir, "a.log")
        top = os.path.join(self.dir, "top.log")
        head = "access_log %s;\nworkers 1;\n" % top
        srv = self.start(sites_config(free_port(), extra_a="access_log %s;" % a, head=head))
        self.assertEqual(self.ask(srv, "GET", "/a-site", host="static.example").status, 404)
        self.assertEqual(self.ask(srv, "GET", "/b-site", host="dav.example").status, 404)
        srv.stop()
        with open(a) as f:
            alog = f.read()
        with open(top) as f:
            toplog = f.read()
        self.assertIn("GET /a-site ", alog)
        self.assertNotIn("/b-site", alog)
        self.assertIn("GET /b-site ", toplog)  # inherited from the top level
        self.assertNotIn("/a-site", toplog)

    def test_error_log_per_site(self):
        a = os.path.join(self.dir, "a-error.log")
        top = os.path.join(self.dir, "top-error.log")
        head = "access_log off;\nworkers 1;\nerror_log %s info;\n" % top
        srv = self.start(sites_config(free_port(), extra_a="error_log %s info;" % a, head=head))
        # A 501 for a method a built-in module has but no location enables
        # is logged at info, in the error log of the server that answered.
        self.assertEqual(self.ask(srv, "PROPFIND", "/", host="static.example").status, 501)
        self.assertEqual(self.ask(srv, "LOCK", "/", host="deep.example.org").status, 501)
        self.assertEqual(self.ask(srv, "MKCOL", "/", host="static.example").status, 501)
        srv.stop()
        with open(a) as f:
            alog = f.read()
        with open(top) as f:
            toplog = f.read()
        self.assertIn("501 for PROPFIND", alog)
        self.assertIn("501 for MKCOL", alog)
        self.assertNotIn("501 for PROPFIND", toplog)
        self.assertIn("501 for LOCK", toplog)  # the other server's: the top level's
        self.assertNotIn("501 for LOCK", alog)

    def test_describe_per_site(self):
        path = self.write("verbd.conf", sites_config(free_port()))
        p = run_verbd("-M", "-c", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        blocks = out.split("\n\n")
        self.assertEqual(len(blocks), 3, out)
        self.assertIn("server static.example", blocks[0])
        self.assertIn("implements: GET, HEAD, OPTIONS\n", blocks[0])
        self.assertIn("server dav.example", blocks[1])
        self.assertIn("(default_server)", blocks[1])
        self.assertRegex(blocks[1], r"implements: .*PROPFIND")

    def test_reload_changes_sites(self):
        port = free_port()
        srv = self.start(sites_config(port))
        self.assertEqual(self.which(srv, "new.example"), "dav")
        self.write("verbd.conf", sites_config(port).replace("dav.example", "new.example")
                   .replace("www.example.org _;", "www.example.org _;\n    unknown_method 405;"))
        os.kill(srv.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ask(srv, "BREW", "/", host="new.example").status == 405:
                break
            time.sleep(0.05)
        self.assertEqual(self.ask(srv, "BREW", "/", host="new.example").status, 405)
        self.assertEqual(self.ask(srv, "BREW", "/", host="static.example").status, 501)


class VirtualHostConfigErrors(ConfigCase):
    def error(self, text):
        code, out, err = self.check(text)
        self.assertNotEqual(code, 0, out)
        return err

    def test_top_level_location_and_listen_with_servers(self):
        err = self.error("location / { static .; }\nserver { listen 127.0.0.1:1; "
                         "location / { static .; } }\n")
        self.assertRegex(err, r"verbd.conf:1:1: location is not allowed at the top level")
        err = self.error("listen 127.0.0.1:2;\nserver { listen 127.0.0.1:1; "
                         "location / { static .; } }\n")
        self.assertRegex(err, r"verbd.conf:1:1: listen is not allowed at the top level")

    def test_server_without_listen(self):
        err = self.error("server { server_name a; location / { static .; } }\n")
        self.assertRegex(err, r"verbd.conf:1:1: server has no listen address")

    def test_same_address_twice_in_one_server(self):
        err = self.error("server { listen 127.0.0.1:1; listen 127.0.0.1:1; "
                         "location / { static .; } }\n")
        self.assertIn("duplicate listen 127.0.0.1:1", err)

    def test_server_wide_setting_in_server(self):
        err = self.error("server { listen 127.0.0.1:1; workers 2; location / { static .; } }\n")
        self.assertRegex(err, r"1:30: workers is server-wide: set it at the top level")

    def test_bad_names_and_placement(self):
        err = self.error("server { listen 127.0.0.1:1; server_name a/b; "
                         "location / { static .; } }\n")
        self.assertIn('server_name "a/b" is not a host name', err)
        err = self.error("server_name a;\n")
        self.assertIn("server_name belongs in a server { } block", err)
        err = self.error("server { listen 127.0.0.1:1; server { } location / { static .; } }\n")
        self.assertIn("server is not allowed inside server", err)
        err = self.error("listen 127.0.0.1:1 default_server;\nlocation / { static .; }\n")
        self.assertIn("default_server belongs in a server block", err)

    def test_command_line_listen_with_servers(self):
        path = self.write("verbd.conf", "server { listen 127.0.0.1:%d; location / { static .; } }\n"
                          % free_port())
        p = run_verbd("-c", path, "--listen", "127.0.0.1:0")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("server blocks", p.stderr.decode())

    def test_shared_address_is_not_a_duplicate(self):
        code, out, err = self.check(
            "server { listen 127.0.0.1:1; server_name a; location / { static .; } }\n"
            "server { listen 127.0.0.1:1; server_name b; location / { static .; } }\n")
        self.assertEqual(code, 0, err)
        self.assertTrue(re.search(r": ok$", out.strip()), out)
