"""bench/fcgi_responder.c, the FastCGI scenarios' application: FastCGI 1.0
spoken to it from Python over a Unix socket.  One request, two on one
FCGI_KEEP_CONN connection, a 64 KiB answer over several STDOUT records,
records split byte by byte, padding, management records, ABORT_REQUEST
and a malformed record.

The binary is expected beside $VERBD_BIN, as bench-fcgi-responder (make
build/bench-fcgi-responder; make test builds it)."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import verbd_bin

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
RESPONDER, KEEP_CONN = 1, 1
REQUEST_COMPLETE, CANT_MPX_CONN = 0, 1


def responder_path():
    return os.path.join(os.path.dirname(os.path.abspath(verbd_bin())), "bench-fcgi-responder")


def record(rtype, rid, content=b"", padding=0):
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), padding) + content + b"\0" * padding


def nv(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def request(rid=1, keep=False, padding=0):
    """A GET: BEGIN_REQUEST, PARAMS (two records and the empty one), the
    empty STDIN."""
    params = nv(b"REQUEST_METHOD", b"GET") + nv(b"SCRIPT_NAME", b"/x" * 100)
    return (record(BEGIN_REQUEST, rid, struct.pack(">HB5x", RESPONDER, KEEP_CONN if keep else 0),
                   padding)
            + record(PARAMS, rid, params[:40], padding) + record(PARAMS, rid, params[40:], padding)
            + record(PARAMS, rid, b"", padding) + record(STDIN, rid, b"", padding))


def expected_body(size):
    return bytes(10 if i % 64 == 63 else 97 + i % 26 for i in range(size))


class Reader:
    """Records from a connection, however the reads split them."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed with %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk

    def record(self):
        self.fill(8)
        version, rtype, rid, clen, plen = struct.unpack(">BBHHBx", self.buf[:8])
        assert version == 1, self.buf[:8]
        self.fill(8 + clen + plen)
        content = self.buf[8:8 + clen]
        self.buf = self.buf[8 + clen + plen:]
        return rtype, rid, content, plen

    def answer(self, rid):
        """STDOUT contents up to the END_REQUEST: (stdout, [content
        lengths], protocolStatus)."""
        out, lengths = b"", []
        while True:
            rtype, got_id, content, _ = self.record()
            if rtype == END_REQUEST:
                if got_id != rid:
                    raise AssertionError("END_REQUEST for %d, not %d" % (got_id, rid))
                return out, lengths, content[4]
            if rtype != STDOUT or got_id != rid:
                raise AssertionError("record type %d id %d in the answer" % (rtype, got_id))
            out += content
            lengths.append(len(content))

    def closed(self, timeout=2):
        self.sock.settimeout(timeout)
        try:
            return not self.buf and self.sock.recv(1) == b""
        except socket.timeout:
            return False


