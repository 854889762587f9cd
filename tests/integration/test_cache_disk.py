"""The cache's disk store (docs/cache.md, "The disk store"): entries of a
zone with path=DIR are files that outlive verbd, whether it stops or is
killed (the whole process group, SIGKILL) while storing or evicting; a
torn or foreign file is removed at the load; disk= bounds the files; the
freshness of a loaded entry is judged as before the restart.  Counted by
the requests the upstream receives, as test_cache.py does."""

import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import upstream as U
from test_cache import answer
from harness import run_verbd
from test_config import ConfigCase, config_server, wait_for


def body_of(name, n):
    """n bytes that differ for each name and each offset."""
    seed = hashlib.sha256(name.encode()).digest()
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


def name_hash(key, vary=b""):
    """The hash an entry's file is named by (disk.c's disk_hash)."""
    h = 14695981039346656037
    for c in key.encode() + b"\n" + vary:
        h = ((h ^ c) * 1099511628211) & (2 ** 64 - 1)
    return "%016x" % h


def files_under(top):
    """{path: size} of the entry files (DIR/XX/...), tmp/ and lock left out."""
    found = {}
    for sub in os.listdir(top):
        p = os.path.join(top, sub)
        if len(sub) == 2 and os.path.isdir(p):
            for name in os.listdir(p):
                found[os.path.join(p, name)] = os.path.getsize(os.path.join(p, name))
    return found


class DiskCase(ConfigCase):
    def setUp(self):
        super().setUp()
        self.up = U.Upstream(U.echo())
        self.up.start()
        self.addCleanup(self.up.stop)
        self.cache_dir = os.path.join(self.dir, "cache")

    def config(self, zone="memory=4m disk=8m", extra="", top=""):
        return ("access_log off;\nworkers 2;\n%scache_zone z %s path=%s;\n"
                "listen 127.0.0.1:0;\nlocation = /load-status { status; }\n"
                "location / { proxy %s/; cache z; %s }\n"
                % (top, zone, self.cache_dir, self.up.url, extra))

    def start(self, loaded=True, **kw):
        """verbd on the zone; with `loaded`, once the workers have loaded
        its files."""
        srv = config_server(self.write("verbd.conf", self.config(**kw))).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        if loaded:
            self.assertTrue(wait_for(lambda: self.loading() == 0), "the load never ended")
        return srv

    def loading(self):
        for line in self.get("/load-status").body.decode().splitlines():
            if line.startswith('verbd_proxy_cache_loading{zone="z"} '):
                return int(line.rsplit(" ", 1)[1])
        return None

    def kill(self):
        """SIGKILL to verbd's whole process group, as a crash would."""
        os.killpg(self.srv.proc.pid, signal.SIGKILL)
        self.srv.proc.wait(timeout=10)
        self.srv.stop(check=False)
        # The workers too: the group is gone once none is left.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.srv.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        self.fail("verbd's workers outlived SIGKILL")

    def get(self, target, headers=None):
        c = self.srv.connect(timeout=20)
        try:
            h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
            c.send(("GET %s HTTP/1.1\r\nHost: example.test\r\n%s\r\n" % (target, h)).encode())
            return c.read_response("GET")
        finally:
            c.close()

    def assertHit(self, r):
        self.assertTrue(r.header("Cache-Status", "").startswith("verbd; hit"), r.headers)


