"""The status module (docs/config.md, "status"): `location = /status {
status; }` answers GET and HEAD in the Prometheus text exposition format
with requests by server, method and status, refusals (501, 405) by method,
requests by server and protocol (http/1.0, http/1.1, h2), bytes,
connections by state and by protocol, and the modules' own metrics (the proxy's
learnt refusals); counters are kept per worker in shared memory and added
up exactly, and survive a reload."""

import os
import re
import signal
import socket
import threading
import time

import upstream as U
from harness import Conn, build_request, free_port, test_certificate
from test_config import ConfigCase, config_server, read, wait_for

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The text exposition format 0.0.4: comment lines, and samples
# `name{label="value",...} value`.
HELP_RE = re.compile(r"^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")
TYPE_RE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? '
                       r"(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value}, {name: type}; raises
    AssertionError on any line that does not parse, a sample without its
    family's HELP and TYPE before it, or a series given twice."""
    samples, types, helps = {}, {}, set()
    for n, line in enumerate(text.split("\n")):
        if line == "" and n == len(text.split("\n")) - 1:
            continue  # the final newline
        m = HELP_RE.match(line)
        if m:
            assert m.group(1) not in helps, "HELP twice: %r" % line
            helps.add(m.group(1))
            continue
        m = TYPE_RE.match(line)
        if m:
            assert m.group(1) not in types, "TYPE twice: %r" % line
            assert m.group(1) in helps, "TYPE before HELP: %r" % line
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d does not parse: %r" % (n + 1, line)
        name = m.group(1)
        assert name in types and name in helps, "sample before its HELP and TYPE: %r" % line
        labels = frozenset(LABEL_RE.findall(m.group(3) or ""))
        key = (name, labels)
        assert key not in samples, "series twice: %r" % line
        samples[key] = float(m.group(4))
    for name, t in types.items():
        if t == "counter":
            assert name.endswith("_total"), "counter %s without _total" % name
    return samples, types


class Metrics:
    """One scrape: samples by name and labels."""

    def __init__(self, response):
        self.response = response
        self.text = response.body.decode("utf-8")
        self.samples, self.types = parse_exposition(self.text)

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0)

    def series(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}

    def labels_of(self, name, label):
        return {dict(k)[label] for k in self.series(name)}


def config(port, gen=1, workers=2):
    return """workers %(w)d;
access_log off;
error_log error.log info;
server {
    listen 127.0.0.1:%(port)d;
    server_name www.test;
    location / { static www; }
    location /dav/ { webdav dav; }
    location /dav-ro/ { webdav dav; methods GET HEAD OPTIONS PROPFIND; }
}
server {
    listen 127.0.0.1:%(port)d;
    server_name static.test;
    location / { static www; }
}
server {
    listen 127.0.0.1:%(port)d;
    server_name admin.test;
    location = /status { status; header X-Gen %(gen)d; }
}
""" % {"port": port, "gen": gen, "w": workers}


class StatusCase(ConfigCase):
    def setUp(self):
        super().setUp()
        self.write("www/index.html", "hello\n")
        os.makedirs(os.path.join(self.dir, "dav"))
        self.port = free_port()

    def start(self, text=None):
        srv = config_server(self.write("verbd.conf", text or config(self.port))).start()
        self.addCleanup(srv.cleanup)
        self.server = srv
        return srv

    def ask(self, method, target, host, body=b"", headers=None):
        """One request on a connection of its own: (response, bytes sent,
        bytes received)."""
        c = self.server.connect(timeout=10)
        try:
            headers = dict(headers or {})
            if body:
                headers["Content-Length"] = str(len(body))
            data = build_request(method, target, headers=headers, body=body, host=host)
            c.send(data)
            r = c.read_response(method)
            return r, len(data), len(r.raw_head) + len(r.body)
        finally:
            c.close()

    def scrape(self, method="GET"):
        r, _, _ = self.ask(method, "/status", "admin.test")
        self.assertEqual(r.status, 200, r)
        return Metrics(r) if method == "GET" else r

    def states(self):
        """Connections by state, and active, in one scrape."""
        m = self.scrape()
        return ({s: m.get("verbd_connections", state=s) for s in ("reading", "writing", "idle")},
                m.get("verbd_connections_active"))

    def error_log(self):
        return read(os.path.join(self.dir, "error.log")).decode("utf-8", "replace")


