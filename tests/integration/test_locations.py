"""Locations by regular expression and nginx's precedence (docs/config.md,
"Locations"): exact, then the longest prefix if it is ^~, then regexes in
file order, then the longest prefix; case rules; what a static location
by regex serves (root + path, never outside the root); captures; internal
redirects searching again; the method decision with a regex mapping (a
gateway implementing POST beside static); the match limit; the config
errors; verbd -M."""

import os
import re

import upstream as U
from harness import build_request, run_verbd
from test_config import wait_for
from test_rewrite import RewriteCase


class LocationCase(RewriteCase):
    def setUp(self):
        super().setUp()
        self.write("www/a/b.txt", "b.txt in www\n")
        self.write("www/static/x.php", "static x.php\n")
        self.write("www/hello.txt", "hello\n")
        self.write("img/pic.JPG", "a picture\n")
        self.write("img/x/pic.png", "a png\n")
        self.write("secret.txt", "SECRET beside the root\n")

    def got(self, target):
        """(status, body) of a GET of target."""
        r = self.ask("GET", target)
        return r.status, r.body


class Precedence(LocationCase):
    CONF = ("location / { static www; }\n"
            "location = /exact.php { return 200 exact; }\n"
            "location ~ \\.php$ { return 200 regex-php; }\n"
            "location ^~ /static/ { static www/static; }\n"
            "location /deep/ { return 200 prefix-deep; }\n"
            "location ~* \\.(jpg|png)$ { static img; }\n"
            "location ~ ^/first { return 200 regex-first; }\n")

    def test_exact_then_caret_tilde_then_regex_in_file_order_then_prefix(self):
        self.start(self.CONF)
        # An exact location wins over a regex that matches too.
        self.assertEqual(self.got("/exact.php"), (200, b"exact"))
        # A regex wins over the longest prefix ("/", "/deep/").
        self.assertEqual(self.got("/x.php"), (200, b"regex-php"))
        self.assertEqual(self.got("/deep/x.php"), (200, b"regex-php"))
        # ^~ as the longest prefix: no regex is tried.
        self.assertEqual(self.got("/static/x.php"), (200, b"static x.php\n"))
        # The first regex in the file that matches, not the longest.
        self.assertEqual(self.got("/first.php"), (200, b"regex-php"))
        self.assertEqual(self.got("/first"), (200, b"regex-first"))
        # No regex matches: the longest prefix.
        self.assertEqual(self.got("/deep/x.txt"), (200, b"prefix-deep"))
        self.assertEqual(self.got("/hello.txt"), (200, b"hello\n"))

    def test_tilde_is_case_sensitive_and_tilde_star_is_not(self):
        self.start(self.CONF)
        self.assertEqual(self.got("/X.PHP")[0], 404)  # "/" serves www: no such file
        self.assertEqual(self.got("/pic.JPG"), (200, b"a picture\n"))
        self.assertEqual(self.got("/x/pic.png"), (200, b"a png\n"))

    def test_the_decoded_normalised_path_is_matched(self):
        self.start(self.CONF)
        # %2E is ".": the regex sees "/x.php", as verbd_request_path does.
        self.assertEqual(self.got("/x%2Ephp"), (200, b"regex-php"))
        self.assertEqual(self.got("/a/../x.php"), (200, b"regex-php"))
        self.assertEqual(self.got("/static//x.php"), (200, b"static x.php\n"))


class StaticByRegex(LocationCase):
    def test_root_plus_path_and_nothing_outside_the_root(self):
        www = os.path.join(self.dir, "www")
        os.symlink("../secret.txt", os.path.join(www, "out.txt"))
        os.symlink("..", os.path.join(www, "up"))
        self.start("location ~ \\.txt$ { static www; }\n")
        self.assertEqual(self.got("/a/b.txt"), (200, b"b.txt in www\n"))
        for target in ("/out.txt", "/up/secret.txt", "/../secret.txt", "/%2e%2e/secret.txt",
                       "/a/../../secret.txt", "/a/%2e%2e/%2e%2e/secret.txt"):
            r = self.ask("GET", target)
            self.assertNotEqual(r.status, 200, target)
            self.assertNotIn(b"SECRET", r.body, target)
        # Nothing but .txt is served there.
        self.assertEqual(self.got("/index.html")[0], 404)


