"""The method-decision table (DESIGN.md, "The method decision"): requests
and the answers verbd must give them, on one server with two origin
servers -- `static.test`, static files only, and `dav.test`, static files
with WebDAV at /dav/ and a read-only WebDAV location at /ro/ -- on a plain
and a TLS address.  One table, three transports: test_methods.py runs it
over HTTP/1.1, test_http2.py over h2c (prior knowledge) and h2 (TLS, ALPN);
every row expects the same status, Allow and DAV whichever carries it.

A transport is a function (case, row) -> Answer; TableCase makes one test
per row."""

import os
import shutil
import sys
import tempfile
import unittest
from collections import namedtuple

from harness import TEST_TLS, Conn, build_request, plain_and_tls_listen, webroot
from test_config import config_server

ALLOW = "GET, HEAD, OPTIONS"
# /dav/ (a collection), a missing resource under it, and the whole
# dav.test server (OPTIONS *).
DAV_COLLECTION = "GET, HEAD, DELETE, OPTIONS, COPY, LOCK, MOVE, PROPFIND, PROPPATCH, UNLOCK"
DAV_MISSING = "PUT, OPTIONS, LOCK, MKCOL"
DAV_SERVER = "GET, HEAD, PUT, DELETE, OPTIONS, COPY, LOCK, MKCOL, MOVE, PROPFIND, PROPPATCH, UNLOCK"

# Methods static.test implements nothing of, whatever the target: 501.
UNIMPLEMENTED = ["BREW", "FOO", "get", "head", "Get", "POST", "PUT", "DELETE", "PATCH", "PROPFIND",
                 "MKCOL", "LOCK", "QUERY", "COPY", "MOVE", "UNLOCK", "SEARCH", "PRI", "TRACE",
                 "options", "ACL", "M-SEARCH", "X_Y.Z~1"]
TARGETS = [("root", "/"), ("index", "/index.html"), ("missing", "/missing"), ("subdir", "/sub/")]

NO = object()  # the field must not be there

Row = namedtuple("Row", "host method target status allow dav")


def row(host, method, target, status, allow=NO, dav=NO):
    return Row(host, method, target, status, allow, dav)


TABLE = (
    # 501: nothing in the origin server implements the method, for every
    # target, existing or not (step 2).
    [row("static.test", m, t, 501) for m in UNIMPLEMENTED for _, t in TARGETS] +
    # OPTIONS tells the same truth as a 405 would (step 5); OPTIONS * the
    # server-wide set.
    [row("static.test", "OPTIONS", t, 204, ALLOW) for _, t in TARGETS + [("nodir", "/sub")]] +
    [row("static.test", "OPTIONS", "*", 204, ALLOW),
     # HEAD where GET is; what exists and what does not.
     row("static.test", "GET", "/index.html", 200),
     row("static.test", "HEAD", "/index.html", 200),
     row("static.test", "GET", "/missing", 404),
     row("static.test", "HEAD", "/missing", 404),
     # The same methods, now implemented in the origin server (dav.test)
     # but not allowed where there is no WebDAV: 405 with Allow (step 4).
     row("dav.test", "PUT", "/index.html", 405, ALLOW),
     row("dav.test", "DELETE", "/", 405, ALLOW),
     row("dav.test", "PROPFIND", "/missing", 405, ALLOW),
     row("dav.test", "MKCOL", "/missing-dir/", 405, ALLOW),
     # The operator's narrowing: /ro/ is WebDAV with GET HEAD OPTIONS; on
     # a missing resource the module's own Allow (PUT, MKCOL, LOCK,
     # OPTIONS) narrowed by it, and DAV class 1 without LOCK.
     row("dav.test", "PUT", "/ro/x.txt", 405, "OPTIONS"),
     row("dav.test", "PROPFIND", "/ro/", 405, ALLOW),
     row("dav.test", "OPTIONS", "/ro/", 204, ALLOW, "1"),
     # The module refines Allow by the resource's state.
     row("dav.test", "OPTIONS", "/dav/", 204, DAV_COLLECTION, "1, 2"),
     row("dav.test", "PUT", "/dav/", 405, DAV_COLLECTION),
     row("dav.test", "OPTIONS", "/dav/missing", 204, DAV_MISSING, "1, 2"),
     row("dav.test", "GET", "/dav/missing", 404),
     row("dav.test", "OPTIONS", "*", 204, DAV_SERVER),
     # Still 501 in dav.test: what no module there implements.
     row("dav.test", "BREW", "/dav/", 501),
     row("dav.test", "POST", "/dav/", 501),
     row("dav.test", "PATCH", "/", 501),
     row("dav.test", "TRACE", "/dav/", 501),
     row("dav.test", "get", "/dav/", 501)])

Answer = namedtuple("Answer", "status headers body")  # headers: {lower-case name: value}


