"""The webdav module, black-box: per-resource Allow, each method's statuses,
XML safety, locks and dead properties kept across restarts, and paths
that never leave the served directory.  test_webdav_litmus.py and
test_webdav_clients.py reuse DavServer from here."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from harness import Server, build_request

DAV = "{DAV:}"


class DavServer:
    """A verbd serving BASE/data at /dav/ with the webdav module (and the
    same directory read-only at /ro/), from a config file.  The database
    goes to its default place beside BASE/data."""

    def __init__(self, base=None, extra="", workers=1):
        self.own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="verbd-dav-")
        self.data = os.path.join(self.base, "data")
        os.makedirs(self.data, exist_ok=True)
        self.conf = os.path.join(self.base, "verbd.conf")
        with open(self.conf, "w") as f:
            f.write("workers %d;\nmax_body 1g;\n"
                    "location /dav/ { webdav %s; %s }\n"
                    "location /ro/ { webdav %s; methods GET HEAD OPTIONS PROPFIND; }\n"
                    % (workers, self.data, extra, self.data))
        self.server = None

    def start(self):
        self.server = Server(None, "-c", self.conf).start()
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.server:
            if sig == signal.SIGKILL:
                try:
                    os.killpg(self.server.pid, signal.SIGKILL)  # master and workers
                except ProcessLookupError:
                    pass
                self.server.wait_exit(10)
                self.server.cleanup()
            else:
                self.server.stop()
                self.server.cleanup()
            self.server = None

    def cleanup(self):
        self.stop()
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    @property
    def url(self):
        return "http://%s:%d/dav/" % (self.server.host, self.server.port)

    def path(self, rel):
        return os.path.join(self.data, rel)

    def req(self, method, target, headers=None, body=b"", conn=None):
        if isinstance(body, str):
            body = body.encode()
        headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        if body or method in ("PUT", "POST"):
            headers.append(("Content-Length", str(len(body))))
        c = conn or self.server.connect(timeout=20)
        try:
            c.send(build_request(method, target, headers, body))
            return c.read_response(method)
        finally:
            if conn is None:
                c.close()


def multistatus(r):
    """{href: {prop tag: (status, element)}} of a 207 body."""
    root = ET.fromstring(r.body)
    assert root.tag == DAV + "multistatus", r.body
    out = {}
    for resp in root.findall(DAV + "response"):
        href = resp.find(DAV + "href").text
        props = out.setdefault(href, {})
        for ps in resp.findall(DAV + "propstat"):
            status = int(ps.find(DAV + "status").text.split()[1])
            for p in ps.find(DAV + "prop"):
                props[p.tag] = (status, p)
    return out


PROPFIND_ALL = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:%s/></D:lockscope>'
            '<D:locktype><D:write/></D:locktype><D:owner>tester</D:owner></D:lockinfo>')


class DavCase(unittest.TestCase):
    extra = ""

    def setUp(self):
        self.dav = DavServer(extra=self.extra)
        self.addCleanup(self.dav.cleanup)
        self.dav.start()

    def req(self, *a, **kw):
        return self.dav.req(*a, **kw)

    def put(self, target, body, headers=None):
        return self.req("PUT", target, headers, body)

    def allow(self, target):
        r = self.req("OPTIONS", target)
        self.assertIn(r.status, (200, 204), r)
        return {m.strip() for m in r.header("Allow").split(",")}


class TestOptionsAllow(DavCase):
    def test_dav_headers(self):
        r = self.req("OPTIONS", "/dav/")
        self.assertEqual(r.header("DAV"), "1, 2")
        self.assertEqual(r.header("MS-Author-Via"), "DAV")

    def test_allow_per_resource(self):
        os.mkdir(self.dav.path("coll"))
        with open(self.dav.path("file.txt"), "wb") as f:
            f.write(b"x")
        self.assertEqual(self.allow("/dav/missing"), {"PUT", "MKCOL", "LOCK", "OPTIONS"})
        coll = self.allow("/dav/coll/")
        self.assertNotIn("PUT", coll)
        self.assertNotIn("MKCOL", coll)
        self.assertLessEqual({"GET", "PROPFIND", "DELETE", "COPY", "MOVE", "LOCK"}, coll)
        f = self.allow("/dav/file.txt")
        self.assertIn("PUT", f)
        self.assertNotIn("MKCOL", f)

    def test_missing_get_is_404_and_put_on_collection_405(self):
        os.mkdir(self.dav.path("coll"))
        self.assertEqual(self.req("GET", "/dav/missing").status, 404)
        self.assertEqual(self.req("PROPFIND", "/dav/missing", {"Depth": "0"}).status, 404)
        r = self.put("/dav/coll", b"x")
        self.assertEqual(r.status, 405, r)
        self.assertNotIn("PUT", r.header("Allow"))
        self.assertEqual(self.req("MKCOL", "/dav/coll/").status, 405)

    def test_read_only_share(self):
        with open(self.dav.path("a.txt"), "wb") as f:
            f.write(b"a")
        self.assertEqual(self.allow("/ro/a.txt"), {"GET", "HEAD", "OPTIONS", "PROPFIND"})
        for m in ("PUT", "DELETE", "MKCOL", "PROPPATCH", "LOCK"):
            r = self.req(m, "/ro/a.txt", body=b"x" if m == "PUT" else b"")
            self.assertEqual(r.status, 405, (m, r))
        self.assertEqual(self.req("PROPFIND", "/ro/", {"Depth": "1"}).status, 207)
        with open(self.dav.path("a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"a")
        # No locking here: class 1 only, so clients mount it read-only.
        self.assertEqual(self.req("OPTIONS", "/ro/a.txt").header("DAV"), "1")

    def test_getcontenttype_matches_get(self):
        # The charset GET adds (utf-8 on text, none on JSON) is in PROPFIND too.
        for name, body in (("a.txt", b"a"), ("b.json", b"{}")):
            with open(self.dav.path(name), "wb") as f:
                f.write(body)
            ct = self.req("GET", "/dav/" + name).header("Content-Type")
            ms = multistatus(self.req("PROPFIND", "/dav/" + name, {"Depth": "0"}, PROPFIND_ALL))
            self.assertEqual(ms["/dav/" + name][DAV + "getcontenttype"][1].text, ct)
        self.assertEqual(ct, "application/json")
        self.assertEqual(self.req("GET", "/dav/a.txt").header("Content-Type"),
                         "text/plain; charset=utf-8")

    def test_supportedlock_follows_lock(self):
        # Where LOCK is refused (class 1), supportedlock lists no lock
        # kinds; where it is allowed, both scopes of write locks.
        with open(self.dav.path("a.txt"), "wb") as f:
            f.write(b"a")
        body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
                '<D:supportedlock/></D:prop></D:propfind>')
        for target, depth in (("/ro/a.txt", "0"), ("/ro/", "1")):
            r = self.req("PROPFIND", target, {"Depth": depth}, body)
            self.assertEqual(r.status, 207, r)
            for href, props in multistatus(r).items():
                status, el = props[DAV + "supportedlock"]
                self.assertEqual(status, 200, (href, r.body))
                self.assertEqual(list(el), [], (href, r.body))
            self.assertEqual(self.req("LOCK", target, {}, LOCKINFO % "exclusive").status, 405)
        ms = multistatus(self.req("PROPFIND", "/ro/a.txt", {"Depth": "0"}, PROPFIND_ALL))
        self.assertEqual(list(ms["/ro/a.txt"][DAV + "supportedlock"][1]), [])
        r = self.req("PROPFIND", "/dav/a.txt", {"Depth": "0"}, body)
        status, el = multistatus(r)["/dav/a.txt"][DAV + "supportedlock"]
        self.assertEqual(status, 200)
        scopes = sorted(e.find(DAV + "lockscope")[0].tag for e in el.findall(DAV + "lockentry"))
        self.assertEqual(scopes, [DAV + "exclusive", DAV + "shared"])


class TestMethods(DavCase):
    def test_put_get_replace(self):
        r = self.put("/dav/f.bin", b"one")
        self.assertEqual(r.status, 201, r)
        etag = r.header("ETag")
        r = self.req("GET", "/dav/f.bin")
        self.assertEqual((r.status, r.body, r.header("ETag")), (200, b"one", etag))
        self.assertEqual(self.put("/dav/f.bin", b"two!").status, 204)
        self.assertEqual(self.req("GET", "/dav/f.bin").body, b"two!")
        self.assertEqual(self.req("HEAD", "/dav/f.bin").header("Content-Length"), "4")
        self.assertEqual(self.put("/dav/f.bin", b"x", {"If-Match": '"nope"'}).status, 412)
        self.assertEqual(self.put("/dav/new.bin", b"x", {"If-None-Match": "*"}).status, 201)
        self.assertEqual(self.put("/dav/new.bin", b"y", {"If-None-Match": "*"}).status, 412)

    def test_get_right_after_put_sees_the_new_bytes(self):
        # The static module's open-file cache must never answer a request
        # with bytes older than a change answered before it arrived: on a
        # new connection, and pipelined on the same one.
        for i in range(40):
            body = b"version %d" % i
            self.assertIn(self.put("/dav/v.txt", body).status, (201, 204))
            self.assertEqual(self.req("GET", "/dav/v.txt").body, body)
        c = self.dav.server.connect(timeout=20)
        try:
            new = b"pipelined"
            c.send(build_request("PUT", "/dav/v.txt", [("Content-Length", str(len(new)))], new)
                   + build_request("GET", "/dav/v.txt", [], b""))
            self.assertIn(c.read_response("PUT").status, (201, 204))
            self.assertEqual(c.read_response("GET").body, new)
        finally:
            c.close()

    def test_put_empty_and_chunked(self):
        self.assertEqual(self.put("/dav/empty", b"").status, 201)
        self.assertEqual(os.path.getsize(self.dav.path("empty")), 0)
        c = self.dav.server.connect(timeout=20)
        body = os.urandom(300000)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 70000]), body[i:i + 70000])
                          for i in range(0, len(body), 70000)) + b"0\r\n\r\n"
        c.send(build_request("PUT", "/dav/chunked.bin", [("Transfer-Encoding", "chunked")]) + chunks)
        self.assertEqual(c.read_response("PUT").status, 201)
        c.close()
        with open(self.dav.path("chunked.bin"), "rb") as f:
            self.assertEqual(f.read(), body)

    def test_put_missing_parent(self):
        self.assertEqual(self.put("/dav/no/such/f", b"x").status, 409)
        self.assertFalse(os.path.exists(self.dav.path("no")))

    def test_mkcol(self):
        self.assertEqual(self.req("MKCOL", "/dav/c/").status, 201)
        self.assertTrue(os.path.isdir(self.dav.path("c")))
        self.assertEqual(self.req("MKCOL", "/dav/c/").status, 405)
        self.assertEqual(self.req("MKCOL", "/dav/x/y/").status, 409)
        self.assertEqual(self.req("MKCOL", "/dav/b/", body=b"<x/>").status, 415)
        self.assertFalse(os.path.exists(self.dav.path("b")))

    def test_delete_recursive(self):
        os.makedirs(self.dav.path("t/u/v"))
        for p in ("t/a", "t/u/b", "t/u/v/c"):
            with open(self.dav.path(p), "wb") as f:
                f.write(b"z")
        self.assertEqual(self.req("DELETE", "/dav/t/").status, 204)
        self.assertEqual(os.listdir(self.dav.data), [])
        self.assertEqual(self.req("DELETE", "/dav/t/").status, 404)

    def test_copy_move(self):
        self.put("/dav/src.txt", b"source")
        self.put("/dav/other.txt", b"other")
        dest = lambda p: {"Destination": "http://localhost/dav/" + p}
        self.assertEqual(self.req("COPY", "/dav/src.txt", dest("c1.txt")).status, 201)
        self.assertEqual(self.req("COPY", "/dav/src.txt", dest("other.txt")).status, 204)
        with open(self.dav.path("other.txt"), "rb") as f:
            self.assertEqual(f.read(), b"source")
        h = dest("c1.txt")
        h["Overwrite"] = "F"
        self.assertEqual(self.req("COPY", "/dav/src.txt", h).status, 412)
        self.assertEqual(self.req("COPY", "/dav/src.txt", dest("nope/x")).status, 409)
        self.assertEqual(self.req("COPY", "/dav/src.txt",
                                  {"Destination": "http://elsewhere.example/dav/x"}).status, 502)
        self.assertEqual(self.req("COPY", "/dav/src.txt", {"Destination": "/static/x"}).status, 502)
        self.assertEqual(self.req("COPY", "/dav/src.txt", {"Destination": "/dav/m.txt"}).status, 201)
        self.assertEqual(self.req("MOVE", "/dav/m.txt", dest("m2.txt")).status, 201)
        self.assertFalse(os.path.exists(self.dav.path("m.txt")))
        self.assertEqual(self.req("COPY", "/dav/src.txt", dest("src.txt")).status, 403)

    def test_move_collection_over_collection(self):
        os.makedirs(self.dav.path("a/in"))
        os.makedirs(self.dav.path("b/old"))
        h = {"Destination": "/dav/b/", "Overwrite": "F"}
        self.assertEqual(self.req("MOVE", "/dav/a/", h).status, 412)
        h["Overwrite"] = "T"
        self.assertEqual(self.req("MOVE", "/dav/a/", h).status, 204)
        self.assertEqual(sorted(os.listdir(self.dav.data)), ["b"])
        self.assertEqual(os.listdir(self.dav.path("b")), ["in"])

    def test_copy_depth_zero_collection(self):
        os.makedirs(self.dav.path("a/in"))
        r = self.req("COPY", "/dav/a/", {"Destination": "/dav/z/", "Depth": "0"})
        self.assertEqual(r.status, 201)
        self.assertEqual(os.listdir(self.dav.path("z")), [])


class TestPropfind(DavCase):
    def test_depth(self):
        os.makedirs(self.dav.path("c/d"))
        self.put("/dav/c/f.txt", b"12345")
        r = self.req("PROPFIND", "/dav/c/")  # no Depth: infinity
        self.assertEqual(r.status, 403)
        self.assertIn(b"propfind-finite-depth", r.body)
        r = self.req("PROPFIND", "/dav/c/", {"Depth": "1"}, PROPFIND_ALL)
        self.assertEqual(r.status, 207, r)
        ms = multistatus(r)
        self.assertEqual(set(ms), {"/dav/c/", "/dav/c/d/", "/dav/c/f.txt"})
        f = ms["/dav/c/f.txt"]
        self.assertEqual(f[DAV + "getcontentlength"][1].text, "5")
        self.assertEqual(f[DAV + "getcontenttype"][1].text, "text/plain; charset=utf-8")
        self.assertIsNone(f[DAV + "resourcetype"][1].find(DAV + "collection"))
        self.assertIsNotNone(ms["/dav/c/d/"][DAV + "resourcetype"][1].find(DAV + "collection"))
        for p in ("creationdate", "displayname", "getetag", "getlastmodified", "supportedlock",
                  "lockdiscovery"):
            self.assertIn(DAV + p, f)
        r = self.req("PROPFIND", "/dav/c/", {"Depth": "0"})
        self.assertEqual(set(multistatus(r)), {"/dav/c/"})

    def test_prop_and_propname(self):
        self.put("/dav/f", b"x")
        body = ('<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><D:getetag/><Z:nothing/>'
                '</D:prop></D:propfind>')
        ms = multistatus(self.req("PROPFIND", "/dav/f", {"Depth": "0"}, body))["/dav/f"]
        self.assertEqual(ms[DAV + "getetag"][0], 200)
        self.assertEqual(ms["{urn:z}nothing"][0], 404)
        body = '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
        ms = multistatus(self.req("PROPFIND", "/dav/f", {"Depth": "0"}, body))["/dav/f"]
        self.assertIn(DAV + "getetag", ms)
        self.assertIsNone(ms[DAV + "getetag"][1].text)

    def test_names_escaped(self):
        name = "a&b <c> \"q\" \u00e9.txt"
        with open(self.dav.path(name), "wb") as f:
            f.write(b"x")
        r = self.req("PROPFIND", "/dav/", {"Depth": "1"})
        hrefs = set(multistatus(r))  # parses: well-formed
        self.assertIn("/dav/a%26b%20%3Cc%3E%20%22q%22%20%C3%A9.txt", hrefs)

    def test_malformed_xxe_and_size(self):
        bad = ["<D:propfind xmlns:D='DAV:'><D:prop>", "<propfind/>", "not xml",
               '<D:propfind xmlns:D="DAV:"><D:prop><x:y xmlns:x=""/></D:prop></D:propfind>']
        for b in bad:
            self.assertEqual(self.req("PROPFIND", "/dav/", {"Depth": "0"}, b).status, 400, b)
        secret = os.path.join(self.dav.base, "secret")
        with open(secret, "w") as f:
            f.write("TOP-SECRET-XXE")
        xxe = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY s SYSTEM "file://%s">]>'
               '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>&s;</D:propfind>' % secret)
        r = self.req("PROPFIND", "/dav/", {"Depth": "0"}, xxe)
        self.assertEqual(r.status, 400)
        self.assertNotIn(b"TOP-SECRET", r.body)
        laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                  '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                  '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="u:">&c;</x>'
                  '</D:prop></D:set></D:propertyupdate>')
        self.put("/dav/f", b"x")
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=laughs).status, 400)
        big = "<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind>" + " " * (1 << 20)
        c = self.dav.server.connect(timeout=20)
        r = self.req("PROPFIND", "/dav/", {"Depth": "0"}, big, conn=c)
        self.assertEqual(r.status, 413)
        c.close()

    def test_infinity_when_enabled(self):
        self.dav.stop()
        self.dav = DavServer(base=self.dav.base, extra="dav_depth_infinity on;")
        self.addCleanup(self.dav.stop)
        self.dav.start()
        os.makedirs(self.dav.path("a/b/c"))
        r = self.req("PROPFIND", "/dav/", {"Depth": "infinity"})
        self.assertEqual(set(multistatus(r)), {"/dav/", "/dav/a/", "/dav/a/b/", "/dav/a/b/c/"})


class TestProppatch(DavCase):
    def test_set_get_remove_and_persist(self):
        self.put("/dav/f", b"x")
        body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
                '<Z:color>red &amp; <Z:b>bold</Z:b></Z:color></D:prop></D:set></D:propertyupdate>')
        r = self.req("PROPPATCH", "/dav/f", body=body)
        self.assertEqual(r.status, 207)
        self.assertEqual(multistatus(r)["/dav/f"]["{urn:z}color"][0], 200)
        self.dav.stop()
        self.dav.start()
        q = ('<D:propfind xmlns:D="DAV:"><D:prop><color xmlns="urn:z"/></D:prop></D:propfind>')
        el = multistatus(self.req("PROPFIND", "/dav/f", {"Depth": "0"}, q))["/dav/f"]["{urn:z}color"]
        self.assertEqual(el[0], 200)
        self.assertEqual(el[1].text, "red & ")
        self.assertEqual(el[1].find("{urn:z}b").text, "bold")
        # Carried by MOVE, then removed.
        self.req("MOVE", "/dav/f", {"Destination": "/dav/g"})
        el = multistatus(self.req("PROPFIND", "/dav/g", {"Depth": "0"}, q))["/dav/g"]["{urn:z}color"]
        self.assertEqual(el[0], 200)
        rm = ('<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><color xmlns="urn:z"/></D:prop>'
              '</D:remove></D:propertyupdate>')
        self.assertEqual(self.req("PROPPATCH", "/dav/g", body=rm).status, 207)
        el = multistatus(self.req("PROPFIND", "/dav/g", {"Depth": "0"}, q))["/dav/g"]["{urn:z}color"]
        self.assertEqual(el[0], 404)

    def test_atomic(self):
        self.put("/dav/f", b"x")
        body = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><a xmlns="urn:z">1</a>'
                '<D:getetag>"forged"</D:getetag></D:prop></D:set></D:propertyupdate>')
        r = self.req("PROPPATCH", "/dav/f", body=body)
        ms = multistatus(r)["/dav/f"]
        self.assertEqual(ms["{urn:z}a"][0], 424)
        self.assertEqual(ms[DAV + "getetag"][0], 403)
        q = '<D:propfind xmlns:D="DAV:"><D:prop><a xmlns="urn:z"/></D:prop></D:propfind>'
        ms = multistatus(self.req("PROPFIND", "/dav/f", {"Depth": "0"}, q))["/dav/f"]
        self.assertEqual(ms["{urn:z}a"][0], 404)

    def test_database_beside_not_inside(self):
        self.put("/dav/f", b"x")
        self.req("PROPPATCH", "/dav/f", body='<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
                 '<a xmlns="urn:z">1</a></D:prop></D:set></D:propertyupdate>')
        self.assertTrue(os.path.exists(os.path.join(self.dav.base, ".verbd-dav-data.sqlite")))
        self.assertEqual(os.listdir(self.dav.data), ["f"])


class TestLocks(DavCase):
    def lock(self, target, scope="exclusive", headers=None):
        h = {"Timeout": "Second-600", "Depth": "0"}
        h.update(headers or {})
        r = self.req("LOCK", target, h, LOCKINFO % scope)
        token = r.header("Lock-Token")
        return r, token[1:-1] if token else None

    def test_lock_put_unlock_and_persist(self):
        self.put("/dav/f", b"v1")
        r, tok = self.lock("/dav/f")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(tok.startswith("opaquelocktoken:"))
        self.assertEqual(self.put("/dav/f", b"v2").status, 423)
        self.assertEqual(self.req("DELETE", "/dav/f").status, 423)
        self.assertEqual(self.lock("/dav/f")[0].status, 423)
        self.assertEqual(self.lock("/dav/f", "shared")[0].status, 423)
        # Locks live in the database: a restart keeps them.
        self.dav.stop()
        self.dav.start()
        self.assertEqual(self.put("/dav/f", b"v2").status, 423)
        self.assertEqual(self.put("/dav/f", b"v2", {"If": "(<%s>)" % tok}).status, 204)
        self.assertEqual(self.put("/dav/f", b"v3", {"If": "(<%sx>)" % tok}).status, 412)
        tagged = "<http://localhost/dav/f> (<%s>)" % tok
        self.assertEqual(self.put("/dav/f", b"v3", {"If": tagged}).status, 204)
        self.assertEqual(self.put("/dav/f", b"v4", {"If": "(<%s" % tok}).status, 400)
        self.assertEqual(self.req("UNLOCK", "/dav/f", {"Lock-Token": "<nope>"}).status, 409)
        self.assertEqual(self.req("UNLOCK", "/dav/f", {"Lock-Token": "<%s>" % tok}).status, 204)
        self.assertEqual(self.put("/dav/f", b"v5").status, 204)

    def test_if_etag_and_not(self):
        r = self.put("/dav/f", b"v1")
        etag = r.header("ETag")
        self.assertEqual(self.put("/dav/f", b"v2", {"If": "([%s])" % etag}).status, 204)
        self.assertEqual(self.put("/dav/f", b"v3", {"If": "([%s])" % etag}).status, 412)
        self.assertEqual(self.put("/dav/f", b"v3", {"If": "(Not [%s])" % etag}).status, 204)
        self.assertEqual(self.put("/dav/f", b"v4", {"If": "(<DAV:no-lock>)"}).status, 412)
        self.assertEqual(self.put("/dav/f", b"v4", {"If": "(Not <DAV:no-lock>)"}).status, 204)

    def test_shared_locks_and_collection_depth(self):
        os.mkdir(self.dav.path("c"))
        r1, t1 = self.lock("/dav/c/", "shared", {"Depth": "infinity"})
        r2, t2 = self.lock("/dav/c/", "shared", {"Depth": "infinity"})
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertNotEqual(t1, t2)
        # A member of a locked collection: creating it needs a token.
        self.assertEqual(self.put("/dav/c/new", b"x").status, 423)
        self.assertEqual(self.put("/dav/c/new", b"x", {"If": "(<%s>)" % t2}).status, 201)
        body = '<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>'
        r = self.req("PROPFIND", "/dav/c/new", {"Depth": "0"}, body)
        self.assertEqual(r.body.count(b"<D:activelock>"), 2)
        # Refresh through the member.
        r = self.req("LOCK", "/dav/c/new", {"If": "(<%s>)" % t1, "Timeout": "Second-999"})
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"Second-99", r.body)

    def test_lock_unmapped_creates_empty(self):
        r, tok = self.lock("/dav/newfile")
        self.assertEqual(r.status, 201)
        self.assertEqual(os.path.getsize(self.dav.path("newfile")), 0)
        self.assertEqual(self.lock("/dav/no/parent")[0].status, 409)


class TestPathsAndTempFiles(DavCase):
    def test_temp_files_hidden(self):
        with open(self.dav.path(".verbd-put-leftover"), "wb") as f:
            f.write(b"partial")
        self.put("/dav/real", b"x")
        ms = multistatus(self.req("PROPFIND", "/dav/", {"Depth": "1"}))
        self.assertEqual(set(ms), {"/dav/", "/dav/real"})
        self.assertEqual(self.req("GET", "/dav/.verbd-put-leftover").status, 404)
        self.assertEqual(self.put("/dav/.verbd-put-leftover", b"y").status, 404)
        self.assertEqual(self.req("GET", "/dav/").status, 200)
        self.assertNotIn(b"verbd-put", self.req("GET", "/dav/").body)

    def test_symlinks_never_leave_the_root(self):
        outside = os.path.join(self.dav.base, "outside")
        os.mkdir(outside)
        with open(os.path.join(outside, "secret"), "wb") as f:
            f.write(b"SECRET")
        os.symlink(outside, self.dav.path("link"))
        os.symlink(os.path.join(outside, "secret"), self.dav.path("flink"))
        self.assertIn(self.req("GET", "/dav/link/secret").status, (403, 404))
        self.assertIn(self.req("GET", "/dav/flink").status, (403, 404))
        self.assertIn(self.put("/dav/link/new", b"x").status, (403, 404, 409))
        self.assertIn(self.req("MKCOL", "/dav/link/d/").status, (403, 404, 409))
        self.assertIn(self.req("COPY", "/dav/flink", {"Destination": "/dav/copy"}).status,
                      (403, 404))
        self.assertEqual(os.listdir(outside), ["secret"])
        ms = multistatus(self.req("PROPFIND", "/dav/", {"Depth": "1"}))
        self.assertEqual(set(ms), {"/dav/"})
        self.assertNotIn(b"SECRET", self.req("GET", "/dav/").body)
        self.assertEqual(os.listdir(outside), ["secret"])


def _can_mount_tmpfs():
    if os.geteuid() != 0:
        return False
    d = tempfile.mkdtemp(prefix="verbd-mnt-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if ok:
            subprocess.run(["umount", d])
        return ok
    except OSError:
        return False
    finally:
        os.rmdir(d)


class TestExpectContinue(DavCase):
    """What the head of a PUT decides is answered before the body: a
    client waiting for 100 Continue gets the final status instead, and
    never sends its body."""

    def put_expecting(self, target, headers=()):
        c = self.dav.server.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", target, [("Content-Length", "5"),
                                             ("Expect", "100-continue")] + list(headers)))
        return c, c.read_response("PUT")

    def test_missing_parent_is_409_without_100(self):
        c, r = self.put_expecting("/dav/no/such/x.txt")
        self.assertEqual(r.status, 409, r)
        self.assertFalse(os.path.exists(self.dav.path("no")))

    def test_locked_resource_is_423_without_100(self):
        self.assertIn(self.put("/dav/f", b"v1").status, (201, 204))
        r = self.req("LOCK", "/dav/f", {"Timeout": "Second-600", "Depth": "0"},
                     LOCKINFO % "exclusive")
        self.assertEqual(r.status, 200, r)
        c, r = self.put_expecting("/dav/f")
        self.assertEqual(r.status, 423, r)

    def test_failed_precondition_is_412_without_100(self):
        self.assertIn(self.put("/dav/f", b"v1").status, (201, 204))
        c, r = self.put_expecting("/dav/f", [("If-None-Match", "*")])
        self.assertEqual(r.status, 412, r)

    def test_collection_is_405_without_100(self):
        os.mkdir(self.dav.path("c"))
        c, r = self.put_expecting("/dav/c/")
        self.assertEqual(r.status, 405, r)

    def test_acceptable_put_gets_100(self):
        c, r = self.put_expecting("/dav/new.txt")
        self.assertEqual(r.status, 100, r)
        c.send(b"hello")
        self.assertEqual(c.read_response("PUT").status, 201)


class TestPathErrors(DavCase):
    """DECISIONS, path errors: a segment longer than NAME_MAX is 400 naming
    the limit; no space is 507; a read-only file system 403; a missing
    parent 409."""

    LONG = "n" * 256  # NAME_MAX + 1

    def leftovers(self):
        return [n for n in os.listdir(self.dav.data) if n.startswith(".verbd-")]

    def test_put_long_name_is_400(self):
        r = self.put("/dav/" + self.LONG, b"data")
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"NAME_MAX (255 bytes)", r.body)
        self.assertEqual(os.listdir(self.dav.data), [])
        # The same name below a missing parent: still the name's fault.
        r = self.put("/dav/missing/" + self.LONG, b"data")
        self.assertEqual(r.status, 400, r)
        # NAME_MAX itself is fine.
        self.assertEqual(self.put("/dav/" + self.LONG[1:], b"data").status, 201)
        self.assertEqual(self.leftovers(), [])

    def test_mkcol_long_name_is_400(self):
        r = self.req("MKCOL", "/dav/" + self.LONG + "/")
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"NAME_MAX", r.body)
        self.assertEqual(os.listdir(self.dav.data), [])

    def test_copy_to_long_name_is_400(self):
        self.assertEqual(self.put("/dav/a.txt", b"a").status, 201)
        r = self.req("COPY", "/dav/a.txt", {"Destination": "/dav/" + self.LONG})
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"NAME_MAX", r.body)
        self.assertEqual(sorted(os.listdir(self.dav.data)), ["a.txt"])

    def test_get_and_propfind_long_name_are_400(self):
        self.assertEqual(self.req("GET", "/dav/" + self.LONG).status, 400)
        self.assertEqual(self.req("PROPFIND", "/dav/" + self.LONG, {"Depth": "0"}).status, 400)

    def test_missing_parent_is_409(self):
        r = self.put("/dav/no/such/file", b"x")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.req("MKCOL", "/dav/no/such/").status, 409)

    def mount(self, opts, read_only=False):
        # The server holds the directory it was started on: restart it on
        # the mounted file system.
        self.dav.stop()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", self.dav.data])
        self.assertEqual(r.returncode, 0)
        self.addCleanup(subprocess.run, ["umount", "-l", self.dav.data])
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", self.dav.data], check=True)
        self.dav.start()

    @unittest.skipUnless(_can_mount_tmpfs(), "needs root and tmpfs mounts")
    def test_no_space_is_507(self):
        self.mount("size=64k")
        r = self.put("/dav/big.bin", b"x" * (256 * 1024))
        self.assertEqual(r.status, 507, r)
        self.assertFalse(os.path.exists(self.dav.path("big.bin")))
        r = self.req("MKCOL", "/dav/fits/")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.leftovers(), [])

    @unittest.skipUnless(_can_mount_tmpfs(), "needs root and tmpfs mounts")
    def test_read_only_file_system_is_403(self):
        self.mount("size=64k", read_only=True)
        r = self.put("/dav/f.txt", b"x")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"read-only", r.body)
        r = self.req("MKCOL", "/dav/d/")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"read-only", r.body)
        # Deliberate answers: nothing for the error log.
        self.assertNotIn("[error]", self.dav.server.stderr_text())


class TestTempFiles(unittest.TestCase):
    """DECISIONS: temporary files sit in the target's directory under the
    reserved prefix with the node's host name and pid; no module serves
    them; a node removes its own whose pid is dead, and any older than a
    day."""

    def setUp(self):
        self.dav = DavServer()
        self.addCleanup(self.dav.cleanup)
        # A static location over the same directory, showing dotfiles.
        with open(self.dav.conf, "a") as f:
            f.write("location /pub/ { static %s; hidden_files on; }\n" % self.dav.data)

    def temp_names(self, rel=""):
        return sorted(n for n in os.listdir(self.dav.path(rel)) if n.startswith(".verbd-"))

    def test_upload_in_progress_is_served_by_no_location(self):
        self.dav.start()
        body = bytes(range(256)) * 512  # 128 KiB
        c = self.dav.server.connect(timeout=20)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/dav/up.bin", [("Content-Length", str(len(body)))]))
        c.send(body[:len(body) // 2])
        # The temporary file appears with the head, and fills as the body
        # arrives: wait for both.
        deadline = time.time() + 10
        while time.time() < deadline:
            names = self.temp_names()
            if names and os.path.getsize(self.dav.path(names[0])) > 0:
                break
            time.sleep(0.05)
        names = self.temp_names()
        self.assertEqual(len(names), 1, names)
        tmp = names[0]
        self.assertTrue(tmp.startswith(".verbd-put-%s-" % socket.gethostname()), tmp)
        self.assertGreater(os.path.getsize(self.dav.path(tmp)), 0)
        for target in ("/pub/" + tmp, "/dav/" + tmp, "/ro/" + tmp):
            r = self.dav.req("GET", target)
            self.assertEqual(r.status, 404, (target, r))
        self.assertNotIn(b".verbd-", self.dav.req("GET", "/pub/").body)
        ms = multistatus(self.dav.req("PROPFIND", "/dav/", {"Depth": "1"}))
        self.assertEqual(set(ms), {"/dav/"})
        c.send(body[len(body) // 2:])
        self.assertEqual(c.read_response("PUT").status, 201)
        self.assertEqual(self.temp_names(), [])
        with open(self.dav.path("up.bin"), "rb") as f:
            self.assertEqual(f.read(), body)

    def test_orphans_of_dead_processes_are_removed_at_start(self):
        host = socket.gethostname()
        dead = subprocess.Popen(["true"])
        dead.wait()
        os.mkdir(self.dav.path("sub"))
        mine_dead = ".verbd-put-%s-%d-1-00000000" % (host, dead.pid)
        trash_dead = ".verbd-trash-%s-%d-2-0000abcd" % (host, dead.pid)
        mine_live = ".verbd-put-%s-%d-3-00000000" % (host, os.getpid())
        other_node = ".verbd-put-other-%s-%d-4-00000000" % (host, dead.pid)
        not_temp = ".verbd-put-garbage"
        db_like = ".verbd-dav-data.sqlite"  # a database's name, not a temporary one
        for rel in (mine_dead, "sub/" + mine_dead, mine_live, other_node, not_temp, db_like):
            with open(self.dav.path(rel), "wb") as f:
                f.write(b"half an upload")
        os.makedirs(self.dav.path(trash_dead + "/inner"))
        with open(self.dav.path(trash_dead + "/inner/f"), "wb") as f:
            f.write(b"x")
        with open(self.dav.path("keep.txt"), "wb") as f:
            f.write(b"keep")
        self.dav.start()
        self.assertEqual(self.dav.req("OPTIONS", "/dav/").status, 204)
        self.assertEqual(self.temp_names(), sorted([mine_live, other_node, not_temp, db_like]))
        self.assertEqual(self.temp_names("sub"), [])
        self.assertTrue(os.path.exists(self.dav.path("keep.txt")))


if __name__ == "__main__":
    unittest.main()
