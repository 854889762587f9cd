"""HTTP/2 floods and stalls, each sent with raw frames: rapid reset,
CONTINUATION flood, PING, SETTINGS and empty-frame floods, zero-length
header fields, data dribble, HPACK table churn and table sizes, PRIORITY
floods and churn, a body that never comes, an idle connection.
Each test checks the server's answer (GOAWAY with its error code, or the
stream reset) and that a normal client on another connection is served
meanwhile and afterwards."""

import os
import random
import socket
import sys
import time
import unittest

try:
    import hpack
    from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                                  HeadersFrame, PingFrame, PriorityFrame, RstStreamFrame,
                                  SettingsFrame, WindowUpdateFrame)
except ImportError:  # a Python other than the system's: Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import hpack
    from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                                  HeadersFrame, PingFrame, PriorityFrame, RstStreamFrame,
                                  SettingsFrame, WindowUpdateFrame)

from harness import measured_as_built
from test_http2 import PREFACE, Http2Case

NO_ERROR = 0
PROTOCOL_ERROR = 1
CANCEL = 8
COMPRESSION_ERROR = 9
ENHANCE_YOUR_CALM = 11

# verbd's budgets (lib/engine/http2.c), per connection and 10 s window.
MAX_RESETS = 200
MAX_PINGS = 100
MAX_SETTINGS = 100
MAX_EMPTY = 100
MAX_DRIBBLE = 1000


