"""The reverse proxy (docs/proxy.md): verbd in front of a scriptable
upstream (upstream.py).  Method semantics across the gateway (every method
forwarded, narrowing, learnt refusals, OPTIONS and Allow, Max-Forwards),
what is forwarded (target, hop-by-hop fields, Via and Forwarded), bodies
streamed both ways, 100-continue, keep-alive reuse, timeouts, and the
hostile-response corpus: nothing invalid reaches the client, nothing
poisons a kept connection."""

import hashlib
import os
import socket
import subprocess
import struct
import time

import hostile_responses as hostile
import upstream as U
from harness import build_request, test_certificate
from test_config import ConfigCase, config_server


class ProxyCase(ConfigCase):
    HEAD = "access_log off;\nworkers 1;\n"

    def setUp(self):
        super().setUp()
        self.write("www/index.html", "static\n")
        self.up = U.Upstream(U.echo())
        self.up.start()
        self.addCleanup(self.up.stop)

    def start(self, locations, head=None):
        text = (head or self.HEAD) + "listen 127.0.0.1:0;\nlocation / { static www; methods GET; }\n"
        srv = config_server(self.write("verbd.conf", text + locations)).start()
        self.addCleanup(srv.cleanup)
        return srv

    def proxy(self, extra="", prefix="/api/", to="/v1/", head=None):
        return self.start("location %s { proxy %s%s; %s }\n" % (prefix, self.up.url, to, extra),
                          head=head)

    def ask(self, srv, method, target, headers=None, body=b"", conn=None):
        c = conn or srv.connect(timeout=10)
        if conn is None:
            self.addCleanup(c.close)
        headers = dict(headers or {})
        if body and "Transfer-Encoding" not in headers:
            headers["Content-Length"] = str(len(body))
        c.send(build_request(method, target, headers=headers, body=body))
        return c.read_response(method)

    def echoed(self, r):
        self.assertEqual(r.status, 200, r)
        return U.parse_echo(r.body)