class Restart(DiskCase):
    def test_entry_survives_a_stop_and_a_kill(self):
        body = body_of("/a", 300000)
        self.up.on("GET", "/a", answer(200, [("Cache-Control", "max-age=60"),
                                             ("Content-Type", "text/plain")], body))
        self.start()
        self.assertIn("stored", self.get("/a").header("Cache-Status"))
        self.srv.stop()
        self.start()
        r = self.get("/a")
        self.assertHit(r)
        self.assertEqual((r.status, r.body, r.header("Content-Type")), (200, body, "text/plain"))
        self.kill()
        self.start()
        r = self.get("/a")
        self.assertHit(r)
        self.assertEqual(r.body, body)
        self.assertEqual(self.up.count("GET", "/a"), 1)

    def test_fsync_on_stores_and_survives_a_kill(self):
        body = body_of("/f", 70000)
        self.up.on("GET", "/f", answer(200, [("Cache-Control", "max-age=60")], body))
        self.start(zone="memory=4m disk=8m fsync=on")
        self.assertIn("stored", self.get("/f").header("Cache-Status"))
        self.kill()
        self.start(zone="memory=4m disk=8m fsync=on")
        r = self.get("/f")
        self.assertHit(r)
        self.assertEqual(r.body, body)
        self.assertEqual(self.up.count("GET", "/f"), 1)

    def test_freshness_is_judged_on_the_stored_times_after_a_restart(self):
        self.up.on("GET", "/short", answer(200, [("Cache-Control", "max-age=2")], b"s" * 5000))
        self.start()
        self.get("/short")
        self.assertHit(self.get("/short"))
        self.srv.stop()
        time.sleep(3)
        self.start()
        r = self.get("/short")
        self.assertFalse(r.header("Cache-Status", "").startswith("verbd; hit"), r.headers)
        self.assertEqual(self.up.count("GET", "/short"), 2)
        # Asked not to go upstream, a stale entry is not served as fresh.
        self.srv.stop()
        time.sleep(3)
        self.start()
        r = self.get("/short", {"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 504)

    def test_a_few_hundred_entries_are_loaded_at_start(self):
        self.up.on("GET", "/many/", lambda ex: (ex.drain(), ex.respond(
            200, [("Cache-Control", "max-age=600")], body_of(ex.path, 2000))))
        self.start(zone="memory=8m disk=64m")
        for i in range(300):
            self.get("/many/%d" % i)
        self.srv.stop()
        t = time.monotonic()
        self.start(zone="memory=8m disk=64m")
        self.assertLess(time.monotonic() - t, 5)
        for i in range(300):
            r = self.get("/many/%d" % i, {"Cache-Control": "only-if-cached"})
            self.assertEqual((r.status, r.body), (200, body_of("/many/%d" % i, 2000)), i)
        self.assertEqual(self.up.count("GET"), 300)


    def test_the_load_goes_on_through_reloads_and_is_logged(self):
        """The workers load the files after the start, and say so once;
        reloads at the start (while they load, if they come soon enough)
        lose none of them."""
        self.up.on("GET", "/r/", lambda ex: (ex.drain(), ex.respond(
            200, [("Cache-Control", "max-age=600")], body_of(ex.path, 1000))))
        log = os.path.join(self.dir, "error.log")
        top = "error_log %s info;\n" % log
        self.start(zone="memory=8m disk=64m", top=top)
        for i in range(600):
            self.get("/r/%d" % i)
        self.srv.stop()
        os.unlink(log)
        self.start(zone="memory=8m disk=64m", top=top, loaded=False)
        for _ in range(3):
            self.srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.loading() == 0, 20), "the load never ended")
        self.assertEqual(self.metric("entries"), 600)
        with open(log) as f:
            lines = [l for l in f if "cache zone z loaded from" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"\[info\] \d+: cache zone z loaded from %s: 600 entries in \d+ "
                                   r"ms, 0 files removed" % re.escape(self.cache_dir))
        for i in range(600):
            r = self.get("/r/%d" % i, {"Cache-Control": "only-if-cached"})
            self.assertEqual((r.status, r.body), (200, body_of("/r/%d" % i, 1000)), i)
        self.assertEqual(self.up.count("GET"), 600)

    def metric(self, name):
        for line in self.get("/load-status").body.decode().splitlines():
            if line.startswith('verbd_proxy_cache_%s{zone="z"} ' % name):
                return int(line.rsplit(" ", 1)[1])
        return None

    def test_files_are_given_to_the_workers_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to start workers as another user")
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")
        os.chmod(self.dir, 0o755)
        self.up.on("GET", "/", answer(200, [("Cache-Control", "max-age=60")], b"n" * 3000))
        self.start()  # workers as root: its files are root's
        self.get("/old")
        self.srv.stop()
        self.start(top="user nobody;\n")
        self.assertHit(self.get("/old"))
        self.get("/new")
        self.assertHit(self.get("/new"))
        self.assertEqual(self.up.count("GET"), 2)
        for p in list(files_under(self.cache_dir)) + [os.path.join(self.cache_dir, "tmp")]:
            self.assertEqual(os.stat(p).st_uid, nobody.pw_uid, p)