class RawClient:
    """An HTTP/2 connection driven frame by frame."""

    def __init__(self, port, settings=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.frames = []
        self.closed = False
        self.next_id = 1
        s = SettingsFrame(0)
        for k, v in (settings or {}).items():
            s.settings[k] = v
        self.sock.sendall(PREFACE + s.serialize() + SettingsFrame(0, flags=["ACK"]).serialize())

    def close(self):
        self.sock.close()

    def send(self, frames):
        try:
            self.sock.sendall(b"".join(f if isinstance(f, bytes) else f.serialize()
                                       for f in frames))
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def stream(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def block(self, path="/index.html", method="GET", extra=()):
        return self.enc.encode([(":method", method), (":path", path), (":scheme", "http"),
                                (":authority", "localhost")] + list(extra))

    def headers(self, sid, block, end_stream=True, end_headers=True):
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        return HeadersFrame(sid, data=block, flags=flags)

    def read(self, until, timeout=10):
        """Reads frames until until(frame) is true or the connection ends;
        returns the frame that matched, or None."""
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                self.frames.append(f)
                if until(f):
                    return f
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out; frames: %r" % self.frames[-5:])
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
            self.buf += data

    def goaway(self, timeout=10):
        for f in self.frames:
            if isinstance(f, GoAwayFrame):
                return f
        return self.read(lambda f: isinstance(f, GoAwayFrame), timeout)

    def wait_closed(self, timeout=10):
        self.read(lambda f: False, timeout)
        return self.closed


class AttackCase(Http2Case):

    def setUp(self):
        super().setUp()
        # A normal client, connected before the attack and asking during it.
        self.normal = self.client()
        self.assertEqual(self.normal.request("GET", "/index.html").status, 200)
        self.raws = []

    def tearDown(self):
        for r in self.raws:
            r.close()
        super().tearDown()

    def raw(self, **kw):
        r = RawClient(self.plain_port, **kw)
        self.raws.append(r)
        return r

    def assert_served(self, pending=None):
        """The normal client (its request sent during the attack, if any)
        and a new one are answered."""
        if pending is not None:
            self.assertEqual(self.normal.wait(pending).status, 200)
        self.assertEqual(self.normal.request("GET", "/index.html").status, 200)
        fresh = self.client()
        self.assertEqual(fresh.request("GET", "/index.html").status, 200)

    def assert_calm(self, r):
        g = r.goaway()
        self.assertIsNotNone(g, "no GOAWAY; frames: %r" % r.frames[-5:])
        self.assertEqual(g.error_code, ENHANCE_YOUR_CALM)
        self.assertTrue(r.wait_closed(), "the connection stays open after GOAWAY")


class TestFloods(AttackCase):

    def test_rapid_reset(self):
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        frames = []
        for _ in range(MAX_RESETS + 50):
            sid = r.stream()
            frames.append(r.headers(sid, r.block()))
            frames.append(RstStreamFrame(sid, error_code=CANCEL))
        r.send(frames)
        self.assert_calm(r)
        self.assert_served(pending)

    def test_resets_within_budget(self):
        r = self.raw()
        frames = []
        for _ in range(MAX_RESETS // 2):
            sid = r.stream()
            frames.append(r.headers(sid, r.block()))
            frames.append(RstStreamFrame(sid, error_code=CANCEL))
        sid = r.stream()
        frames.append(r.headers(sid, r.block()))
        r.send(frames)
        got = r.read(lambda f: isinstance(f, (HeadersFrame, GoAwayFrame)) and f.stream_id in
                     (0, sid))
        self.assertIsInstance(got, HeadersFrame, "a client within the budget is served")

    def test_continuation_flood(self):
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        sid = r.stream()
        block = r.block(extra=[("x-filler-%d" % i, "v" * 100) for i in range(60)])
        piece = 64
        frames = [r.headers(sid, block[:piece], end_headers=False)]
        rest = block[piece:]
        # Never END_HEADERS: one CONTINUATION after another.
        while rest:
            frames.append(ContinuationFrame(sid, data=rest[:piece]))
            rest = rest[piece:]
        frames += [ContinuationFrame(sid, data=b"") for _ in range(20)]
        self.assertGreater(len(frames), 50)
        r.send(frames)
        self.assert_calm(r)
        self.assert_served(pending)

    def test_header_list_size(self):
        """Fields beyond max_header (16k) in few frames: 431, the
        connection goes on."""
        r = self.raw()
        sid = r.stream()
        block = r.block(extra=[("x-big-%d" % i, "v" * 1000) for i in range(20)])
        half = len(block) // 2
        r.send([r.headers(sid, block[:half], end_headers=False),
                ContinuationFrame(sid, data=block[half:], flags=["END_HEADERS"])])
        h = r.read(lambda f: isinstance(f, (HeadersFrame, GoAwayFrame, RstStreamFrame)))
        self.assertIsInstance(h, HeadersFrame)
        self.assertEqual(dict(hpack.Decoder().decode(h.data))[":status"], "431")
        self.assert_served()

    def test_ping_flood(self):
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        r.send([PingFrame(0, opaque_data=b"%08d" % i) for i in range(MAX_PINGS + 50)])
        self.assert_calm(r)
        acks = [f for f in r.frames if isinstance(f, PingFrame)]
        self.assertLessEqual(len(acks), MAX_PINGS + 50)
        self.assert_served(pending)

    def test_settings_flood(self):
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        r.send([SettingsFrame(0) for _ in range(MAX_SETTINGS + 50)])
        self.assert_calm(r)
        self.assert_served(pending)

    def test_settings_entries(self):
        """More than 32 entries in one SETTINGS frame."""
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        s = SettingsFrame(0)
        for i in range(40):
            s.settings[0x100 + i] = 1  # unknown settings, ignored one by one
        r.send([s])
        self.assert_calm(r)
        self.assert_served(pending)

    def test_empty_data_flood(self):
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        sid = r.stream()
        frames = [r.headers(sid, r.block("/dav/flood", "PUT"), end_stream=False)]
        frames += [DataFrame(sid, data=b"") for _ in range(MAX_EMPTY + 50)]
        r.send(frames)
        self.assert_calm(r)
        self.assert_served(pending)

    def test_zero_length_header_flood(self):
        """Fields with an empty name (each would take 32 bytes of the
        HPACK table): malformed, the stream is reset."""
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        sid = r.stream()
        # Literal with incremental indexing, new name: empty name, empty value.
        block = r.block() + b"\x40\x00\x00" * 4000
        r.send([r.headers(sid, block)])
        got = r.read(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame, HeadersFrame)))
        self.assertIsInstance(got, (RstStreamFrame, GoAwayFrame), "answered: %r" % got)
        self.assertEqual(got.error_code, PROTOCOL_ERROR)
        self.assert_served(pending)

    def test_malformed_streams_count_as_resets(self):
        """Streams the server must reset for the client's error (here an
        empty field name) count as resets the client sent."""
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        # In rounds within SETTINGS_MAX_CONCURRENT_STREAMS, each waiting
        # for its resets.
        for _ in range((MAX_RESETS + 50) // 50):
            sids = [r.stream() for _ in range(50)]
            r.send([r.headers(sid, r.block() + b"\x00\x00\x00") for sid in sids])
            last = r.read(lambda f: isinstance(f, GoAwayFrame) or
                          (isinstance(f, RstStreamFrame) and f.stream_id == sids[-1]))
            if last is None or isinstance(last, GoAwayFrame):
                break
        self.assert_calm(r)
        resets = [f for f in r.frames if isinstance(f, RstStreamFrame)]
        self.assertTrue(resets and all(f.error_code == PROTOCOL_ERROR for f in resets))
        self.assert_served(pending)

    def test_data_dribble(self):
        """A window opened one byte at a time: a 1-byte DATA frame for each."""
        r = self.raw(settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1})
        pending = self.normal.start("GET", "/index.html")
        sid = r.stream()
        r.send([r.headers(sid, r.block("/dav/big.bin"))])
        r.read(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sid)
        r.send([WindowUpdateFrame(sid, window_increment=1) for _ in range(MAX_DRIBBLE + 100)])
        self.assert_calm(r)
        self.assert_served(pending)


class ServerCost:
    """What the server process (one worker: the process itself) spends:
    CPU seconds and resident memory, from /proc."""

    def __init__(self, pid):
        self.pid = pid
        self.cpu0, self.rss0 = self.cpu(), self.rss()

    def cpu(self):
        with open("/proc/%d/stat" % self.pid) as stat:
            f = stat.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self):
        with open("/proc/%d/status" % self.pid) as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))

    def grown(self):
        return self.rss() - self.rss0

    def spent(self):
        return self.cpu() - self.cpu0


