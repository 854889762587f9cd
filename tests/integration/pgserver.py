"""A throwaway PostgreSQL server for tests: initdb into a temporary
directory and pg_ctl start, listening only on a Unix socket in that
directory, run as an unprivileged user (tests run as root in CI, and
PostgreSQL refuses to run as root: the user verbd-test is created if
needed).  PgServer.available() says why not when the binaries are
missing."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

USER = "verbd-test"


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


class PgServer:
    @staticmethod
    def available():
        """None, or the reason PostgreSQL tests cannot run."""
        if not _bindir():
            return "PostgreSQL is not installed (apt-get install postgresql)"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "runuser is missing"
        return None

    def __init__(self):
        self.bindir = _bindir()
        self.dir = tempfile.mkdtemp(prefix="verbd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.as_user = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", USER], check=True)
            pw = pwd.getpwnam(USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", USER, "--"]
        self.run("initdb", "-D", self.data, "-U", "verbd", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync")
        self.started = False

    def run(self, tool, *args):
        p = subprocess.run(self.as_user + [os.path.join(self.bindir, tool)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (tool, p.stdout.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def start(self):
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                 "-k %s -c listen_addresses='' -c fsync=off -c max_connections=200" % self.dir,
                 "start")
        self.started = True
        return self

    def stop(self):
        if self.started:
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            self.started = False

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def uri(self):
        """The connection URI of its postgres database, over the socket."""
        return "postgresql://verbd@/postgres?host=%s" % self.dir

    def psql(self, query, db="postgres"):
        return self.as_user + [os.path.join(self.bindir, "psql"), "-h", self.dir, "-U", "verbd",
                               "-d", db, "-At", "-c", query]

    def sql(self, query, db="postgres"):
        """Runs query with psql; its output."""
        p = subprocess.run(self.psql(query, db), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("psql failed: %s" % p.stdout.decode(errors="replace"))
        return p.stdout.decode(errors="replace")