class Crash(DiskCase):
    def test_kill_during_a_store_leaves_nothing_served(self):
        full = body_of("/big", 2000000)
        sent_half = threading.Event()
        release = threading.Event()
        self.addCleanup(release.set)

        def half_then_wait(ex):
            ex.drain()
            ex.send_head(200, [("Cache-Control", "max-age=60"),
                               ("Content-Length", str(len(full)))])
            ex.send(full[:len(full) // 2])
            sent_half.set()
            release.wait(30)
            ex.close()

        self.up.queue(half_then_wait)
        self.up.on("GET", "/big", answer(200, [("Cache-Control", "max-age=60")], full))
        self.start(extra="cache_max_entry 4m;")
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: example.test\r\n\r\n")
        self.assertTrue(sent_half.wait(10))
        got = b""
        while len(got) < len(full) // 4:
            got += s.recv(65536)
        self.kill()
        release.set()
        self.start(extra="cache_max_entry 4m;")
        r = self.get("/big")
        self.assertFalse(r.header("Cache-Status", "").startswith("verbd; hit"), r.headers)
        self.assertEqual(r.body, full)
        self.assertEqual(self.up.count("GET", "/big"), 2)
        self.assertHit(self.get("/big"))

    def test_a_worker_killed_holding_the_lock_stops_nobody(self):
        """strace kills a worker as it renames a new file into place, which
        it does holding the zone's lock: the other workers (and the one
        started in its place) carry on, the entry was not stored."""
        if not shutil.which("strace"):
            self.skipTest("no strace")
        body = body_of("/l", 50000)
        self.up.on("GET", "/l", answer(200, [("Cache-Control", "max-age=60")], body))
        self.start(top="location = /status { status; }\n")
        deadline = time.monotonic() + 10
        while len(self.workers()) < 2:
            self.assertLess(time.monotonic(), deadline, self.workers())
            time.sleep(0.05)
        workers = self.workers()
        log = os.path.join(self.dir, "strace.err")
        with open(log, "wb") as err:
            tracer = subprocess.Popen(
                ["strace", "-f", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2",
                 "-e", "inject=rename,renameat,renameat2:signal=KILL"]
                + [a for w in workers for a in ("-p", str(w))], stderr=err)
        self.addCleanup(lambda: tracer.poll() is None and (tracer.kill(), tracer.wait()))
        deadline = time.monotonic() + 10
        while open(log).read().count("attached") < 2:
            self.assertLess(time.monotonic(), deadline, open(log).read())
            time.sleep(0.05)
        try:
            self.get("/l")
        except Exception:
            pass  # its worker may die before the answer is out
        deadline = time.monotonic() + 10
        while all(os.path.exists("/proc/%d" % w) for w in workers):
            self.assertLess(time.monotonic(), deadline, "no worker was killed at the rename")
            time.sleep(0.05)
        tracer.terminate()
        tracer.wait(10)
        # Whichever worker answers, nobody waits on the lock for ever (the
        # dead worker's fetch still counts as in flight: the next one waits
        # its 5 s for it first).
        for _ in range(3):
            r = self.get("/l")
            self.assertEqual((r.status, r.body), (200, body))
        self.assertHit(r)
        self.assertEqual(self.up.count("GET", "/l"), 2)
        # The entry it was making is gone from the counts: one entry of
        # one block, and the bytes of the one file there is.
        m = self.metrics()
        self.assertEqual((m["entries"], m["bytes_used"]), (1, 4096))
        self.assertEqual(m["repairs_total"], 1)
        self.assertEqual(m["disk_bytes_used"], sum(
            (n + 4095) // 4096 * 4096 for n in files_under(self.cache_dir).values()))
        # The file it wrote under tmp/ went with the entry it was making,
        # abandoned once its worker was found gone (the next request for
        # the key); anything left there would go at the next start.
        self.assertEqual(os.listdir(os.path.join(self.cache_dir, "tmp")), [])
        self.kill()
        self.start()
        self.assertEqual(os.listdir(os.path.join(self.cache_dir, "tmp")), [])
        self.assertHit(self.get("/l"))

    def metrics(self):
        """The zone's gauges on /status, by name."""
        found = {}
        for line in self.get("/status").body.decode().splitlines():
            if line.startswith("verbd_proxy_cache_") and '{zone="z"}' in line:
                name, value = line.rsplit(" ", 1)
                found[name[len("verbd_proxy_cache_"):].split("{")[0]] = int(value)
        return found

    def workers(self):
        found = []
        for task in os.listdir("/proc/%d/task" % self.srv.pid):
            with open("/proc/%d/task/%s/children" % (self.srv.pid, task)) as f:
                found += [int(p) for p in f.read().split()]
        return found

    def test_kill_during_eviction_serves_only_whole_fresh_entries(self):
        size = 150000
        self.up.on("GET", "/e/", lambda ex: (ex.drain(), ex.respond(
            200, [("Cache-Control", "max-age=600")], body_of(ex.path, size))))
        zone = "memory=4m disk=2m"
        self.start(zone=zone)
        stop = threading.Event()

        def fill(k):
            i = k
            while not stop.is_set():
                try:
                    self.get("/e/%d" % (i % 60))
                except Exception:
                    return  # killed
                i += 4

        threads = [threading.Thread(target=fill, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        # Beyond disk= soon: about 13 entries fit; the fill evicts from then on.
        deadline = time.monotonic() + 10
        while self.up.count("GET") < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(self.up.count("GET"), 40)
        self.kill()
        stop.set()
        for t in threads:
            t.join(20)
        self.assertLessEqual(sum(files_under(self.cache_dir).values()), 2 * 1024 * 1024)
        before = self.up.count("GET")
        self.start(zone=zone)
        hits = 0
        for i in range(60):
            r = self.get("/e/%d" % i, {"Cache-Control": "only-if-cached"})
            if r.status == 504:
                continue
            self.assertEqual(r.status, 200)
            self.assertHit(r)
            self.assertEqual(r.body, body_of("/e/%d" % i, size), i)
            ttl = int(r.header("Cache-Status").split("ttl=")[1].split(";")[0])
            self.assertGreater(ttl, 0)
            hits += 1
        self.assertGreater(hits, 0)
        self.assertEqual(self.up.count("GET"), before)


class Files(DiskCase):
    def test_torn_foreign_and_leftover_files_are_removed_at_start(self):
        body = body_of("/t", 100000)
        self.up.on("GET", "/t", answer(200, [("Cache-Control", "max-age=60")], body))
        self.up.on("GET", "/u", answer(200, [("Cache-Control", "max-age=60")], b"u" * 1000))
        self.start()
        self.get("/t")
        self.get("/u")
        self.srv.stop()
        files = files_under(self.cache_dir)
        self.assertEqual(len(files), 2)
        torn = [p for p, n in files.items() if n > 100000][0]
        other = [p for p in files if p != torn][0]
        # A torn entry (its end missing), a foreign entry (its head
        # changed, same length), garbage under a valid name, a leftover
        # temporary file.
        with open(torn, "r+b") as f:
            f.truncate(files[torn] - 10)
        with open(other, "r+b") as f:
            data = bytearray(f.read())
            i = data.index(b"max-age=60")
            data[i:i + 10] = b"max-age=99"
            f.seek(0)
            f.write(data)
        garbage = os.path.join(self.cache_dir, "ab", "ab00000000000000-0000000000000001")
        with open(garbage, "wb") as f:
            f.write(b"VERBDCE\n" + os.urandom(500))
        leftover = os.path.join(self.cache_dir, "tmp", "1234.0")
        with open(leftover, "wb") as f:
            f.write(b"x" * 100)
        self.start()
        for p in (torn, other, garbage, leftover):
            self.assertFalse(os.path.exists(p), p)
        r = self.get("/t")
        self.assertEqual(r.body, body)
        self.assertFalse(r.header("Cache-Status", "").startswith("verbd; hit"), r.headers)
        r = self.get("/u")
        self.assertEqual(r.header("Cache-Control"), "max-age=60")
        self.assertEqual(self.up.count("GET", "/t"), 2)
        self.assertEqual(self.up.count("GET", "/u"), 2)

    def test_a_file_removed_by_hand_is_fetched_again(self):
        self.up.on("GET", "/gone", answer(200, [("Cache-Control", "max-age=60")], b"g" * 10000))
        self.start()
        self.get("/gone")
        for p in files_under(self.cache_dir):
            os.unlink(p)
        self.assertEqual(self.get("/gone").status, 503)
        r = self.get("/gone")
        self.assertEqual((r.status, r.body), (200, b"g" * 10000))
        self.assertEqual(self.up.count("GET", "/gone"), 2)
        self.assertHit(self.get("/gone"))

    def test_disk_limit_bounds_the_files(self):
        self.up.on("GET", "/d/", lambda ex: (ex.drain(), ex.respond(
            200, [("Cache-Control", "max-age=600")], body_of(ex.path, 100000))))
        self.start(zone="memory=4m disk=1m", top="location = /status { status; }\n")
        for i in range(30):
            self.get("/d/%d" % i)
            self.assertLessEqual(sum(files_under(self.cache_dir).values()), 1024 * 1024)
        self.assertHit(self.get("/d/29"))
        # /status counts the files as they are, in 4 KiB blocks.
        metrics = dict(line.rsplit(" ", 1) for line in self.get("/status").body.decode().splitlines()
                       if line.startswith("verbd_proxy_cache_disk"))
        used = sum((n + 4095) // 4096 * 4096 for n in files_under(self.cache_dir).values())
        self.assertEqual(int(metrics['verbd_proxy_cache_disk_bytes_used{zone="z"}']), used)
        self.assertEqual(int(metrics['verbd_proxy_cache_disk_bytes{zone="z"}']), 1024 * 1024)
        r = self.get("/d/0", {"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 504)  # the least recently used went
        # Replaced: the old file goes with the old entry.
        mine = lambda: [p for p in files_under(self.cache_dir)
                        if os.path.basename(p).startswith(name_hash("http://example.test/d/29"))]
        old = mine()
        self.assertEqual(len(old), 1)
        self.get("/d/29", {"Cache-Control": "no-cache"})
        new = mine()
        self.assertEqual(len(new), 1)
        self.assertNotEqual(old, new)

    def test_check_reports_a_directory_it_cannot_use(self):
        blocker = self.write("plain-file", "x")
        rc, out, err = self.check(self.config().replace(self.cache_dir, blocker + "/sub"))
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot make", err + out)
        rc, out, err = self.check(self.config().replace(" disk=8m", ""))
        self.assertNotEqual(rc, 0)
        self.assertIn("go together", err + out)
        rc, out, err = self.check(self.config())
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.isdir(os.path.join(self.cache_dir, "ff")))
        # Served by a location, the files would be anyone's to read.
        rc, out, err = self.check(self.config() + "location /files/ { static %s; }\n" % self.dir)
        self.assertNotEqual(rc, 0)
        self.assertIn("which this location serves", err + out)
        # Beside a running verbd that has the directory, -t still passes;
        # a second verbd on it does not start.
        self.start()
        rc, out, err = self.check(self.config())
        self.assertEqual(rc, 0, err)
        p = run_verbd("-c", self.write("second.conf", self.config()), timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("in use by another verbd", p.stderr.decode())

    def test_a_reload_keeps_the_disk_zone_and_adds_none(self):
        self.up.on("GET", "/r", answer(200, [("Cache-Control", "max-age=60")], b"r" * 3000))
        self.start()
        self.get("/r")
        other = os.path.join(self.dir, "other")
        self.write("verbd.conf", self.config() + "cache_zone y memory=1m path=%s disk=4m;\n" % other)
        self.srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "added only when verbd starts" not in self.srv.stderr_text():
            self.assertLess(time.monotonic(), deadline, self.srv.stderr_text())
            time.sleep(0.05)
        self.assertHit(self.get("/r"))
        self.assertEqual(self.up.count("GET", "/r"), 1)
        self.assertFalse(os.path.exists(other))
