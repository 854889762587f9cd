"""The webdav module's store of dead properties and locks: `dav_store
sqlite:PATH` (and `dav_db PATH`, its short form; `dav_store
postgresql://...` is checked here, served in test_webdav_pg.py), what every method does
when the store cannot answer (503 with Retry-After, nothing changed; GET
and HEAD unaffected; back to normal once the store is, with no restart),
the lock conflicts the store decides in one step, including under
concurrency across worker processes, and lock expiry."""

import concurrent.futures
import os
import shutil
import tempfile
import threading
import time
import unittest

from harness import build_request, run_verbd
from test_webdav import LOCKINFO, DavServer, multistatus

DAV = "{DAV:}"
PROPPATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
             '<D:set><D:prop><Z:colour>%s</Z:colour></D:prop></D:set></D:propertyupdate>')
LOCKINFO_X = LOCKINFO % "exclusive"
PROPFIND_COLOUR = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z">'
                   '<D:prop><Z:colour/></D:prop></D:propfind>')


class StoreCase(unittest.TestCase):
    store = "dav_store sqlite:db/props.sqlite;"
    workers = 1

    def store_directive(self):
        """The location's store directive (test_webdav_pg.py: PostgreSQL)."""
        return self.store

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-davstore-")
        self.addCleanup(shutil.rmtree, self.base, True)
        os.mkdir(os.path.join(self.base, "db"))
        self.store = self.store_directive()
        self.dav = DavServer(base=self.base, extra=self.store, workers=self.workers)
        self.addCleanup(self.dav.cleanup)
        self.dav.start()

    def req(self, *a, **kw):
        return self.dav.req(*a, **kw)

    def lock(self, target, scope="exclusive", depth="0", timeout="Second-600", headers=None):
        h = {"Timeout": timeout, "Depth": depth}
        h.update(headers or {})
        r = self.req("LOCK", target, h, LOCKINFO % scope)
        token = r.header("Lock-Token")
        return r, token[1:-1] if token else None

    def colour(self, target):
        r = self.req("PROPFIND", target, {"Depth": "0"}, PROPFIND_COLOUR)
        self.assertEqual(r.status, 207, r)
        status, el = next(iter(multistatus(r).values()))["{urn:z}colour"]
        return el.text if status == 200 else None


class TestSqliteStore(StoreCase):
    def test_path_relative_to_config_and_kept_across_restarts(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=PROPPATCH % "red").status, 207)
        self.assertTrue(os.path.exists(os.path.join(self.base, "db", "props.sqlite")))
        self.assertFalse(os.path.exists(os.path.join(self.base, ".verbd-dav-data.sqlite")))
        self.dav.stop()
        self.dav.start()
        self.assertEqual(self.colour("/dav/f"), "red")

    def test_large_property(self):
        value = "v" * (900 * 1024)
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=PROPPATCH % value).status, 207)
        self.assertEqual(self.colour("/dav/f"), value)

    def test_depth_one_lists_the_members_properties(self):
        os.mkdir(self.dav.path("c"))
        for name, colour in (("a", "red"), ("b", "blue")):
            self.assertEqual(self.req("PUT", "/dav/c/" + name, body=b"x").status, 201)
            self.assertEqual(self.req("PROPPATCH", "/dav/c/" + name,
                                      body=PROPPATCH % colour).status, 207)
        self.assertEqual(self.req("PROPPATCH", "/dav/c/", body=PROPPATCH % "green").status, 207)
        r = self.req("PROPFIND", "/dav/c/", {"Depth": "1"}, PROPFIND_COLOUR)
        got = {href: props["{urn:z}colour"][1].text for href, props in multistatus(r).items()}
        self.assertEqual(got, {"/dav/c/": "green", "/dav/c/a": "red", "/dav/c/b": "blue"})

    def test_subtree_follows_move_and_goes_with_delete(self):
        os.makedirs(self.dav.path("c/d"))
        with open(self.dav.path("c/d/f"), "wb") as f:
            f.write(b"x")
        self.assertEqual(self.req("PROPPATCH", "/dav/c/d/f", body=PROPPATCH % "red").status, 207)
        r, tok = self.lock("/dav/c/d/f")
        self.assertEqual(r.status, 200, r)
        r = self.req("MOVE", "/dav/c", {"Destination": "/dav/m",
                                        "If": "</dav/c/d/f> (<%s>)" % tok})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.colour("/dav/m/d/f"), "red")
        # The source's lock stayed behind with its name: the new tree is free.
        self.assertEqual(self.req("PUT", "/dav/m/d/f", body=b"y").status, 204)
        self.assertEqual(self.req("DELETE", "/dav/m").status, 204)
        os.makedirs(self.dav.path("m/d"))
        with open(self.dav.path("m/d/f"), "wb") as f:
            f.write(b"z")
        self.assertIsNone(self.colour("/dav/m/d/f"))


