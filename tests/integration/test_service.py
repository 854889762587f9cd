"""Running as a service (issue 16): systemd's readiness protocol over
$NOTIFY_SOCKET, SIGUSR1 re-opening the logs, and `user` (workers that are
not root under a supervisor that is)."""

import os
import pwd
import shutil
import signal
import socket
import stat
import tempfile
import time
import unittest

from test_config import ConfigCase, config_server, wait_for


def proc_status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def open_in_every_process(srv, path):
    """True once every process of srv (the workers, or the one process)
    has `path` open: the signal to re-open has been acted on."""
    pids = children(srv.pid) or [srv.pid]
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
            targets = {os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in fds}
        except OSError:
            return False
        if path not in targets:
            return False
    return True


class Notify(ConfigCase):
    """A Unix datagram socket stands for systemd: what verbd sends there."""

    def notify_socket(self, abstract=False):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = "verbd-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            s.bind("\0" + name)
            return s, "@" + name
        path = os.path.join(self.dir, "notify.sock")
        s.bind(path)
        return s, path

    def start_notified(self, sock_name, workers):
        path = self.write("verbd.conf", "listen 127.0.0.1:0;\naccess_log off;\nworkers %d;\n"
                          "error_log error.log info;\nlocation / { static %s; }\n"
                          % (workers, self.web.root))
        srv = config_server(path)
        srv.env = dict(os.environ, NOTIFY_SOCKET=sock_name)
        srv.start()
        self.addCleanup(srv.cleanup)
        return srv

    def messages(self, sock, until, timeout=10.0):
        """Datagrams received until one has the line `until`."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                break
            got.append(msg)
            if until in msg.split("\n"):
                return got
        self.fail("no %s within %.0fs; received %r" % (until, timeout, got))

    def lifecycle(self, workers, abstract=False):
        sock, name = self.notify_socket(abstract)
        srv = self.start_notified(name, workers)
        self.assertEqual(self.messages(sock, "READY=1"), ["READY=1"])
        # Ready means serving.
        self.assertEqual(self.fetch("/index.html", server=srv).status, 200)
        srv.signal(signal.SIGHUP)
        got = self.messages(sock, "READY=1")
        self.assertEqual(len(got), 2, got)
        lines = got[0].split("\n")
        self.assertIn("RELOADING=1", lines)
        self.assertTrue(any(l.startswith("MONOTONIC_USEC=") and l[15:].isdigit() for l in lines),
                        got)
        self.assertEqual(got[1], "READY=1")
        srv.signal(signal.SIGTERM)
        self.assertEqual(self.messages(sock, "STOPPING=1"), ["STOPPING=1"])
        self.assertEqual(srv.stop(), 0)
        # Only the process systemd started speaks: workers send nothing.
        sock.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            sock.recv(4096)

    def test_one_process(self):
        self.lifecycle(1)

    def test_supervisor_and_workers(self):
        self.lifecycle(2)

    def test_abstract_socket(self):
        self.lifecycle(2, abstract=True)

    def test_no_socket_no_harm(self):
        srv = self.start_notified(os.path.join(self.dir, "nobody-listens"), 2)
        self.assertEqual(self.fetch("/index.html", server=srv).status, 200)
        srv.signal(signal.SIGHUP)
        self.assertEqual(self.fetch("/index.html", server=srv).status, 200)
        self.assertEqual(srv.stop(), 0)


class Reopen(ConfigCase):
    """SIGUSR1: the logs are opened again by name (after a rotation), with
    no reload."""

    def start_logging(self, workers):
        self.access = os.path.join(self.dir, "access.log")
        self.errlog = os.path.join(self.dir, "error.log")
        return self.serve("listen 127.0.0.1:0;\nworkers %d;\naccess_log %s;\nerror_log %s info;\n"
                          "location / { static %s; header X-Gen 1; }\n"
                          % (workers, self.access, self.errlog, self.web.root))

    def rotate_and_reopen(self, workers):
        srv = self.start_logging(workers)
        self.assertEqual(self.fetch("/index.html").status, 200)
        self.assertTrue(wait_for(lambda: os.path.exists(self.access) and
                                 os.path.getsize(self.access) > 0, 5))
        os.rename(self.access, self.access + ".1")
        os.rename(self.errlog, self.errlog + ".1")
        # Not a reload: a config changed meanwhile is not read.
        self.write("verbd.conf", "this is not read;\n")
        srv.signal(signal.SIGUSR1)
        self.assertTrue(wait_for(lambda: os.path.exists(self.access), 5),
                        "SIGUSR1 made no new access log")
        # Each process acts on the signal in its own time.
        self.assertTrue(wait_for(lambda: open_in_every_process(srv, self.access), 5))
        # Every worker has re-opened: each of several requests lands there.
        n = 4 * workers
        for _ in range(n):
            r = self.fetch("/index.html")
            self.assertEqual((r.status, r.header("X-Gen")), (200, "1"))
        def lines():
            with open(self.access) as f:
                return f.read().count('"GET /index.html HTTP/1.1" 200')
        self.assertTrue(wait_for(lambda: lines() == n, 5), "%d of %d lines" % (lines(), n))
        with open(self.access + ".1") as f:
            self.assertEqual(f.read().count("GET /index.html"), 1)
        self.assertTrue(os.path.exists(self.errlog), "SIGUSR1 made no new error log")
        self.assertTrue(srv.alive())
        self.assertEqual(srv.stop(), 0)
        with open(self.errlog) as f:
            self.assertNotIn("reload", f.read())

    def test_one_process(self):
        self.rotate_and_reopen(1)

    def test_workers(self):
        self.rotate_and_reopen(2)


@unittest.skipUnless(os.geteuid() == 0, "needs root (CI runs as root): verbd changes user")
class User(ConfigCase):
    """`user nobody;` with verbd started as root."""

    def setUp(self):
        super().setUp()
        self.nobody = pwd.getpwnam("nobody")
        # A tree the user can read and a log directory it cannot write.
        self.pub = tempfile.mkdtemp(prefix="verbd-user-")
        self.addCleanup(shutil.rmtree, self.pub, True)
        os.chmod(self.pub, 0o755)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(self.pub, "index.html"), "w") as f:
            f.write("hello\n")
        os.chmod(os.path.join(self.pub, "index.html"), 0o644)

    def start_as(self, user_line, workers=2):
        self.access = os.path.join(self.dir, "access.log")
        return self.serve("listen 127.0.0.1:0;\nworkers %d;\n%s\naccess_log %s;\n"
                          "error_log error.log info;\nlocation / { static %s; }\n"
                          % (workers, user_line, self.access, self.pub))

    def uids(self, srv):
        """(supervisor's real/effective uid, [each worker's])."""
        main = proc_status(srv.pid)["Uid"].split()
        kids = []
        assert wait_for(lambda: len(children(srv.pid)) >= 1, 5)
        for pid in children(srv.pid):
            kids.append(proc_status(pid))
        return main, kids

    def assertWorkersAreNobody(self, srv, count):
        """count workers, each the user by now (a worker is root only from
        its fork to its setuid, before it serves), under a root
        supervisor."""
        nobody = str(self.nobody.pw_uid)
        def dropped():
            kids = children(srv.pid)
            try:
                return len(kids) == count and all(
                    proc_status(pid)["Uid"].split()[0] == nobody for pid in kids)
            except OSError:
                return False
        self.assertTrue(wait_for(dropped, 5), children(srv.pid))
        main, kids = self.uids(srv)
        self.assertEqual(main[:2], ["0", "0"])
        self.assertEqual(len(kids), count)
        for st in kids:
            self.assertEqual(st["Uid"].split(), [nobody] * 4, st["Uid"])
            self.assertEqual(st["Gid"].split(), [str(self.nobody.pw_gid)] * 4, st["Gid"])
            self.assertNotIn("0", st["Groups"].split())

    def test_workers_run_as_the_user(self):
        srv = self.start_as("user nobody;")
        self.assertWorkersAreNobody(srv, 2)
        r = self.fetch("/index.html")
        self.assertEqual((r.status, r.body), (200, b"hello\n"))
        # The logs verbd created belong to the user.
        for name in (self.access, os.path.join(self.dir, "error.log")):
            self.assertEqual(os.stat(name).st_uid, self.nobody.pw_uid, name)

    def test_one_worker_gets_a_supervisor(self):
        srv = self.start_as("user nobody;", workers=1)
        self.assertWorkersAreNobody(srv, 1)
        self.assertEqual(self.fetch("/index.html").status, 200)

    def test_reload_replaces_the_workers(self):
        srv = self.start_as("user nobody;")
        self.assertWorkersAreNobody(srv, 2)
        before = set(children(srv.pid))
        self.write("verbd.conf", "listen 127.0.0.1:0;\nworkers 2;\nuser nobody;\naccess_log %s;\n"
                   "error_log error.log info;\nlocation / { static %s; header X-Gen 2; }\n"
                   % (self.access, self.pub))
        srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.fetch("/index.html").header("X-Gen") == "2", 5))
        self.assertTrue(wait_for(lambda: not (set(children(srv.pid)) & before), 10))
        self.assertWorkersAreNobody(srv, 2)

    def test_rotation_with_the_user(self):
        srv = self.start_as("user nobody;")
        self.assertEqual(self.fetch("/index.html").status, 200)
        os.rename(self.access, self.access + ".1")
        srv.signal(signal.SIGUSR1)
        self.assertTrue(wait_for(lambda: os.path.exists(self.access), 5))
        self.assertEqual(os.stat(self.access).st_uid, self.nobody.pw_uid)
        self.assertTrue(wait_for(lambda: open_in_every_process(srv, self.access), 5))
        for _ in range(6):
            self.assertEqual(self.fetch("/index.html").status, 200)
        def count():
            with open(self.access) as f:
                return f.read().count("GET /index.html")
        self.assertTrue(wait_for(lambda: count() == 6, 5), count())

    def test_group(self):
        srv = self.start_as("user nobody %s;" % __import__("grp").getgrgid(0).gr_name)
        # Naming root's group is allowed (the group, not the user); the
        # uid is what matters.
        nobody = str(self.nobody.pw_uid)
        self.assertTrue(wait_for(lambda: len(children(srv.pid)) == 2 and all(
            proc_status(pid)["Uid"].split()[0] == nobody for pid in children(srv.pid)), 5))
        for pid in children(srv.pid):
            st = proc_status(pid)
            self.assertEqual(st["Uid"].split(), [nobody] * 4)
            self.assertEqual(st["Gid"].split(), ["0"] * 4)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                     "needs root and setpriv to start verbd as another user")
class NotRoot(ConfigCase):
    def test_user_is_ignored_with_a_notice(self):
        nobody = pwd.getpwnam("nobody")
        pub = tempfile.mkdtemp(prefix="verbd-notroot-")
        self.addCleanup(shutil.rmtree, pub, True)
        os.chmod(pub, 0o755)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(pub, "index.html"), "w") as f:
            f.write("hi\n")
        os.chmod(os.path.join(pub, "index.html"), 0o644)
        path = self.write("verbd.conf", "listen 127.0.0.1:0;\nworkers 2;\nuser www-data;\n"
                          "access_log off;\nerror_log stderr info;\nlocation / { static %s; }\n"
                          % pub)
        os.chmod(path, 0o644)
        srv = config_server(path)
        cmd = srv.command()
        srv.command = lambda: ["setpriv", "--reuid=%d" % nobody.pw_uid,
                               "--regid=%d" % nobody.pw_gid, "--clear-groups"] + cmd
        srv.start()
        self.addCleanup(srv.cleanup)
        self.assertEqual(self.fetch("/index.html", server=srv).status, 200)
        for pid in [srv.pid] + children(srv.pid):
            self.assertEqual(proc_status(pid)["Uid"].split()[0], str(nobody.pw_uid))
        self.assertTrue(wait_for(lambda: "user www-data: verbd does not run as root" in
                                 srv.stderr_text(), 5), srv.stderr_text())
        self.assertEqual(srv.stop(), 0)


class UserConfig(ConfigCase):
    def test_unknown_user_is_a_check_error(self):
        self.assertOneError(self.HEAD + "user no-such-user-here;\nlocation / { static %s; }\n"
                            % self.web.root, 4, 6, 'user: no user "no-such-user-here" on this system')

    def test_unknown_group(self):
        self.assertOneError(self.HEAD + "user nobody no-such-group-here;\n"
                            "location / { static %s; }\n" % self.web.root, 4, 13,
                            'user: no group "no-such-group-here" on this system')

    def test_top_level_only(self):
        errs = self.errors("server { listen 127.0.0.1:0; user nobody; location / { static %s; } }\n"
                           % self.web.root)
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("server-wide", errs[0][3])

    def test_checks(self):
        rc, out, err = self.check(self.HEAD + "user nobody;\nlocation / { static %s; }\n"
                                  % self.web.root)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
