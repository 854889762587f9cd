"""Redirects, rewrites and error pages (docs/config.md, "Redirects,
rewrites and error pages"): return with each code and the variables,
rewrite with its flags, captures and args, the loop bound, the match
limit, try_files, error_page (405 and 501 keeping their status and
Allow), and the method decision intact on rewritten requests."""

import os
import time
import unittest

from harness import build_request
from test_config import ConfigCase, read, wait_for


class RewriteCase(ConfigCase):
    HEAD = "listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\nerror_log error.log info;\n"

    def setUp(self):
        super().setUp()
        self.www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(self.www, "app", "assets"))
        os.makedirs(os.path.join(self.www, "pages"))
        os.makedirs(os.path.join(self.www, "dir"))
        self.write("www/index.html", "home\n")
        self.write("www/new.txt", "new\n")
        self.write("www/dir/index.html", "dir index\n")
        self.write("www/app/index.html", "<app shell>\n")
        self.write("www/app/assets/app.js", "js\n")
        self.write("www/pages/404.html", "<custom 404>\n")
        self.write("www/pages/403.html", "<custom 403>\n")
        self.write("www/pages/50x.html", "<custom 5xx>\n")
        self.write("www/pages/405.html", "<custom 405>\n")
        self.write("www/pages/501.html", "<custom 501>\n")

    def start(self, body):
        return self.serve(self.HEAD + body)

    def ask(self, method, target, headers=None, conn=None):
        c = conn or self.connect()
        c.send(build_request(method, target, headers))
        return c.read_response(method)

    def error_log(self):
        return read(os.path.join(self.dir, "error.log")).decode("utf-8", "replace")