class TestHpack(AttackCase):
    """The HPACK dynamic tables (RFC 7541): the server's decoder table is
    libnghttp2's default 4 KiB (verbd advertises no other), its encoder
    table what the client allows, at most 4 KiB."""

    def answers(self, r, sids, dec):
        """Reads until every stream in sids has its response (HEAD: a head
        that ends the stream), decoding each block in order with dec;
        returns {sid: fields}."""
        got = {}

        def take(f):
            if isinstance(f, HeadersFrame) and f.stream_id in sids:
                got[f.stream_id] = dict(dec.decode(f.data))
            return isinstance(f, GoAwayFrame) or len(got) == len(sids)
        last = r.read(take)
        self.assertNotIsInstance(last, GoAwayFrame, last)
        return got

    def churn(self, r, dec, rounds, per_round=50, fields=8):
        """HEAD requests whose fields are all new and large: each one evicts
        the previous ones from the server's decoder table."""
        rnd = random.Random(7)
        for n in range(rounds):
            sids = [r.stream() for _ in range(per_round)]
            r.send([r.headers(sid, r.block(method="HEAD", extra=[
                ("x-churn-%d" % k, "%x" % rnd.getrandbits(1600)) for k in range(fields)]))
                    for sid in sids])
            for sid, fields_ in self.answers(r, sids, dec).items():
                self.assertEqual(fields_[":status"], "200", fields_)
                self.assertEqual(fields_["content-length"], "1024", fields_)
                self.assertEqual(fields_["server"], "verbd", fields_)

    def test_table_churn_under_a_small_client_table(self):
        """The client allows the server's encoder 256 bytes of table
        (SETTINGS_HEADER_TABLE_SIZE) and sends 2000 requests of 8 new
        400-byte fields each: every response decodes with a 256-byte
        table, the server's memory does not grow with the churn."""
        cost = ServerCost(self.server.pid)
        r = self.raw(settings={SettingsFrame.HEADER_TABLE_SIZE: 256})
        pending = self.normal.start("GET", "/index.html")
        dec = hpack.Decoder()
        dec.max_allowed_table_size = 256
        dec.header_table.maxsize = 256
        self.churn(r, dec, rounds=40)
        self.assertLessEqual(dec.header_table._current_size, 256)
        if measured_as_built():
            self.assertLess(cost.grown(), 4 << 20, "resident memory grew by %d" % cost.grown())
        self.assert_served(pending)

    def test_huge_table_allowed_by_the_client(self):
        """A client that allows 2 GiB of table: the server's encoder keeps
        to its own 4 KiB."""
        cost = ServerCost(self.server.pid)
        r = self.raw(settings={SettingsFrame.HEADER_TABLE_SIZE: 1 << 31})
        pending = self.normal.start("GET", "/index.html")
        dec = hpack.Decoder()
        dec.max_allowed_table_size = 1 << 31
        self.churn(r, dec, rounds=10)
        self.assertLessEqual(dec.header_table.maxsize, 4096)
        self.assertLessEqual(dec.header_table._current_size, 4096)
        if measured_as_built():
            self.assertLess(cost.grown(), 4 << 20, "resident memory grew by %d" % cost.grown())
        self.assert_served(pending)

    def test_table_size_update_beyond_the_servers(self):
        """A header block that sizes the server's decoder table to 1 MiB,
        above the 4 KiB it allows: COMPRESSION_ERROR (RFC 7541 §6.3)."""
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        enc = hpack.Encoder()
        enc.header_table_size = 1 << 20  # emits the size update first
        r.send([r.headers(r.stream(), enc.encode([(":method", "GET"), (":path", "/"),
                                                  (":scheme", "http"),
                                                  (":authority", "localhost")]))])
        g = r.goaway()
        self.assertIsNotNone(g, "no GOAWAY; frames: %r" % r.frames[-5:])
        self.assertEqual(g.error_code, COMPRESSION_ERROR)
        self.assertTrue(r.wait_closed())
        self.assert_served(pending)