class Format(StatusCase):
    def test_exposition_format(self):
        self.start()
        self.ask("GET", "/index.html", "www.test")
        self.ask("PATCH", "/", "static.test")
        m = self.scrape()
        self.assertEqual(m.response.header("Content-Type"), CONTENT_TYPE)
        self.assertEqual(m.response.framing, "length")
        for name, t in (("verbd_requests_total", "counter"), ("verbd_refusals_total", "counter"),
                        ("verbd_received_bytes_total", "counter"),
                        ("verbd_sent_bytes_total", "counter"),
                        ("verbd_connections_accepted_total", "counter"),
                        ("verbd_connections_active", "gauge"), ("verbd_connections", "gauge"),
                        ("verbd_workers", "gauge"),
                        ("verbd_gateway_learnt_refusal_seconds", "gauge")):
            self.assertEqual(m.types.get(name), t, name)
        self.assertEqual(m.get("verbd_workers"), 2)
        self.assertEqual(m.get("verbd_requests_total", server="www.test", method="GET", code="200"), 1)
        # Every family's samples come together, right after its TYPE line.
        seen, current = [], None
        for line in m.text.splitlines():
            if line.startswith("# TYPE "):
                current = line.split()[2]
                seen.append(current)
            elif not line.startswith("#"):
                name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
                self.assertEqual(name, current, line)
        self.assertEqual(len(seen), len(set(seen)))

    def test_head_has_gets_header_fields(self):
        self.start()
        g = self.scrape()
        h = self.scrape("HEAD")
        self.assertEqual(h.body, b"")
        self.assertEqual(h.headers.names(), g.response.headers.names())
        for name in ("Content-Type", "Cache-Control", "X-Gen"):
            self.assertEqual(h.header(name), g.response.header(name), name)
        # The length is the GET's at that moment (the counters moved since).
        self.assertGreater(int(h.header("Content-Length")), 0)

    def test_other_methods_of_the_status_location(self):
        self.start()
        r, _, _ = self.ask("OPTIONS", "/status", "admin.test")
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        # In the admin server nothing implements POST: 501, counted.
        r, _, _ = self.ask("POST", "/status", "admin.test", body=b"x")
        self.assertEqual(r.status, 501)
        m = self.scrape()
        self.assertEqual(m.get("verbd_refusals_total", server="admin.test", method="POST",
                               code="501"), 1)

    def test_status_takes_no_argument(self):
        text = config(self.port).replace("status;", "status /x;")
        errs = self.errors(text)
        self.assertTrue(any(e[3] == "status takes no arguments" for e in errs), errs)