class ReturnTest(RewriteCase):
    def test_each_redirect_code_has_its_location(self):
        conf = ""
        for code in (301, 302, 303, 307, 308):
            conf += "location = /r%d { return %d /new.txt; }\n" % (code, code)
        self.start(conf + "location / { static www; }\n")
        for code in (301, 302, 303, 307, 308):
            r = self.ask("GET", "/r%d" % code)
            self.assertEqual(r.status, code)
            self.assertEqual(r.header("Location"), "/new.txt")

    def test_text_body_and_variables(self):
        self.start('location = /who { return 200 "$scheme $host $request_uri $uri $args '
                   '$remote_addr"; }\n'
                   "location = /go { return 301 https://$host$request_uri; }\n"
                   "location = /gone { return 410; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/who?a=1&b=%20", {"Host": "Example.ORG:8080"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(r.body, b"http example.org /who?a=1&b=%20 /who a=1&b=%20 127.0.0.1")
        r = self.ask("GET", "/go?x=y", {"Host": "example.org"})
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://example.org/go?x=y")
        r = self.ask("GET", "/gone")
        self.assertEqual(r.status, 410)
        self.assertIn(b"410 Gone", r.body)

    def test_server_return_answers_every_request(self):
        self.start("return 308 https://example.org$request_uri;\n")
        for method in ("GET", "HEAD"):
            r = self.ask(method, "/any/path?q=1")
            self.assertEqual(r.status, 308)
            self.assertEqual(r.header("Location"), "https://example.org/any/path?q=1")
        # Nothing in this server implements PUT or PATCH: 501, not the return.
        for method in ("PUT", "PATCH"):
            r = self.ask(method, "/x")
            self.assertEqual(r.status, 501, method)
            self.assertIsNone(r.header("Location"))
        r = self.ask("OPTIONS", "/x")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_return_location_keeps_the_method_decision(self):
        self.start("location /dav/ { webdav www; }\n"
                   "location /old/ { return 301 /new.txt; }\n"
                   "location = /narrow { return 302 /new.txt; methods GET; }\n"
                   "location / { static www; }\n")
        # A method the server implements (webdav's PUT) gets the return ...
        r = self.ask("PUT", "/old/x")
        self.assertEqual(r.status, 301)
        # ... one nothing implements is 501 even here.
        r = self.ask("PATCH", "/old/x")
        self.assertEqual(r.status, 501)
        self.assertIsNone(r.header("Location"))
        r = self.ask("BREW", "/old/x")
        self.assertEqual(r.status, 501)
        # `methods` narrows it: 405 with a truthful Allow.
        r = self.ask("PUT", "/narrow")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.ask("OPTIONS", "/narrow")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.ask("HEAD", "/narrow")
        self.assertEqual((r.status, r.header("Location")), (302, "/new.txt"))

    def test_config_errors(self):
        for bad, msg in (("return 999 /x;", "is not a status code"),
                         ("return 301;", "needs the URL"),
                         ("return 200 $nope;", "unknown variable"),
                         ("return 302 /$1;", "captures exist only")):
            errs = self.errors(self.HEAD + "location / { static www; %s }\n" % bad)
            self.assertIn(msg, errs[0][3], bad)


class RewriteTest(RewriteCase):
    def test_last_restarts_location_matching(self):
        self.start("location /old/ { rewrite ^/old/(.*)$ /dir/$1 last; static www; }\n"
                   "location /dir/ { static www/dir; header X-Loc dir; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/old/index.html")
        self.assertEqual((r.status, r.body, r.header("X-Loc")), (200, b"dir index\n", "dir"))

    def test_break_stays_in_the_location(self):
        self.start("location /b/ { rewrite ^/b/(.*)$ /b/dir/$1 break; static www; }\n"
                   "location /b/dir/ { return 418; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/b/index.html")
        self.assertEqual((r.status, r.body), (200, b"dir index\n"))

    def test_redirect_permanent_and_absolute(self):
        self.start("location / {\n"
                   "  rewrite ^/t/(.*)$ /new/$1 redirect;\n"
                   "  rewrite ^/p/(.*)$ /new/$1 permanent;\n"
                   "  rewrite ^/abs/(.*)$ https://example.org/$1;\n"
                   "  rewrite ^/drop/(.*)$ /new/$1? redirect;\n"
                   "  rewrite ^/add/(.*)$ /new/$1?k=v redirect;\n"
                   "  static www;\n}\n")
        r = self.ask("GET", "/t/a%20b?x=1")
        self.assertEqual((r.status, r.header("Location")), (302, "/new/a%20b?x=1"))
        r = self.ask("GET", "/p/a")
        self.assertEqual((r.status, r.header("Location")), (301, "/new/a"))
        r = self.ask("GET", "/abs/z?q")
        self.assertEqual((r.status, r.header("Location")), (302, "https://example.org/z?q"))
        r = self.ask("GET", "/drop/a?x=1")
        self.assertEqual((r.status, r.header("Location")), (302, "/new/a"))
        r = self.ask("GET", "/add/a?x=1")
        self.assertEqual((r.status, r.header("Location")), (302, "/new/a?k=v&x=1"))

    def test_captures_and_args_reach_the_new_target(self):
        self.start("location = /echo { return 200 \"$uri?$args\"; }\n"
                   "location / {\n"
                   "  rewrite ^/(\\w+)/(\\d+)$ /echo?name=$1&id=$2 last;\n"
                   "  rewrite ^/only/(.*)$ /echo?v=$1? last;\n"
                   "  static www;\n}\n")
        r = self.ask("GET", "/item/42?keep=1")
        self.assertEqual((r.status, r.body), (200, b"/echo?name=item&id=42&keep=1"))
        r = self.ask("GET", "/only/x?keep=1")
        self.assertEqual((r.status, r.body), (200, b"/echo?v=x"))

    def test_loop_is_stopped_at_ten_with_500_and_a_log_line(self):
        self.start("location /a/ { rewrite ^/a/(.*)$ /b/$1 last; static www; }\n"
                   "location /b/ { rewrite ^/b/(.*)$ /a/$1 last; static www; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/a/x")
        self.assertEqual(r.status, 500)
        self.assertTrue(wait_for(lambda: "cycle" in self.error_log()), self.error_log())
        # One restart short of the bound still serves.
        r = self.ask("GET", "/index.html")
        self.assertEqual(r.status, 200)

    def test_ten_restarts_are_the_bound(self):
        rules = "".join("location = /s%d { rewrite ^ /s%d last; return 500; }\n" % (i, i + 1)
                        for i in range(11))
        self.start(rules + "location = /s11 { return 200 done; }\n"
                   "location / { static www; }\n")
        self.assertEqual(self.ask("GET", "/s0").status, 500)  # 11 restarts
        r = self.ask("GET", "/s1")  # 10: the bound
        self.assertEqual((r.status, r.body), (200, b"done"))

    def test_hostile_pattern_is_bounded_by_the_match_limit(self):
        self.start("location / { rewrite ^/(a+)+$ /new.txt last; static www; }\n")
        t0 = time.monotonic()
        r = self.ask("GET", "/" + "a" * 4000 + "b")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 500)
        self.assertLess(took, 2.0)
        self.assertTrue(wait_for(lambda: "limit" in self.error_log()), self.error_log())
        r = self.ask("GET", "/aaa")
        self.assertEqual((r.status, r.body), (200, b"new\n"))

    def test_match_limit_is_verbds_own(self):
        # About two million steps to fail: under PCRE2's default limit (ten
        # million), over verbd's (a hundred thousand).
        self.start("location / { rewrite ^/(a+)+$ /new.txt last; static www; }\n")
        r = self.ask("GET", "/" + "a" * 20 + "b")
        self.assertEqual(r.status, 500)
        # Twelve a's cost some 8000 steps: within the limit, no match.
        r = self.ask("GET", "/" + "a" * 12 + "b")
        self.assertEqual(r.status, 404)
        r = self.ask("GET", "/aaa")
        self.assertEqual((r.status, r.body), (200, b"new\n"))

    def test_rewritten_path_cannot_leave_the_root(self):
        self.start("location / { rewrite ^/x/(.*)$ /$1 last; static www; }\n")
        for target in ("/x/..%2f..%2fetc/passwd", "/x/%2e%2e/%2e%2e/etc/passwd",
                       "/x/%252e%252e/secret"):
            r = self.ask("GET", target)
            self.assertIn(r.status, (400, 404), target)

    def test_method_decision_holds_on_rewritten_requests(self):
        self.start("location /dav/ { webdav www; methods GET PUT; }\n"
                   "location /ro/ { rewrite ^/ro/(.*)$ /static/$1 last; static www; }\n"
                   "location /static/ { static www; }\n"
                   "location / { rewrite ^/w/(.*)$ /dav/$1 last; static www; }\n")
        # The rewritten target's location decides: PUT is static's 405 ...
        r = self.ask("PUT", "/ro/new.txt")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        # ... BREW is implemented nowhere: 501 before any rewrite.
        r = self.ask("BREW", "/w/x")
        self.assertEqual(r.status, 501)
        # DELETE is webdav's but not allowed at /dav/: 405 with its Allow.
        r = self.ask("DELETE", "/w/new.txt")
        self.assertEqual(r.status, 405)
        self.assertIn("PUT", r.header("Allow"))
        r = self.ask("OPTIONS", "/w/new.txt")
        self.assertEqual(r.status, 204)
        self.assertIn("PUT", r.header("Allow"))

    def test_config_errors(self):
        for bad, msg in (("rewrite ^/(a /x;", "rewrite"),
                         ("rewrite ^/a /x sideways;", "flag"),
                         ("rewrite ^/(a) /$2;", "capture")):
            errs = self.errors(self.HEAD + "location / { static www; %s }\n" % bad)
            self.assertIn(msg, errs[0][3], bad)


class TryFilesTest(RewriteCase):
    def test_spa_fallback(self):
        self.start("location /app/ { static www/app; try_files $uri $uri/ /app/index.html; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/app/assets/app.js")
        self.assertEqual((r.status, r.body), (200, b"js\n"))
        r = self.ask("GET", "/app/some/client/route")
        self.assertEqual((r.status, r.body), (200, b"<app shell>\n"))
        r = self.ask("HEAD", "/app/other")
        self.assertEqual((r.status, r.body), (200, b""))
        # Static implements no POST here: the method decision still runs.
        r = self.ask("POST", "/app/x")
        self.assertEqual(r.status, 501)

    def test_root_directive_and_code(self):
        self.start("location / { root www; static; try_files $uri $uri/ =404; }\n")
        self.assertEqual(self.ask("GET", "/new.txt").body, b"new\n")
        self.assertEqual(self.ask("GET", "/dir/").body, b"dir index\n")
        r = self.ask("GET", "/missing")
        self.assertEqual(r.status, 404)

    def test_inherited_root(self):
        # root at the top level (as nginx writes it), `static;` taking it.
        self.start("root www;\nlocation / { static; try_files $uri /index.html; }\n")
        self.assertEqual(self.ask("GET", "/new.txt").body, b"new\n")
        self.assertEqual(self.ask("GET", "/elsewhere").body, b"home\n")

    def test_redirect_loop_through_try_files_is_bounded(self):
        self.start("location / { static www; try_files $uri /nowhere; }\n")
        r = self.ask("GET", "/missing")
        self.assertEqual(r.status, 500)
        self.assertTrue(wait_for(lambda: "cycle" in self.error_log()), self.error_log())

    def test_needs_a_root(self):
        errs = self.errors(self.HEAD + "location / { return 200; try_files $uri =404; }\n")
        self.assertIn("try_files needs a root", errs[0][3])


class ErrorPageTest(RewriteCase):
    def test_404_403_500_pages(self):
        self.start("error_page 404 /pages/404.html;\n"
                   "location /pages/ { static www/pages; }\n"
                   "location /secret/ { static www; deny all; error_page 403 /pages/403.html; }\n"
                   "location = /boom { return 500; error_page 500 502 /pages/50x.html; }\n"
                   "location / { static www; }\n")
        r = self.ask("GET", "/missing")
        self.assertEqual((r.status, r.body), (404, b"<custom 404>\n"))
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIsNone(r.header("ETag"))
        r = self.ask("HEAD", "/missing")
        self.assertEqual((r.status, r.body), (404, b""))
        r = self.ask("GET", "/secret/x")
        self.assertEqual((r.status, r.body), (403, b"<custom 403>\n"))
        r = self.ask("GET", "/boom")
        self.assertEqual((r.status, r.body), (500, b"<custom 5xx>\n"))
        # A conditional request does not turn the page into a 304.
        for cond in ({"If-None-Match": "*"}, {"Range": "bytes=0-1"}):
            r = self.ask("GET", "/missing", cond)
            self.assertEqual((r.status, r.body), (404, b"<custom 404>\n"), cond)

    def test_server_page_for_paths_no_location_takes(self):
        self.start("error_page 404 /pages/404.html;\n"
                   "location /pages/ { static www/pages; }\n")
        r = self.ask("GET", "/nothing/here")
        self.assertEqual((r.status, r.body), (404, b"<custom 404>\n"))

    def test_401_page_keeps_the_challenge(self):
        self.write("users", "alice:$apr1$abcdefgh$GJ0i4ehBm.dSo5v4cYFgN.\n")
        self.start("location /pages/ { static www/pages; }\n"
                   "location / { static www; auth_basic Staff; auth_basic_user_file users;"
                   " error_page 401 /pages/403.html; }\n")
        r = self.ask("GET", "/new.txt")
        self.assertEqual((r.status, r.body), (401, b"<custom 403>\n"))
        self.assertIn('Basic realm="Staff"', r.header("WWW-Authenticate"))

    def test_405_and_501_keep_status_and_allow(self):
        self.start("refusal_cache max-age=600;\n"
                   "location /dav/ { webdav www; }\n"
                   "location /pages/ { static www/pages; }\n"
                   "location / { static www; error_page 405 /pages/405.html;"
                   " error_page 501 /pages/501.html; }\n")
        r = self.ask("DELETE", "/new.txt")
        self.assertEqual((r.status, r.body), (405, b"<custom 405>\n"))
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertEqual(r.header("Cache-Control"), "max-age=600")
        r = self.ask("PATCH", "/new.txt")
        self.assertEqual((r.status, r.body), (501, b"<custom 501>\n"))
        self.assertEqual(r.header("Cache-Control"), "max-age=600")
        self.assertIsNone(r.header("Allow"))
        # HEAD: the same status and fields, no body.
        r = self.ask("HEAD", "/nowhere", {"Host": "localhost"})
        self.assertEqual((r.status, r.body), (404, b""))

    def test_failing_page_falls_back_to_the_built_in_answer(self):
        self.start("location /dav/ { webdav www; }\n"
                   "location / { static www; error_page 404 405 /nowhere.html; }\n")
        r = self.ask("GET", "/missing")
        self.assertEqual(r.status, 404)
        self.assertIn(b"404 Not Found", r.body)
        r = self.ask("PUT", "/new.txt")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertIn(b"is not allowed at location /", r.body)

    def test_answer_code(self):
        self.start("location / { static www; error_page 404 =200 /index.html; }\n")
        r = self.ask("GET", "/missing")
        self.assertEqual((r.status, r.body), (200, b"home\n"))

    def test_405_and_501_cannot_change_status(self):
        for codes in ("405", "501", "404 501"):
            errs = self.errors(self.HEAD + "location / { static www; error_page %s =200 /x; }\n"
                               % codes)
            self.assertIn("keeps its status", errs[0][3], codes)


if __name__ == "__main__":
    unittest.main()