class Methods(ProxyCase):
    def test_every_method_is_forwarded(self):
        srv = self.proxy()
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "PROPFIND", "BREW", "X-CUSTOM"):
            d = self.echoed(self.ask(srv, m, "/api/x"))
            self.assertEqual(d["method"], m)
        # Elsewhere they are 405 with the location's Allow, not 501.
        r = self.ask(srv, "BREW", "/x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        # CONNECT is not forwarded (verbd is no forward proxy), nor TRACE.
        self.assertEqual(self.ask(srv, "TRACE", "/api/x").status, 501)
        self.assertEqual(self.up.count("TRACE"), 0)

    def test_narrowed_gateway_narrows_the_server(self):
        srv = self.proxy(extra="methods GET POST;")
        self.assertEqual(self.ask(srv, "POST", "/api/x").status, 200)
        r = self.ask(srv, "PUT", "/api/x")
        self.assertEqual(r.status, 501)
        self.assertEqual(self.ask(srv, "BREW", "/api/x").status, 501)
        self.assertEqual(self.ask(srv, "POST", "/x").status, 405)
        self.assertEqual(self.up.count("PUT") + self.up.count("BREW"), 0)

    def test_upstream_501_is_learnt(self):
        self.up.on("PATCH", None, U.respond(501, [("Content-Type", "text/plain")], b"no\n"))
        srv = self.proxy()
        self.assertEqual(self.ask(srv, "PATCH", "/api/x").status, 501)
        self.assertEqual(self.up.count("PATCH"), 1)
        accepted = self.up.accepted
        # Decided by verbd now: no upstream request, no new connection.
        for target in ("/api/x", "/api/y"):
            r = self.ask(srv, "PATCH", target)
            self.assertEqual(r.status, 501)
        self.assertEqual(self.up.count("PATCH"), 1)
        self.assertEqual(self.up.accepted, accepted)
        allow = self.ask(srv, "OPTIONS", "*").header("Allow").split(", ")
        self.assertNotIn("PATCH", allow)
        self.assertIn("PUT", allow)

    def test_learnt_refusal_is_405_where_another_location_implements_it(self):
        other = U.Upstream(U.echo())
        other.start()
        self.addCleanup(other.stop)
        self.up.on("PATCH", None, U.respond(501))
        srv = self.start("location /api/ { proxy %s/; }\nlocation /other/ { proxy %s/; }\n"
                         % (self.up.url, other.url))
        self.assertEqual(self.ask(srv, "PATCH", "/api/x").status, 501)
        r = self.ask(srv, "PATCH", "/api/x")
        self.assertEqual(r.status, 405)
        self.assertNotIn("PATCH", r.header("Allow").split(", "))
        self.assertEqual(self.ask(srv, "PATCH", "/other/x").status, 200)

    def test_freshness_of_a_learnt_refusal(self):
        self.up.on("PATCH", None, U.respond(501, [("Cache-Control", "max-age=1")]))
        srv = self.proxy()
        self.ask(srv, "PATCH", "/api/x")
        self.ask(srv, "PATCH", "/api/x")
        self.assertEqual(self.up.count("PATCH"), 1)
        time.sleep(1.3)
        self.ask(srv, "PATCH", "/api/x")
        self.assertEqual(self.up.count("PATCH"), 2)

    def test_what_is_never_learnt(self):
        self.up.on("GET", None, U.respond(501))
        self.up.on("POST", None, U.respond(501, [("Cache-Control", "no-store")]))
        self.up.on("PUT", None, U.respond(501))
        srv = self.proxy()
        for _ in range(2):
            self.ask(srv, "GET", "/api/x")                      # GET: never
            self.ask(srv, "POST", "/api/x")                     # no-store
            self.ask(srv, "PUT", "/api/x", headers={"Transfer-Encoding": "chunked"},
                     body=b"3\r\nabc\r\n0\r\n\r\n")              # a transfer coding
        self.assertEqual(self.up.count("GET"), 2)
        self.assertEqual(self.up.count("POST"), 2)
        self.assertEqual(self.up.count("PUT"), 2)

    def test_learning_off(self):
        self.up.on("PATCH", None, U.respond(501))
        srv = self.proxy(extra="proxy_learn off;")
        self.ask(srv, "PATCH", "/api/x")
        self.ask(srv, "PATCH", "/api/x")
        self.assertEqual(self.up.count("PATCH"), 2)

    def test_options_forwarded_and_allow_cut_down(self):
        self.up.on("OPTIONS", None, U.respond(204, [("Allow", "GET, PUT, TRACE, CONNECT, BREW")]))
        self.up.on("PUT", None, U.refuse_405(allow="GET, PUT, TRACE, CONNECT"))
        srv = self.proxy(extra="methods GET POST PUT;")
        r = self.ask(srv, "OPTIONS", "/api/x")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, PUT")
        r = self.ask(srv, "PUT", "/api/x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, PUT")

    def test_client_that_closes_aborts_the_upstream_request(self):
        # The client gives up while the upstream is slow: verbd gives the
        # request up too (nginx's proxy_ignore_client_abort off), closing
        # its upstream connection instead of waiting for the answer.
        self.up.on("GET", "/v1/slow", U.stall(3))
        srv = self.proxy(head=self.HEAD + "log_level info;\n")
        c = srv.connect(timeout=10)
        c.send(build_request("GET", "/api/slow"))
        self.up.wait_requests(1)
        c.close()
        self.up.wait_for(lambda: "the request is given up" in srv.stderr_text(), 2,
                         "verbd to give the request up")

    def test_max_forwards(self):
        srv = self.proxy()
        r = self.ask(srv, "OPTIONS", "/api/x", headers={"Max-Forwards": "0"})
        self.assertEqual(r.status, 204)
        self.assertEqual(self.up.count("OPTIONS"), 0)
        d = self.echoed(self.ask(srv, "OPTIONS", "/api/x", headers={"Max-Forwards": "5"}))
        self.assertEqual(d["headers"].get("Max-Forwards"), "4")

    def test_405_without_allow_is_passed_on_and_logged(self):
        err = os.path.join(self.dir, "error.log")
        self.up.on("DELETE", None, U.refuse_405(send_allow=False))
        srv = self.proxy(head=self.HEAD + "error_log %s;\n" % err)
        self.assertEqual(self.ask(srv, "DELETE", "/api/x").status, 405)
        srv.stop()
        with open(err) as f:
            self.assertIn("405 without Allow", f.read())
        self.assertEqual(self.up.count("OPTIONS"), 0)  # nobody asked to fix it

    def test_options_star_narrows_only_when_asked(self):
        self.up.on("OPTIONS", "*", U.options_star("GET, HEAD, POST, OPTIONS"))
        srv = self.proxy()
        self.echoed(self.ask(srv, "PUT", "/api/x"))
        self.assertEqual(self.up.count("OPTIONS"), 0)

    def test_learn_options_narrows_the_mapping(self):
        allow = ["GET, HEAD, POST, OPTIONS"]
        self.up.on("OPTIONS", "*", lambda ex: U.options_star(allow[0])(ex))
        srv = self.proxy(extra="proxy_learn_options 1s;",
                         head="access_log off;\nworkers 2;\n")
        self.up.wait_for(lambda: self.up.count("OPTIONS") >= 1, what="OPTIONS * at start")
        time.sleep(0.2)
        # One worker asks for all.
        self.assertEqual(self.up.count("OPTIONS"), 1)
        self.assertEqual(self.up.requests[0].target, "*")
        for _ in range(4):  # on both workers
            r = self.ask(srv, "PUT", "/api/x")
            self.assertEqual(r.status, 501)
            self.assertEqual(self.ask(srv, "BREW", "/api/x").status, 501)
        self.assertEqual(self.up.count("PUT") + self.up.count("BREW"), 0)
        r = self.ask(srv, "OPTIONS", "*")
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")
        self.echoed(self.ask(srv, "POST", "/api/x"))
        # The next answer widens it again.
        allow[0] = "GET, HEAD, POST, PUT, OPTIONS"
        deadline = time.monotonic() + 5
        while self.ask(srv, "PUT", "/api/x").status != 200:
            self.assertLess(time.monotonic(), deadline, "PUT never forwarded")
            time.sleep(0.2)

    def test_fix_allow_asks_options_once(self):
        self.up.on("OPTIONS", "/v1/r", U.respond(200, [("Allow", "GET, HEAD, PUT, BREW, CONNECT")]))
        self.up.on("DELETE", None, U.refuse_405(send_allow=False))
        srv = self.proxy(extra="methods GET HEAD PUT DELETE; proxy_fix_allow on;")
        for _ in range(3):
            r = self.ask(srv, "DELETE", "/api/r")
            self.assertEqual((r.status, r.body), (405, b"method not allowed\n"))
            self.assertEqual(r.header("Allow"), "GET, HEAD, PUT")
        # One OPTIONS for the resource, remembered for proxy_learn.
        self.assertEqual(self.up.count("OPTIONS"), 1)
        self.assertEqual(self.up.requests[1].target, "/v1/r")
        # Without an answer to OPTIONS, the 405 goes on as it came.
        self.up.on("OPTIONS", "/v1/other", U.respond(404))
        r = self.ask(srv, "DELETE", "/api/other")
        self.assertEqual((r.status, r.header("Allow")), (405, None))


class Forwarding(ProxyCase):
    def test_via_names_the_protocol_received(self):
        srv = self.proxy()
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-H", "Via: 1.1 edge",
                            "http://127.0.0.1:%d/api/x" % srv.port],
                           capture_output=True, timeout=30)
        d = U.parse_echo(p.stdout)
        self.assertEqual(d["headers"].get("Via"), "1.1 edge, 2 verbd")
        d = self.echoed(self.ask(srv, "GET", "/api/x"))
        self.assertEqual(d["headers"].get("Via"), "1.1 verbd")

    def test_target_and_fields(self):
        srv = self.proxy()
        r = self.ask(srv, "GET", "/api/a%20b/c?q=1&r", headers={
            "Connection": "X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=5", "TE": "trailers",
            "X-Forwarded-For": "10.0.0.9", "Via": "1.0 edge", "X-Other": "kept"})
        d = self.echoed(r)
        self.assertEqual(d["target"], "/v1/a%20b/c?q=1&r")
        h = d["headers"]
        for gone in ("X-Secret", "Keep-Alive", "TE", "Connection"):
            self.assertIsNone(h.get(gone), gone)
        self.assertEqual(h.get("X-Other"), "kept")
        self.assertEqual(h.get("Host"), "localhost")
        self.assertEqual(h.get("Via"), "1.0 edge, 1.1 verbd")
        self.assertEqual(h.get("X-Forwarded-For"), "10.0.0.9, 127.0.0.1")
        self.assertEqual(h.get("X-Forwarded-Proto"), "http")
        self.assertEqual(h.get("X-Forwarded-Host"), "localhost")
        self.assertEqual(h.get("Forwarded"), 'for=127.0.0.1;proto=http;host="localhost"')
        # Response: the upstream's Server is verbd's; hop-by-hop dropped.
        self.assertEqual(r.header("Server"), "verbd")

    def test_dot_segments_are_forwarded_normalised(self):
        srv = self.proxy()
        d = self.echoed(self.ask(srv, "GET", "/api/a/../b"))
        self.assertEqual(d["target"], "/v1/b")

    def test_set_and_hide_headers(self):
        self.up.on(None, "/v1/h", U.respond(200, [("X-Internal", "1"), ("X-Public", "2")], b"x"))
        srv = self.proxy(extra="proxy_set_header Host app.internal; proxy_set_header "
                               "X-Forwarded-Host \"\"; proxy_hide_header X-Internal;")
        d = self.echoed(self.ask(srv, "GET", "/api/x"))
        self.assertEqual(d["headers"].get("Host"), "app.internal")
        self.assertIsNone(d["headers"].get("X-Forwarded-Host"))
        r = self.ask(srv, "GET", "/api/h")
        self.assertIsNone(r.header("X-Internal"))
        self.assertEqual(r.header("X-Public"), "2")

    def test_head_mirrors_get(self):
        self.up.on(None, "/v1/f", U.respond(200, [("Content-Type", "text/plain")], b"x" * 1234))
        srv = self.proxy()
        g = self.ask(srv, "GET", "/api/f")
        h = self.ask(srv, "HEAD", "/api/f")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.header("Content-Length"), "1234")
        self.assertEqual(g.header("Content-Type"), h.header("Content-Type"))

    def test_large_bodies_stream_both_ways(self):
        self.up.on(None, "/v1/down", U.download(8 << 20, chunked=True))
        srv = self.proxy()
        r = self.ask(srv, "GET", "/api/down")
        self.assertEqual(len(r.body), 8 << 20)
        self.assertEqual(r.body, U.pattern(0, 8 << 20))
        body = os.urandom(3 << 20)
        d = self.echoed(self.ask(srv, "PUT", "/api/up", body=body))
        self.assertEqual(d["body_length"], len(body))
        req = [q for q in self.up.requests if q.method == "PUT"][0]
        self.assertEqual(req.digest(), hashlib.sha256(body).hexdigest())
        d = self.echoed(self.ask(srv, "POST", "/api/up", headers={"Transfer-Encoding": "chunked"},
                                 body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
        self.assertTrue(d["chunked"])
        self.assertEqual(d["body"], b"hello world")

    def test_request_trailers_passed_on(self):
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        # Sent in pieces, so that the trailer section spans reads.
        c.send(b"POST /api/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               b"Trailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Check")
        time.sleep(0.1)
        c.send(b"sum: abc\r\nConnection: X-Secret\r\nX-Secret: 1\r\nServer-Timing: a;dur=1\r\n\r\n")
        d = self.echoed(c.read_response("POST"))
        self.assertEqual(d["body"], b"hello")
        self.assertEqual(list(d["trailers"]), [("X-Checksum", "abc"), ("Server-Timing", "a;dur=1")])
        # A body without trailer fields ends as it began.
        d = self.echoed(self.ask(srv, "POST", "/api/up", headers={"Transfer-Encoding": "chunked"},
                                 body=b"2\r\nhi\r\n0\r\n\r\n", conn=c))
        self.assertEqual(list(d["trailers"]), [])

    def test_keep_alive_connection_reused(self):
        srv = self.proxy()
        for _ in range(5):
            self.echoed(self.ask(srv, "GET", "/api/x"))
        self.assertEqual(self.up.accepted, 1)
        self.up.assert_clean()

    def test_kept_connection_closed_by_the_upstream_is_dropped(self):
        """An upstream that closes a kept connection after a while (without
        Connection: close): verbd notices while it is kept, so even a POST,
        which is never retried, goes out on a new one."""
        def respond_then_close(ex):
            ex.drain()
            ex.respond(200, [("Content-Type", "text/plain")], b"ok")
            ex.sleep(0.1)
            ex.close()
        self.up.on(None, None, respond_then_close)
        srv = self.proxy()
        for method in ("GET", "POST", "POST"):
            r = self.ask(srv, method, "/api/x", body=b"data" if method == "POST" else b"")
            self.assertEqual((r.status, r.body), (200, b"ok"))
            time.sleep(0.4)
        self.assertEqual(self.up.accepted, 3)

    def test_idempotent_request_lost_on_a_kept_connection_is_sent_again(self):
        """A kept connection that the upstream closes on receiving the next
        request: a GET, and a PUT whose whole body verbd still holds, go
        again on a new connection (RFC 9110 §9.2.2); a POST, or a PUT whose
        body verbd no longer holds whole, is a 502."""
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        self.echoed(self.ask(srv, "GET", "/api/warm", conn=c))
        self.assertEqual(self.up.accepted, 1)
        cases = [("GET", b"", 200, 2), ("PUT", b"x" * 1000, 200, 2), ("POST", b"y" * 1000, 502, 1),
                 ("PUT", os.urandom(200 * 1024), 502, 1)]
        for method, body, status, tries in cases:
            before = (self.up.accepted, self.up.count(method))
            self.up.queue(U.close_without_answer())
            r = self.ask(srv, method, "/api/again", body=body, conn=c)
            self.assertEqual(r.status, status, (method, len(body)))
            if status == 200:
                self.assertEqual(self.echoed(r)["body"], body)
            self.assertEqual(self.up.count(method) - before[1], tries, (method, len(body)))
            # The next request starts from a kept connection again.
            self.echoed(self.ask(srv, "GET", "/api/warm", conn=c))

    def test_trailers_passed_on(self):
        self.up.on(None, "/v1/t", U.respond(200, [("Content-Type", "text/plain")], b"body",
                                            chunked=True,
                                            trailers=[("X-Checksum", "abc"), ("Server-Timing", "db;dur=5")]))
        self.assert_trailers_passed_on()

    def test_trailers_passed_on_when_the_response_arrives_whole(self):
        """Head, body and trailer section in one write: the body's length
        is known before the head goes out, but the trailers still need a
        chunked body."""
        def whole(ex):
            ex.drain()
            ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum, Server-Timing\r\n\r\n"
                    b"4\r\nbody\r\n0\r\nX-Checksum: abc\r\nServer-Timing: db;dur=5\r\n\r\n")
        self.up.on(None, "/v1/t", whole)
        self.assert_trailers_passed_on()

    def assert_trailers_passed_on(self):
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/api/t", headers={"TE": "trailers"}))
        raw = b""
        deadline = time.monotonic() + 5
        while not raw.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in raw:
            self.assertLess(time.monotonic(), deadline, raw)
            c._fill(timeout=5)
            raw, c.buf = raw + c.buf, b""
        tail = raw.split(b"\r\n0\r\n", 1)[1]
        self.assertIn(b"X-Checksum: abc\r\n", tail)
        self.assertIn(b"Server-Timing: db;dur=5\r\n", tail)
        self.assertIn(b"body", raw)

    def test_unix_socket_upstream(self):
        up = U.Upstream(U.echo(), unix=True)
        up.start()
        self.addCleanup(up.stop)
        srv = self.start("location /u/ { proxy %s:/; }\n" % up.url)
        d = self.echoed(self.ask(srv, "GET", "/u/x"))
        self.assertEqual(d["target"], "/x")

    def test_destination_rewritten_under_another_prefix(self):
        srv = self.proxy()
        d = self.echoed(self.ask(srv, "COPY", "/api/a", headers={
            "Destination": "http://localhost/api/b"}))
        self.assertEqual(d["headers"].get("Destination"), "http://localhost/v1/b")
        self.up.on(None, "/v1/coll", U.respond(301, [("Location", "/v1/coll/")]))
        r = self.ask(srv, "GET", "/api/coll")
        self.assertEqual(r.header("Location"), "/api/coll/")

    def test_expect_continue_relayed(self):
        self.up.on("PUT", None, U.continue_then())
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/api/x", headers={"Expect": "100-continue",
                                                      "Content-Length": "5"}))
        r = c.read_response("PUT")
        self.assertEqual(r.status, 100)
        c.send(b"hello")
        r = c.read_response("PUT")
        self.assertEqual(self.echoed(r)["body"], b"hello")

    def test_early_hints_relayed_to_http11_clients(self):
        self.up.on(None, "/v1/hints", U.early_hints(count=2))
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/api/hints"))
        for _ in range(2):
            r = c.read_response("GET")
            self.assertEqual(r.status, 103)
            self.assertIn("preload", r.header("Link"))
        r = c.read_response("GET")
        self.assertEqual((r.status, r.body), (200, b"hinted\n"))
        # HTTP/1.0 cannot take a 1xx: only the final answer.
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/api/hints", version="HTTP/1.0"))
        self.assertEqual(c.read_response("GET").status, 200)

    def test_final_answer_without_continue_gets_no_body(self):
        self.up.on("PUT", None, U.final_without_continue(417))
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("PUT", "/api/x", headers={"Expect": "100-continue",
                                                      "Content-Length": "5"}))
        r = c.read_response("PUT")
        self.assertEqual(r.status, 417)
        req = [q for q in self.up.requests if q.method == "PUT"][0]
        self.assertEqual(req.body_length, 0)


