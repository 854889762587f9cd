"""The webdav module with its dead properties and locks in PostgreSQL
(`dav_store postgresql://...`), against a real server started for the
tests (pgserver.py): litmus, the store tests of test_webdav_store.py,
two servers (nodes) sharing one database, and the database stopped and
started again under a running verbd.  Skipped only when PostgreSQL is
not installed."""

import itertools
import os
import shutil
import signal
import subprocess
import threading
import time
import unittest

import test_webdav_litmus
import test_webdav_store as store
from pgserver import PgServer
from test_webdav import DavServer

WHY = PgServer.available()
_names = itertools.count()


class PgStore:
    """Mixin: a PostgreSQL server for the class, a fresh database per
    test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.start()

    def store_directive(self):
        self.db = "dav%d" % next(_names)
        self.pg.sql("CREATE DATABASE %s" % self.db)
        return 'dav_store "postgresql://verbd@/%s?host=%s";' % (self.db, self.pg.dir)


@unittest.skipIf(WHY, WHY)
@unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
class TestLitmusPg(PgStore, test_webdav_litmus.TestLitmus):
    def server(self):
        return DavServer(extra=self.store_directive(), workers=2)


@unittest.skipIf(WHY, WHY)
class TestPgStore(PgStore, store.TestSqliteStore):
    def test_path_relative_to_config_and_kept_across_restarts(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status,
                         207)
        self.dav.stop()
        self.dav.start()
        self.assertEqual(self.colour("/dav/f"), "red")
        self.assertFalse(os.path.exists(os.path.join(self.base, ".verbd-dav-data.sqlite")))


@unittest.skipIf(WHY, WHY)
class TestPgLockConflicts(PgStore, store.TestLockConflicts):
    pass


@unittest.skipIf(WHY, WHY)
class TestPgConcurrentLocks(PgStore, store.TestConcurrentLocks):
    pass


@unittest.skipIf(WHY, WHY)
class TestPgLockSweep(PgStore, store.TestLockSweep):
    def store_directive(self):
        return PgStore.store_directive(self) + " " + self.sweep

    def rows(self):
        return int(self.pg.sql("SELECT count(*) FROM dav_locks", self.db))

    def test_sweeps_again_after_the_database_restarts(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.lock("/dav/f", timeout="Second-60")[0].status, 200)
        self.pg.stop()
        time.sleep(1.5)  # a sweep or two fail meanwhile
        self.pg.start()
        # Expired rows written behind verbd's back: only the sweep deletes them.
        self.pg.sql("INSERT INTO dav_locks SELECT 'opaquelocktoken:x' || i, 'r' || i, 0, true,"
                    " NULL, 1, now() - interval '1 minute' FROM generate_series(1, 5) i", self.db)
        self.assertEqual(self.rows(), 6)
        deadline = time.monotonic() + 5
        while self.rows() != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.rows(), 1)


@unittest.skipIf(WHY, WHY)
class TestPgLockSweepReload(PgStore, store.StoreCase):
    """SIGHUP replaces the location: the old sweep stops with it, the new
    one (from the new config) sweeps."""
    workers = 2

    def rows(self):
        return int(self.pg.sql("SELECT count(*) FROM dav_locks", self.db))

    def expire_some(self):
        self.pg.sql("INSERT INTO dav_locks SELECT 'opaquelocktoken:' || gen_random_uuid(),"
                    " 'r', 0, true, NULL, 1, now() - interval '1 minute'"
                    " FROM generate_series(1, 3)", self.db)

    def test_reload(self):
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)  # the schema
        with open(self.dav.conf) as f:
            conf = f.read()
        for sweep in ("dav_lock_sweep 1s;", "dav_lock_sweep 500ms;"):
            with open(self.dav.conf, "w") as f:
                f.write(conf.replace(self.store, self.store + " " + sweep))
            self.dav.server.signal(signal.SIGHUP)
            time.sleep(1)
            self.expire_some()
            deadline = time.monotonic() + 5
            while self.rows() and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(self.rows(), 0, sweep)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)


@unittest.skipIf(WHY, WHY)
class TestPgLockSweepOff(PgStore, store.TestLockSweepOff):
    def store_directive(self):
        return PgStore.store_directive(self) + " " + self.sweep

    def rows(self):
        return int(self.pg.sql("SELECT count(*) FROM dav_locks", self.db))


@unittest.skipIf(WHY, WHY)
class TestPgUnavailable(PgStore, store.StoreCase):
    def assertUnavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "5")

    def test_database_stopped_and_started_again(self):
        with open(self.dav.path("f"), "wb") as f:
            f.write(b"old")
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)
        self.pg.stop()
        try:
            self.assertUnavailable(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "blue"))
            self.assertUnavailable(self.req("PROPFIND", "/dav/f", {"Depth": "0"},
                                            store.PROPFIND_COLOUR))
            self.assertUnavailable(self.lock("/dav/f")[0])
            self.assertUnavailable(self.req("PUT", "/dav/f", body=b"new"))
            self.assertUnavailable(self.req("DELETE", "/dav/f"))
            self.assertUnavailable(self.req("MKCOL", "/dav/d"))
            r = self.req("GET", "/dav/f")
            self.assertEqual((r.status, r.body), (200, b"old"))
            self.assertEqual(self.req("HEAD", "/dav/f").status, 200)
        finally:
            self.pg.start()
        self.assertEqual(sorted(os.listdir(self.dav.data)), ["f"])
        self.assertEqual(self.colour("/dav/f"), "red")
        r, tok = self.lock("/dav/f")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.req("PUT", "/dav/f", body=b"new").status, 423)
        self.assertEqual(self.req("PUT", "/dav/f", {"If": "(<%s>)" % tok}, b"new").status, 204)

    def test_restart_unseen_by_requests(self):
        """A restart between two requests: the pooled connections are dead,
        and the next request finds that out before sending on one."""
        self.assertEqual(self.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)
        self.pg.stop()
        self.pg.start()
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "blue").status,
                         207)
        self.assertEqual(self.colour("/dav/f"), "blue")


@unittest.skipIf(WHY, WHY)
class TestPgNeverBlocks(PgStore, store.StoreCase):
    """One worker: while its query waits on the database, it serves
    others."""

    def test_worker_serves_while_the_database_is_slow(self):
        with open(self.dav.path("f"), "wb") as f:
            f.write(b"x")
        self.assertEqual(self.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)
        # Another client holds the properties table for 8 seconds.
        holder = subprocess.Popen(self.pg.psql(
            "BEGIN; LOCK TABLE dav_props IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;",
            self.db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(holder.wait)
        time.sleep(0.5)
        answer = {}

        def slow():
            t = time.monotonic()
            answer["r"] = self.req("PROPFIND", "/dav/f", {"Depth": "0"}, store.PROPFIND_COLOUR)
            answer["t"] = time.monotonic() - t

        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.5)
        self.assertTrue(th.is_alive())  # waiting on the database
        for _ in range(3):
            t = time.monotonic()
            r = self.req("GET", "/dav/f")
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t, 1.0)
        self.assertEqual(self.req("OPTIONS", "/dav/f").status, 204)
        th.join(20)
        # statement_timeout (5 s) ends the wait: 503, not a hang.
        self.assertEqual(answer["r"].status, 503, answer["r"])
        self.assertEqual(answer["r"].header("Retry-After"), "5")
        self.assertGreater(answer["t"], 4)
        self.assertLess(answer["t"], 8)


if __name__ == "__main__":
    unittest.main()