def ident(r):
    """A test name for a row."""
    def word(s):
        w = "".join(ch if ch.isalnum() else "_" for ch in s).strip("_")
        if len(s) > 1 and s.endswith("/"):
            w += "_slash"
        return w or ("star" if s == "*" else "root")
    case = "" if r.method.isupper() else "_lowercase" if r.method.islower() else "_mixedcase"
    return "test_%s_%s%s_on_%s_is_%d" % (r.host.split(".")[0], word(r.method), case,
                                         word(r.target), r.status)


class TableCase(unittest.TestCase):
    """One server for the class; `transport(case, row)` sends a row's
    request and returns its Answer.  Subclasses set transport and tls."""

    transport = None
    tls = False

    @classmethod
    def setUpClass(cls):
        if TEST_TLS:
            # tests/run.py's second pass over TLS: the table names its
            # transports itself, TLS among them.
            raise unittest.SkipTest("the table runs over TLS in its own classes")
        web = webroot()
        cls.dir = tempfile.mkdtemp(prefix="verbd-table-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        dav = os.path.join(cls.dir, "dav")
        os.mkdir(dav)
        cls.plain_port, cls.tls_port, listen = plain_and_tls_listen()
        conf = os.path.join(cls.dir, "verbd.conf")
        with open(conf, "w") as f:
            f.write("workers 1;\naccess_log off;\n"
                    "server {\n    server_name static.test;\n%s    location / { static %s; }\n}\n"
                    "server {\n    server_name dav.test;\n%s    location / { static %s; }\n"
                    "    location /dav/ { webdav %s; }\n"
                    "    location /ro/ { webdav %s; methods GET HEAD OPTIONS; }\n}\n"
                    % (listen, web.root, listen, web.root, dav, dav))
        cls.server = config_server(conf).start()
        cls.addClassCleanup(cls.server.cleanup)

    @property
    def port(self):
        return self.tls_port if self.tls else self.plain_port

    def check(self, r):
        a = type(self).transport(self, r)
        self.assertEqual(a.status, r.status, a)
        for name, want in (("allow", r.allow), ("dav", r.dav)):
            if want is NO:
                self.assertNotIn(name, a.headers, a)
            else:
                self.assertEqual(a.headers.get(name), want, a)
        if r.status in (405, 501):
            self.assertEqual(a.headers.get("content-type", "").split(";")[0], "text/plain", a)
            self.assertIn(r.method.encode(), a.body, a)
        if r.method == "HEAD" or r.status == 204:
            self.assertEqual(a.body, b"", a)
        self.assertEqual(a.headers.get("server"), "verbd", a)
        self.assertIn("date", a.headers, a)
        return a


def table_tests(cls):
    """Class decorator: one test per row of TABLE."""
    for r in TABLE:
        assert not hasattr(cls, ident(r)), ident(r)
        setattr(cls, ident(r), (lambda r: lambda self: self.check(r))(r))
    return cls


def http1(case, r):
    """The row over HTTP/1.1 (over TLS with the row's host as SNI), then a
    GET on the same connection: a refusal leaves the connection usable."""
    c = Conn("127.0.0.1", case.port, tls=case.tls, timeout=10, server_hostname=r.host)
    try:
        c.send(build_request(r.method, r.target, host=r.host))
        resp = c.read_response(r.method)
        after = c.request("GET", "/index.html", host=r.host)
        case.assertEqual(after.status, 200, "the connection after %s %s" % (r.method, r.target))
    finally:
        c.close()
    return Answer(resp.status, {k.lower(): v for k, v in resp.headers}, resp.body)


def http2(case, r):
    """The row as one stream of a connection of its own (h2c, or h2 over
    TLS); the answer's fields are HTTP/2's (lower-case, no
    connection-specific ones), its body, Content-Type and Content-Length
    the same as HTTP/1.1's on the same address."""
    from test_http2 import H2Client
    c = H2Client("127.0.0.1", case.port, tls=case.tls, server_name=r.host)
    try:
        if case.tls:
            case.assertEqual(c.alpn, "h2")
        resp = c.request(r.method, r.target, authority=r.host)
    finally:
        c.close()
    case.assertIsNone(resp.reset, resp)
    for name, _ in resp.headers:
        case.assertEqual(name, name.lower())
        case.assertNotIn(name, ("connection", "keep-alive", "transfer-encoding"))
    a = Answer(resp.status, dict(resp.headers), bytes(resp.body))
    h1 = http1(case, r)
    case.assertEqual(a.body, h1.body, (h1, a))
    for name in ("content-type", "content-length"):
        case.assertEqual(a.headers.get(name), h1.headers.get(name), (h1, a))
    return a


if __name__ == "__main__":
    sys.exit("run test_methods.py or test_http2.py")
