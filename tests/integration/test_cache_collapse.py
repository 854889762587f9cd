"""Collapsed forwarding, streamed (docs/cache.md): requests that miss
while another exchange fetches the same key get their answer as the
leader's body streams in, not once it is stored, in a memory zone (from
the entry's blocks) and in a disk zone (from the file being written).
The upstream sends the head and the first part of a body, then waits for
the test: every check of what a waiter has (or of what the file holds)
is made while the upstream is held, so none depends on timing."""

import os
import signal
import socket
import threading
import time

import upstream as U
from harness import ConnectionClosed, HarnessError
from test_cache import CacheCase
from test_cache_disk import files_under
from test_config import wait_for

SIZE = 1000000
FIRST = 256 * 1024
STATUS = "location = /status { status; }\n"


def held(gate, fields=(("Cache-Control", "max-age=60"),), chunked=False, then="finish",
         size=SIZE):
    """An upstream handler: the head and FIRST bytes of a `size`-byte
    body, then, once `gate` is set, the rest ("finish") or a closed
    connection ("die")."""
    def handler(ex):
        ex.drain()
        head = list(fields) + ([("Transfer-Encoding", "chunked")] if chunked
                               else [("Content-Length", str(size))])
        ex.send_head(200, head)
        put = ex.send_chunk if chunked else ex.send
        put(U.pattern(0, FIRST))
        gate.wait(20)
        if then == "die":
            ex.close()
            return
        put(U.pattern(FIRST, size - FIRST))
        if chunked:
            ex.end_chunks()
    return handler