class Counting(StatusCase):
    def test_refusals_by_method(self):
        self.start()
        for _ in range(3):
            self.assertEqual(self.ask("PATCH", "/index.html", "static.test")[0].status, 501)
        self.assertEqual(self.ask("PUT", "/dav-ro/x", "www.test", body=b"x")[0].status, 405)
        self.assertEqual(self.ask("PUT", "/", "www.test", body=b"x")[0].status, 405)
        self.assertEqual(self.ask("PUT", "/dav/x", "www.test", body=b"x")[0].status, 201)
        self.assertEqual(self.ask("BREW", "/", "static.test")[0].status, 501)
        self.assertEqual(self.ask("X-CUSTOM", "/", "www.test")[0].status, 501)
        m = self.scrape()
        refusals = m.series("verbd_refusals_total")
        self.assertEqual(refusals, {
            frozenset({("server", "static.test"), ("method", "PATCH"), ("code", "501")}): 3,
            frozenset({("server", "www.test"), ("method", "PUT"), ("code", "405")}): 2,
            frozenset({("server", "static.test"), ("method", "other"), ("code", "501")}): 1,
            frozenset({("server", "www.test"), ("method", "other"), ("code", "501")}): 1,
        })
        self.assertEqual(m.get("verbd_requests_total", server="static.test", method="PATCH",
                               code="501"), 3)
        self.assertEqual(m.get("verbd_requests_total", server="www.test", method="PUT",
                               code="201"), 1)
        # Unregistered names are `other`, never their own label.
        methods = m.labels_of("verbd_requests_total", "method")
        self.assertNotIn("BREW", methods)
        self.assertNotIn("X-CUSTOM", methods)
        self.assertIn("other", methods)

    def test_sums_over_workers_are_exact(self):
        self.start()
        sent = 0

        def one(results):
            r, _, _ = self.ask("GET", "/index.html", "www.test")
            results.append(r.status)

        # Connections at once, in rounds, until both workers took some.
        for _ in range(20):
            results = []
            threads = [threading.Thread(target=one, args=(results,)) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results, [200] * 16)
            sent += 16
            per_worker = self.scrape().series("verbd_connections_accepted_total")
            if len(per_worker) == 2 and all(v > 0 for v in per_worker.values()):
                break
        self.assertEqual(len(per_worker), 2, per_worker)
        self.assertTrue(all(v > 0 for v in per_worker.values()), per_worker)
        for _ in range(5):  # whichever worker answers, the same sums
            m = self.scrape()
            self.assertEqual(m.get("verbd_requests_total", server="www.test", method="GET",
                                   code="200"), sent)
        self.assertEqual(sum(m.series("verbd_connections_accepted_total").values()),
                         sent + m.get("verbd_requests_total", server="admin.test", method="GET",
                                      code="200") + 1)

    def test_bytes_are_exact(self):
        self.start()
        first = self.scrape()
        rx = tx = 0
        for method, target, host, body in (("GET", "/index.html", "www.test", b""),
                                           ("PUT", "/dav/f", "www.test", b"x" * 5000),
                                           ("PATCH", "/", "static.test", b""),
                                           ("GET", "/nothing", "www.test", b"")):
            _, out, got = self.ask(method, target, host, body)
            rx += out
            tx += got
        scrape = len(build_request("GET", "/status", host="admin.test"))
        # A request's bytes are counted as read, before it is answered; a
        # response's once written, which the worker may get to only after
        # the client read it: later scrapes see them.
        scrapes, answers = 0, len(first.response.raw_head) + len(first.response.body)
        deadline = time.monotonic() + 5
        while True:
            m = self.scrape()
            scrapes += 1
            self.assertEqual(m.get("verbd_received_bytes_total") -
                             first.get("verbd_received_bytes_total"), rx + scrapes * scrape)
            sent = m.get("verbd_sent_bytes_total") - first.get("verbd_sent_bytes_total")
            self.assertLessEqual(sent, tx + answers)
            if sent == tx + answers or time.monotonic() > deadline:
                break
            answers += len(m.response.raw_head) + len(m.response.body)
            time.sleep(0.05)
        self.assertEqual(sent, tx + answers)

    def test_connections_by_state(self):
        self.start()
        idle = self.server.connect(timeout=10)
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/index.html", host="www.test").status, 200)
        reading = self.server.connect(timeout=10)
        self.addCleanup(reading.close)
        reading.send(b"GET /index.html HTTP/1.1\r\nHost: www.test\r\n")
        states = self.states
        # The scrape itself is the one writing.
        want = ({"reading": 1, "writing": 1, "idle": 1}, 3)
        self.assertTrue(wait_for(lambda: states() == want, 5), states())
        reading.send(b"\r\n")
        self.assertEqual(reading.read_response().status, 200)
        idle.close()
        want = ({"reading": 0, "writing": 1, "idle": 1}, 2)
        self.assertTrue(wait_for(lambda: states() == want, 5), states())


class Reload(StatusCase):
    def test_counters_survive_a_reload(self):
        self.start()
        for _ in range(6):
            self.ask("GET", "/index.html", "www.test")
            self.ask("PATCH", "/", "static.test")
        before = self.scrape()
        self.write("verbd.conf", config(self.port, gen=2))
        self.server.signal(signal.SIGHUP)

        def gen2():
            return self.scrape().response.header("X-Gen") == "2"
        self.assertTrue(wait_for(gen2, 5), self.error_log())
        self.assertTrue(all(wait_for(gen2, 2) for _ in range(8)), self.error_log())
        after = self.scrape()
        for key, v in before.samples.items():
            if before.types[key[0]] == "counter":
                self.assertGreaterEqual(after.samples.get(key, 0), v, key)
        self.assertEqual(after.get("verbd_requests_total", server="www.test", method="GET",
                                   code="200"), 6)
        for _ in range(4):
            self.ask("GET", "/index.html", "www.test")
        self.assertEqual(self.scrape().get("verbd_requests_total", server="www.test", method="GET",
                                           code="200"), 10)
        self.assertEqual(self.scrape().get("verbd_refusals_total", server="static.test",
                                           method="PATCH", code="501"), 6)

    def test_a_server_added_by_a_reload_is_counted(self):
        self.start()
        self.ask("GET", "/index.html", "www.test")
        text = config(self.port, gen=2) + ("server {\n    listen 127.0.0.1:%d;\n"
                                           "    server_name new.test;\n"
                                           "    location / { static www; }\n}\n" % self.port)
        self.write("verbd.conf", text)
        self.server.signal(signal.SIGHUP)

        def gen2():
            return self.scrape().response.header("X-Gen") == "2"
        self.assertTrue(wait_for(gen2, 5), self.error_log())
        self.assertTrue(all(wait_for(gen2, 2) for _ in range(8)), self.error_log())
        for _ in range(5):
            self.assertEqual(self.ask("GET", "/index.html", "new.test")[0].status, 200)
        m = self.scrape()
        self.assertEqual(m.get("verbd_requests_total", server="new.test", method="GET", code="200"),
                         5)
        self.assertEqual(m.get("verbd_requests_total", server="www.test", method="GET", code="200"),
                         1)


