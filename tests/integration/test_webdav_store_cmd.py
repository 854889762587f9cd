"""verbd dav-store init|migrate -c FILE: the tables of every WebDAV store
the config names (dav_store sqlite:PATH, dav_db PATH, dav_store
postgresql://...) created or brought up to date, what was done said on
stdout, failures on stderr; exit 0 (all ready), 1 (a store failed), 2
(usage or config error, nothing touched)."""

import os
import shutil
import sqlite3
import tempfile
import unittest

from harness import run_verbd
from pgserver import PgServer
from test_webdav import DavServer
import test_webdav_store as store

WHY = PgServer.available()


class CmdCase(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-davcmd-")
        self.addCleanup(shutil.rmtree, self.base, True)
        os.mkdir(os.path.join(self.base, "share"))
        os.mkdir(os.path.join(self.base, "db"))
        self.conf = os.path.join(self.base, "verbd.conf")

    def write(self, *directives):
        with open(self.conf, "w") as f:
            for i, d in enumerate(directives):
                f.write("location /l%d/ {\n    webdav share;\n    %s\n}\n" % (i, d))

    def cmd(self, *args):
        p = run_verbd("dav-store", *args, timeout=30, cwd="/")
        p.stdout = p.stdout.decode("utf-8", "replace")
        p.stderr = p.stderr.decode("utf-8", "replace")
        return p


class TestSqlite(CmdCase):
    def tables(self, path):
        db = sqlite3.connect(path)
        try:
            return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master "
                                                   "WHERE type = 'table'"))
        finally:
            db.close()

    def test_migrate_before_init_creates_nothing(self):
        self.write("dav_store sqlite:db/props.sqlite;")
        p = self.cmd("migrate", "-c", self.conf)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no database at %s/db/props.sqlite (verbd dav-store init creates it)"
                      % self.base, p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.base, "db")), [])

    def test_init_then_migrate_relative_to_the_config(self):
        # Two locations on one file and one on another (dav_db's form).
        self.write("dav_store sqlite:db/a.sqlite;", "dav_store sqlite:db/a.sqlite;",
                   "dav_db db/b.sqlite;")
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        a, b = (os.path.join(self.base, "db", n) for n in ("a.sqlite", "b.sqlite"))
        self.assertEqual(p.stdout, "verbd: sqlite:%s: created the schema in %s\n"
                                   "verbd: sqlite:%s: created the schema in %s\n" % (a, a, b, b))
        self.assertEqual(self.tables(a), ["locks", "props"])
        self.assertEqual(self.tables(b), ["locks", "props"])
        p = self.cmd("migrate", "-c", self.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("verbd: sqlite:%s: %s: schema up to date\n" % (a, a), p.stdout)

    def test_served_after_init(self):
        conf = DavServer(base=self.base, extra="dav_store sqlite:db/props.sqlite;")
        self.addCleanup(conf.cleanup)
        p = self.cmd("init", "-c", conf.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        conf.start()
        self.assertEqual(conf.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(conf.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)

    def test_no_store_named(self):
        self.write("dav_fsync off;")
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("names no dav_store or dav_db: nothing to do", p.stdout)


class TestErrors(CmdCase):
    def test_usage(self):
        for args in ((), ("init",), ("create", "-c", "x"), ("init", "-x", "f"),
                     ("init", "-c", "a", "b")):
            p = self.cmd(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage: verbd dav-store init -c FILE", p.stderr)
        p = self.cmd("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("verbd dav-store migrate -c FILE", p.stdout)

    def test_config_error_touches_no_store(self):
        self.write("dav_store sqlite:db/props.sqlite;", "dav_nonsense on;")
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("unknown directive \"dav_nonsense\"", p.stderr)
        self.assertIn("1 error; no store touched", p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.base, "db")), [])
        p = self.cmd("init", "-c", os.path.join(self.base, "missing.conf"))
        self.assertEqual(p.returncode, 2)

    def test_password_in_uri_refused(self):
        self.write('dav_store "postgresql://verbd:secret@db.invalid/dav";')
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 2)
        self.assertIn("the URI holds a password", p.stderr)
        self.assertNotIn("secret", p.stderr + p.stdout)

    def test_unreachable_database(self):
        self.write('dav_store "postgresql://verbd@/dav?host=%s/nosocket";' % self.base)
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("verbd: postgresql://verbd@/dav: cannot connect:", p.stderr)


@unittest.skipIf(WHY, WHY)
class TestPostgresql(CmdCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.start()
        cls.n = 0

    def setUp(self):
        super().setUp()
        type(self).n += 1
        self.db = "cmd%d" % self.n
        self.pg.sql("CREATE DATABASE %s" % self.db)
        self.uri = "postgresql://verbd@/%s?host=%s" % (self.db, self.pg.dir)
        self.write('dav_store "%s";' % self.uri)
        self.shown = "verbd: postgresql://verbd@/%s: " % self.db

    def tables(self):
        return self.pg.sql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
                           " WHERE tablename LIKE 'dav_%'", self.db).strip()

    def test_init_migrate_and_a_newer_schema(self):
        p = self.cmd("migrate", "-c", self.conf)
        self.assertEqual((p.returncode, p.stderr),
                         (1, self.shown + "no schema here (verbd dav-store init creates it)\n"))
        self.assertEqual(self.tables(), "")
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual((p.returncode, p.stdout), (0, self.shown + "created the schema, version 1\n"),
                         p.stderr)
        self.assertEqual(self.tables(), "dav_locks,dav_props,dav_schema_version")
        self.assertEqual(self.pg.sql("SELECT version FROM dav_schema_version", self.db), "1\n")
        for verb in ("init", "migrate"):
            p = self.cmd(verb, "-c", self.conf)
            self.assertEqual((p.returncode, p.stdout),
                             (0, self.shown + "schema version 1, up to date\n"), p.stderr)
        # A missing index is put back.
        self.pg.sql("DROP INDEX dav_locks_root", self.db)
        self.assertEqual(self.cmd("migrate", "-c", self.conf).returncode, 0)
        self.assertEqual(self.pg.sql("SELECT count(*) FROM pg_indexes WHERE indexname ="
                                     " 'dav_locks_root'", self.db), "1\n")
        self.assertEqual(self.pg.sql("SELECT count(*) FROM dav_schema_version", self.db), "1\n")
        # A schema from a newer verbd is left alone.
        self.pg.sql("UPDATE dav_schema_version SET version = 2", self.db)
        p = self.cmd("migrate", "-c", self.conf)
        self.assertEqual((p.returncode, p.stderr),
                         (1, self.shown + "schema version 2 is newer than this verbd's (1)\n"))
        self.assertEqual(self.pg.sql("SELECT version FROM dav_schema_version", self.db), "2\n")

    def test_served_after_init(self):
        p = self.cmd("init", "-c", self.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        d = DavServer(base=self.base, extra='dav_store "%s";' % self.uri)
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(d.req("PUT", "/dav/f", body=b"x").status, 201)
        self.assertEqual(d.req("PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)
        self.assertEqual(self.pg.sql("SELECT path FROM dav_props", self.db), "f\n")


if __name__ == "__main__":
    unittest.main()