class TestDavDbShortForm(StoreCase):
    store = "dav_db db/props.sqlite;"

    def test_same_file_as_dav_store(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=PROPPATCH % "red").status, 207)
        self.dav.stop()
        with open(self.dav.conf) as f:
            conf = f.read()
        with open(self.dav.conf, "w") as f:
            f.write(conf.replace("dav_db db/props.sqlite;", "dav_store sqlite:db/props.sqlite;"))
        self.dav.start()
        self.assertEqual(self.colour("/dav/f"), "red")


class TestStoreConfig(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-davstore-")
        self.addCleanup(shutil.rmtree, self.base, True)
        os.mkdir(os.path.join(self.base, "share"))

    def check(self, directive):
        conf = os.path.join(self.base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("location /dav/ {\n    webdav share;\n    %s\n}\n" % directive)
        p = run_verbd("-t", "-c", conf)
        p.stderr = p.stderr.decode("utf-8", "replace")
        return p

    def test_checks_of_dav_db_apply(self):
        p = self.check("dav_store sqlite:share/props.sqlite;")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("verbd.conf:3:5: dav_store: %s/share/props.sqlite is inside the shared "
                      "directory" % self.base, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.base, "share", "props.sqlite")))
        with open(os.path.join(self.base, "w.db"), "w") as f:
            f.write("not a database, at all")
        p = self.check("dav_store sqlite:w.db;")
        self.assertIn("dav_store: %s/w.db exists and is not an SQLite database" % self.base,
                      p.stderr)
        self.assertIn("dav_store: an empty path", self.check("dav_store sqlite:;").stderr)

    def test_unknown_store(self):
        for value in ("props.sqlite", "mysql://h/db", "postgres:x", "postgresql:x"):
            p = self.check("dav_store %s;" % value)
            self.assertNotEqual(p.returncode, 0, value)
            self.assertIn("names no store verbd has; write sqlite:PATH", p.stderr, value)

    def test_accepted_and_nothing_created(self):
        p = self.check("dav_store sqlite:props.sqlite;")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.base, "props.sqlite")))

    def test_postgresql_uri_accepted_without_connecting(self):
        """`verbd -t` connects to nothing: no server needed."""
        p = self.check('dav_store "postgresql://verbd@db.invalid/dav";')
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.check('dav_store "postgres:///dav?host=/nonexistent";')
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_postgresql_password_refused(self):
        for uri in ("postgresql://verbd:secret@db/dav", "postgresql://verbd@db/dav?password=x"):
            p = self.check('dav_store "%s";' % uri)
            self.assertNotEqual(p.returncode, 0, uri)
            self.assertIn("the URI holds a password; put it in a password file", p.stderr)
            self.assertNotIn("secret", p.stderr)

    def test_lock_sweep_values(self):
        self.assertEqual(self.check("dav_lock_sweep 500ms;").returncode, 0)
        self.assertEqual(self.check("dav_lock_sweep off;").returncode, 0)
        for value in ("0", "soon", "-1s"):
            p = self.check("dav_lock_sweep %s;" % value)
            self.assertNotEqual(p.returncode, 0, value)
            self.assertIn("dav_lock_sweep", p.stderr)

    def test_postgresql_malformed_uri(self):
        p = self.check('dav_store "postgresql://verbd@db/dav?nosuchoption=1";')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("dav_store: not a PostgreSQL connection URI", p.stderr)