class ImplicitServer(StatusCase):
    def test_one_worker_and_no_server_blocks(self):
        self.start("workers 1;\naccess_log off;\nlisten 127.0.0.1:%d;\n"
                   "location / { static www; }\nlocation = /status { status; }\n" % self.port)
        for _ in range(3):
            self.ask("DELETE", "/", "localhost")
        m = self.scrape()
        self.assertEqual(m.get("verbd_workers"), 1)
        self.assertEqual(m.get("verbd_refusals_total", server="127.0.0.1:%d" % self.port,
                               method="DELETE", code="501"), 3)


class LearntRefusals(StatusCase):
    def test_the_proxys_learnt_refusals_are_shown(self):
        up = U.Upstream(U.echo())
        up.on("PATCH", None, U.respond(501, [("Content-Type", "text/plain")], b"no\n"))
        up.start()
        self.addCleanup(up.stop)
        self.start("workers 2;\naccess_log off;\nlisten 127.0.0.1:%d;\n"
                   "location /api/ { proxy %s/; }\nlocation = /status { status; }\n"
                   % (self.port, up.url))
        before = self.scrape().series("verbd_gateway_learnt_refusal_seconds")
        self.assertEqual(before, {})
        self.assertEqual(self.ask("PATCH", "/api/x", "localhost")[0].status, 501)
        m = self.scrape()
        learnt = m.series("verbd_gateway_learnt_refusal_seconds")
        self.assertEqual(len(learnt), 1, learnt)
        (labels, seconds), = learnt.items()
        self.assertEqual(dict(labels)["method"], "PATCH")
        self.assertTrue(0 < seconds <= 600, seconds)
        # The answers verbd gives itself from now on count as refusals.
        self.assertEqual(self.ask("PATCH", "/api/y", "localhost")[0].status, 501)
        m = self.scrape()
        self.assertEqual(m.get("verbd_refusals_total", server="127.0.0.1:%d" % self.port,
                               method="PATCH", code="501"), 2)

    def test_405s_without_allow_are_counted(self):
        up = U.Upstream(U.echo())
        up.on("DELETE", None, U.refuse_405(send_allow=False))
        up.on("PUT", None, U.refuse_405(allow="GET"))
        up.start()
        self.addCleanup(up.stop)
        self.start("workers 2;\naccess_log off;\nlisten 127.0.0.1:%d;\n"
                   "location /api/ { proxy %s/; }\nlocation = /status { status; }\n"
                   % (self.port, up.url))
        self.assertEqual(self.scrape().series("verbd_gateway_405_without_allow_total"), {})
        for _ in range(3):
            self.assertEqual(self.ask("DELETE", "/api/x", "localhost")[0].status, 405)
        self.assertEqual(self.ask("PUT", "/api/x", "localhost")[0].status, 405)
        m = self.scrape()
        self.assertEqual(m.types.get("verbd_gateway_405_without_allow_total"), "counter")
        counted = m.series("verbd_gateway_405_without_allow_total")
        self.assertEqual(list(counted.values()), [3], counted)


