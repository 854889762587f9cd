"""Caching headers and types (issue 16): `expires` per location on 2xx and
3xx only, `types { }` blocks read as data, `mime_types FILE|off`, and their
order: types > mime_types file (or /etc/mime.types) > built-in table."""

import calendar
import email.utils
import os
import time
import unittest

from test_config import ConfigCase


def http_time(value):
    return calendar.timegm(email.utils.parsedate(value))


class Expires(ConfigCase):
    def setUp(self):
        super().setUp()
        R = self.web.root
        self.serve(self.HEAD +
                   "location / { static %s; expires 1h; }\n"
                   "location /max/ { static %s; expires max; }\n"
                   "location /epoch/ { static %s; expires epoch; }\n"
                   "location /past/ { static %s; expires -1; }\n"
                   "location /zero/ { static %s; expires 0; }\n"
                   "location /off/ { static %s; expires off; }\n"
                   "location /none/ { static %s; }\n"
                   "location /both/ { static %s; expires 90; header X-Kept yes; }\n"
                   % ((R,) * 8))

    def fields(self, target, headers=None, method="GET"):
        r = self.fetch(target, method=method, headers=headers)
        return r, r.header_all("Cache-Control"), r.header_all("Expires")

    def test_lifetime(self):
        before = int(time.time())
        r, cc, exp = self.fetch_fields("/index.html")
        self.assertEqual(r.status, 200)
        self.assertEqual(cc, ["max-age=3600"])
        self.assertEqual(len(exp), 1)
        self.assertTrue(before + 3600 <= http_time(exp[0]) <= int(time.time()) + 3600, exp)
        self.assertEqual(http_time(exp[0]) - http_time(r.header("Date")), 3600)

    def fetch_fields(self, target, **kw):
        return self.fields(target, **kw)

    def test_head_and_not_modified_too(self):
        r, cc, _ = self.fields("/index.html", method="HEAD")
        self.assertEqual((r.status, cc), (200, ["max-age=3600"]))
        etag = self.fetch("/index.html").header("ETag")
        r, cc, exp = self.fields("/index.html", headers={"If-None-Match": etag})
        self.assertEqual((r.status, cc, len(exp)), (304, ["max-age=3600"], 1))

    def test_max(self):
        _, cc, exp = self.fields("/max/index.html")
        self.assertEqual((cc, exp), (["max-age=315360000"], ["Thu, 31 Dec 2037 23:55:55 GMT"]))

    def test_epoch(self):
        _, cc, exp = self.fields("/epoch/index.html")
        self.assertEqual((cc, exp), (["no-cache"], ["Thu, 01 Jan 1970 00:00:01 GMT"]))

    def test_negative(self):
        r, cc, exp = self.fields("/past/index.html")
        self.assertEqual(cc, ["no-cache"])
        self.assertEqual(http_time(exp[0]), http_time(r.header("Date")) - 1)

    def test_zero(self):
        r, cc, exp = self.fields("/zero/index.html")
        self.assertEqual(cc, ["max-age=0"])
        self.assertEqual(exp, [r.header("Date")])

    def test_off_and_unset_add_nothing(self):
        for target in ("/off/index.html", "/none/index.html"):
            with self.subTest(target=target):
                r, cc, exp = self.fields(target)
                self.assertEqual((r.status, cc, exp), (200, [], []))

    def test_not_on_errors_or_refusals(self):
        for target, method, status in (("/missing.txt", "GET", 404),
                                       ("/index.html", "FROB", 501)):
            with self.subTest(status=status):
                r, cc, exp = self.fields(target, method=method)
                self.assertEqual((r.status, cc, exp), (status, [], []))

    def test_redirect_is_3xx(self):
        r, cc, _ = self.fields("/sub")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(cc, ["max-age=3600"])

    def test_with_header(self):
        r, cc, _ = self.fields("/both/index.html")
        self.assertEqual((cc, r.header("X-Kept")), (["max-age=90"], "yes"))

    def test_bad_values(self):
        for value in ("1y", "soon", "1.5h", "500ms", "11000d", ""):
            with self.subTest(value=value):
                errs = self.errors(self.HEAD + "location / { static %s; expires '%s'; }\n"
                                   % (self.web.root, value))
                self.assertEqual(len(errs), 1, errs)
                self.assertIn("expires", errs[0][3])