class TestStoreUnavailable(StoreCase):
    """The database's directory is moved away before the worker first
    opens it: every operation of the store then fails."""

    def setUp(self):
        super().setUp()
        for name in ("f", "g"):
            with open(self.dav.path(name), "wb") as f:
                f.write(b"old")
        self.db = os.path.join(self.base, "db")
        os.rename(self.db, self.db + "-away")

    def assertUnavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "5")

    def test_writes_locks_and_propfind_503_reads_work(self):
        self.assertUnavailable(self.req("PROPPATCH", "/dav/f", body=PROPPATCH % "red"))
        self.assertUnavailable(self.req("PROPFIND", "/dav/f", {"Depth": "0"}, PROPFIND_COLOUR))
        self.assertUnavailable(self.lock("/dav/f")[0])
        self.assertUnavailable(self.lock("/dav/new")[0])
        self.assertUnavailable(self.req("UNLOCK", "/dav/f", {"Lock-Token": "<opaquelocktoken:x>"}))
        self.assertUnavailable(self.req("PUT", "/dav/f", body=b"new"))
        self.assertUnavailable(self.req("PUT", "/dav/h", body=b"new"))
        self.assertUnavailable(self.req("DELETE", "/dav/f"))
        self.assertUnavailable(self.req("MKCOL", "/dav/d"))
        self.assertUnavailable(self.req("COPY", "/dav/f", {"Destination": "/dav/c"}))
        self.assertUnavailable(self.req("MOVE", "/dav/g", {"Destination": "/dav/m"}))
        # Nothing changed on disk.
        self.assertEqual(sorted(os.listdir(self.dav.data)), ["f", "g"])
        with open(self.dav.path("f"), "rb") as f:
            self.assertEqual(f.read(), b"old")
        # GET and HEAD never ask the store.
        r = self.req("GET", "/dav/f")
        self.assertEqual((r.status, r.body), (200, b"old"))
        self.assertEqual(self.req("HEAD", "/dav/f").status, 200)
        self.assertEqual(self.req("GET", "/dav/").status, 200)
        # Back, without a restart.
        os.rename(self.db + "-away", self.db)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=PROPPATCH % "red").status, 207)
        self.assertEqual(self.colour("/dav/f"), "red")
        r, tok = self.lock("/dav/f")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.req("PUT", "/dav/f", body=b"new").status, 423)
        self.assertEqual(self.req("UNLOCK", "/dav/f", {"Lock-Token": "<%s>" % tok}).status, 204)
        self.assertEqual(self.req("MOVE", "/dav/g", {"Destination": "/dav/m"}).status, 201)