class Captures(LocationCase):
    def test_return_and_try_files_see_the_location_captures(self):
        self.start("location / { static www; }\n"
                   "location ~ ^/user/(\\w+)/(\\d+)$ { return 200 \"user $1 #$2\"; }\n"
                   "location ~ ^/t/(\\w+)$ { static www; try_files /$1.txt =404; }\n")
        self.assertEqual(self.got("/user/bob/42"), (200, b"user bob #42"))
        self.assertEqual(self.got("/t/hello"), (200, b"hello\n"))
        self.assertEqual(self.got("/t/nothing")[0], 404)

    def test_a_capture_past_the_groups_is_an_error(self):
        self.assertOneError("location ~ ^/(a)$ { return 200 \"$2\"; }\n", 1, 32,
                            "$2 but the location's expression has 1 capture")


class Redirects(LocationCase):
    def test_try_files_rewrite_last_and_error_page_search_again(self):
        self.write("pages/notfound.page", "the page by regex\n")
        self.start("location / { static www; error_page 404 /notfound.page; }\n"
                   "location /tf/ { static www; try_files /none.txt /from-try.php; }\n"
                   "location /rw/ { static www; rewrite ^/rw/(.*)$ /$1.php last; }\n"
                   "location ~ \\.php$ { return 200 \"php $uri\"; }\n"
                   "location ~ \\.page$ { static pages; }\n")
        self.assertEqual(self.got("/tf/anything"), (200, b"php /from-try.php"))
        self.assertEqual(self.got("/rw/abc"), (200, b"php /abc.php"))
        self.assertEqual(self.got("/missing.html"), (404, b"the page by regex\n"))


class MethodDecision(LocationCase):
    def setUp(self):
        super().setUp()
        self.up = U.Upstream(U.echo())
        self.up.start()
        self.addCleanup(self.up.stop)

    def send(self, method, target, body):
        c = self.connect()
        c.send(build_request(method, target, {"Content-Length": str(len(body))}, body=body))
        return c.read_response(method)

    def test_post_by_the_regex_mapping_405_with_the_static_allow_elsewhere(self):
        self.start("location / { static www; }\n"
                   "location ~ \\.php$ { proxy %s; methods GET POST; }\n" % self.up.url)
        r = self.send("POST", "/app/x.php?q=1", b"form=1")
        self.assertEqual(r.status, 200, r)
        d = U.parse_echo(r.body)
        self.assertEqual((d["method"], d["target"], d["body"]), ("POST", "/app/x.php?q=1",
                                                                 b"form=1"))
        r = self.send("POST", "/x.html", b"form=1")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertIn(b"at location /.", r.body)
        # The regex mapping's set: its 405 and its OPTIONS agree.
        r = self.send("PUT", "/x.php", b"x")
        self.assertEqual(r.status, 501)  # nothing on this server implements PUT
        r = self.ask("OPTIONS", "/x.html")
        self.assertEqual((r.status, r.header("Allow")), (204, "GET, HEAD, OPTIONS"))
        r = self.ask("OPTIONS", "*")
        self.assertEqual((r.status, r.header("Allow")), (204, "GET, HEAD, POST, OPTIONS"))

    def test_405_from_the_regex_mapping_names_it(self):
        self.start("location / { static www; }\n"
                   "location /api/ { proxy %s; }\n"
                   "location ~ \\.php$ { proxy %s; methods GET POST; }\n"
                   % (self.up.url, self.up.url))
        r = self.ask("DELETE", "/api/x.php")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, OPTIONS")
        self.assertIn(b"at location ~ \\.php$.", r.body)
        r = self.ask("OPTIONS", "/api/x.php", {"Max-Forwards": "0"})
        self.assertEqual((r.status, r.header("Allow")), (204, "GET, HEAD, POST, OPTIONS"))
        self.assertEqual(U.parse_echo(self.ask("DELETE", "/api/x").body)["method"], "DELETE")


