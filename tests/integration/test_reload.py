"""SIGHUP reloads the config file: the new mappings are served, open
connections are kept, and a config that fails to load leaves the old one
serving with every error in the error log."""

import os
import re
import signal
import socket
import time
import unittest

from harness import Conn, get_request
from test_config import ConfigCase, config_server, read, wait_for

ERROR_LINE_RE = re.compile(r"(\S+?):(\d+):(\d+): (.+)")


class ReloadBase(ConfigCase):
    WORKERS = 1

    def config(self, gen, extra=""):
        R = self.web.root
        return ("listen 127.0.0.1:0;\naccess_log off;\nworkers %d;\nerror_log error.log info;\n"
                "location / { static %s; header X-Gen %d; }\n%s" % (self.WORKERS, R, gen, extra))

    def start(self, text):
        self.path = self.write("verbd.conf", text)
        srv = config_server(self.path).start()
        self.addCleanup(srv.cleanup)
        self._servers = getattr(self, "_servers", []) + [srv]
        self.server = srv
        return srv

    def reload(self, text):
        self.write("verbd.conf", text)
        self.server.signal(signal.SIGHUP)

    def gen_served(self, gen, attempts_for=5.0):
        """Waits until new connections see X-Gen: gen (every worker)."""
        def seen():
            c = self.connect()
            try:
                return c.request("GET", "/index.html").header("X-Gen") == str(gen)
            finally:
                c.close()
        if not wait_for(seen, attempts_for):
            return False
        # Every worker has it: several fresh connections in a row agree.
        return all(wait_for(seen, 2.0) for _ in range(4 * self.WORKERS))

    def error_log(self):
        return read(os.path.join(self.dir, "error.log")).decode("utf-8", "replace")


class Reload(ReloadBase):
    def test_new_mapping_served(self):
        self.start(self.config(1))
        self.assertEqual(self.fetch("/new/file.txt").status, 404)
        self.reload(self.config(2, "location /new/ { static %s/sub; header X-New yes; }\n"
                                % self.web.root))
        self.assertTrue(self.gen_served(2), self.error_log())
        r = self.fetch("/new/file.txt")
        self.assertEqual((r.status, r.body, r.header("X-New")), (200, self.web.sub_file, "yes"))

    def test_removed_mapping_gone(self):
        R = self.web.root
        self.start(self.config(1, "location /old/ { static %s/sub; }\n" % R))
        self.assertEqual(self.fetch("/old/file.txt").body, self.web.sub_file)
        self.reload(self.config(2))
        self.assertTrue(self.gen_served(2), self.error_log())
        self.assertEqual(self.fetch("/old/file.txt").status, 404)

    def test_method_decision_follows_the_new_config(self):
        # TRACE: 501 before (enabled nowhere), 200 after (enabled on /).
        self.start(self.config(1))
        self.assertEqual(self.fetch("/", method="TRACE").status, 501)
        R = self.web.root
        text = self.config(2).replace("header X-Gen 2;", "header X-Gen 2; trace on;")
        text += "location /ro/ { static %s; methods GET HEAD; }\n" % R
        self.reload(text)
        self.assertTrue(self.gen_served(2), self.error_log())
        self.assertEqual(self.fetch("/", method="TRACE").status, 200)
        r = self.fetch("/ro/x", method="TRACE")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD, OPTIONS"))

    def test_keep_alive_connection_survives(self):
        self.start(self.config(1))
        c = self.connect()
        r = c.request("GET", "/index.html")
        self.assertEqual((r.status, r.header("X-Gen")), (200, "1"))
        self.reload(self.config(2))
        self.assertTrue(self.gen_served(2), self.error_log())
        self.assertFalse(c.is_closed(0.2), "the reload closed an open connection")
        r = c.request("GET", "/index.html")
        self.assertEqual((r.status, r.body), (200, self.web.index))
        self.assertIn(r.header("X-Gen"), ("1", "2"))
        self.assertUsable(c)

    def test_listeners_kept(self):
        srv = self.start(self.config(1))
        port = srv.port
        self.reload(self.config(2))
        self.assertTrue(self.gen_served(2), self.error_log())
        self.assertEqual(srv.port, port)
        c = Conn("127.0.0.1", port)
        self.conns.append(c)
        self.assertEqual(c.request("GET", "/index.html").status, 200)

    def test_several_reloads(self):
        self.start(self.config(1))
        for gen in range(2, 6):
            self.reload(self.config(gen))
            self.assertTrue(self.gen_served(gen), "generation %d: %s" % (gen, self.error_log()))
        self.assertTrue(self.server.alive())

    def test_broken_config_keeps_the_old_one(self):
        self.start(self.config(1))
        c = self.connect()
        self.assertEqual(c.request("GET", "/index.html").header("X-Gen"), "1")
        broken = self.config(2, "bogus_directive on;\nlocation /x/ {\n    trace on;\n}\n")
        self.reload(broken)
        log = lambda: self.error_log()
        self.assertTrue(wait_for(lambda: "bogus_directive" in log() and "/x/" in log(), 5.0),
                        log())
        errors = [m for m in map(ERROR_LINE_RE.search, log().splitlines()) if m]
        where = sorted((int(m.group(2)), int(m.group(3))) for m in errors
                       if m.group(1) == self.path)
        self.assertIn((6, 1), where, log())   # unknown directive
        self.assertIn((7, 1), where, log())   # location without module
        self.assertTrue(self.server.alive())
        # Still the old configuration, on old and new connections.
        for _ in range(3):
            self.assertEqual(self.fetch("/index.html").header("X-Gen"), "1")
        r = c.request("GET", "/index.html")
        self.assertEqual((r.status, r.header("X-Gen")), (200, "1"))
        # Fixed, it loads.
        self.reload(self.config(3))
        self.assertTrue(self.gen_served(3), self.error_log())

    def test_unreadable_config_keeps_the_old_one(self):
        self.start(self.config(1))
        os.rename(self.path, self.path + ".moved")
        self.server.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "No such file or directory" in self.error_log(), 5.0),
                        self.error_log())
        self.assertEqual(self.fetch("/index.html").header("X-Gen"), "1")

    def test_listen_change_is_checked_not_bound(self):
        self.start(self.config(1))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        text = self.config(2).replace("listen 127.0.0.1:0;", "listen 127.0.0.1:%d;" % port)
        self.reload(text)
        self.assertTrue(self.gen_served(2), self.error_log())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_bad_listen_on_reload_is_an_error(self):
        self.start(self.config(1))
        self.reload(self.config(2).replace("listen 127.0.0.1:0;", "listen 127.0.0.1:99999;"))
        self.assertTrue(wait_for(lambda: "99999" in self.error_log(), 5.0), self.error_log())
        self.assertEqual(self.fetch("/index.html").header("X-Gen"), "1")