class Upgrades(ProxyCase):
    """Upgrade (RFC 9110 §7.8) through the gateway: the 101 relayed, then
    one tunnel between client and upstream (a WebSocket echo here)."""
    KEY = "dGhlIHNhbXBsZSBub25jZQ=="

    def handshake(self, srv, path="/api/ws", extra=b""):
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: public.test\r\nUpgrade: websocket\r\n"
               b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + self.KEY.encode() +
               b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n")
        return c, c.read_response()

    def test_websocket_echo_round_trip(self):
        self.up.on(None, "/v1/ws", U.websocket_echo(protocol="chat"))
        srv = self.proxy()
        c, r = self.handshake(srv)
        self.assertEqual(r.status, 101)
        self.assertEqual(r.header("Upgrade"), "websocket")
        self.assertEqual(r.header("Connection"), "upgrade")
        self.assertEqual(r.header("Sec-WebSocket-Accept"), U.ws_accept(self.KEY))
        self.assertEqual(r.header("Sec-WebSocket-Protocol"), "chat")
        self.assertIsNone(r.header("Content-Length"))
        self.assertIsNone(r.header("Transfer-Encoding"))
        c.send(U.ws_frame(1, "hello"))
        self.assertEqual(U.ws_read_frame(c), (True, 1, False, b"hello"))
        # A message larger than any buffer on the way, in two frames.
        big = os.urandom(300 * 1024)
        c.send(U.ws_frame(2, big[:1000], fin=False) + U.ws_frame(0, big[1000:]))
        self.assertEqual(U.ws_read_frame(c), (True, 2, False, big))
        c.send(U.ws_frame(9, b"p"))
        self.assertEqual(U.ws_read_frame(c), (True, 10, False, b"p"))
        c.send(U.ws_frame(8, struct.pack("!H", 1000)))
        self.assertEqual(U.ws_read_frame(c), (True, 8, False, struct.pack("!H", 1000)))
        # The upstream closed: so does verbd.
        self.assertTrue(c.is_closed(5))
        req = self.up.requests[0]
        self.assertEqual(req.header("Upgrade"), "websocket")
        self.assertIn("upgrade", req.connection_tokens())
        self.assertNotIn("keep-alive", req.connection_tokens())
        self.assertEqual([op for op, _ in req.ws_messages], [1, 2, 9, 8])
        self.up.assert_clean()

    def test_websocket_over_tls(self):
        """The tunnel over a TLS listener: the client's side of it goes
        through the TLS transport's reads and writes."""
        cert, key = test_certificate()
        self.up.on(None, "/v1/ws", U.websocket_echo())
        text = (self.HEAD + "listen 127.0.0.1:0 tls;\ntls_certificate %s;\ntls_certificate_key %s;\n"
                "location /api/ { proxy %s/v1/; }\n" % (cert, key, self.up.url))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        self.assertTrue(srv.tls)
        c, r = self.handshake(srv)
        self.assertEqual(r.status, 101)
        self.assertEqual(r.header("Sec-WebSocket-Accept"), U.ws_accept(self.KEY))
        c.send(U.ws_frame(1, "hello over tls"))
        self.assertEqual(U.ws_read_frame(c), (True, 1, False, b"hello over tls"))
        big = os.urandom(200 * 1024)
        c.send(U.ws_frame(2, big))
        self.assertEqual(U.ws_read_frame(c), (True, 2, False, big))
        c.send(U.ws_frame(8, struct.pack("!H", 1000)))
        self.assertEqual(U.ws_read_frame(c), (True, 8, False, struct.pack("!H", 1000)))
        self.assertTrue(c.is_closed(5))
        self.up.assert_clean()

    def test_upgrade_refused_by_the_upstream_is_an_ordinary_answer(self):
        self.up.on(None, "/v1/ws", U.respond(426, [("Content-Type", "text/plain")], b"no\n"))
        srv = self.proxy()
        c, r = self.handshake(srv)
        self.assertEqual((r.status, r.body), (426, b"no\n"))
        # The client's connection is still HTTP: the next request works.
        c.send(build_request("GET", "/index.html"))
        self.assertEqual(c.read_response().body, b"static\n")

    def test_upgrade_not_asked_for_is_not_asked_of_the_upstream(self):
        # Upgrade without "upgrade" in Connection: not a request to switch.
        srv = self.proxy()
        d = self.echoed(self.ask(srv, "GET", "/api/x", headers={"Upgrade": "websocket"}))
        self.assertNotIn("Upgrade", d["headers"])
        # And a 101 to a request that did not ask is a 502.
        self.up.on(None, "/v1/sw", U.websocket_echo())
        r = self.ask(srv, "GET", "/api/sw", headers={
            "Upgrade": "websocket", "Sec-WebSocket-Key": self.KEY, "Sec-WebSocket-Version": "13"})
        self.assertEqual(r.status, 400)  # the upstream saw no Connection: upgrade

    def test_client_close_is_passed_on(self):
        ended = []

        def echo_until_eof(ex):
            ex.drain()
            ex.send_head(101, [("Upgrade", "raw"), ("Connection", "Upgrade")])
            ex.tunnel = True
            got = b""
            while ex.wire.fill() > 0:
                got += ex.wire.buf
                ex.send(ex.wire.buf)
                ex.wire.buf = b""
            ended.append(got)
            ex.send(b"end")
            ex.close()
        self.up.on(None, "/v1/raw", echo_until_eof)
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(b"GET /api/raw HTTP/1.1\r\nHost: a\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 101)
        c.send(b"ping")
        c._need(4, "the echo")
        self.assertEqual(c.buf[:4], b"ping")
        c.sock.shutdown(2 - 1)  # SHUT_WR: the client is done sending
        self.up.wait_for(lambda: ended, what="the upstream to see the client's end")
        self.assertEqual(ended, [b"ping"])
        data = c.buf[4:]
        while not c.is_closed(0.1):
            data += c.buf
            c.buf = b""
        self.assertTrue(data.endswith(b"end") or (data + c.buf).endswith(b"end"), data)

    def test_idle_tunnel_times_out(self):
        self.up.on(None, "/v1/ws", U.websocket_echo())
        srv = self.proxy(extra="proxy_read_timeout 1s;")
        c, r = self.handshake(srv)
        self.assertEqual(r.status, 101)
        c.send(U.ws_frame(1, "hi"))
        self.assertEqual(U.ws_read_frame(c), (True, 1, False, b"hi"))
        start = time.monotonic()
        self.assertTrue(c.is_closed(5))
        self.assertGreater(time.monotonic() - start, 0.5)

    def test_upgrade_with_a_body_is_not_forwarded_as_one(self):
        srv = self.proxy()
        d = self.echoed(self.ask(srv, "POST", "/api/x", body=b"data", headers={
            "Upgrade": "websocket", "Connection": "upgrade"}))
        self.assertNotIn("Upgrade", d["headers"])
        self.assertEqual(d["body"], b"data")


class Failures(ProxyCase):
    def test_refused_upstream_is_502(self):
        self.up.stop()
        srv = self.proxy()
        r = self.ask(srv, "GET", "/api/x")
        self.assertEqual(r.status, 502)
        self.assertIn(self.up.server.encode(), r.body)

    def test_stalled_upstream_is_504(self):
        self.up.on(None, "/v1/slow", U.stall(5))
        srv = self.proxy(extra="proxy_read_timeout 1s;")
        start = time.monotonic()
        r = self.ask(srv, "GET", "/api/slow")
        self.assertEqual(r.status, 504)
        self.assertLess(time.monotonic() - start, 4)

    def test_body_cut_short_aborts_the_client(self):
        self.up.on(None, "/v1/cut", U.reset_mid_body(total=100000, after=1000))
        srv = self.proxy()
        c = srv.connect(timeout=10)
        self.addCleanup(c.close)
        c.send(build_request("GET", "/api/cut"))
        with self.assertRaises(Exception):
            c.read_response("GET")

    def test_hostile_responses(self):
        for case in hostile.CASES:
            with self.subTest(case=case.name):
                up = U.Upstream(U.raw(case.raw, then=case.then))
                up.start()
                try:
                    # A response that never ends holds its exchange until the
                    # read timeout; a stop waits for it at most shutdown_timeout.
                    text = self.HEAD + ("shutdown_timeout 2s;\nlisten 127.0.0.1:0;\nlocation / "
                                        "{ proxy %s/; proxy_read_timeout 2s; }\n" % up.url)
                    srv = config_server(self.write("h.conf", text)).start()
                    try:
                        c = srv.connect(timeout=5)
                        c.send(build_request(case.method, "/x"))
                        try:
                            r = c.read_response(case.method)
                            while r.status < 200:  # 1xx relayed before the final answer
                                r = c.read_response(case.method)
                            outcome = "502" if r.status == 502 else "deliver"
                            self.assertNotIn(hostile.MARKER, r.body)
                        except Exception:
                            outcome = "abort"
                        c.close()
                        self.assertIn(outcome, case.expect, case.reason)
                        # The connection is never used again: a next request
                        # opens a new one.
                        before = up.accepted
                        c = srv.connect(timeout=5)
                        c.send(build_request("GET", "/y"))
                        try:
                            c.read_response("GET")
                        except Exception:
                            pass
                        c.close()
                        for conn in up.connections[:before]:
                            self.assertLessEqual(len(conn.requests), 1, case.name)
                    finally:
                        srv.stop()
                        srv.cleanup()
                finally:
                    up.stop()


class Groups(ProxyCase):
    def group(self, body, extra=""):
        text = (self.HEAD + "listen 127.0.0.1:0;\nupstream app {\n%s}\n"
                "location /api/ { proxy http://app/v1/; %s }\n" % (body, extra))
        srv = config_server(self.write("verbd.conf", text)).start()
        self.addCleanup(srv.cleanup)
        return srv

    def second(self):
        b = U.Upstream(U.echo())
        b.start()
        self.addCleanup(b.stop)
        return b

    def test_weighted_round_robin(self):
        b = self.second()
        srv = self.group("    server %s weight=2;\n    server %s;\n" % (self.up.server, b.server))
        for _ in range(6):
            self.assertEqual(self.echoed(self.ask(srv, "GET", "/api/x"))["target"], "/v1/x")
        self.assertEqual((self.up.count("GET"), b.count("GET")), (4, 2))

    def test_a_member_that_refuses_is_skipped_for_its_fail_timeout(self):
        b = self.second()
        b.stop()
        err = os.path.join(self.dir, "error.log")
        self.HEAD = ProxyCase.HEAD + "error_log %s;\n" % err
        srv = self.group("    server %s;\n    server %s max_fails=1 fail_timeout=30s;\n"
                         % (self.up.server, b.server))
        for _ in range(6):
            self.assertEqual(self.ask(srv, "GET", "/api/x").status, 200)
        self.assertEqual(self.up.count("GET"), 6)
        srv.stop()
        with open(err) as f:
            self.assertEqual(f.read().count("trying another"), 1)

    def test_every_member_down_is_502(self):
        b = self.second()
        b.stop()
        self.up.stop()
        srv = self.group("    server %s;\n    server %s;\n" % (self.up.server, b.server))
        self.assertEqual(self.ask(srv, "GET", "/api/x").status, 502)

    def test_least_conn_and_unix_members(self):
        u = U.Upstream(U.echo(), unix=True)
        u.start()
        self.addCleanup(u.stop)
        srv = self.group("    least_conn;\n    keepalive 4;\n    server %s;\n" % u.server)
        self.assertEqual(self.echoed(self.ask(srv, "GET", "/api/x"))["target"], "/v1/x")

    def test_learnt_refusals_are_per_group(self):
        b = self.second()
        self.up.on("PATCH", None, U.respond(501))
        b.on("PATCH", None, U.respond(501))
        srv = self.group("    server %s;\n    server %s;\n" % (self.up.server, b.server))
        self.assertEqual(self.ask(srv, "PATCH", "/api/x").status, 501)
        self.assertEqual(self.ask(srv, "PATCH", "/api/x").status, 501)
        self.assertEqual(self.up.count("PATCH") + b.count("PATCH"), 1)

    def test_config_errors(self):
        for text, msg in (
                ("upstream app { }\n", "upstream app has no server"),
                ("upstream app { server 127.0.0.1:1; }\nupstream app { server 127.0.0.1:2; }\n",
                 "duplicate upstream app"),
                ("upstream app { server 127.0.0.1:1 weight=0; }\n", "weight=0"),
                ("upstream app { server 127.0.0.1:1; bogus; }\n", "in upstream: want server"),
                ("server { listen 127.0.0.1:1; upstream app { server 127.0.0.1:1; } "
                 "location / { static www; } }\n", "upstream is not allowed inside server"),
                ("upstream app { server 127.0.0.1:1; }\nlocation / { proxy http://app/; "
                 "proxy_keepalive 3; }\n", "set keepalive in the upstream app block")):
            with self.subTest(text=text):
                code, out, err = self.check(text)
                self.assertNotEqual(code, 0, out)
                self.assertIn(msg, err)