class TestLockConflicts(StoreCase):
    def setUp(self):
        super().setUp()
        os.makedirs(self.dav.path("a/b"))
        with open(self.dav.path("a/b/f"), "wb") as f:
            f.write(b"x")

    def test_ancestor_with_depth_infinity_blocks_a_descendant(self):
        self.assertEqual(self.lock("/dav/a/", depth="infinity")[0].status, 200)
        r = self.lock("/dav/a/b/f")[0]
        self.assertEqual(r.status, 423)
        self.assertIn(b"no-conflicting-lock", r.body)
        self.assertEqual(self.lock("/dav/a/b/f", "shared")[0].status, 423)

    def test_ancestor_with_depth_zero_does_not(self):
        self.assertEqual(self.lock("/dav/a/", depth="0")[0].status, 200)
        self.assertEqual(self.lock("/dav/a/b/f")[0].status, 200)

    def test_new_depth_infinity_lock_meets_a_descendant_lock(self):
        self.assertEqual(self.lock("/dav/a/b/f")[0].status, 200)
        self.assertEqual(self.lock("/dav/a/", depth="infinity")[0].status, 423)
        self.assertEqual(self.lock("/dav/a/", depth="0")[0].status, 200)

    def test_shared_with_shared_not_with_exclusive(self):
        self.assertEqual(self.lock("/dav/a/b/f", "shared")[0].status, 200)
        self.assertEqual(self.lock("/dav/a/b/f", "shared")[0].status, 200)
        self.assertEqual(self.lock("/dav/a/b/f")[0].status, 423)
        self.assertEqual(self.lock("/dav/a/", "shared", depth="infinity")[0].status, 200)
        self.assertEqual(self.lock("/dav/a/", "exclusive", depth="infinity")[0].status, 423)

    def test_expired_lock_is_ignored(self):
        r, tok = self.lock("/dav/a/b/f", timeout="Second-2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.req("PUT", "/dav/a/b/f", body=b"y").status, 423)
        time.sleep(3.2)
        self.assertEqual(self.req("PUT", "/dav/a/b/f", body=b"y").status, 204)
        self.assertEqual(self.lock("/dav/a/b/f")[0].status, 200)
        r = self.req("LOCK", "/dav/a/b/f", {"If": "(<%s>)" % tok})
        self.assertEqual(r.status, 412, r)  # refreshing an expired lock
        self.assertEqual(self.req("UNLOCK", "/dav/a/b/f",
                                  {"Lock-Token": "<%s>" % tok}).status, 409)


class TestLockSweep(StoreCase):
    """dav_lock_sweep 1s: an expired lock's row is deleted in the
    background, with no request after it; with `off` it stays."""
    sweep = "dav_lock_sweep 1s;"

    def store_directive(self):
        return super().store_directive() + " " + self.sweep

    def rows(self):
        """The lock rows in the store, expired or not."""
        import sqlite3
        db = sqlite3.connect(os.path.join(self.base, "db", "props.sqlite"))
        try:
            return db.execute("SELECT count(*) FROM locks").fetchone()[0]
        finally:
            db.close()

    def test_expired_lock_swept(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        r, _ = self.lock("/dav/f", timeout="Second-1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.req("PUT", "/dav/g", body=b"x").status, 201)
        r, _ = self.lock("/dav/g", timeout="Second-60")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.rows(), 2)
        time.sleep(3.5)  # expired after 1 s, swept within the next second or two
        self.assertEqual(self.rows(), 1)  # the unexpired one stays


class TestLockSweepOff(TestLockSweep):
    sweep = "dav_lock_sweep off;"

    def test_expired_lock_swept(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.lock("/dav/f", timeout="Second-1")[0].status, 200)
        time.sleep(3.5)
        self.assertEqual(self.rows(), 1)  # ignored (see TestLockConflicts), not deleted


class TestConcurrentLocks(StoreCase):
    """Two servers (nodes) on the same share and the same store file, two
    workers each."""
    workers = 2

    def setUp(self):
        super().setUp()
        self.other = DavServer(base=self.base, extra=self.store, workers=self.workers)
        self.addCleanup(self.other.stop)
        self.other.start()

    def test_one_exclusive_lock_among_many(self):
        """40 connections spread over both nodes send their LOCK at the
        same moment: exactly one gets the lock, every other one 423 (twenty rounds)."""
        n = 40
        for round_ in range(20):
            target = "/dav/r%d" % round_
            self.assertEqual(self.req("PUT", target, body=b"x").status, 201)
            conns = [(self.dav, self.other)[i % 2].server.connect(timeout=20) for i in range(n)]
            barrier = threading.Barrier(n)
            request = build_request("LOCK", target, [("Timeout", "Second-600"), ("Depth", "0"),
                                                     ("Content-Length", str(len(LOCKINFO_X)))],
                                    LOCKINFO_X.encode())

            def lock(c):
                barrier.wait()
                c.send(request)
                return c.read_response("LOCK").status

            try:
                with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
                    statuses = list(pool.map(lock, conns))
            finally:
                for c in conns:
                    c.close()
            self.assertEqual(statuses.count(200), 1, statuses)
            self.assertEqual(statuses.count(423), n - 1, statuses)

    def test_a_lock_taken_on_one_node_holds_on_the_other(self):
        self.assertEqual(self.req("MKCOL", "/dav/c").status, 201)
        r, tok = self.lock("/dav/c/", depth="infinity")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.other.req("PUT", "/dav/c/f", body=b"x").status, 423)
        self.assertEqual(self.other.req("PUT", "/dav/c/f", {"If": "(<%s>)" % tok},
                                        b"x").status, 201)
        self.assertEqual(self.other.req("UNLOCK", "/dav/c/", {"Lock-Token": "<%s>" % tok}).status,
                         204)
        self.assertEqual(self.req("PUT", "/dav/c/f", body=b"y").status, 204)


if __name__ == "__main__":
    unittest.main()
