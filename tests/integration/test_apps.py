"""A real PHP application from Debian behind verbd with no change: DokuWiki
(Debian's dokuwiki package) through PHP-FPM, with the config that
docs/fastcgi.md gives in its "DokuWiki" section (read from there, so the
documented file is the tested one).

A browser's session: the start page; logging in and creating a page
through the edit form (its sectok and other fields, the session and login
cookies, the redirect after saving), then reading the page back; an image
uploaded through the media manager and fetched back; the stylesheets,
scripts and images the page links to.  Bodies past PHP's post_max_size
are refused before PHP.  The same with DokuWiki's nice URLs and the
`location /` the document gives for them (NiceURLs).  The directories
DokuWiki's security advice keeps from the web are refused and never reach
PHP, and the same requests without those rules are shown to reach PHP (or
to find nothing, where Debian keeps the files out of the web root).  The
method decision: PUT is 501, OPTIONS lists GET, HEAD, OPTIONS, POST.

DokuWiki reads its configuration from /etc/dokuwiki and writes into
/var/lib/dokuwiki/data.  The test changes neither: PHP-FPM's
auto_prepend_file defines DOKU_CONF (which Debian's inc/preload.php
respects) as a temporary directory whose local.php points `savedir` at a
temporary data directory, with the package's ACL (anyone reads, users
edit) and one user of the test's own.  Everything the wiki writes goes
there and goes with it; the prepended file also records each request that
runs PHP, which is how "never reaches PHP" is checked.

Skipped when php-fpm or dokuwiki is missing (scripts/deps.sh test installs
them), except under CI=true, where that is a failure.  The whole file takes
about a second, so make test runs all of it; make test-apps runs it alone."""

import base64
import hashlib
import html.parser
import http.cookiejar
import os
import pwd
import random
import re
import shutil
import struct
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zlib

from harness import Conn, build_request, run_verbd
from peers import PhpFpm, find_php_fpm
from test_config import config_server

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.normpath(os.path.join(HERE, "..", "..", "docs", "fastcgi.md"))
DOKU = "/usr/share/dokuwiki"
DOC_SOCKET = "unix:/run/php/php8.2-fpm.sock"
IN_CI = os.environ.get("CI") == "true"

# What DokuWiki's advice refuses (https://www.dokuwiki.org/security, "Web
# Access Security": data, conf, bin, inc, vendor; its nginx page adds
# install.php), as requests into Debian's layout.  For each: what the
# same request meets without the rules — "php" (a script runs) or "absent"
# (Debian keeps these outside the web root).
REFUSED = [
    ("/data/pages/verbd_test.txt", "absent"),
    ("/data/pages/start.txt", "absent"),
    ("/conf/local.php", "absent"),
    ("/conf/users.auth.php", "absent"),
    ("/bin/dwpage.php", "php"),
    ("/bin/plugin.php", "php"),
    ("/inc/init.php", "php"),
    ("/vendor/autoload.php", "php"),
    ("/install.php", "php"),
]
# Other spellings of a refused path: the same file once normalised.
RESPELLED = ["/lib/exe/../../inc/init.php", "/%69nc/init.php", "/bin/./dwpage.php",
             "/doku.php/../install.php"]

USER, PASSWORD = "verbdtest", "correct horse battery staple"


def missing():
    """Why the test cannot run here, or None."""
    if not find_php_fpm():
        return "php-fpm is not installed (scripts/deps.sh test installs it)"
    if not os.path.isfile(os.path.join(DOKU, "doku.php")):
        return "dokuwiki is not installed (scripts/deps.sh test installs it)"
    return None