class TestPriority(AttackCase):
    """PRIORITY frames (RFC 9113 §5.3.2, deprecated) are accepted and
    ignored.  libnghttp2 keeps a priority tree of its own; it holds at
    most max(16, SETTINGS_MAX_CONCURRENT_STREAMS) idle streams, so a flood
    for ever new stream ids, or churn among open streams, costs no memory
    and CPU in proportion to the bytes sent."""

    def test_priority_flood_for_new_streams(self):
        cost = ServerCost(self.server.pid)
        r = self.raw()
        pending = self.normal.start("GET", "/index.html")
        rnd = random.Random(3)
        frames = [PriorityFrame(rnd.randrange(1, 1 << 30, 2), depends_on=rnd.randrange(0, 1 << 30),
                                stream_weight=rnd.randrange(256), exclusive=bool(i & 1))
                  for i in range(200000)]
        r.send([b"".join(f.serialize() for f in frames)])
        sid = r.stream()
        r.send([r.headers(sid, r.block())])
        got = r.read(lambda f: isinstance(f, GoAwayFrame) or
                     (isinstance(f, HeadersFrame) and f.stream_id == sid), timeout=30)
        self.assertIsInstance(got, HeadersFrame, "PRIORITY frames are ignored: %r" % got)
        if measured_as_built():
            self.assertLess(cost.grown(), 4 << 20, "resident memory grew by %d" % cost.grown())
        self.assertLess(cost.spent(), 3.0, "2.8 MB of PRIORITY frames cost %.2fs" % cost.spent())
        self.assert_served(pending)

    def test_priority_churn_among_open_streams(self):
        """99 streams held open (a 1-byte window), their dependencies
        reshuffled exclusively 100,000 times."""
        r = self.raw(settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1})
        sids = [r.stream() for _ in range(99)]
        r.send([r.headers(sid, r.block("/dav/big.bin")) for sid in sids])
        r.read(lambda f: isinstance(f, HeadersFrame) and f.stream_id == sids[-1])
        cost = ServerCost(self.server.pid)
        pending = self.normal.start("GET", "/index.html")
        rnd = random.Random(5)
        frames = []
        for _ in range(100000):
            a, b = rnd.sample(sids, 2)
            frames.append(PriorityFrame(a, depends_on=b, stream_weight=rnd.randrange(256),
                                        exclusive=True))
        r.send([b"".join(f.serialize() for f in frames)])
        r.send([WindowUpdateFrame(sids[0], window_increment=1 << 20)])
        got = r.read(lambda f: isinstance(f, GoAwayFrame) or
                     (isinstance(f, DataFrame) and f.stream_id == sids[0] and len(f.data) > 1),
                     timeout=30)
        self.assertIsInstance(got, DataFrame, "the streams go on: %r" % got)
        if measured_as_built():
            self.assertLess(cost.grown(), 4 << 20, "resident memory grew by %d" % cost.grown())
        self.assertLess(cost.spent(), 3.0, "the churn cost %.2fs" % cost.spent())
        self.assert_served(pending)


class TestTimeouts(Http2Case):
    server_args = ("--set", "body_timeout=1s", "--set", "idle_timeout=2s")

    def test_body_never_sent(self):
        normal = self.client()
        r = RawClient(self.plain_port)
        self.addCleanup(r.close)
        sid = r.stream()
        block = r.block("/dav/never", "PUT", extra=[("content-length", "100")])
        r.send([r.headers(sid, block, end_stream=False)])
        start = time.monotonic()
        # Meanwhile another connection is served.
        self.assertEqual(normal.request("GET", "/index.html").status, 200)
        got = r.read(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame)) or
                     (isinstance(f, HeadersFrame) and f.stream_id == sid))
        self.assertIsNotNone(got, "closed with no answer")
        if isinstance(got, HeadersFrame):
            self.assertEqual(dict(hpack.Decoder().decode(got.data))[":status"], "408")
            got = r.read(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame)) or
                         "END_STREAM" in f.flags)
        self.assertGreaterEqual(time.monotonic() - start, 0.8)
        self.assertLess(time.monotonic() - start, 5)
        self.assertFalse(isinstance(got, GoAwayFrame), "the connection is kept: %r" % got)

    def test_idle_connection(self):
        r = RawClient(self.plain_port)
        self.addCleanup(r.close)
        start = time.monotonic()
        normal = self.client()
        self.assertEqual(normal.request("GET", "/index.html").status, 200)
        g = r.goaway(timeout=8)
        self.assertIsNotNone(g, "no GOAWAY")
        self.assertEqual(g.error_code, NO_ERROR)
        self.assertGreaterEqual(time.monotonic() - start, 1.5)
        self.assertTrue(r.wait_closed())


if __name__ == "__main__":
    unittest.main()
