"""The verbd command line: --version, --help, usage errors, listeners,
workers, signals."""

import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import (Conn, Server, VerbdTestCase, claim_fixed_port, get_request, run_verbd,
                     verbd_bin, webroot)


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class InfoFlags(unittest.TestCase):
    def test_version(self):
        p = run_verbd("--version")
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(p.stdout, b"verbd 0.1.0\n")

    def test_help(self):
        p = run_verbd("--help")
        self.assertEqual(p.returncode, 0, p)
        out = p.stdout.decode()
        self.assertIn("usage", out.lower())
        for flag in ("--listen", "--workers", "--trace", "--listing", "--access-log", "--set"):
            self.assertIn(flag, out)

    def test_help_wins_over_directory(self):
        p = run_verbd(webroot().root, "--help")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("usage", p.stdout.decode().lower())


class UsageErrors(unittest.TestCase):
    """Each: exit status 2, exactly one stderr line starting with 'verbd: '."""

    def check(self, *args):
        p = run_verbd(*args)
        self.assertEqual(p.returncode, 2, p)
        err = p.stderr.decode("utf-8", "replace")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("verbd: "), err)
        self.assertTrue(err.endswith("\n"), err)
        self.assertNotIn("listening", p.stdout.decode("utf-8", "replace"))


BAD_USAGE = [
    ("unknown_flag", ["--frobnicate"]),
    ("unknown_short_flag", ["-Z"]),
    ("missing_dir", ["/nonexistent/verbd/dir"]),
    ("dir_is_a_file", ["@index"]),
    ("listen_without_value", ["@root", "--listen"]),
    ("listen_no_port", ["@root", "--listen", "127.0.0.1"]),
    ("listen_empty_port", ["@root", "--listen", "127.0.0.1:"]),
    ("listen_port_too_big", ["@root", "--listen", "127.0.0.1:99999"]),
    ("listen_port_not_number", ["@root", "--listen", "127.0.0.1:http"]),
    ("listen_bad_ip", ["@root", "--listen", "1.2.3.4.5:80"]),
    ("listen_garbage", ["@root", "--listen", "nope"]),
    ("set_unknown_name", ["@root", "--set", "bogus=1"]),
    ("set_without_equals", ["@root", "--set", "header_timeout"]),
    ("set_bad_duration", ["@root", "--set", "header_timeout=abc"]),
    ("set_bad_duration_unit", ["@root", "--set", "header_timeout=5parsecs"]),
    ("set_negative_size", ["@root", "--set", "max_body=-1"]),
    ("set_bad_size_unit", ["@root", "--set", "max_body=1q"]),
    ("set_empty_value", ["@root", "--set", "max_fields="]),
    ("set_without_value", ["@root", "--set"]),
    ("bad_log_level", ["@root", "--log-level", "chatty"]),
    ("workers_zero", ["@root", "--listen", "127.0.0.1:0", "--workers", "0"]),
    ("workers_garbage", ["@root", "--listen", "127.0.0.1:0", "--workers", "many"]),
]


def _expand(args):
    w = webroot()
    return [w.root if a == "@root" else w.path("index.html") if a == "@index" else a for a in args]


for _name, _args in BAD_USAGE:
    setattr(UsageErrors, "test_%s" % _name, (lambda a: lambda self: self.check(*_expand(a)))(_args))


class Listening(VerbdTestCase):
    def test_listening_line_format(self):
        lines = [l for l in self.server.stdout_lines if "listening" in l]
        self.assertEqual(len(lines), 1, self.server.stdout_lines)
        self.assertRegex(lines[0], r"^verbd: listening on http://127\.0\.0\.1:\d+/$")
        self.assertNotEqual(self.server.port, 0)

    def test_two_listeners(self):
        srv = self.start_server("--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0")
        self.assertEqual(len(srv.addresses), 2, srv.stdout_lines)
        self.assertNotEqual(srv.addresses[0][1], srv.addresses[1][1])
        for host, port in srv.addresses:
            c = Conn(host, port)
            self.conns.append(c)
            self.assertUsable(c)

    @unittest.skipUnless(ipv6_available(), "no IPv6 loopback")
    def test_ipv6_listener(self):
        srv = self.start_server("--listen", "[::1]:0")
        lines = [l for l in srv.stdout_lines if "listening" in l]
        self.assertRegex(lines[0], r"^verbd: listening on http://\[::1\]:\d+/$")
        c = self.connect(server=srv)
        self.assertUsable(c)

    def test_port_in_use_is_an_error(self):
        p = run_verbd(self.web.root, "--listen", "127.0.0.1:%d" % self.server.port)
        self.assertNotEqual(p.returncode, 0, p)
        self.assertTrue(p.stderr.decode().startswith("verbd: "), p.stderr)