class ResponderTestCase(unittest.TestCase):
    size = 1024

    @classmethod
    def setUpClass(cls):
        binary = responder_path()
        if not os.access(binary, os.X_OK):
            raise AssertionError("%s is missing: run make build/bench-fcgi-responder" % binary)
        cls.dir = tempfile.mkdtemp(prefix="verbd-fcgi-")
        cls.path = os.path.join(cls.dir, "app.sock")
        cls.proc = subprocess.Popen([binary, "--procs", "2", "unix:" + cls.path, str(cls.size)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = cls.proc.stdout.readline().decode()
        if line.strip() != "listening on unix:" + cls.path:
            cls.proc.kill()
            raise AssertionError("responder said %r, %r" % (line, cls.proc.stderr.read()))

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        rc = cls.proc.wait(10)
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc != 0:
            raise AssertionError("the responder exited with %d on SIGTERM" % rc)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.path)
        self.addCleanup(s.close)
        return s, Reader(s)

    def assertAnswer(self, stdout):
        head, sep, body = stdout.partition(b"\r\n\r\n")
        self.assertEqual(head, b"Status: 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d" % self.size)
        self.assertEqual(sep, b"\r\n\r\n")
        self.assertEqual(body, expected_body(self.size))


class TestResponder(ResponderTestCase):

    def test_one_request_then_close(self):
        s, r = self.connect()
        s.sendall(request())
        stdout, lengths, status = r.answer(1)
        self.assertAnswer(stdout)
        self.assertEqual(status, REQUEST_COMPLETE)
        self.assertEqual(lengths[-1], 0, "the answer ends with an empty STDOUT")
        self.assertTrue(r.closed(), "no FCGI_KEEP_CONN: the responder closes")

    def test_keep_conn_two_requests_in_one_write(self):
        s, r = self.connect()
        s.sendall(request(1, keep=True) + request(1, keep=True))
        for _ in range(2):
            stdout, _, status = r.answer(1)
            self.assertAnswer(stdout)
            self.assertEqual(status, REQUEST_COMPLETE)
        self.assertFalse(r.closed(0.3), "FCGI_KEEP_CONN: the connection stays open")
        s.sendall(request(2, keep=False))
        self.assertAnswer(r.answer(2)[0])
        self.assertTrue(r.closed())

    def test_records_split_byte_by_byte_with_padding(self):
        s, r = self.connect()
        # the last byte is the empty STDIN's padding: the connection is
        # closed only once it is in
        data = request(258, keep=False, padding=5)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.0005)
        stdout, lengths, status = r.answer(258)
        self.assertAnswer(stdout)
        self.assertEqual(status, REQUEST_COMPLETE)
        self.assertTrue(r.closed())

    def test_stdin_content_is_read_and_dropped(self):
        s, r = self.connect()
        body = b"x" * 70000
        data = request(1, keep=True)[:-8]      # all but the empty STDIN
        data += record(STDIN, 1, body[:65535], 1) + record(STDIN, 1, body[65535:]) + record(STDIN, 1)
        s.sendall(data)
        self.assertAnswer(r.answer(1)[0])

    def test_get_values(self):
        s, r = self.connect()
        s.sendall(record(GET_VALUES, 0, nv(b"FCGI_MPXS_CONNS", b"") + nv(b"FCGI_MAX_CONNS", b"")
                         + nv(b"FCGI_OTHER", b"") + nv(b"FCGI_MAX_REQS", b"")))
        rtype, rid, content, _ = r.record()
        self.assertEqual((rtype, rid), (GET_VALUES_RESULT, 0))
        values = {}
        while content:
            n, v = content[0], content[1]
            values[content[2:2 + n]] = content[2 + n:2 + n + v]
            content = content[2 + n + v:]
        self.assertEqual(values[b"FCGI_MPXS_CONNS"], b"0")
        self.assertTrue(int(values[b"FCGI_MAX_CONNS"]) > 0)
        self.assertTrue(int(values[b"FCGI_MAX_REQS"]) > 0)
        self.assertEqual(set(values), {b"FCGI_MPXS_CONNS", b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS"})

    def test_unknown_types(self):
        s, r = self.connect()
        # an unknown management record: UNKNOWN_TYPE; an unknown
        # application record: ignored, the request goes on
        s.sendall(record(42, 0, b"abc", 5) + record(42, 1, b"abc") + request(1))
        rtype, rid, content, _ = r.record()
        self.assertEqual((rtype, rid, content), (UNKNOWN_TYPE, 0, bytes([42]) + b"\0" * 7))
        self.assertAnswer(r.answer(1)[0])

    def test_abort_request(self):
        s, r = self.connect()
        s.sendall(request(7, keep=True)[:-8] + record(ABORT_REQUEST, 7))
        stdout, _, status = r.answer(7)
        self.assertEqual((stdout, status), (b"", REQUEST_COMPLETE))
        s.sendall(request(8, keep=True))
        self.assertAnswer(r.answer(8)[0])

    def test_second_begin_request_cannot_multiplex(self):
        s, r = self.connect()
        begin = record(BEGIN_REQUEST, 3, struct.pack(">HB5x", RESPONDER, KEEP_CONN))
        s.sendall(begin + request(4, keep=True) + request(3, keep=True)[len(begin):])
        rtype, rid, content, _ = r.record()
        self.assertEqual((rtype, rid, content[4]), (END_REQUEST, 4, CANT_MPX_CONN))
        self.assertAnswer(r.answer(3)[0])

    def test_malformed_record_closes(self):
        s, r = self.connect()
        s.sendall(b"\x02" + record(BEGIN_REQUEST, 1, b"\0" * 8)[1:])
        self.assertTrue(r.closed())
        s, r = self.connect()
        s.sendall(record(BEGIN_REQUEST, 1, b"\0\1\0"))  # a body of 3 bytes, not 8
        self.assertTrue(r.closed())


class TestResponder64k(ResponderTestCase):
    size = 65536

    def test_64k_answer_over_several_records(self):
        s, r = self.connect()
        s.sendall(request(1, keep=True))
        stdout, lengths, status = r.answer(1)
        self.assertAnswer(stdout)
        self.assertEqual(status, REQUEST_COMPLETE)
        self.assertTrue(all(n <= 65535 for n in lengths), lengths)
        self.assertGreaterEqual(len([n for n in lengths if n]), 2, lengths)
        # and again on the same connection, under another request id
        s.sendall(request(513, keep=False))
        self.assertAnswer(r.answer(513)[0])
        self.assertTrue(r.closed())


if __name__ == "__main__":
    unittest.main()
