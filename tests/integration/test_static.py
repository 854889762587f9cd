"""The static module: files, directories, redirects, listings, validators,
MIME types."""

import email.utils
import html
import os
import shutil
import tempfile
import time
import unittest

from harness import Server, VerbdTestCase, IMF_FIXDATE_RE, get_request, webroot


class Files(VerbdTestCase):
    def test_root_serves_index(self):
        c, r = self.get("/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)
        self.assertEqual(r.media_type(), "text/html")

    def test_index_html(self):
        c, r = self.get("/index.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), "1024")
        self.assertEqual(r.body, self.web.index)
        self.assertEqual(r.media_type(), "text/html")

    def test_big_file_identical(self):
        c, r = self.get("/big.bin")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), "65536")
        self.assertEqual(len(r.body), 65536)
        self.assertTrue(r.body == self.web.big, "big.bin differs")
        self.assertUsable(c)

    def test_big_file_twice_on_one_connection(self):
        c = self.connect()
        for _ in range(2):
            r = c.request("GET", "/big.bin")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == self.web.big)

    def test_empty_file(self):
        c, r = self.get("/empty.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("Content-Length"), "0")
        self.assertEqual(r.body, b"")
        self.assertUsable(c)

    def test_file_in_subdirectory(self):
        c, r = self.get("/sub/file.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.sub_file)

    def test_name_with_spaces_and_non_ascii(self):
        c, r = self.get(self.web.SPACE_URL)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.space_body)

    def test_name_with_lowercase_escapes(self):
        c, r = self.get(self.web.SPACE_URL.lower())
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.space_body)

    def test_percent_encoded_unreserved_letter(self):
        c, r = self.get("/%69ndex.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_query_string_ignored_for_file(self):
        c, r = self.get("/index.html?a=1&b=2")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_missing_is_404(self):
        c, r = self.get("/missing.html")
        self.assertStatus(r, 404)
        self.assertUsable(c)

    def test_missing_in_missing_dir_is_404(self):
        c, r = self.get("/nodir/nofile")
        self.assertStatus(r, 404)

    def test_segment_longer_than_name_max_is_400(self):
        # No file can have such a name: the client's error, named as such.
        _, r = self.get("/" + "n" * 256)
        self.assertStatus(r, 400)
        self.assertIn(b"NAME_MAX (255 bytes)", r.body)
        _, r = self.get("/" + "n" * 255)
        self.assertStatus(r, 404)

    def test_file_as_directory_is_404(self):
        c, r = self.get("/index.html/x")
        self.assertStatus(r, 404)

    def test_symlink_inside_root_is_served(self):
        c, r = self.get("/link_in.html")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_trailing_slash_on_file_is_404(self):
        c, r = self.get("/sub/file.txt/")
        self.assertStatus(r, 404)

    def test_symlink_loop_is_refused_quickly(self):
        c, r = self.get("/loop")
        self.assertIn(r.status, (403, 404), r)
        self.assertWellFormed(r)
        self.assertUsable(c)

    def test_fifo_does_not_block_server(self):
        c = self.connect(timeout=3.0)
        c.send(get_request("/fifo"))
        r = c.read_response()
        self.assertIn(r.status, (403, 404), r)
        self.assertWellFormed(r)
        c2, r2 = self.get("/index.html")
        self.assertEqual(r2.status, 200)

    def test_case_sensitive_paths(self):
        c, r = self.get("/INDEX.HTML")
        self.assertStatus(r, 404)


class Directories(VerbdTestCase):
    def test_dir_without_slash_redirects(self):
        c, r = self.get("/sub")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/sub/")
        self.assertUsable(c)

    def test_dir_redirect_preserves_query(self):
        c, r = self.get("/sub?a=1")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/sub/?a=1")

    def test_dir_without_index_is_403(self):
        c, r = self.get("/sub/")
        self.assertStatus(r, 403)
        self.assertNotIn(b"file.txt", r.body)
        self.assertUsable(c)

    def test_dir_redirect_location_stays_encoded(self):
        c, r = self.get("/dir%20with%20space")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/dir%20with%20space/")
        self.assertUsable(c)

    def test_dir_redirect_for_absolute_form(self):
        c = self.connect()
        c.send(b"GET http://example.com/sub HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 301)
        self.assertIn(r.header("Location"), ("/sub/", "http://example.com/sub/"))

    def test_no_header_injection_via_redirect(self):
        c, r = self.get("/sub%0D%0AX-Injected:%20yes")
        self.assertStatus(r, 400)
        self.assertIsNone(r.header("X-Injected"))

    def test_file_in_dir_with_space(self):
        c, r = self.get("/dir%20with%20space/f.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"in dir with space\n")

    def test_dir_with_query_without_index_is_403(self):
        c, r = self.get("/sub/?x=1")
        self.assertStatus(r, 403)


class Concurrency(VerbdTestCase):
    def test_many_clients_fetch_big_file_concurrently(self):
        import threading
        results = []
        def fetch():
            try:
                c = self.server.connect()
                try:
                    for _ in range(3):
                        r = c.request("GET", "/big.bin")
                        results.append(r.status == 200 and r.body == self.web.big)
                finally:
                    c.close()
            except Exception as e:   # reported through results
                results.append(e)
        threads = [threading.Thread(target=fetch) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, [True] * 60)

    def test_pipelined_big_responses_with_slow_reader(self):
        # The server must handle write back-pressure while requests queue up.
        import time
        c = self.connect(rcvbuf=8192)
        c.send(get_request("/big.bin") * 20)
        time.sleep(0.5)
        rs = c.read_responses(20)
        self.assertTrue(all(r.status == 200 and r.body == self.web.big for r in rs))
        self.assertUsable(c)


class FileCache(VerbdTestCase):
    """The open-file cache never answers with a file as it was before the
    request arrived.  Large cached files are sent from the cache's own
    descriptor: a file replaced while a response still sends from it must
    finish with the old bytes, and no descriptor may stay open once nothing
    uses it."""

    SIZE = 4 * 1024 * 1024

    def setUp(self):
        self.web = webroot()
        self.conns = []
        self.root = tempfile.mkdtemp(prefix="verbd-shared-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.old = bytes(i * 7 & 0xFF for i in range(256)) * (self.SIZE // 256)
        self.new = bytes(i * 13 & 0xFF for i in range(256)) * (self.SIZE // 256)
        self.write("big.bin", self.old)
        self.server = self.start_server("--workers", "1", root=self.root)

    def write(self, name, data):
        tmp = os.path.join(self.root, ".tmp-" + name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.root, name))

    def served_fds(self):
        """The targets of the open descriptors of the process serving."""
        pids = [self.server.pid]
        try:
            with open("/proc/%d/task/%d/children" % (self.server.pid, self.server.pid)) as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        targets = []
        for pid in pids:
            d = "/proc/%d/fd" % pid
            for fd in os.listdir(d):
                try:
                    targets.append(os.readlink(os.path.join(d, fd)))
                except OSError:
                    pass
        return targets

    def replaced_still_open(self):
        """Descriptors of files of the root that were replaced or removed
        (other programs, such as valgrind, keep deleted files of their own)."""
        return [t for t in self.served_fds() if t.startswith(self.root) and t.endswith("(deleted)")]

    def wait_for(self, pred, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                self.fail(what)
            time.sleep(0.05)

    def test_changed_file_is_never_answered_stale(self):
        a, b = self.connect(), self.connect()
        for i in range(40):
            body = b"version %d\n" % i
            if i % 2:
                self.write("small.txt", body)  # a new inode
            else:
                with open(os.path.join(self.root, "small.txt"), "wb") as f:
                    f.write(body)  # the same inode, rewritten
            # both connections at once: read in the same loop turn
            a.send(get_request("/small.txt"))
            b.send(get_request("/small.txt"))
            for c in (a, b):
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, body, "round %d" % i)

    def test_created_file_is_found_at_once(self):
        a, b = self.connect(), self.connect()
        path = os.path.join(self.root, "new.txt")
        for i in range(20):
            for c in (a, b):
                c.send(get_request("/new.txt"))
            for c in (a, b):
                self.assertEqual(c.read_response().status, 404, "round %d" % i)
            self.write("new.txt", b"here %d\n" % i)
            for c in (a, b):
                c.send(get_request("/new.txt"))
            for c in (a, b):
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b"here %d\n" % i), "round %d" % i)
            os.unlink(path)

    def test_replaced_while_sending_finishes_old_bytes(self):
        slow = self.connect(rcvbuf=8192)
        slow.send(get_request("/big.bin"))
        time.sleep(0.3)  # the response is now in flight, far from done
        self.write("big.bin", self.new)
        c, r = self.get("/big.bin")  # finds the cached entry stale
        self.assertStatus(r, 200)
        self.assertTrue(r.body == self.new, "the new file was not served")
        r = slow.read_response()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body == self.old, "the response in flight changed its bytes")
        r = slow.request("GET", "/big.bin")
        self.assertTrue(r.body == self.new, "the next request got the old file")
        self.wait_for(lambda: not self.replaced_still_open(),
                      "the replaced file is still open: %r" % self.replaced_still_open())

    def test_ranges_and_heads_leave_no_descriptors(self):
        c = self.connect()
        c.request("GET", "/big.bin")
        before = len(self.served_fds())
        for i in range(20):
            r = c.request("GET", "/big.bin", {"Range": "bytes=0-99,200000-299999,-5"})
            self.assertEqual(r.status, 206)
            self.assertIn(self.old[200000:300000], r.body)
            r = c.request("GET", "/big.bin", {"Range": "bytes=100000-"})
            self.assertEqual(r.status, 206)
            self.assertTrue(r.body == self.old[100000:])
            r = c.request("HEAD", "/big.bin")
            self.assertEqual(r.status, 200)
            r = c.request("GET", "/big.bin", {"If-None-Match": r.header("ETag")})
            self.assertEqual(r.status, 304)
        self.assertEqual(len(self.served_fds()), before)
        self.write("big.bin", self.new)
        r = c.request("GET", "/big.bin", {"Range": "bytes=0-9,-10"})
        self.assertEqual(r.status, 206)
        self.assertIn(self.new[:10], r.body)
        self.wait_for(lambda: not self.replaced_still_open(),
                      "the replaced file is still open: %r" % self.replaced_still_open())

    def test_client_gone_mid_file_releases_it(self):
        c, r = self.get("/big.bin")  # cached: the cache's descriptor is open
        c.close()
        before = len(self.served_fds())
        for _ in range(5):
            slow = self.connect(rcvbuf=8192)
            slow.send(get_request("/big.bin"))
            time.sleep(0.1)
            slow.close()
        self.write("big.bin", self.new)
        c, r = self.get("/big.bin")
        self.assertTrue(r.body == self.new)
        c.close()
        self.wait_for(lambda: len(self.served_fds()) <= before and
                      not self.replaced_still_open(),
                      "descriptors left open: %r" % self.served_fds())


class Listing(VerbdTestCase):
    server_args = ("--listing",)

    def test_listing_lists_entries(self):
        c, r = self.get("/sub/")
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), "text/html")
        self.assertIn(b"file.txt", r.body)
        self.assertUsable(c)

    def test_listing_escapes_names(self):
        c, r = self.get("/list/")
        self.assertStatus(r, 200)
        self.assertIn(b"a.txt", r.body)
        self.assertNotIn(b"<b>&.txt", r.body)
        self.assertIn(html.escape("<b>&.txt", quote=False).encode(), r.body)

    def test_listing_escapes_quotes_in_attributes(self):
        c, r = self.get("/list/")
        self.assertStatus(r, 200)
        self.assertNotIn(b'q"uote', r.body)

    def test_every_listed_link_is_fetchable(self):
        import re, urllib.parse
        c, r = self.get("/list/")
        self.assertStatus(r, 200)
        hrefs = [html.unescape(h.decode()) for h in re.findall(rb'href="([^"]*)"', r.body)]
        files = {"a.txt": b"a\n", "<b>&.txt": b"escaped\n", "q\"uote'.txt": b"quoted\n",
                 "sp ace.txt": b"spaced\n"}
        fetched = {}
        for h in hrefs:
            url = urllib.parse.urljoin("/list/", h)
            if not url.startswith("/list/") or url == "/list/":
                continue
            self.assertNotIn(" ", url, "unencoded space in href %r" % h)
            r2 = c.request("GET", url)
            fetched[urllib.parse.unquote(url[len("/list/"):])] = r2.body
        self.assertEqual(fetched, files)

    def test_listed_escaped_name_is_fetchable(self):
        c, r = self.get("/list/%3Cb%3E%26.txt")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"escaped\n")

    def test_index_still_preferred_with_listing(self):
        c, r = self.get("/")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_listing_redirect_without_slash(self):
        c, r = self.get("/list")
        self.assertStatus(r, 301)
        self.assertEqual(r.header("Location"), "/list/")

    def test_listing_does_not_follow_outside_symlink_contents(self):
        c, r = self.get("/dirlink_out/")
        self.assertNotEqual(r.status, 200, r)
        self.assertNotIn(b"inner.txt", r.body)