def doc_config(nice=False):
    """The config of docs/fastcgi.md's "## DokuWiki" section: its file, or
    with nice, that file with the `location /` of "### Nice URLs"."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## DokuWiki\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise AssertionError("docs/fastcgi.md has no \"## DokuWiki\" section")
    blocks = re.findall(r"^```\n(.*?)^```", m.group(1), re.S | re.M)
    files = [b for b in blocks if "upstream php" in b]
    nices = [b for b in blocks if b.startswith("location / {") and "try_files" in b]
    if len(files) != 1 or len(nices) != 1:
        raise AssertionError("docs/fastcgi.md's DokuWiki section has %d config files and %d "
                             "nice-URL locations, not one of each" % (len(files), len(nices)))
    if not nice:
        return files[0]
    out, n = re.subn(r"^location / \{\n.*?^\}\n", lambda _: nices[0], files[0], flags=re.S | re.M)
    if n != 1:
        raise AssertionError("the documented file has %d `location /` blocks" % n)
    return out


def runnable_config(doc, socket, protect=True):
    """The documented file on a free loopback port with the test's PHP-FPM
    socket; without protect, with the refusing locations left out."""
    if DOC_SOCKET not in doc:
        raise AssertionError("the documented config names no %s" % DOC_SOCKET)
    text = doc.replace(DOC_SOCKET, "unix:" + socket)
    text, n = re.subn(r"^listen \S+;$", "listen 127.0.0.1:0;", text, flags=re.M)
    if n != 1:
        raise AssertionError("the documented config has %d listen lines" % n)
    if not protect:
        text, n = re.subn(r"^location[^\n{]*\{ return 403; \}\n", "", text, flags=re.M)
        if n != 6:
            raise AssertionError("%d refusing locations in the documented config, not 6" % n)
    return "access_log off;\n" + text


def django_pbkdf2(password):
    """A hash DokuWiki's PassHash verifies (pbkdf2_sha256, as Django's)."""
    salt = base64.b64encode(os.urandom(9)).decode().replace("+", "x").replace("/", "y")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000)
    return "pbkdf2_sha256$1000$%s$%s" % (salt, base64.b64encode(digest).decode())


class Wiki:
    """The temporary configuration and data of the test's DokuWiki, and the
    PHP-FPM that runs it."""

    DATA_DIRS = ["attic", "cache", "index", "locks", "log", "media", "media_attic", "media_meta",
                 "meta", "pages", "tmp"]

    def __init__(self, local=""):
        self.dir = tempfile.mkdtemp(prefix="verbd-dokuwiki-")
        self.conf = os.path.join(self.dir, "conf")
        self.data = os.path.join(self.dir, "data")
        self.reached = os.path.join(self.dir, "reached.log")
        os.makedirs(self.conf)
        os.makedirs(os.path.join(self.dir, "sessions"))
        for d in self.DATA_DIRS:
            os.makedirs(os.path.join(self.data, d))
        self.write(os.path.join(self.data, "pages", "start.txt"),
                   "====== The verbd test wiki ======\n\nServed by **verbd** through PHP-FPM.\n")
        self.write(os.path.join(self.conf, "local.php"),
                   "<?php\n$conf['title'] = 'verbd test wiki';\n$conf['savedir'] = '%s';\n"
                   "$conf['useacl'] = 1;\n$conf['superuser'] = '@admin';\n%s" % (self.data, local))
        # Debian's ACL as its postinst writes it: anyone reads, users edit.
        self.write(os.path.join(self.conf, "acl.auth.php"),
                   "# <?php exit()?>\n*\t@ALL\t1\n*\t@user\t8\n")
        self.write(os.path.join(self.conf, "users.auth.php"),
                   "# <?php exit()?>\n%s:%s:verbd test:test@localhost:user\n"
                   % (USER, django_pbkdf2(PASSWORD)))
        self.write(os.path.join(self.dir, "prepend.php"),
                   "<?php\n"
                   "// The test's configuration instead of /etc/dokuwiki's local.php and ACL.\n"
                   "define('DOKU_CONF', '%s/');\n"
                   "// Every request that runs PHP, for the test to see.\n"
                   "file_put_contents('%s', $_SERVER['REQUEST_URI'] . \"\\n\", "
                   "FILE_APPEND | LOCK_EX);\n" % (self.conf, self.reached))
        self.write(self.reached, "")
        self.user = None
        if os.geteuid() == 0:
            # PHP-FPM's workers run as www-data (or nobody): they write the
            # data, the sessions and the record.
            self.user = "www-data" if _has_user("www-data") else "nobody"
            pw = pwd.getpwnam(self.user)
            for dirpath, dirnames, filenames in os.walk(self.dir):
                os.chmod(dirpath, 0o755)
                os.chown(dirpath, pw.pw_uid, pw.pw_gid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid)
        self.fpm = PhpFpm(children=2, user=self.user, ini={
            "auto_prepend_file": os.path.join(self.dir, "prepend.php"),
            "session.save_path": os.path.join(self.dir, "sessions"),
        })

    @staticmethod
    def write(path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def start(self):
        self.fpm.start()
        return self

    def reached_php(self):
        """The request targets that ran PHP so far, in order."""
        with open(self.reached, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def cleanup(self):
        self.fpm.cleanup()
        shutil.rmtree(self.dir, True)


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------
# A browser: cookies kept, forms read and sent back, redirects followed
# --------------------------------------------------------------------------

class Page:
    def __init__(self, url, status, headers, body, history):
        self.url, self.status, self.headers, self.body = url, status, headers, body
        self.history = history  # [(status, Location)] of the redirects followed
        self.text = body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    """What a browser does with a site: one cookie jar (http.cookiejar, as
    the Set-Cookie rules say), a User-Agent and Accept-Language on every
    request (DokuWiki ties its login to them), redirects followed with GET
    after a POST, forms submitted with their fields and the button pressed."""

    HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; verbd tests) Firefox/115.0",
               "Accept-Language": "en", "Accept": "text/html,*/*;q=0.8"}

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def _once(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=dict(self.HEADERS, **(headers or {})))
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            e.close()
            return e.code, e.headers, body

    def open(self, path, method="GET", fields=None, headers=None, multipart=False):
        """fields: [(name, value)], a value being a str or, for a file,
        (filename, media type, bytes); sent urlencoded or as
        multipart/form-data."""
        url = urllib.parse.urljoin(self.base, path)
        data = None
        if fields is not None and multipart:
            boundary = "----verbdtest" + os.urandom(12).hex()
            data = multipart_body(fields, boundary)
            headers = dict(headers or {},
                           **{"Content-Type": "multipart/form-data; boundary=" + boundary})
        elif fields is not None:
            data = urllib.parse.urlencode(fields).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/x-www-form-urlencoded"})
        history = []
        for _ in range(5):
            status, hdrs, body = self._once(method, url, data, headers)
            if status not in (301, 302, 303, 307, 308) or not hdrs.get("Location"):
                return Page(url, status, hdrs, body, history)
            history.append((status, hdrs["Location"]))
            url = urllib.parse.urljoin(url, hdrs["Location"])
            if status in (301, 302, 303) and method == "POST":
                method, data, headers = "GET", None, None
        raise AssertionError("more than 5 redirects from %s: %r" % (path, history))

    def submit(self, page, form_id, values, button):
        """Sends form `form_id` of `page` back as a browser does when
        `button` (its name; None: the form's unnamed one) is pressed: its
        fields as they are, `values` typed into them."""
        forms = FormParser.parse(page.text)
        self_form = forms.get(form_id)
        if self_form is None:
            raise AssertionError("no form %r on %s; forms: %r" % (form_id, page.url, list(forms)))
        fields = []
        for name, value, kind in self_form["fields"]:
            if kind == "submit":
                if name == button:
                    fields.append((name, value))
                continue
            if name in values:
                value = values[name]
            fields.append((name, value))
        for name in values:
            if not any(n == name for n, _, _ in self_form["fields"]):
                raise AssertionError("form %r has no field %r: %r" % (form_id, name,
                                                                     self_form["fields"]))
        if button is not None and not any(n == button for n, _ in fields):
            raise AssertionError("form %r has no button %r" % (form_id, button))
        action = urllib.parse.urljoin(page.url, self_form["action"] or page.url)
        multipart = self_form["enctype"].lower() == "multipart/form-data"
        return self.open(action, self_form["method"].upper(), fields, multipart=multipart), fields

    def cookie_names(self):
        return sorted(c.name for c in self.jar)


def multipart_body(fields, boundary):
    """multipart/form-data (RFC 7578) as browsers send it."""
    out = []
    for name, value in fields:
        if isinstance(value, tuple):
            filename, ctype, content = value
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                        "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype)).encode()
                       + content + b"\r\n")
        else:
            out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                        % (boundary, name, value)).encode())
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out)


def png(width, height, seed):
    """A valid PNG of noise: incompressible, so its size is about
    width * height * 3 bytes."""
    rnd = random.Random(seed)
    rows = b"".join(b"\0" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1))
            + chunk(b"IEND", b""))


class FormParser(html.parser.HTMLParser):
    """The forms of a page: id -> {action, method, fields: [(name, value,
    kind)]}, kind "submit" for buttons; unchecked checkboxes left out, as
    a browser leaves them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = {}
        self.form = None
        self.textarea = None

    @classmethod
    def parse(cls, text):
        p = cls()
        p.feed(text)
        p.close()
        return p.forms

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form = {"action": a.get("action", ""), "method": a.get("method", "get"),
                         "enctype": a.get("enctype", ""), "fields": []}
            self.forms[a.get("id") or "form%d" % len(self.forms)] = self.form
        elif self.form is None or "name" not in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.form["fields"].append((a["name"], a.get("value", ""),
                                        "submit" if kind == "submit" else kind))
        elif tag == "button":
            if a.get("type", "submit").lower() == "submit":
                self.form["fields"].append((a["name"], a.get("value", ""), "submit"))
        elif tag == "textarea":
            self.textarea = [a["name"], ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self.textarea is not None and self.form is not None:
            # The newline right after <textarea> is not part of its value.
            value = self.textarea[1][1:] if self.textarea[1].startswith("\n") else self.textarea[1]
            self.form["fields"].append((self.textarea[0], value, "textarea"))
            self.textarea = None
        elif tag == "form":
            self.form = None


class Assets(html.parser.HTMLParser):
    """What a browser loads for a page: stylesheets, scripts, icons, images."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "link" and ({"stylesheet", "icon", "apple-touch-icon"} & set(rel)):
            self.urls.append(a.get("href"))
        elif tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"])

    @classmethod
    def of(cls, text):
        p = cls()
        p.feed(text)
        p.close()
        return [u for u in p.urls if u]


# --------------------------------------------------------------------------

REASON = missing()


class WikiCase(unittest.TestCase):
    """One PHP-FPM and one wiki for the class; a verbd per test."""

    NICE = False  # DokuWiki's nice URLs, and the documented location for them

    @classmethod
    def setUpClass(cls):
        if REASON:
            raise AssertionError("CI=true, but " + REASON)
        cls.doc = doc_config(cls.NICE)
        cls.wiki = Wiki("$conf['userewrite'] = 1;\n" if cls.NICE else "")
        try:
            cls.wiki.start()
        except BaseException:
            cls.wiki.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.wiki.cleanup()
        # The wiki wrote into its temporary directory only.
        assert not os.path.exists("/var/lib/dokuwiki/data/pages/verbd_test.txt")

    def setUp(self):
        self.servers = []

    def tearDown(self):
        # Each verbd stops cleanly, and none of its workers died meanwhile
        # (the supervisor would have started another).
        for srv in self.servers:
            srv.stop()
            self.assertNotIn("ended unexpectedly", srv.stderr_text())

    def serve(self, protect=True):
        d = tempfile.mkdtemp(prefix="verbd-apps-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "verbd.conf")
        with open(path, "w") as f:
            f.write(runnable_config(self.doc, self.wiki.fpm.socket, protect))
        srv = config_server(path).start()
        self.addCleanup(srv.cleanup)
        self.servers.append(srv)
        return srv

    def base(self, srv):
        return "http://%s:%d/" % (srv.host, srv.port)

    def raw(self, srv, method, target, headers=None, body=b""):
        """One request as written (no client normalises the target)."""
        c = Conn(srv.host, srv.port, timeout=30)
        try:
            c.send(build_request(method, target, headers, body,
                                 host="%s:%d" % (srv.host, srv.port)))
            return c.read_response(method)
        finally:
            c.close()

    def php_runs_during(self, fn):
        """(fn's result, the targets that ran PHP meanwhile)."""
        before = len(self.wiki.reached_php())
        out = fn()
        return out, self.wiki.reached_php()[before:]

    def assertDokuWikiPage(self, page):
        self.assertEqual(page.status, 200, page.text[:2000])
        self.assertTrue(page.headers.get("Content-Type", "").startswith("text/html"),
                        page.headers)
        self.assertIn('<meta name="generator" content="DokuWiki"/>', page.text)
        self.assertIn("<title>", page.text)

    def login(self, b, start="/doku.php?id=start&do=login"):
        form = b.open(start)
        self.assertDokuWikiPage(form)
        page, fields = b.submit(form, "dw__login", {"u": USER, "p": PASSWORD}, None)
        self.assertDokuWikiPage(page)
        self.assertIn("Logged in as", page.text, "not logged in:\n" + page.text[:3000])
        return page

    def edit(self, b, page_id, text, at="/doku.php?id=%s&do=edit"):
        """The edit form of page_id, sent back with `text`: (form page, the
        fields sent, the page after DokuWiki's redirect)."""
        form = b.open(at % page_id)
        self.assertDokuWikiPage(form)
        page, fields = b.submit(form, "dw__editform", {"wikitext": text}, "do[save]")
        return form, dict(fields), page


@unittest.skipIf(REASON and not IN_CI, REASON)
class DokuWiki(WikiCase):
    """The documented file, DokuWiki's default URLs (doku.php?id=...)."""

    def test_documented_file_checks(self):
        """verbd -t accepts the file exactly as documented."""
        d = tempfile.mkdtemp(prefix="verbd-apps-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "verbd.conf")
        with open(path, "w") as f:
            f.write(self.doc)
        p = run_verbd("-t", "-c", path)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))

    # -- the start page ----------------------------------------------------

    def test_start_page(self):
        srv = self.serve()
        b = Browser(self.base(srv))
        page, ran = self.php_runs_during(lambda: b.open("/"))
        self.assertDokuWikiPage(page)
        # Rendered by PHP from the test's data: the seeded start page, with
        # the title of the test's local.php.
        self.assertIn("The verbd test wiki</h1>", page.text)
        self.assertIn("<strong>verbd</strong>", page.text)
        self.assertIn("verbd test wiki]</title>", page.text)
        self.assertEqual(ran, ["/"])
        self.assertIn("DokuWiki", b.cookie_names(), "no session cookie: %r" % page.headers)

    # -- a page made through the edit form -------------------------------------

    def test_page_created_through_the_edit_form(self):
        srv = self.serve()
        b = Browser(self.base(srv))
        start = b.open("/")
        self.assertDokuWikiPage(start)
        # Anonymous visitors read only (the package's ACL): no edit form.
        anon = b.open("/doku.php?id=verbd_test&do=edit")
        self.assertNotIn('id="dw__editform"', anon.text)

        self.login(b)
        cookies = b.cookie_names()
        self.assertIn("DokuWiki", cookies)  # the session
        self.assertTrue(any(n.startswith("DW") and n != "DokuWiki" for n in cookies), cookies)

        text = ("====== Made through verbd ======\n\n"
                "A page written with **DokuWiki's edit form**, through verbd and PHP-FPM.\n\n"
                "  * item one\n  * item two\n")
        form, sent, page = self.edit(b, "verbd_test", text)
        # The form's hidden fields went back as they came: a real sectok
        # (a logged-in session's), the page id, the change check.
        self.assertRegex(sent["sectok"], r"^[0-9a-f]{32}$")
        self.assertEqual(sent["id"], "verbd_test")
        self.assertIn("changecheck", sent)
        self.assertEqual(sent["do[save]"], "1")
        # Saved, then redirected to the page (PHP's 302 for a Location).
        self.assertEqual(len(page.history), 1, page.history)
        status, location = page.history[0]
        self.assertIn(status, (302, 303))
        self.assertIn("id=verbd_test", location)
        self.assertDokuWikiPage(page)
        self.assertNotIn('id="dw__editform"', page.text)
        with open(os.path.join(self.wiki.data, "pages", "verbd_test.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), text.rstrip("\n") + "\n")

        # Read back, by this browser and by a new one (no cookies at all).
        for reader in (b, Browser(self.base(srv))):
            shown = reader.open("/doku.php?id=verbd_test")
            self.assertDokuWikiPage(shown)
            self.assertRegex(shown.text, r"<h1[^>]*>Made through verbd</h1>")
            self.assertIn("<strong>DokuWiki&#039;s edit form</strong>", shown.text)
            self.assertRegex(shown.text, r"<li[^>]*><div class=\"li\"> item two</div>")

        # Deleted again the way DokuWiki deletes: saved empty.
        form, sent, page = self.edit(b, "verbd_test", "")
        self.assertDokuWikiPage(page)
        self.assertFalse(os.path.exists(os.path.join(self.wiki.data, "pages", "verbd_test.txt")))
        gone = Browser(self.base(srv)).open("/doku.php?id=verbd_test")
        self.assertIn("This page does not exist anymore", gone.text)

    def test_save_refused_without_the_session(self):
        """The sectok is checked against the session: the same form sent
        from a browser that lost its cookies saves nothing."""
        srv = self.serve()
        b = Browser(self.base(srv))
        self.login(b)
        form = b.open("/doku.php?id=verbd_nosession&do=edit")
        self.assertDokuWikiPage(form)
        b.jar.clear()
        page, sent = b.submit(form, "dw__editform", {"wikitext": "lost"}, "do[save]")
        self.assertRegex(dict(sent)["sectok"], r"^[0-9a-f]{32}$")
        self.assertFalse(os.path.exists(
            os.path.join(self.wiki.data, "pages", "verbd_nosession.txt")))

    def test_media_uploaded_and_fetched(self):
        """An image sent through the media manager's upload form
        (multipart/form-data, 1.5 MB streamed to PHP), then fetched through
        lib/exe/fetch.php: whole, by range, and revalidated."""
        srv = self.serve()
        b = Browser(self.base(srv))
        self.login(b)
        manager = b.open("/doku.php?id=start&do=media&ns=&tab_files=upload")
        self.assertDokuWikiPage(manager)
        image = png(700, 700, 20)
        self.assertGreater(len(image), 1400000)
        page, sent = b.submit(manager, "dw__upload",
                              {"upload": ("verbd.png", "image/png", image), "mediaid": "verbd.png"},
                              None)
        self.assertDokuWikiPage(page)
        with open(os.path.join(self.wiki.data, "media", "verbd.png"), "rb") as f:
            self.assertEqual(f.read(), image)

        whole = b.open("/lib/exe/fetch.php?media=verbd.png")
        self.assertEqual(whole.status, 200)
        self.assertEqual(whole.headers.get("Content-Type"), "image/png")
        self.assertEqual(whole.body, image)
        part = self.raw(srv, "GET", "/lib/exe/fetch.php?media=verbd.png",
                        [("Range", "bytes=100-199")])
        self.assertEqual(part.status, 206)
        self.assertEqual(part.body, image[100:200])
        tag = whole.headers.get("ETag")
        self.assertTrue(tag, whole.headers)
        again = self.raw(srv, "GET", "/lib/exe/fetch.php?media=verbd.png", [("If-None-Match", tag)])
        self.assertEqual(again.status, 304)
        self.assertEqual(again.body, b"")

    def test_body_over_post_max_size(self):
        """A body past max_body (PHP's post_max_size, 8 MB) is 413 before
        PHP-FPM, with a Content-Length or chunked; one under it runs PHP."""
        srv = self.serve()
        big = 8 * 1024 * 1024 + 1
        r, ran = self.php_runs_during(lambda: self.raw(
            srv, "POST", "/doku.php?id=start",
            [("Content-Type", "application/x-www-form-urlencoded"),
             ("Content-Length", str(big))]))
        self.assertEqual(r.status, 413)
        self.assertEqual(ran, [])

        def chunked():
            c = Conn(srv.host, srv.port, timeout=30)
            try:
                c.send(build_request("POST", "/lib/exe/ajax.php", [
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Transfer-Encoding", "chunked")], host="localhost"))
                piece = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                for _ in range(big // 65536 + 1):
                    if not c.try_send(piece):
                        break
                c.try_send(b"0\r\n\r\n")
                return c.read_until_close(timeout=30)
            finally:
                c.close()

        out, ran = self.php_runs_during(chunked)
        self.assertEqual(ran, [])
        if out:
            self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])

        small = b"call=qsearch&q=verbd"
        r, ran = self.php_runs_during(lambda: self.raw(
            srv, "POST", "/lib/exe/ajax.php",
            [("Content-Type", "application/x-www-form-urlencoded"),
             ("Content-Length", str(len(small)))], small))
        self.assertEqual(r.status, 200)
        self.assertEqual(ran, ["/lib/exe/ajax.php"])

    # -- refused ----------------------------------------------------------------

    def test_refused_and_never_reach_php(self):
        srv = self.serve()
        targets = [p for p, _ in REFUSED] + RESPELLED
        methods = ["GET", "HEAD", "POST"]

        def ask():
            out = []
            for t in targets:
                for m in methods:
                    body = b"u=x" if m == "POST" else b""
                    hdrs = [("Content-Type", "application/x-www-form-urlencoded"),
                            ("Content-Length", str(len(body)))] if m == "POST" else None
                    out.append((m, t, self.raw(srv, m, t, hdrs, body)))
            return out

        answers, ran = self.php_runs_during(ask)
        for m, t, r in answers:
            with self.subTest(method=m, target=t):
                self.assertEqual(r.status, 403, r.body[:300])
                self.assertNotIn(b"<?php", r.body)
                self.assertNotIn(b"DokuWiki", r.body)
        self.assertEqual(ran, [], "requests that ran PHP")

    def test_without_the_rules_they_would_be_served(self):
        """The counterfactual: the documented file without its refusing
        locations.  Scripts under bin/, inc/, vendor/ and install.php run
        in PHP; data/ and conf/ are absent from Debian's web root."""
        srv = self.serve(protect=False)
        for target, without in REFUSED:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                if without == "php":
                    self.assertEqual(ran, [target], "%s did not run PHP: %r" % (target, r))
                else:
                    self.assertEqual(r.status, 404)
                    self.assertEqual(ran, [])
        # The installer, offered to anyone.
        r = self.raw(srv, "GET", "/install.php")
        self.assertEqual(r.status, 200)
        self.assertIn(b"installer", r.body.lower())

    # -- assets -------------------------------------------------------------------

    def test_assets_of_the_page(self):
        srv = self.serve()
        b = Browser(self.base(srv))
        page = b.open("/")
        self.assertDokuWikiPage(page)
        urls = Assets.of(page.text)
        css = [u for u in urls if "/lib/exe/css.php" in u]
        js = [u for u in urls if "/lib/exe/js.php" in u]
        images = [u for u in urls if u.startswith("/lib/tpl/")]
        self.assertTrue(css and js and images, urls)
        for u in urls:
            with self.subTest(url=u):
                r = b.open(u)
                self.assertEqual(r.status, 200, r.text[:300])
                self.assertTrue(r.body)
                ctype = r.headers.get("Content-Type", "")
                if "/lib/exe/css.php" in u:
                    self.assertTrue(ctype.startswith("text/css"), ctype)
                    self.assertIn(".dokuwiki", r.text)
                elif "/lib/exe/js.php" in u or "/lib/exe/jquery.php" in u:
                    self.assertIn("javascript", ctype)
                elif u.endswith(".png"):
                    self.assertEqual(ctype, "image/png")
                    self.assertEqual(r.body[:8], b"\x89PNG\r\n\x1a\n")

    def test_static_files_are_verbds(self):
        """Template and library files come from the static module (ETag,
        304), not PHP, through the symlinks' own locations."""
        srv = self.serve()
        for target in ["/lib/tpl/dokuwiki/images/logo.png", "/lib/images/license/button/cc.png",
                       "/lib/plugins/info/plugin.info.txt", "/lib/scripts/behaviour.js"]:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, 200)
                self.assertEqual(ran, [])
                tag = r.header("ETag")
                self.assertTrue(tag, r.headers)
                again = self.raw(srv, "GET", target, [("If-None-Match", tag)])
                self.assertEqual(again.status, 304)

    def test_other_entry_points(self):
        srv = self.serve()
        cases = [("/feed.php", 200, b"<rdf:RDF"),
                 ("/lib/exe/opensearch.php", 200, b"OpenSearchDescription"),
                 ("/index.php", 302, b"")]
        for target, status, text in cases:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, status, r.body[:500])
                self.assertIn(text, r.body)
                self.assertEqual(ran, [target])
        # Other files at the top go to PHP-FPM, which runs .php files only
        # (security.limit_extensions): DokuWiki's VERSION is not served.
        for target in ["/VERSION", "/.htaccess.dist"]:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, 403)
                self.assertNotIn(b"Igor", r.body)
                self.assertEqual(ran, [])
        # A script that is not there is verbd's 404, before PHP-FPM (whose
        # own answer would be "File not found.").
        for target in ["/nothing.php", "/lib/exe/nothing.php", "/doku.php/nothing.php"]:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, 404)
                self.assertNotIn(b"File not found", r.body)
                self.assertEqual(ran, [])

    # -- methods -----------------------------------------------------------------

    def test_methods(self):
        srv = self.serve()

        def ask():
            out = {}
            for m in ["PUT", "DELETE", "PATCH", "PROPFIND"]:
                out[m] = self.raw(srv, m, "/doku.php?id=start",
                                  [("Content-Length", "2")], b"{}")
            out["OPTIONS"] = self.raw(srv, "OPTIONS", "/doku.php")
            out["OPTIONS static"] = self.raw(srv, "OPTIONS", "/lib/tpl/dokuwiki/images/logo.png")
            out["OPTIONS *"] = self.raw(srv, "OPTIONS", "*")
            return out

        out, ran = self.php_runs_during(ask)
        for m in ["PUT", "DELETE", "PATCH", "PROPFIND"]:
            self.assertEqual(out[m].status, 501, "%s: %r" % (m, out[m]))
        allow = lambda r: sorted(x.strip() for x in (r.header("Allow") or "").split(","))
        self.assertIn(out["OPTIONS"].status, (200, 204))
        self.assertEqual(allow(out["OPTIONS"]), ["GET", "HEAD", "OPTIONS", "POST"])
        self.assertEqual(allow(out["OPTIONS static"]), ["GET", "HEAD", "OPTIONS"])
        self.assertEqual(allow(out["OPTIONS *"]), ["GET", "HEAD", "OPTIONS", "POST"])
        self.assertEqual(ran, [], "refused methods or OPTIONS reached PHP")


@unittest.skipIf(REASON and not IN_CI, REASON)
class NiceURLs(WikiCase):
    """DokuWiki with nice URLs ($conf['userewrite'] = 1) and the documented
    `location /` for them: pages at their names, _media, _detail and
    _export rewritten, the refusals and static files as before."""

    NICE = True

    def test_pages_at_their_names(self):
        srv = self.serve()
        b = Browser(self.base(srv))
        start = b.open("/")
        self.assertDokuWikiPage(start)
        # DokuWiki writes nice links: this is the mode under test.
        self.assertIn('href="/_export/raw/start"', start.text)
        page, ran = self.php_runs_during(lambda: b.open("/start"))
        self.assertDokuWikiPage(page)
        self.assertIn("The verbd test wiki</h1>", page.text)
        self.assertEqual(len(ran), 1)
        missing = b.open("/verbd_missing")
        self.assertDokuWikiPage(missing)
        self.assertIn("This topic does not exist yet", missing.text)

    def test_request_uri_is_the_clients(self):
        """REQUEST_URI is the target the client sent, as with nginx's
        $request_uri and as docs/fastcgi.md says, after try_files or a
        rewrite too (not /start?id=/start&do=login)."""
        srv = self.serve()
        for target in ["/start?do=login", "/_export/raw/start"]:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, 200)
                self.assertEqual(ran, [target])

    def test_page_created_at_its_name(self):
        srv = self.serve()
        b = Browser(self.base(srv))
        self.login(b, "/start?do=login")
        text = "====== Nice ======\n\nWritten at **its own name**.\n"
        form, sent, page = self.edit(b, "verbd_nice", text, "/%s?do=edit")
        self.assertRegex(sent["sectok"], r"^[0-9a-f]{32}$")
        self.assertEqual(len(page.history), 1, page.history)
        self.assertRegex(page.history[0][1], r"^http://[^/]+/verbd_nice$")
        self.assertDokuWikiPage(page)
        self.assertIn("<strong>its own name</strong>", page.text)
        shown = Browser(self.base(srv)).open("/verbd_nice")
        self.assertRegex(shown.text, r"<h1[^>]*>Nice</h1>")

    def test_media_detail_and_export(self):
        srv = self.serve()
        src = os.path.join(DOKU, "lib", "images", "license", "button", "cc.png")
        dst = os.path.join(self.wiki.data, "media", "verbd_cc.png")
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
        with open(src, "rb") as f:
            image = f.read()
        b = Browser(self.base(srv))
        media, ran = self.php_runs_during(lambda: b.open("/_media/verbd_cc.png"))
        self.assertEqual(media.status, 200)
        self.assertEqual(media.headers.get("Content-Type"), "image/png")
        self.assertEqual(media.body, image)
        self.assertEqual(len(ran), 1)
        detail = b.open("/_detail/verbd_cc.png")
        self.assertDokuWikiPage(detail)
        self.assertIn("verbd_cc.png", detail.text)
        raw = b.open("/_export/raw/start")
        self.assertEqual(raw.status, 200)
        with open(os.path.join(self.wiki.data, "pages", "start.txt"), encoding="utf-8") as f:
            self.assertEqual(raw.text, f.read())

    def test_files_and_refusals_as_before(self):
        srv = self.serve()
        for target, status in [("/doku.php", 200), ("/feed.php", 200),
                               ("/lib/tpl/dokuwiki/images/logo.png", 200)]:
            with self.subTest(target=target):
                r = self.raw(srv, "GET", target)
                self.assertEqual(r.status, status)
                self.assertNotIn(b"This topic does not exist", r.body)
        for target, _ in REFUSED:
            with self.subTest(target=target):
                r, ran = self.php_runs_during(lambda: self.raw(srv, "GET", target))
                self.assertEqual(r.status, 403)
                self.assertEqual(ran, [])


if __name__ == "__main__":
    unittest.main()
