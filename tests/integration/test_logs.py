"""Access log: combined log format, one line per request, escaping, SIGHUP
reopening."""

import datetime
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from harness import Server, VerbdTestCase, build_request, get_request

LINE_RE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] '
    r'"(?P<request>(?:[^"\\]|\\x[0-9a-fA-F]{2}|\\\\)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\x[0-9a-fA-F]{2}|\\\\)*)" "(?P<ua>(?:[^"\\]|\\x[0-9a-fA-F]{2}|\\\\)*)"$')


class AccessLogBase(VerbdTestCase):
    server_args = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="verbd-logs-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.log = os.path.join(self.tmp, "access.log")
        self.server_args = ("--access-log", self.log) + tuple(type(self).server_args)
        super().setUp()

    def read_lines(self, path=None):
        path = path or self.log
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return data

    def wait_lines(self, n, path=None, timeout=3.0):
        """Waits until the log holds at least n complete lines; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.read_lines(path) or b""
            lines = data.split(b"\n")
            complete = lines[:-1]
            if len(complete) >= n or time.monotonic() > deadline:
                self.assertEqual(len(complete), n, "log holds %r" % data)
                self.assertEqual(lines[-1], b"", "partial last line in %r" % data)
                return [l.decode("latin-1") for l in complete]
            time.sleep(0.05)

    def one_line(self, raw, method="GET"):
        c = self.connect()
        c.send(raw)
        r = c.read_response(method)
        [line] = self.wait_lines(1)
        m = LINE_RE.match(line)
        self.assertIsNotNone(m, "not combined log format: %r" % line)
        return r, line, m


class AccessLog(AccessLogBase):
    def test_combined_format_exact(self):
        r, line, m = self.one_line(build_request("GET", "/index.html",
                                                 [("Referer", "http://ref.example/"), ("User-Agent", "UA/1.0")]))
        self.assertEqual(r.status, 200)
        self.assertEqual(line, '127.0.0.1 - - [%s] "GET /index.html HTTP/1.1" 200 1024 '
                               '"http://ref.example/" "UA/1.0"' % m.group("time"))

    def test_timestamp_is_now_utc(self):
        r, line, m = self.one_line(get_request("/index.html"))
        t = datetime.datetime.strptime(m.group("time"), "%d/%b/%Y:%H:%M:%S %z")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - t).total_seconds()), 60)

    def test_missing_referer_and_agent_are_dashes(self):
        r, line, m = self.one_line(get_request("/index.html"))
        self.assertEqual((m.group("referer"), m.group("ua")), ("-", "-"))
        self.assertTrue(line.endswith('"GET /index.html HTTP/1.1" 200 1024 "-" "-"'), line)

    def test_head_logs_zero_bytes(self):
        r, line, m = self.one_line(build_request("HEAD", "/index.html"), "HEAD")
        self.assertEqual(m.group("request"), "HEAD /index.html HTTP/1.1")
        self.assertEqual((m.group("status"), m.group("bytes")), ("200", "0"))

    def test_404_logged(self):
        r, line, m = self.one_line(get_request("/missing"))
        self.assertEqual(m.group("status"), "404")
        self.assertEqual(int(m.group("bytes")), len(r.body))

    def test_501_logged_with_method(self):
        r, line, m = self.one_line(build_request("BREW", "/pot"))
        self.assertEqual(m.group("request"), "BREW /pot HTTP/1.1")
        self.assertEqual(m.group("status"), "501")
        self.assertEqual(int(m.group("bytes")), len(r.body))

    def test_206_logs_part_length(self):
        r, line, m = self.one_line(build_request("GET", "/index.html", [("Range", "bytes=0-99")]))
        self.assertEqual((m.group("status"), m.group("bytes")), ("206", "100"))

    def test_304_logs_zero(self):
        c = self.connect()
        etag = c.request("GET", "/index.html").header("ETag")
        c.request("GET", "/index.html", [("If-None-Match", etag)])
        lines = self.wait_lines(2)
        m = LINE_RE.match(lines[1])
        self.assertIsNotNone(m, lines[1])
        self.assertEqual(m.group("status"), "304")
        self.assertIn(m.group("bytes"), ("0", "-"))

    def test_http10_request_logged_as_such(self):
        r, line, m = self.one_line(b"GET /index.html HTTP/1.0\r\n\r\n")
        self.assertEqual(m.group("request"), "GET /index.html HTTP/1.0")

    def test_query_logged(self):
        r, line, m = self.one_line(get_request("/index.html?a=1&b=2"))
        self.assertEqual(m.group("request"), "GET /index.html?a=1&b=2 HTTP/1.1")

    def test_one_line_per_request_in_order(self):
        c = self.connect()
        c.send(b"".join(get_request("/pipe/%d.txt" % i) for i in range(5)))
        c.read_responses(5)
        lines = self.wait_lines(5)
        self.assertEqual([LINE_RE.match(l).group("request") for l in lines],
                         ["GET /pipe/%d.txt HTTP/1.1" % i for i in range(5)])

    def test_quote_in_user_agent_escaped(self):
        r, line, m = self.one_line(build_request("GET", "/index.html%22x",
                                                 [("User-Agent", 'Evil" 200 1 "injected')]))
        self.assertEqual(line.count("\n"), 0)
        self.assertNotIn('"injected', line)
        self.assertIn("\\x22", line)
        self.assertEqual(m.group("ua").lower(), 'evil\\x22 200 1 \\x22injected')
        self.assertEqual(m.group("request"), "GET /index.html%22x HTTP/1.1")

    def test_non_ascii_user_agent_escaped(self):
        r, line, m = self.one_line(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n"
                                   b"User-Agent: caf\xc3\xa9\r\n\r\n")
        self.assertEqual(m.group("ua").lower(), "caf\\xc3\\xa9")

    def test_bytes_count_for_big_file(self):
        r, line, m = self.one_line(get_request("/big.bin"))
        self.assertEqual(m.group("bytes"), "65536")


class AccessLogWorkers(AccessLogBase):
    server_args = ("--workers", "2")

    def test_concurrent_lines_do_not_interleave(self):
        import threading
        def client(k):
            c = self.server.connect()
            try:
                for i in range(25):
                    c.request("GET", "/pipe/%d.txt?client=%d&i=%d" % (i % 10, k, i),
                              [("User-Agent", "client-%d-" % k + "u" * 200)])
            finally:
                c.close()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        lines = self.wait_lines(100)
        for l in lines:
            self.assertRegex(l, LINE_RE)
        reqs = sorted(LINE_RE.match(l).group("request") for l in lines)
        self.assertEqual(reqs, sorted("GET /pipe/%d.txt?client=%d&i=%d HTTP/1.1" % (i % 10, k, i)
                                      for k in range(4) for i in range(25)))


class AccessLogReopen(AccessLogBase):
    def test_sighup_reopens(self):
        c = self.connect()
        self.assertEqual(c.request("GET", "/pipe/1.txt").status, 200)
        self.wait_lines(1)
        rotated = self.log + ".1"
        os.rename(self.log, rotated)
        self.server.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(self.server.alive(), "server died on SIGHUP")
        c2 = self.connect()
        self.assertEqual(c2.request("GET", "/pipe/2.txt").status, 200)
        new = self.wait_lines(1)
        self.assertIn("GET /pipe/2.txt HTTP/1.1", new[0])
        old = self.wait_lines(1, path=rotated)
        self.assertIn("GET /pipe/1.txt HTTP/1.1", old[0])


class AccessLogReopenOneWorker(AccessLogReopen):
    server_args = ("--workers", "1")


class AccessLogStdout(VerbdTestCase):
    server_args = ("--access-log", "stdout")

    def test_stdout_access_log(self):
        c, r = self.get("/pipe/3.txt")
        self.assertEqual(r.status, 200)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            lines = [l for l in self.server.stdout_text().splitlines() if "GET /pipe/3.txt" in l]
            if lines:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, self.server.stdout_text())
        self.assertRegex(lines[0], LINE_RE)


class AccessLogOff(VerbdTestCase):
    def test_off_writes_nothing_to_stdout(self):
        c, r = self.get("/pipe/4.txt")
        self.assertEqual(r.status, 200)
        time.sleep(0.3)
        self.assertNotIn("/pipe/4.txt", self.server.stdout_text())


if __name__ == "__main__":
    unittest.main()