class Validators(VerbdTestCase):
    def test_etag_is_strong(self):
        c, r = self.get("/index.html")
        etag = r.header("ETag")
        self.assertIsNotNone(etag)
        self.assertTrue(etag.startswith('"') and etag.endswith('"') and len(etag) > 2, etag)

    def test_etag_stable(self):
        c = self.connect()
        e1 = c.request("GET", "/index.html").header("ETag")
        e2 = c.request("GET", "/index.html").header("ETag")
        self.assertIsNotNone(e1)
        self.assertEqual(e1, e2)

    def test_etag_differs_between_files(self):
        c = self.connect()
        e1 = c.request("GET", "/pipe/1.txt").header("ETag")
        e2 = c.request("GET", "/sub/file.txt").header("ETag")
        self.assertIsNotNone(e1)
        self.assertIsNotNone(e2)
        self.assertNotEqual(e1, e2)

    def test_last_modified_is_file_mtime(self):
        c, r = self.get("/index.html")
        lm = r.header("Last-Modified")
        self.assertRegex(lm or "", IMF_FIXDATE_RE)
        self.assertEqual(lm, self.web.last_modified())

    def test_accept_ranges_bytes(self):
        c, r = self.get("/index.html")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_date_is_now(self):
        c, r = self.get("/index.html")
        t = email.utils.parsedate_to_datetime(r.header("Date"))
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - t).total_seconds()), 60)

    def test_404_has_no_etag(self):
        c, r = self.get("/missing")
        self.assertIsNone(r.header("ETag"))


