"""Module directives at top level (DECISIONS: charset and hidden_files
inherit from the top level): the default of every location whose module
has them, whatever their order in the file; a location's own value wins; a
bad value is reported once, at its own line."""

import os
import shutil
import tempfile
import unittest

from harness import Server, build_request, run_verbd

CONFIG = """charset iso-8859-1;
location / { static www; }
location /own/ { static www; charset off; hidden_files off; }
location /dav/ { webdav dav; }
hidden_files on;
"""


class Inherited(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-inherit-")
        self.addCleanup(shutil.rmtree, self.base, True)
        for d in ("www", "dav"):
            os.makedirs(os.path.join(self.base, d))
        with open(os.path.join(self.base, "www", "a.txt"), "w") as f:
            f.write("hi\n")
        with open(os.path.join(self.base, "www", ".hidden"), "w") as f:
            f.write("dot\n")
        with open(os.path.join(self.base, "dav", "b.txt"), "w") as f:
            f.write("dav\n")

    def config(self, text):
        path = os.path.join(self.base, "verbd.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def get(self, server, target):
        c = server.connect()
        self.addCleanup(c.close)
        c.send(build_request("GET", target))
        return c.read_response("GET")

    def test_defaults_and_overrides(self):
        srv = Server(None, "-c", self.config(CONFIG)).start()
        self.addCleanup(srv.cleanup)
        r = self.get(srv, "/a.txt")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=iso-8859-1")
        self.assertEqual(self.get(srv, "/.hidden").status, 200)  # hidden_files on, below
        r = self.get(srv, "/own/a.txt")
        self.assertEqual(r.header("Content-Type"), "text/plain")
        self.assertEqual(self.get(srv, "/own/.hidden").status, 404)
        # webdav has charset (inherited) and no hidden_files (not applied).
        r = self.get(srv, "/dav/b.txt")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=iso-8859-1")

    def test_bad_value_reported_once_at_its_line(self):
        p = run_verbd("-t", "-c", self.config(
            'location / { static www; }\ncharset "a;b";\nlocation /x/ { static www; }\n'))
        self.assertNotEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertEqual(err.count(": charset:"), 1, err)  # one error line
        self.assertIn("verbd.conf:2:9:", err)


if __name__ == "__main__":
    unittest.main()
