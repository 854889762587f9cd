"""Several verbd nodes serving one directory, their WebDAV locks and
properties in one PostgreSQL database, HAProxy in front (round robin,
health checks on /status): the setup of docs/scale-out.md, run from its
own config files (docs/scale-out/verbd.conf and haproxy.cfg) with
loopback addresses and temporary paths put in.  litmus through HAProxy,
one exclusive lock among 200 concurrent lockers, locks holding across
nodes, expiry by the database's clock whatever the nodes' clocks say
(one node's clock shifted by libfaketime), the database stopped and
started under running nodes.  Skipped only when PostgreSQL, HAProxy or
libfaketime is not installed."""

import concurrent.futures
import email.utils
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import test_webdav_litmus
import test_webdav_store as store
from harness import Conn, HarnessError, Server, build_request, free_port, measured_as_built
from pgserver import PgServer
from test_webdav import LOCKINFO, multistatus

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = os.path.join(HERE, "..", "..", "docs", "scale-out")
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                      else None)
FAKETIME = (glob.glob("/usr/lib/*/faketime/libfaketime.so.1") or [None])[0]

WHY = (PgServer.available()
       or (None if HAPROXY else "HAProxy is not installed (apt-get install haproxy)"))
NODES = 3
REQUESTS_RE = re.compile(r'^verbd_requests_total\{([^}]*)\} (\d+)$', re.M)


def read_setup(name):
    with open(os.path.join(SETUP, name)) as f:
        return f.read()