class Mime(VerbdTestCase):
    def check(self, target, media):
        c, r = self.get(target)
        self.assertStatus(r, 200)
        self.assertEqual(r.media_type(), media, r)

    def test_html(self):
        self.check("/index.html", "text/html")

    def test_css(self):
        self.check("/style.css", "text/css")

    def test_json(self):
        self.check("/data.json", "application/json")

    def test_png(self):
        self.check("/image.png", "image/png")

    def test_unknown_extension(self):
        self.check("/blob.verbdunknown", "application/octet-stream")

    def test_bin(self):
        self.check("/big.bin", "application/octet-stream")

    def test_txt(self):
        self.check("/sub/file.txt", "text/plain")


class Charset(VerbdTestCase):
    """charset (DECISIONS.md): utf-8 by default on text/* and JavaScript,
    not on JSON (RFC 8259 §11) nor binary types; per location, `off`
    turns it off."""

    def content_type(self, target, server=None):
        c = self.connect(server)
        r = c.request("GET", target)
        self.assertEqual(r.status, 200, r)
        return r.header("Content-Type")

    def test_defaults(self):
        self.assertEqual(self.content_type("/index.html"), "text/html; charset=utf-8")
        self.assertEqual(self.content_type("/style.css"), "text/css; charset=utf-8")
        self.assertEqual(self.content_type("/sub/file.txt"), "text/plain; charset=utf-8")
        self.assertEqual(self.content_type("/data.json"), "application/json")
        self.assertEqual(self.content_type("/image.png"), "image/png")
        self.assertEqual(self.content_type("/big.bin"), "application/octet-stream")

    def test_javascript(self):
        root = tempfile.mkdtemp(prefix="verbd-charset-")
        self.addCleanup(shutil.rmtree, root, True)
        with open(os.path.join(root, "app.js"), "w") as f:
            f.write("let x = 1;\n")
        srv = self.start_server(root=root)
        self.assertEqual(self.content_type("/app.js", srv), "text/javascript; charset=utf-8")

    def test_ranges_carry_it_too(self):
        c = self.connect()
        r = c.request("GET", "/index.html", [("Range", "bytes=0-9")])
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_per_location(self):
        base = tempfile.mkdtemp(prefix="verbd-charset-")
        self.addCleanup(shutil.rmtree, base, True)
        dav = os.path.join(base, "dav")
        os.mkdir(dav)
        with open(os.path.join(dav, "index.html"), "w") as f:
            f.write("<p>dav</p>\n")
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("location / { static %s; }\n"
                    "location /plain/ { static %s; charset off; }\n"
                    "location /latin/ { static %s; charset iso-8859-1; }\n"
                    "location /dav/ { webdav %s; charset off; }\n"
                    % (self.web.root, self.web.root, self.web.root, dav))
        srv = Server(None, "-c", conf).start()
        self.addCleanup(srv.cleanup)
        self.assertEqual(self.content_type("/index.html", srv), "text/html; charset=utf-8")
        self.assertEqual(self.content_type("/plain/index.html", srv), "text/html")
        self.assertEqual(self.content_type("/latin/index.html", srv),
                         "text/html; charset=iso-8859-1")
        self.assertEqual(self.content_type("/latin/data.json", srv), "application/json")
        self.assertEqual(self.content_type("/dav/index.html", srv), "text/html")

    def test_bad_value_is_a_config_error(self):
        base = tempfile.mkdtemp(prefix="verbd-charset-")
        self.addCleanup(shutil.rmtree, base, True)
        conf = os.path.join(base, "verbd.conf")
        with open(conf, "w") as f:
            f.write("location / {\n    static %s;\n    charset \"a;b\";\n}\n" % self.web.root)
        from harness import run_verbd
        r = run_verbd("-t", "-c", conf)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertIn("verbd.conf:3:", err)
        self.assertIn("charset", err)