class ReloadKeepsExchanges(ReloadBase):
    """An exchange in flight at a reload finishes on the mapping it started
    on (its module instance stays until then); new requests get the new
    configuration."""

    def test_upload_in_flight_finishes(self):
        dav = os.path.join(self.dir, "share")
        os.makedirs(dav, exist_ok=True)
        share = "location /dav/ { webdav %s; %s}\n"
        self.start(self.config(1, share % (dav, "")))
        body = bytes(range(256)) * 800  # 200 KiB
        c = self.connect(timeout=10)
        c.send(b"PUT /dav/up.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
               % len(body) + body[:len(body) // 2])
        def half_written():
            names = [n for n in os.listdir(dav) if n.startswith(".verbd-put-")]
            return names and os.path.getsize(os.path.join(dav, names[0])) > 0
        self.assertTrue(wait_for(half_written, 10))
        # The share becomes read-only: a new PUT is refused, the one in
        # flight is not.
        self.reload(self.config(2, share % (dav, "methods GET HEAD OPTIONS PROPFIND; ")))
        self.assertTrue(self.gen_served(2), self.error_log())
        c.send(body[len(body) // 2:])
        r = c.read_response("PUT")
        self.assertEqual(r.status, 201, r)
        with open(os.path.join(dav, "up.bin"), "rb") as f:
            self.assertEqual(f.read(), body)
        c2 = self.connect()
        c2.send(b"PUT /dav/new.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx")
        self.assertEqual(c2.read_response("PUT").status, 405)


class ReloadSeveralWorkers(Reload):
    WORKERS = 3



class CommandLineOverrides(ReloadBase):
    def test_command_line_settings_survive_a_reload(self):
        # The file leaves max_body at its default (1m); the command line
        # says 10 bytes.  After a reload the command line still wins.
        self.path = self.write("verbd.conf", self.config(1))
        srv = config_server(self.path, "--set", "max_body=10").start()
        self.addCleanup(srv.cleanup)
        self._servers = [srv]
        self.server = srv
        body = b"x" * 100

        def status():
            c = self.connect()
            try:
                c.send(b"GET /index.html HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"
                       + body)
                return c.read_response().status
            finally:
                c.close()

        self.assertEqual(status(), 413)
        self.reload(self.config(2))
        self.assertTrue(self.gen_served(2), self.error_log())
        self.assertEqual(status(), 413)


if __name__ == "__main__":
    unittest.main()