class ByProtocol(StatusCase):
    """Requests by server and protocol, connections by protocol: exact
    sums over two workers, HTTP/1.0, HTTP/1.1, h2c and h2 (TLS) mixed."""

    def test_requests_and_connections_by_protocol(self):
        from test_http2 import H2Client
        cert, key = test_certificate()
        tls_port = free_port()
        self.start("workers 2;\naccess_log off;\n"
                   "server {\n    listen 127.0.0.1:%(p)d;\n    listen 127.0.0.1:%(t)d tls;\n"
                   "    tls_certificate %(c)s;\n    tls_certificate_key %(k)s;\n"
                   "    server_name www.test;\n    location / { static www; }\n}\n"
                   "server {\n    listen 127.0.0.1:%(p)d;\n    server_name admin.test;\n"
                   "    location = /status { status; }\n}\n"
                   % {"p": self.port, "t": tls_port, "c": cert, "k": key})
        results = []

        def h1(version, tls):
            c = Conn("127.0.0.1", tls_port if tls else self.port, timeout=10, tls=tls)
            try:
                c.send(build_request("GET", "/index.html", version=version, host="www.test"))
                results.append(c.read_response("GET").status)
            finally:
                c.close()

        def h2(tls, streams=3):
            c = H2Client("127.0.0.1", tls_port if tls else self.port, tls=tls)
            try:
                for _ in range(streams):
                    results.append(c.request("GET", "/index.html", authority="www.test").status)
            finally:
                c.close()

        kinds = ([(h1, ("HTTP/1.1", False))] * 4 + [(h1, ("HTTP/1.0", False))] * 2 +
                 [(h1, ("HTTP/1.1", True))] + [(h2, (False,))] * 4 + [(h2, (True,))] * 2)
        scrapes = rounds = 0
        while rounds < 20:
            rounds += 1
            threads = [threading.Thread(target=f, args=a) for f, a in kinds]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            per_worker = self.scrape().series("verbd_connections_accepted_total")
            scrapes += 1
            if len(per_worker) == 2 and all(v > 0 for v in per_worker.values()):
                break
        self.assertTrue(all(v > 0 for v in per_worker.values()), per_worker)
        self.assertEqual(results, [200] * len(results))
        self.assertEqual(len(results), rounds * (7 + 6 * 3))
        for _ in range(3):  # whichever worker answers, the same sums
            m = self.scrape()
            scrapes += 1
            by = m.series("verbd_protocol_requests_total")
            self.assertEqual(by, {
                frozenset({("server", "www.test"), ("protocol", "http/1.1")}): rounds * 5,
                frozenset({("server", "www.test"), ("protocol", "http/1.0")}): rounds * 2,
                frozenset({("server", "www.test"), ("protocol", "h2")}): rounds * 18,
                # This scrape is counted once it is answered.
                frozenset({("server", "admin.test"), ("protocol", "http/1.1")}): scrapes - 1,
            })
            # Every response is counted once by protocol and once by method.
            self.assertEqual(sum(v for k, v in m.series("verbd_requests_total").items()
                                 if ("server", "www.test") in k), rounds * 25)
            self.assertEqual(m.get("verbd_protocol_connections_total", protocol="http/1.1"),
                             rounds * 7 + scrapes)
            self.assertEqual(m.get("verbd_protocol_connections_total", protocol="h2"), rounds * 6)
            # An h2c connection is accepted once, not again by the HTTP/2
            # session the HTTP/1 session hands it to.
            self.assertEqual(sum(m.series("verbd_connections_accepted_total").values()),
                             rounds * 13 + scrapes)

    def test_h2c_bytes_are_counted_once(self):
        from test_http2 import H2Client
        self.start()
        first = self.scrape()
        sent = []

        class Counting(H2Client):
            def flush(self):
                data = self.conn.data_to_send()
                if data:
                    sent.append(len(data))
                    self.sock.sendall(data)
        c = Counting("127.0.0.1", self.port)
        for _ in range(3):
            self.assertEqual(c.request("GET", "/index.html", authority="www.test").status, 200)
        c.close()
        scrape = len(build_request("GET", "/status", host="admin.test"))
        # What the HTTP/1 session read before it saw the preface is the
        # HTTP/2 session's input too, but bytes received only once.
        scrapes = 0
        deadline = time.monotonic() + 5
        while True:
            m = self.scrape()
            scrapes += 1
            rx = m.get("verbd_received_bytes_total") - first.get("verbd_received_bytes_total")
            if rx == sum(sent) + scrapes * scrape or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(rx, sum(sent) + scrapes * scrape)

    def test_h2c_connection_gauges(self):
        from test_http2 import H2Client
        self.start()
        c = H2Client("127.0.0.1", self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/index.html", authority="www.test").status, 200)
        states = self.states
        # The h2c connection is idle once (not also as the HTTP/1 session
        # that saw its preface); the scrape is the one writing.
        want = ({"reading": 0, "writing": 1, "idle": 1}, 2)
        self.assertTrue(wait_for(lambda: states() == want, 5), states())
        c.close()
        want = ({"reading": 0, "writing": 1, "idle": 0}, 1)
        self.assertTrue(wait_for(lambda: states() == want, 5), states())


if __name__ == "__main__":
    import unittest
    unittest.main()