class HiddenFiles(unittest.TestCase):
    """hidden_files (DECISIONS.md): off by default, so a path segment
    starting with '.' is 404 except /.well-known/; `hidden_files on` serves
    them; verbd's reserved names (.verbd-) are 404 whatever it says.  In
    webdav, dotfiles are ordinary files."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="verbd-hidden-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.root = os.path.join(self.base, "root")
        for d in (".git", ".well-known", "sub/.cache", "pub"):
            os.makedirs(os.path.join(self.root, d))
        files = {".env": b"SECRET=1\n", ".git/config": b"[core]\n",
                 ".well-known/security.txt": b"Contact: x\n", "sub/.cache/x": b"x\n",
                 "sub/ok.txt": b"ok\n", ".verbd-put-h-1-1-00000000": b"partial",
                 "sub/.verbd-copy-h-1-1-00000000": b"partial", "sub/.hidden.txt": b"h\n",
                 "pub/.well-known": b"not the origin's\n", "index.html": b"<p>hi</p>\n"}
        for rel, data in files.items():
            with open(os.path.join(self.root, rel), "wb") as f:
                f.write(data)

    def serve(self, body):
        conf = os.path.join(self.base, "verbd.conf")
        with open(conf, "w") as f:
            f.write(body.replace("ROOT", self.root))
        srv = Server(None, "-c", conf).start()
        self.addCleanup(srv.cleanup)
        return srv

    def get(self, srv, target):
        c = srv.connect()
        try:
            return c.request("GET", target)
        finally:
            c.close()

    def test_default_off(self):
        srv = self.serve("location / { static ROOT; listing on; }\n"
                         "location /pub/ { static ROOT/pub; }\n")
        for t in ("/.env", "/.git/config", "/.git/", "/sub/.cache/x", "/.verbd-put-h-1-1-00000000"):
            self.assertEqual(self.get(srv, t).status, 404, t)
        self.assertEqual(self.get(srv, "/.well-known/security.txt").status, 200)
        self.assertEqual(self.get(srv, "/sub/ok.txt").status, 200)
        self.assertEqual(self.get(srv, "/").body, b"<p>hi</p>\n")
        self.assertEqual(self.get(srv, "/pub/").status, 403)  # the root, not hidden
        # /.well-known/ is the origin's, not any location's.
        self.assertEqual(self.get(srv, "/pub/.well-known").status, 404)
        listing = self.get(srv, "/sub/").body
        self.assertIn(b"ok.txt", listing)
        self.assertNotIn(b".hidden.txt", listing)
        self.assertNotIn(b".cache", listing)
        self.assertNotIn(b".verbd-", listing)

    def test_on(self):
        srv = self.serve("location / { static ROOT; listing on; hidden_files on; }\n")
        r = self.get(srv, "/.env")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"SECRET=1\n")
        self.assertEqual(self.get(srv, "/sub/.cache/x").status, 200)
        listing = self.get(srv, "/sub/").body
        self.assertIn(b".hidden.txt", listing)
        self.assertIn(b".cache", listing)
        # Reserved names stay hidden.
        self.assertEqual(self.get(srv, "/.verbd-put-h-1-1-00000000").status, 404)
        self.assertEqual(self.get(srv, "/sub/.verbd-copy-h-1-1-00000000").status, 404)
        self.assertNotIn(b".verbd-", listing)

    def test_bad_value(self):
        conf = os.path.join(self.base, "bad.conf")
        with open(conf, "w") as f:
            f.write("location / { static %s; hidden_files allow; }\n" % self.root)
        from harness import run_verbd
        r = run_verbd("-t", "-c", conf)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("hidden_files", r.stderr.decode())

    def test_webdav_dotfiles_are_ordinary(self):
        srv = self.serve("location /dav/ { webdav ROOT; }\n")
        r = self.get(srv, "/dav/.env")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"SECRET=1\n")
        listing = self.get(srv, "/dav/sub/").body
        self.assertIn(b".hidden.txt", listing)
        self.assertIn(b"ok.txt", listing)
        self.assertEqual(self.get(srv, "/dav/.verbd-put-h-1-1-00000000").status, 404)
        self.assertNotIn(b".verbd-", listing)


if __name__ == "__main__":
    unittest.main()