class Types(ConfigCase):
    def setUp(self):
        super().setUp()
        for name in ("a.top", "a.txt", "a.own", "a.OWN2", "a.ff", "a.html", "a.dat", "a.css"):
            with open(os.path.join(self.web.root, name), "w") as f:
                f.write("x\n")

    def types_of(self, prefix, names):
        out = {}
        for n in names:
            r = self.fetch(prefix + n)
            self.assertEqual(r.status, 200, (prefix, n))
            out[n] = r.header("Content-Type")
        return out

    def test_order(self):
        R = self.web.root
        self.write("my.types", "# a mime.types file\ntext/x-fromfile ff top\n"
                   "application/x-dat-file dat\n")
        self.serve(self.HEAD +
                   "types {\n    text/x-top top;\n    application/x-over txt;\n"
                   "    # a comment inside\n    application/x-dat dat;\n}\n"
                   "location / { static %s; }\n"
                   "location /own/ { static %s; types { text/x-own own own2; } "
                   "mime_types off; }\n"
                   "location /file/ { static %s; mime_types my.types; }\n" % (R, R, R))
        names = ["a.top", "a.txt", "a.own", "a.OWN2", "a.ff", "a.html", "a.dat"]
        self.assertEqual(self.types_of("/", names), {
            "a.top": "text/x-top; charset=utf-8",      # config types
            "a.txt": "application/x-over",             # ... over the built-in text/plain
            "a.own": "application/octet-stream",
            "a.OWN2": "application/octet-stream",
            "a.ff": "application/octet-stream",
            "a.html": "text/html; charset=utf-8",      # built-in (or /etc/mime.types)
            "a.dat": "application/x-dat",
        })
        # A location's own types { } replaces the inherited block.
        own = self.types_of("/own/", names)
        self.assertEqual(own["a.own"], "text/x-own; charset=utf-8")
        self.assertEqual(own["a.OWN2"], "text/x-own; charset=utf-8")
        self.assertEqual(own["a.top"], "application/octet-stream")
        self.assertEqual(own["a.txt"], "text/plain; charset=utf-8")  # built-in
        # The file: under config types, over the built-in table.
        f = self.types_of("/file/", names)
        self.assertEqual(f["a.ff"], "text/x-fromfile; charset=utf-8")
        self.assertEqual(f["a.top"], "text/x-top; charset=utf-8")
        self.assertEqual(f["a.dat"], "application/x-dat")
        self.assertEqual(f["a.css"] if "a.css" in f else self.fetch("/file/a.css")
                         .header("Content-Type"), "text/css; charset=utf-8")

    @unittest.skipUnless(os.path.isfile("/etc/mime.types"), "no /etc/mime.types here")
    def test_system_file_by_default(self):
        # An extension the built-in table lacks and the system file has.
        ext, want = None, None
        with open("/etc/mime.types") as f:
            for line in f:
                words = line.split("#")[0].split()
                if len(words) >= 2 and words[0] == "application/vnd.oasis.opendocument.text":
                    ext, want = words[1], words[0]
        if not ext:
            self.skipTest("/etc/mime.types has no OpenDocument text type")
        with open(os.path.join(self.web.root, "doc." + ext), "w") as f:
            f.write("x")
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; }\nlocation /off/ { static %s; "
                   "mime_types off; }\n" % (R, R))
        self.assertEqual(self.fetch("/doc." + ext).header("Content-Type"), want)
        self.assertEqual(self.fetch("/off/doc." + ext).header("Content-Type"),
                         "application/octet-stream")

    def test_lines_are_data(self):
        # Words that are directive names elsewhere, on lines of their own.
        R = self.web.root
        rc, out, err = self.check(self.HEAD + "location / { static %s; types {\n"
                                  "    text/x-a  static\n        index\n        include;\n"
                                  "    text/x-b  listen;\n} }\n" % R)
        self.assertEqual(rc, 0, err)

    def test_errors_point_at_the_line(self):
        R = self.web.root
        self.assertOneError(self.HEAD + "location / { static %s;\n types {\n"
                            "  html htm;\n } }\n" % R, 6, 3,
                            'in types: "html" is not a media type (TYPE/SUBTYPE)')
        self.assertOneError(self.HEAD + "location / { static %s;\n types {\n"
                            "  text/html html htm\n  image/png png;\n } }\n" % R, 7, 3,
                            'in types: "image/png" is not an extension (missing ";" before it?)')
        line = "location / { static %s; types text/html; }\n" % R
        self.assertOneError(self.HEAD + line, 4, line.index("text/html") + 1,
                            "types takes a block and no arguments: types { TYPE EXT...; }")

    def test_mime_types_file_must_exist(self):
        errs = self.errors(self.HEAD + "location / { static %s; mime_types nope.types; }\n"
                           % self.web.root)
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("mime_types %s: No such file or directory"
                      % os.path.join(self.dir, "nope.types"), errs[0][3])


if __name__ == "__main__":
    unittest.main()