class DefaultDirectory(unittest.TestCase):
    def test_no_dir_serves_cwd(self):
        w = webroot()
        with Server(None, cwd=w.path("sub")) as srv:
            c = srv.connect()
            try:
                r = c.request("GET", "/file.txt")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, w.sub_file)
            finally:
                c.close()

    def test_no_arguments_listens_on_8080(self):
        claim_fixed_port(self, 8080)
        w = webroot()
        srv = Server(None, cwd=w.root)
        # No --listen and no --access-log: the true no-argument invocation.
        srv.command = lambda: [verbd_bin()]
        with srv:
            self.assertEqual(srv.addresses[0], ("127.0.0.1", 8080), srv.stdout_lines)
            self.assertIn("verbd: listening on http://127.0.0.1:8080/", srv.stdout_lines)
            c = srv.connect()
            try:
                r = c.request("GET", "/")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, w.index)
            finally:
                c.close()


class Workers(VerbdTestCase):
    def check_serves(self, *args):
        srv = self.start_server(*args)
        conns = [self.connect(server=srv) for _ in range(6)]
        for c in conns:
            self.assertUsable(c)

    def test_workers_1(self):
        self.check_serves("--workers", "1")

    def test_workers_2(self):
        self.check_serves("--workers", "2")

    def test_workers_auto(self):
        self.check_serves("--workers", "auto")



class Settings(VerbdTestCase):
    def test_size_suffixes_accepted(self):
        srv = self.start_server("--set", "max_body=8k", "--set", "max_header=1m",
                                "--set", "max_target=4096", "--set", "max_fields=50")
        c = self.connect(server=srv)
        c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 8193\r\n\r\n")
        self.assertEqual(c.read_response().status, 413)

    def test_plain_byte_size(self):
        srv = self.start_server("--set", "max_body=10")
        c = self.connect(server=srv)
        c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        self.assertEqual(c.read_response().status, 413)

    def test_durations_accepted(self):
        srv = self.start_server("--set", "header_timeout=500ms", "--set", "idle_timeout=2s",
                                "--set", "body_timeout=1s", "--set", "send_timeout=1s",
                                "--set", "shutdown_timeout=2s", "--set", "max_connections=100")
        c = self.connect(server=srv)
        self.assertUsable(c)

    def test_millisecond_header_timeout_applies(self):
        srv = self.start_server("--set", "header_timeout=500ms")
        c = self.connect(server=srv)
        c.send(b"GET /ind")
        started = time.monotonic()
        self.assertTrue(c.is_closed(3.0))
        self.assertLess(time.monotonic() - started, 2.0)

    def test_log_flags_accepted(self):
        tmp = tempfile.mkdtemp(prefix="verbd-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        errlog = os.path.join(tmp, "error.log")
        srv = self.start_server("--error-log", errlog, "--log-level", "debug")
        c = self.connect(server=srv)
        self.assertUsable(c)
        self.assertTrue(os.path.exists(errlog), "error log not created")


class Signals(VerbdTestCase):
    def test_sigterm_exit_0(self):
        c, r = self.get("/index.html")
        c.close()
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait_exit(10), 0)

    def test_sigint_exit_0(self):
        self.server.signal(signal.SIGINT)
        self.assertEqual(self.server.wait_exit(10), 0)

    def test_sigterm_right_after_ready_line(self):
        # Once "listening" is printed, a stop signal must mean a graceful stop
        # (exit 0), never death by the default signal action.
        statuses = []
        for i in range(100):
            srv = Server(self.web.root, "--workers", "2" if i % 2 else "1").start()
            self.addCleanup(srv.cleanup)
            srv.signal(signal.SIGTERM)
            statuses.append(srv.wait_exit(10))
            srv.stop(check=False)
        self.assertEqual(statuses, [0] * 100)

    def test_sigterm_with_workers_leaves_no_children(self):
        srv = self.start_server("--workers", "2")
        c = self.connect(server=srv)
        self.assertUsable(c)
        c.close()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(10), 0)
        # The process group must be empty shortly after (no orphaned workers).
        deadline = time.monotonic() + 3
        alive = True
        while alive and time.monotonic() < deadline:
            try:
                os.killpg(srv.pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                alive = False
        self.assertFalse(alive, "worker processes outlived the master")

    def test_workers_stop_when_the_supervisor_is_killed(self):
        srv = self.start_server("--workers", "2")
        self.assertUsable(self.connect(server=srv))
        # One worker may answer before the supervisor has forked the other.
        deadline = time.monotonic() + 5
        while True:
            children = [int(d) for d in os.listdir("/proc") if d.isdigit() and
                        _ppid(int(d)) == srv.pid]
            if len(children) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(children), 2, "expected two worker processes")
        srv.signal(signal.SIGKILL)
        srv.wait_exit(10)
        srv.stop(check=False)  # killed on purpose: no clean exit to check
        deadline = time.monotonic() + 5
        alive = set(children)
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if os.path.exists("/proc/%d" % pid) and
                     _state(pid) != "Z"}
            time.sleep(0.05)
        self.assertEqual(alive, set(), "workers outlived a killed supervisor")

    def test_sighup_keeps_serving(self):
        c = self.connect()
        self.assertUsable(c)
        self.server.signal(signal.SIGHUP)
        time.sleep(0.3)
        self.assertTrue(self.server.alive())
        c2 = self.connect()
        self.assertUsable(c2)


def _stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _ppid(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _state(pid):
    fields = _stat_fields(pid)
    return fields[0] if fields else None


if __name__ == "__main__":
    unittest.main()