class Node:
    """One verbd of docs/scale-out/verbd.conf, on a loopback port of its
    own, serving `share` with the store at `uri`; env adds to its
    environment (a shifted clock)."""

    def __init__(self, base, share, uri, env=None):
        conf = read_setup("verbd.conf")
        conf, n = re.subn(r"webdav /srv/dav;", "webdav %s;" % share, conf)
        assert n == 1
        conf, n = re.subn(r'dav_store "[^"]*";', 'dav_store "%s";' % uri, conf)
        assert n == 1
        conf = conf.replace("workers 4;", "workers 2;")
        self.conf = os.path.join(base, "verbd.conf")
        os.makedirs(base, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(conf)
        environ = dict(os.environ)
        environ.update(env or {})
        self.server = Server(None, "-c", self.conf, env=environ)

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()
        self.server.cleanup()

    @property
    def address(self):
        return "%s:%d" % (self.server.host, self.server.port)

    def connect(self):
        return self.server.connect(timeout=30)

    def requests(self, method=None):
        """How many requests of `method` (None: of every method but GET,
        which HAProxy's health checks use) it has answered, by status."""
        c = self.connect()
        try:
            c.send(build_request("GET", "/status", []))
            r = c.read_response("GET")
        finally:
            c.close()
        assert r.status == 200, r
        counts = {}
        for labels, value in REQUESTS_RE.findall(r.body.decode()):
            m = re.search(r'method="([^"]*)"', labels).group(1)
            if m == method or (method is None and m != "GET"):
                code = int(re.search(r'code="(\d+)"', labels).group(1))
                counts[code] = counts.get(code, 0) + int(value)
        return counts


class Balancer:
    """HAProxy of docs/scale-out/haproxy.cfg in front of the nodes, on a
    free loopback port, in the foreground (-db), stopped by its PID."""

    def __init__(self, base, nodes):
        cfg = read_setup("haproxy.cfg")
        self.port = free_port()
        cfg, n = re.subn(r"bind :80\b", "bind 127.0.0.1:%d" % self.port, cfg)
        assert n == 1
        servers = iter(nodes)
        cfg, n = re.subn(r"(server node\d) 10\.0\.0\.\d+:8080",
                         lambda m: "%s %s" % (m.group(1), next(servers).address), cfg)
        assert n == len(nodes) == NODES
        # Checks every 200 ms, so that a test sees a node leave quickly.
        cfg = cfg.replace("check inter 2s", "check inter 200ms")
        self.cfg = os.path.join(base, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(base, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise HarnessError("haproxy did not start: %s" % self.output())
                time.sleep(0.05)

    def output(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    @property
    def url(self):
        return "http://127.0.0.1:%d/dav/" % self.port

    def connect(self):
        return Conn("127.0.0.1", self.port, timeout=30)


def req(target_of, method, target, headers=None, body=b""):
    """One request on a new connection to target_of (a Node or the
    Balancer)."""
    if isinstance(body, str):
        body = body.encode()
    headers = list((headers or {}).items())
    if body or method in ("PUT", "POST"):
        headers.append(("Content-Length", str(len(body))))
    c = target_of.connect()
    try:
        c.send(build_request(method, target, headers, body))
        return c.read_response(method)
    finally:
        c.close()


def lock(target_of, target, depth="0", timeout="Second-600"):
    r = req(target_of, "LOCK", target, {"Timeout": timeout, "Depth": depth},
            LOCKINFO % "exclusive")
    token = r.header("Lock-Token")
    return r, token[1:-1] if token else None


@unittest.skipIf(WHY, WHY)
class NodesCase(unittest.TestCase):
    """A PostgreSQL server for the class; per test a fresh database and
    share, NODES nodes (node_env gives one its environment) and HAProxy."""

    node_env = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgServer()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.start()
        cls.names = iter(range(10 ** 6))

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-nodes-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.share = os.path.join(self.base, "share")
        os.mkdir(self.share)
        self.db = "nodes%d" % next(self.names)
        self.pg.sql("CREATE DATABASE %s" % self.db)
        uri = "postgresql://verbd@/%s?host=%s" % (self.db, self.pg.dir)
        self.nodes = []
        for i in range(NODES):
            node = Node(os.path.join(self.base, "node%d" % i), self.share, uri,
                        self.node_env.get(i))
            self.addCleanup(node.stop)
            self.nodes.append(node.start())
        self.lb = Balancer(self.base, self.nodes)
        self.addCleanup(self.lb.stop)

    def assertSpread(self):
        """Round robin: each node answered about a third of the requests
        (health checks aside)."""
        answered = [sum(node.requests().values()) for node in self.nodes]
        for n in answered:
            self.assertGreater(n, sum(answered) / NODES * 0.8, answered)


class TestDocumentedSetup(unittest.TestCase):
    def test_docs_show_the_files_the_tests_run(self):
        with open(os.path.join(SETUP, "..", "scale-out.md")) as f:
            doc = f.read()
        for name in ("verbd.conf", "haproxy.cfg"):
            self.assertIn("\n" + read_setup(name) + "```", doc, name)


class TestLitmusThroughHaproxy(NodesCase):
    """litmus's suites through HAProxy: its requests go round robin to
    the nodes (one connection, each request balanced on its own)."""

    def run_suite(self, suite):
        p = subprocess.run(["litmus", self.lb.url], env={"TESTS": suite, "PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300, cwd=self.base)
        out = p.stdout.decode("utf-8", "replace")
        m = test_webdav_litmus.SUMMARY_RE.search(out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), suite)
        self.assertEqual(m.group(4), "0", out)
        self.assertEqual(m.group(2), m.group(3), out)
        self.assertNotIn("WARNING", out)
        self.assertNotRegex(out, r"\d+ warnings?\b", out)
        self.assertEqual(p.returncode, 0, out)

    @unittest.skipUnless(shutil.which("litmus"), "litmus is not installed (apt-get install litmus)")
    def test_litmus(self):
        for suite in ("basic", "copymove", "props", "locks", "http"):
            with self.subTest(suite=suite):
                self.run_suite(suite)
                self.assertSpread()


class TestLocksAcrossNodes(NodesCase):
    def test_one_exclusive_lock_among_200(self):
        """200 connections through HAProxy send a LOCK of one resource at
        the same moment: exactly one gets it, the other 199 get 423;
        twenty rounds, a new resource each."""
        n = 200
        for round_ in range(20):
            target = "/dav/r%d" % round_
            self.assertEqual(req(self.lb, "PUT", target, body=b"x").status, 201)
            conns = [self.lb.connect() for _ in range(n)]
            barrier = threading.Barrier(n)
            request = build_request("LOCK", target, [
                ("Timeout", "Second-600"), ("Depth", "0"),
                ("Content-Length", str(len(store.LOCKINFO_X)))], store.LOCKINFO_X.encode())

            def send(c):
                barrier.wait()
                c.send(request)
                return c.read_response("LOCK").status

            try:
                with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
                    statuses = list(pool.map(send, conns))
            finally:
                for c in conns:
                    c.close()
            self.assertEqual(statuses.count(200), 1, statuses)
            self.assertEqual(statuses.count(423), n - 1, statuses)
        for i, node in enumerate(self.nodes):
            self.assertGreater(node.requests("LOCK").get(423, 0), 0, "node %d refused none" % i)

    def test_depth_infinity_lock_on_one_node_blocks_a_put_on_another(self):
        a, b = self.nodes[0], self.nodes[1]
        self.assertEqual(req(a, "MKCOL", "/dav/c").status, 201)
        r, tok = lock(a, "/dav/c/", depth="infinity")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(req(b, "PUT", "/dav/c/f", body=b"x").status, 423)
        self.assertEqual(req(b, "MKCOL", "/dav/c/d").status, 423)
        self.assertFalse(os.path.exists(os.path.join(self.share, "c", "f")))
        self.assertEqual(req(b, "PUT", "/dav/c/f", {"If": "(<%s>)" % tok}, b"x").status, 201)
        self.assertEqual(req(self.nodes[2], "UNLOCK", "/dav/c/",
                             {"Lock-Token": "<%s>" % tok}).status, 204)
        self.assertEqual(req(a, "PUT", "/dav/c/f", body=b"y").status, 204)

    def test_same_etag_on_every_node(self):
        self.assertEqual(req(self.lb, "PUT", "/dav/f", body=b"x").status, 201)
        etags = {req(node, "GET", "/dav/f").header("ETag") for node in self.nodes}
        self.assertEqual(len(etags), 1, etags)
        self.assertIsNotNone(etags.pop())
        getetags = set()
        for node in self.nodes:
            r = req(node, "PROPFIND", "/dav/f", {"Depth": "0"},
                    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>'
                    '</D:prop></D:propfind>')
            getetags.add(multistatus(r)["/dav/f"]["{DAV:}getetag"][1].text)
        self.assertEqual(len(getetags), 1, getetags)

    def test_a_node_that_fails_its_health_check_is_left_out(self):
        self.nodes[2].stop()
        time.sleep(1.5)  # several checks at 200 ms: node 2 is down
        statuses = [req(self.lb, "PUT", "/dav/f%d" % i, body=b"x").status for i in range(12)]
        self.assertEqual(statuses, [201] * 12)
        for node in self.nodes[:2]:
            self.assertGreater(node.requests("PUT").get(201, 0), 0)
        self.assertIn("node3", self.lb.output())  # HAProxy said so


@unittest.skipUnless(FAKETIME, "libfaketime is not installed (apt-get install libfaketime)")
@unittest.skipUnless(measured_as_built(), "libfaketime is not preloaded into a sanitizer or "
                     "valgrind build: their own clock_gettime interceptors and its recursion "
                     "guard can hang the process at start (the plain build runs this test)")
class TestExpiryByTheDatabasesClock(NodesCase):
    """Node 1's clock is an hour ahead, node 2's an hour behind
    (libfaketime): a lock's expiry is the database's clock, so a lock
    of 2 seconds taken on node 0 holds on both until then, and is gone
    on both after."""

    SHIFT = 3600
    node_env = {i: {"LD_PRELOAD": FAKETIME or "", "FAKETIME": "%+d" % shift,
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
                for i, shift in ((1, SHIFT), (2, -SHIFT))}

    def node_clock(self, node):
        r = req(node, "OPTIONS", "/dav/")
        return email.utils.parsedate_to_datetime(r.header("Date")).timestamp()

    def test_lock_expires_after_its_timeout_on_every_node(self):
        # The shift is in effect: the nodes' Date headers say so.
        now = time.time()
        self.assertLess(abs(self.node_clock(self.nodes[0]) - now), 5)
        self.assertLess(abs(self.node_clock(self.nodes[1]) - now - self.SHIFT), 5)
        self.assertLess(abs(self.node_clock(self.nodes[2]) - now + self.SHIFT), 5)
        for name in ("f", "g"):
            with open(os.path.join(self.share, name), "wb") as f:
                f.write(b"x")
        r, tok = lock(self.nodes[0], "/dav/f", timeout="Second-2")
        self.assertEqual(r.status, 200, r)
        taken = time.monotonic()
        # Node 1, an hour ahead, does not take it for expired.
        self.assertEqual(req(self.nodes[1], "PUT", "/dav/f", body=b"y").status, 423)
        self.assertEqual(req(self.nodes[2], "PUT", "/dav/f", body=b"y").status, 423)
        r, _ = lock(self.nodes[1], "/dav/f")
        self.assertEqual(r.status, 423, r)
        self.assertLess(time.monotonic() - taken, 1.8)  # all of that within the timeout
        time.sleep(max(0, taken + 2.3 - time.monotonic()))
        # Node 2, an hour behind, does not keep it an hour longer.
        self.assertEqual(req(self.nodes[2], "PUT", "/dav/f", body=b"y").status, 204)
        self.assertEqual(req(self.nodes[1], "PUT", "/dav/f", body=b"z").status, 204)
        r, tok2 = lock(self.nodes[1], "/dav/f", timeout="Second-60")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(req(self.nodes[2], "UNLOCK", "/dav/f",
                             {"Lock-Token": "<%s>" % tok}).status, 409)  # the expired one
        self.assertEqual(req(self.nodes[2], "UNLOCK", "/dav/f",
                             {"Lock-Token": "<%s>" % tok2}).status, 204)


class TestDatabaseStoppedUnderNodes(NodesCase):
    def assertUnavailable(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Retry-After"), "5")

    def test_503_then_back_without_restarting_the_nodes(self):
        a, b, c = self.nodes
        with open(os.path.join(self.share, "f"), "wb") as f:
            f.write(b"old")
        self.assertEqual(req(a, "PROPPATCH", "/dav/f", body=store.PROPPATCH % "red").status, 207)
        os.mkdir(os.path.join(self.share, "c"))
        r, tok = lock(b, "/dav/c/", depth="infinity")
        self.assertEqual(r.status, 200, r)
        self.pg.stop()
        try:
            self.assertUnavailable(lock(a, "/dav/f")[0])
            self.assertUnavailable(req(b, "PROPPATCH", "/dav/f", body=store.PROPPATCH % "blue"))
            self.assertUnavailable(req(c, "PUT", "/dav/f", body=b"new"))
            for node in (a, b, c, self.lb):
                r = req(node, "GET", "/dav/f")
                self.assertEqual((r.status, r.body), (200, b"old"))
        finally:
            self.pg.start()
        self.assertEqual(sorted(os.listdir(self.share)), ["c", "f"])
        with open(os.path.join(self.share, "f"), "rb") as f:
            self.assertEqual(f.read(), b"old")
        # What was there is there, on every node.
        for node in (a, b, c):
            r = req(node, "PROPFIND", "/dav/f", {"Depth": "0"}, store.PROPFIND_COLOUR)
            self.assertEqual(r.status, 207, r)
            self.assertEqual(multistatus(r)["/dav/f"]["{urn:z}colour"][1].text, "red")
            self.assertEqual(req(node, "PUT", "/dav/c/x", body=b"x").status, 423)
        self.assertEqual(req(c, "PUT", "/dav/c/x", {"If": "(<%s>)" % tok}, b"x").status, 201)
        self.assertEqual(req(a, "PROPPATCH", "/dav/f", body=store.PROPPATCH % "blue").status, 207)
        self.assertEqual(lock(c, "/dav/f")[0].status, 200)
        self.assertEqual(req(b, "PUT", "/dav/f", body=b"new").status, 423)


if __name__ == "__main__":
    unittest.main()