class MatchLimit(LocationCase):
    def test_over_the_limit_is_no_match_logged_once(self):
        self.start("location / { return 200 prefix; }\n"
                   "location ~ ^/(a+)+$ { return 200 regex; }\n")
        # About two million steps to fail: under PCRE2's default limit, over
        # verbd's (test_rewrite.py), so only verbd's limit logs it.
        slow = "/" + "a" * 20 + "b"
        for _ in range(3):
            self.assertEqual(self.got(slow), (200, b"prefix"))
        self.assertEqual(self.got("/aaaa"), (200, b"regex"))
        self.assertTrue(wait_for(lambda: "match limit" in self.error_log()), self.error_log())
        self.assertEqual(self.error_log().count("match limit"), 1, self.error_log())
        self.assertIn("location ~ ^/(a+)+$: matching " + slow, self.error_log())


class ConfigErrors(LocationCase):
    def test_an_expression_that_does_not_compile(self):
        self.assertOneError("location / { return 200 x; }\nlocation ~ \"^/(a\" { return 200 y; }\n",
                            2, 12, 'location "~ ^/(a": missing closing parenthesis at offset 4')

    def test_the_same_expression_twice(self):
        self.assertOneError("location ~ \\.php$ { return 200 a; }\n"
                            "location ~ \\.php$ { return 200 b; }\n", 2, 1,
                            "duplicate location ~ \\.php$ (first at %s:1)"
                            % os.path.join(self.dir, "verbd.conf"))
        # Another case rule is another location; ^~ and a plain prefix are one.
        rc, _, err = self.check(self.HEAD + "location ~ \\.php$ { return 200 a; }\n"
                                "location ~* \\.php$ { return 200 b; }\n")
        self.assertEqual(rc, 0, err)
        self.assertOneError("location ^~ /s/ { return 200 a; }\nlocation /s/ { return 200 b; }\n",
                            2, 1, "duplicate location /s/ (first at %s:1)"
                            % os.path.join(self.dir, "verbd.conf"))

    def test_an_unquoted_brace_ends_the_expression(self):
        errs = self.errors("location ~ ^/a{2}$ { return 200 x; }\n")
        self.assertEqual(errs[0][1:3], (1, 15), errs)
        self.assertIn('an expression with "{" must be quoted', errs[0][3])
        self.start('location ~ "^/a{2}$" { return 200 two; }\nlocation / { return 200 other; }\n')
        self.assertEqual(self.got("/aa"), (200, b"two"))
        self.assertEqual(self.got("/a"), (200, b"other"))

    def test_modifier_in_the_same_word(self):
        rc, _, err = self.check(self.HEAD + "location ~\\.php$ { return 200 a; }\n"
                                "location ^~/s/ { return 200 b; }\n")
        self.assertEqual(rc, 0, err)
        self.assertOneError("location ~ { return 200 a; }\n", 1, 1,
                            "location ~ needs a regular expression")


class Describe(LocationCase):
    def test_dash_m_shows_regexes_as_written_in_the_order_tried(self):
        path = self.write("verbd.conf", self.HEAD +
                          "location / { static www; }\n"
                          "location ~* \\.(jpg|png)$ { static img; }\n"
                          "location ^~ /static/ { static www; }\n"
                          "location ~ \\.php$ { return 200 php; }\n")
        p = run_verbd("-M", "-c", path)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  location ~* \\.(jpg|png)$: GET, HEAD, OPTIONS\n", out)
        self.assertIn("  location ^~ /static/: GET, HEAD, OPTIONS\n", out)
        tried = re.findall(r"^  (\d)\. location (.*) \((\w+)\)$", out, re.M)
        self.assertEqual(tried, [("1", "~* \\.(jpg|png)$", "static"), ("2", "~ \\.php$", "return")])