class Collapsing(CacheCase):
    """What the tests of streamed collapsing share."""

    def setUp(self):
        super().setUp()
        self.gate = threading.Event()
        self.addCleanup(self.gate.set)

    def open_get(self, target):
        c = self.srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(("GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n" % target).encode())
        return c

    def read_head_and(self, c, n):
        """Reads until the head and at least n body bytes (of any framing)
        are in; returns the head's bytes."""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in c.buf or len(c.buf.split(b"\r\n\r\n", 1)[1]) < n:
            if time.monotonic() > deadline or c._fill(timeout=max(0.01, deadline - time.monotonic())) == 0:
                raise HarnessError("got %d bytes, wanted a head and %d of the body: %r"
                                   % (len(c.buf), n, c.buf[:300]))
        return c.buf.split(b"\r\n\r\n", 1)[0]

    def lead_and_wait(self, target, waiters):
        """The leader's request, held by the upstream once FIRST bytes are
        through; then `waiters` more requests for the same target."""
        leader = self.open_get(target)
        self.up.wait_requests(1)
        self.read_head_and(leader, FIRST)
        return leader, [self.open_get(target) for _ in range(waiters)]

    def zone_gauge(self, name, zone="z"):
        text = self.get("/status").body.decode()
        line = 'verbd_proxy_cache_%s{zone="%s"} ' % (name, zone)
        return int(text.split(line, 1)[1].split("\n", 1)[0])

    def worker_asking(self, port):
        """The verbd worker with a connection to the upstream's port."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in list(f)[1:]:
                    cols = line.split()
                    if int(cols[2].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % cols[9])
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.srv.proc.pid:
                    continue
                for fd in os.listdir("/proc/%s/fd" % pid):
                    if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                        return int(pid)
            except (OSError, ValueError, IndexError):
                continue
        self.fail("no worker has a connection to port %d" % port)

    def whole_or_short(self, target):
        try:
            return self.get(target).body
        except HarnessError:
            return None

    def assert_cut_short(self, conns):
        for c in conns:
            try:
                r = c.read_response("GET")
            except ConnectionClosed:
                continue  # closed before the announced length or the last chunk
            self.fail("a complete answer from an entry that failed: %d bytes, %r"
                      % (len(r.body), r.headers))


class StreamedCollapsing(Collapsing):
    def streamed(self, chunked):
        self.up.on("GET", "/big", held(self.gate, chunked=chunked))
        leader, waiters = self.lead_and_wait("/big", 4)
        for c in waiters:
            head = self.read_head_and(c, FIRST)
            self.assertIn(b"collapsed", head)
            # The length the upstream stated, or chunks.
            self.assertIn(b"Transfer-Encoding: chunked" if chunked
                          else b"Content-Length: %d" % SIZE, head)
        self.assertEqual(self.up.count("GET"), 1)
        self.gate.set()
        for c in [leader] + waiters:
            r = c.read_response("GET")
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), SIZE)
            self.assertTrue(r.body == U.pattern(0, SIZE), "the body differs from the upstream's")
        self.assertEqual(self.up.count("GET"), 1)
        # Stored once complete: the next request is a hit.
        r = self.get("/big")
        self.assertEqual(r.body, U.pattern(0, SIZE))
        self.assertIn("hit", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET"), 1)

    def test_waiters_get_the_body_while_it_streams_in(self):
        self.start()
        self.streamed(chunked=False)

    def test_waiters_in_other_workers_too(self):
        self.start(top="workers 2;\n")
        self.streamed(chunked=False)

    def test_a_chunked_answer_streams_too(self):
        self.start(top="workers 2;\n")
        self.streamed(chunked=True)

    def died(self, chunked):
        dying = held(self.gate, chunked=chunked, then="die")
        whole = U.respond(200, [("Cache-Control", "max-age=60")], b"whole")
        self.up.on("GET", "/d", lambda ex: (whole if self.gate.is_set() else dying)(ex))
        leader, waiters = self.lead_and_wait("/d", 3)
        for c in waiters:
            self.read_head_and(c, FIRST)
        self.gate.set()
        for c in [leader] + waiters:
            try:
                r = c.read_response("GET")
            except ConnectionClosed:
                continue  # closed before the announced length or the last chunk
            self.fail("a complete answer from an upstream that died mid-body: %d bytes, %r"
                      % (len(r.body), r.headers))
        # Nothing was stored, and the abandoned entry's blocks went with
        # its last reader.
        self.assertTrue(wait_for(lambda: self.zone_gauge("bytes_used") == 0),
                        self.zone_gauge("bytes_used"))
        self.assertEqual(self.zone_gauge("entries"), 0)
        # The next request goes upstream.
        self.assertEqual(self.get("/d").body, b"whole")
        self.assertEqual(self.up.count("GET"), 2)

    def test_an_upstream_that_dies_mid_body_cuts_the_waiters_short(self):
        self.start(top="workers 2;\n" + STATUS)
        self.died(chunked=False)

    def test_a_chunked_upstream_that_dies_mid_body_cuts_the_waiters_short(self):
        self.start(top=STATUS)
        self.died(chunked=True)

    def test_a_body_over_the_entry_limit_is_not_followed(self):
        # Announced larger than cache_max_entry: not stored, so each
        # waiter goes upstream itself once the leader's head is in.
        self.up.on("GET", "/l", held(self.gate))
        self.start(extra="cache_max_entry 512k;")
        leader, waiters = self.lead_and_wait("/l", 3)
        self.up.wait_requests(4)
        self.gate.set()
        for c in [leader] + waiters:
            r = c.read_response("GET")
            self.assertEqual(r.body, U.pattern(0, SIZE))
            self.assertNotIn("collapsed", r.header("Cache-Status"))
        self.assertEqual(self.up.count("GET"), 4)

    def test_a_body_that_grows_past_the_limit_cuts_the_waiters_short(self):
        # Chunked: its size is known only as it comes; past the limit the
        # entry is abandoned and the waiters that follow it end short.
        self.up.on("GET", "/g", held(self.gate, chunked=True))
        self.start(extra="cache_max_entry 512k;")
        leader, waiters = self.lead_and_wait("/g", 2)
        for c in waiters:
            self.read_head_and(c, FIRST)
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        for c in waiters:
            with self.assertRaises(ConnectionClosed):
                c.read_response("GET")
        self.assertEqual(self.up.count("GET"), 1)

    def test_a_leader_whose_client_goes_away_cuts_the_waiters_short(self):
        self.up.on("GET", "/c", held(self.gate))
        self.start(top=STATUS)
        leader, waiters = self.lead_and_wait("/c", 2)
        for c in waiters:
            self.read_head_and(c, FIRST)
        leader.close()
        for c in waiters:
            with self.assertRaises(ConnectionClosed):
                c.read_response("GET")
        self.assertTrue(wait_for(lambda: self.zone_gauge("bytes_used") == 0),
                        self.zone_gauge("bytes_used"))

    def test_a_leader_killed_mid_body_is_not_followed_for_ever(self):
        # Its waiters (in its worker or another) end short, and the next
        # request for the key fetches it anew.
        dying = held(self.gate)
        whole = U.respond(200, [("Cache-Control", "max-age=60")], b"whole")
        self.up.on("GET", "/k", lambda ex: (whole if self.gate.is_set() else dying)(ex))
        self.start(top="workers 2;\n")
        leader, waiters = self.lead_and_wait("/k", 4)
        for c in waiters:
            self.read_head_and(c, FIRST)
        os.kill(self.worker_asking(self.up.port), signal.SIGKILL)
        for c in [leader] + waiters:
            with self.assertRaises(ConnectionClosed):
                c.read_response("GET")
        self.gate.set()
        # Until the dead worker is reaped a request may still follow its
        # entry, and is cut short as well.
        self.assertTrue(wait_for(lambda: self.whole_or_short("/k") == b"whole"))
        self.assertEqual(self.up.count("GET", "/k"), 2)

    def assert_nothing_yet(self, conns):
        # Another request goes through meanwhile: the server is not stuck.
        self.up.on("GET", "/other", U.respond(200, [], b"o"))
        self.assertEqual(self.get("/other").body, b"o")
        for c in conns:
            with self.assertRaises(socket.timeout):
                c._fill(timeout=0.3)

    def test_head_and_conditional_waiters_are_answered_from_the_head(self):
        """While the body still streams in: a HEAD gets the head with the
        stated length, a matching If-None-Match a 304, a GET whose
        validator does not match the body as it comes."""
        self.up.on("GET", "/h", held(self.gate, fields=(("Cache-Control", "max-age=60"),
                                                        ("ETag", '"h1"'))))
        self.start()
        leader, _ = self.lead_and_wait("/h", 0)
        conns = {}
        for name, req in (("head", "HEAD /h HTTP/1.1\r\n"),
                          ("match", 'GET /h HTTP/1.1\r\nIf-None-Match: "h1"\r\n'),
                          ("other", 'GET /h HTTP/1.1\r\nIf-None-Match: "x"\r\n')):
            c = conns[name] = self.srv.connect(timeout=10)
            self.addCleanup(c.close)
            c.send((req + "Host: example.test\r\n\r\n").encode())
        r = conns["head"].read_response("HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.header("ETag")),
                         (200, str(SIZE), '"h1"'))
        self.assertIn("collapsed", r.header("Cache-Status"))
        r = conns["match"].read_response("GET")
        self.assertEqual((r.status, r.body, r.header("ETag")), (304, b"", '"h1"'))
        self.assertIn(b"collapsed", self.read_head_and(conns["other"], FIRST))
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        self.assertEqual(conns["other"].read_response("GET").body, U.pattern(0, SIZE))
        self.assertEqual(self.up.count("GET", "/h"), 1)

    def test_range_waiters_from_the_first_byte_follow_the_others_wait(self):
        """`bytes=0-` follows the answer as it streams in (206, the stated
        length); `bytes=0-9` is answered from the bytes already in; a
        range from elsewhere waits for the stored entry."""
        self.up.on("GET", "/h", held(self.gate))
        self.start()
        leader, _ = self.lead_and_wait("/h", 0)
        conns = {}
        for spec in ("0-", "0-9", "5-9"):
            c = conns[spec] = self.srv.connect(timeout=10)
            self.addCleanup(c.close)
            c.send(("GET /h HTTP/1.1\r\nHost: example.test\r\nRange: bytes=%s\r\n\r\n"
                    % spec).encode())
        head = self.read_head_and(conns["0-"], FIRST)
        self.assertIn(b"206 Partial Content", head)
        self.assertIn(b"Content-Range: bytes 0-%d/%d" % (SIZE - 1, SIZE), head)
        self.assertIn(b"Content-Length: %d" % SIZE, head)
        r = conns["0-9"].read_response("GET")
        self.assertEqual((r.status, r.body, r.header("Content-Range")),
                         (206, U.pattern(0, 10), "bytes 0-9/%d" % SIZE))
        self.assertIn("collapsed", r.header("Cache-Status"))
        self.assert_nothing_yet([conns["5-9"]])
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        r = conns["0-"].read_response("GET")
        self.assertEqual((r.status, len(r.body)), (206, SIZE))
        self.assertTrue(r.body == U.pattern(0, SIZE), "the ranged body differs")
        r = conns["5-9"].read_response("GET")
        self.assertEqual((r.status, r.body), (206, U.pattern(5, 5)))
        self.assertEqual(self.up.count("GET", "/h"), 1)


class DiskStreamed(Collapsing):
    """A disk zone: the answer is written to its file under DIR/tmp/ as
    it comes, and the waiters are sent the file's bytes as they are
    written."""

    def start_disk(self, workers=1, extra=""):
        self.cache = os.path.join(self.dir, "cache")
        self.start(top="workers %d;\ncache_zone d memory=4m path=%s disk=16m;\n%s"
                   % (workers, self.cache, STATUS), zone="d", extra=extra)
        self.assertTrue(wait_for(lambda: self.zone_gauge("loading", "d") == 0))

    def follow_all(self, waiters):
        """Each waiter has the head and FIRST bytes of the leader's
        answer, before the upstream is released."""
        for c in waiters:
            self.assertIn(b"collapsed", self.read_head_and(c, FIRST))
        self.assertEqual(self.up.count("GET"), 1)

    def tmp_files(self):
        return os.listdir(os.path.join(self.cache, "tmp"))

    def followed(self, chunked, workers):
        self.up.on("GET", "/big", held(self.gate, chunked=chunked))
        self.start_disk(workers)
        leader, waiters = self.lead_and_wait("/big", 4)
        self.follow_all(waiters)
        for c in waiters:
            self.assertIn(b"Transfer-Encoding: chunked" if chunked
                          else b"Content-Length: %d" % SIZE, self.read_head_and(c, FIRST))
        self.gate.set()
        for c in [leader] + waiters:
            r = c.read_response("GET")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == U.pattern(0, SIZE), "the body differs from the upstream's")
        self.assertEqual(self.up.count("GET"), 1)
        # Stored: one file under its name, nothing left under tmp/, and the
        # next request is a hit from it.
        self.assertTrue(wait_for(lambda: self.tmp_files() == []), self.tmp_files())
        files = files_under(self.cache)
        self.assertEqual(len(files), 1, files)
        self.assertGreater(list(files.values())[0], SIZE)
        r = self.get("/big")
        self.assertEqual(r.body, U.pattern(0, SIZE))
        self.assertTrue(r.header("Cache-Status").startswith("verbd; hit"), r.headers)
        # The file is one the load reads: a hit after a restart.
        self.srv.stop()
        self.start_disk(workers)
        r = self.get("/big")
        self.assertEqual(r.body, U.pattern(0, SIZE))
        self.assertTrue(r.header("Cache-Status").startswith("verbd; hit"), r.headers)
        self.assertEqual(self.up.count("GET"), 1)

    def test_waiters_follow_the_file_as_it_is_written(self):
        self.followed(chunked=False, workers=1)

    def test_waiters_in_other_workers_follow_a_chunked_answer(self):
        self.followed(chunked=True, workers=2)

    def test_head_and_ranges_from_the_first_byte_follow_the_file(self):
        self.up.on("GET", "/r", held(self.gate))
        self.start_disk()
        leader, _ = self.lead_and_wait("/r", 0)
        conns = {}
        for name, req in (("head", "HEAD /r HTTP/1.1\r\n"),
                          ("0-", "GET /r HTTP/1.1\r\nRange: bytes=0-\r\n"),
                          ("0-9", "GET /r HTTP/1.1\r\nRange: bytes=0-9\r\n")):
            c = conns[name] = self.srv.connect(timeout=10)
            self.addCleanup(c.close)
            c.send((req + "Host: example.test\r\n\r\n").encode())
        r = conns["head"].read_response("HEAD")
        self.assertEqual((r.status, r.header("Content-Length")), (200, str(SIZE)))
        r = conns["0-9"].read_response("GET")
        self.assertEqual((r.status, r.body), (206, U.pattern(0, 10)))
        self.assertIn(b"Content-Range: bytes 0-%d/%d" % (SIZE - 1, SIZE),
                      self.read_head_and(conns["0-"], FIRST))
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        r = conns["0-"].read_response("GET")
        self.assertEqual(r.status, 206)
        self.assertTrue(r.body == U.pattern(0, SIZE), "the ranged body differs")
        self.assertEqual(self.up.count("GET", "/r"), 1)

    def test_the_file_holds_the_body_as_it_comes(self):
        # 2 MiB, held after the first 256 KiB: those are in the file
        # under tmp/ already (on a page boundary), not in memory.
        size = 2 * 1024 * 1024
        self.up.on("GET", "/f", held(self.gate, size=size))
        self.start_disk(extra="cache_max_entry 4m;")
        leader, _ = self.lead_and_wait("/f", 0)
        names = self.tmp_files()
        self.assertEqual(len(names), 1, names)
        with open(os.path.join(self.cache, "tmp", names[0]), "rb") as f:
            data = f.read()
        want = U.pattern(0, FIRST)
        self.assertTrue(any(data[at:at + FIRST] == want for at in range(0, 16384, 4096)),
                        "the file holds %d bytes, not the body so far" % len(data))
        self.assertEqual(files_under(self.cache), {})
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, size))
        r = self.get("/f")
        self.assertEqual(r.body, U.pattern(0, size))
        self.assertTrue(r.header("Cache-Status").startswith("verbd; hit"), r.headers)
        self.assertEqual(self.tmp_files(), [])

    def assert_nothing_stored(self):
        """Nothing under a final name, the tmp file gone (with the last
        reader of the entry), nothing indexed."""
        self.assertTrue(wait_for(lambda: self.tmp_files() == []), self.tmp_files())
        self.assertEqual(files_under(self.cache), {})
        self.assertEqual(self.zone_gauge("entries", "d"), 0)
        self.assertTrue(wait_for(lambda: self.zone_gauge("disk_bytes_used", "d") == 0),
                        self.zone_gauge("disk_bytes_used", "d"))

    def test_an_upstream_that_dies_mid_body_stores_nothing(self):
        self.up.on("GET", "/d", held(self.gate, then="die"))
        self.start_disk(workers=2)
        leader, waiters = self.lead_and_wait("/d", 3)
        self.follow_all(waiters)
        self.gate.set()
        self.assert_cut_short([leader] + waiters)
        self.assert_nothing_stored()

    def test_a_body_that_grows_past_the_limit_is_not_stored(self):
        self.up.on("GET", "/g", held(self.gate, chunked=True))
        self.start_disk(extra="cache_max_entry 512k;")
        leader, waiters = self.lead_and_wait("/g", 2)
        self.follow_all(waiters)
        self.gate.set()
        self.assertEqual(leader.read_response("GET").body, U.pattern(0, SIZE))
        self.assert_cut_short(waiters)
        self.assert_nothing_stored()
        self.assertEqual(self.up.count("GET"), 1)

    def test_a_leader_killed_mid_body_leaves_no_torn_entry(self):
        dying = held(self.gate)
        whole = U.respond(200, [("Cache-Control", "max-age=60")], b"whole")
        self.up.on("GET", "/k", lambda ex: (whole if self.gate.is_set() else dying)(ex))
        self.start_disk(workers=2)
        leader, waiters = self.lead_and_wait("/k", 4)
        self.follow_all(waiters)
        os.kill(self.worker_asking(self.up.port), signal.SIGKILL)
        self.assert_cut_short([leader] + waiters)
        self.assertEqual(files_under(self.cache), {})
        self.gate.set()
        # Restarted: the dead writer's file under tmp/ is removed, and the
        # key is fetched anew (never a torn hit).
        self.srv.stop(check=False)
        self.start_disk(workers=2)
        self.assertEqual(self.tmp_files(), [])
        r = self.get("/k")
        self.assertEqual(r.body, b"whole")
        self.assertFalse(r.header("Cache-Status").startswith("verbd; hit"), r.headers)
        self.assertEqual(self.up.count("GET", "/k"), 2)

    def test_short_answers_of_unstated_length_are_stored_where_the_load_reads_them(self):
        # Without a stated length the body is put on a page boundary; one
        # that ends shorter than a page is written again where the format
        # has it (after the head): a hit now and after a restart.
        def chunked(n):
            def handler(ex):
                ex.drain()
                ex.send_head(200, [("Cache-Control", "max-age=60"),
                                   ("Transfer-Encoding", "chunked")])
                ex.send_chunk(U.pattern(0, n))
                ex.end_chunks()
            return handler
        sizes = {"/s0": 1, "/s1": 100, "/s2": 4095, "/s3": 4096, "/s4": 6000, "/s5": 70000}
        for target, n in sizes.items():
            self.up.on("GET", target, chunked(n))
        self.start_disk()
        for restarted in (False, True):
            for target, n in sizes.items():
                r = self.get(target)
                self.assertEqual(r.body, U.pattern(0, n), target)
                self.assertEqual(r.header("Cache-Status").startswith("verbd; hit"),
                                 restarted, (target, r.headers))
            self.assertEqual(self.tmp_files(), [])
            self.assertEqual(len(files_under(self.cache)), len(sizes))
            self.srv.stop()
            self.start_disk()
        for target, n in sizes.items():
            r = self.get(target)
            self.assertEqual(r.body, U.pattern(0, n), target)
            self.assertTrue(r.header("Cache-Status").startswith("verbd; hit"), (target, r.headers))
        self.assertEqual(self.up.count("GET"), len(sizes))

    def test_an_answer_whose_file_cannot_be_made_goes_through_unstored(self):
        # DIR/tmp/ replaced by a file: no file can be made for the answer,
        # which reaches its client whole and is not stored.
        self.up.on("GET", "/n", U.respond(200, [("Cache-Control", "max-age=60")],
                                          U.pattern(0, 100000)))
        self.start_disk()
        tmp = os.path.join(self.cache, "tmp")
        os.rmdir(tmp)
        with open(tmp, "w"):
            pass
        r = self.get("/n")
        self.assertEqual(r.body, U.pattern(0, 100000))
        self.assertIn("detail=no-room", r.header("Cache-Status"))
        self.assertEqual(files_under(self.cache), {})
        os.unlink(tmp)
        os.mkdir(tmp)
        r = self.get("/n")
        self.assertIn("stored", r.header("Cache-Status"))
        self.assertTrue(self.get("/n").header("Cache-Status").startswith("verbd; hit"))
        self.assertEqual(self.up.count("GET", "/n"), 2)
