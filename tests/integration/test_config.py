"""The config file (docs/config.md): every error with its message and
position, verbd -t and -M, and the effect of each directive on a running
server."""

import os
import re
import shlex
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import (Conn, Server, VerbdTestCase, build_request, claim_fixed_port, free_port,
                     get_request, run_verbd, verbd_bin, webroot)

ERROR_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def config_server(config, *args, cwd=None):
    """A Server running `verbd -c CONFIG ARGS` exactly: no --listen or
    --access-log added, so the config file's own take effect."""
    srv = Server(None, *args, cwd=cwd)
    srv.command = lambda: (shlex.split(Server.WRAPPER) + [verbd_bin(), "-c", str(config)] +
                           [str(a) for a in args])
    return srv


def builtin_modules():
    """Names of the modules `verbd -M` lists as built in, in its order."""
    p = run_verbd("-M")
    return re.findall(r"^module (\S+?):", p.stdout.decode(), re.M)


class ConfigCase(VerbdTestCase):
    """No server of its own: each test writes a config and starts one."""

    # The usual head of a test config: a free port, no access log on stdout,
    # one worker (a few tests count processes or read logs).
    HEAD = "listen 127.0.0.1:0;\naccess_log off;\nworkers 1;\n"

    def setUp(self):
        self.web = webroot()
        self.conns = []
        self.dir = tempfile.mkdtemp(prefix="verbd-conf-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        return path

    def check(self, text, name="verbd.conf"):
        """verbd -t -c on `text`: (exit status, stdout, stderr)."""
        path = self.write(name, text)
        p = run_verbd("-t", "-c", path)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def errors(self, text, name="verbd.conf"):
        """The errors verbd -t reports for `text`: [(file, line, col, msg)];
        requires exit status 1."""
        rc, out, err = self.check(text, name)
        self.assertEqual(rc, 1, "verbd -t accepted:\n%s\nstdout: %s\nstderr: %s" % (text, out, err))
        found = []
        for ln in err.splitlines():
            m = ERROR_RE.match(ln)
            if m:
                found.append((m.group("file"), int(m.group("line")), int(m.group("col")),
                              m.group("msg")))
            else:
                self.assertTrue(ln.startswith("verbd: "), "stray stderr line %r" % ln)
        self.assertTrue(found, "no FILE:LINE:COL error in %r" % err)
        return found

    def assertOneError(self, text, line, col, msg, exact=True):
        errs = self.errors(text)
        self.assertEqual(len(errs), 1, errs)
        f, l, c, m = errs[0]
        self.assertEqual(f, os.path.join(self.dir, "verbd.conf"))
        self.assertEqual((l, c), (line, col), errs)
        if exact:
            self.assertEqual(m, msg)
        else:
            self.assertIn(msg, m)

    def serve(self, text, *args, name="verbd.conf", cwd=None):
        path = self.write(name, text)
        srv = config_server(path, *args, cwd=cwd).start()
        self.addCleanup(srv.cleanup)
        self._servers = getattr(self, "_servers", []) + [srv]
        self.server = srv
        return srv

    def fetch(self, target, method="GET", headers=None, server=None):
        c = self.connect(server=server)
        return c.request(method, target, headers)


# --------------------------------------------------------------------------
# Errors: message and position
# --------------------------------------------------------------------------

class SyntaxErrors(ConfigCase):
    def test_unknown_directive(self):
        self.assertOneError("listen 127.0.0.1:0;\n  frobnicate yes;\n", 2, 3,
                            'unknown directive "frobnicate"')

    def test_unknown_directive_in_location(self):
        R = self.web.root
        self.assertOneError("location / {\n    static %s;\n    bogus on;\n}\n" % R, 3, 5,
                            'unknown directive "bogus"')

    def test_missing_semicolon_before_next_line(self):
        self.assertOneError("listen 127.0.0.1:0\nworkers 1;\n", 1, 19,
                            'missing ";" after "127.0.0.1:0"')

    def test_missing_semicolon_before_close(self):
        self.assertOneError("location / { static %s }\n" % self.web.root,
                            1, 21 + len(self.web.root), 'missing ";" after "%s"' % self.web.root)

    def test_missing_semicolon_at_end_of_file(self):
        self.assertOneError("workers 1", 1, 10, 'missing ";" after "1"')

    def test_unexpected_close(self):
        self.assertOneError("workers 1;\n}\n", 2, 1, 'unexpected "}"')

    def test_unexpected_semicolon(self):
        self.assertOneError("workers 1;;\n", 1, 11, 'unexpected ";"')

    def test_unterminated_block(self):
        self.assertOneError("workers 1;\nlocation / {\n    static %s;\n" % self.web.root, 2, 12,
                            '"{" is not closed (missing "}")')

    def test_unterminated_string(self):
        self.assertOneError('workers 1;\naccess_log "/tmp/x.log;\n', 2, 12,
                            'unterminated string (no closing ")')

    def test_unterminated_single_quoted_string(self):
        self.assertOneError("error_log 'stderr;\n", 1, 11, "unterminated string (no closing ')")

    def test_text_glued_to_a_string(self):
        self.assertOneError('access_log "off"x;\n', 1, 17,
                            'unexpected "x" after a quoted string (missing space?)')

    def test_token_too_long(self):
        self.assertOneError("workers 1;\naccess_log %s;\n" % ("a" * 5000), 2, 12,
                            "token longer than 4096 bytes")

    def test_nul_byte(self):
        self.assertOneError(b"workers 1;\n  \0\n", 2, 3, "NUL byte in the file")

    def test_file_over_one_mib(self):
        text = "# " + "x" * (1 << 20) + "\nworkers 1;\n"
        self.assertOneError(text, 1, 1, "file larger than 1 MiB")

    def test_block_on_a_simple_directive(self):
        self.assertOneError("workers 1 {\n}\n", 1, 11, "workers does not take a block")

    def test_missing_file(self):
        path = os.path.join(self.dir, "nope.conf")
        p = run_verbd("-t", "-c", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:1:1: No such file or directory" % path, p.stderr.decode())

    def test_directory_as_file(self):
        p = run_verbd("-t", "-c", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:1:1: not a regular file" % self.dir, p.stderr.decode())

    def test_every_error_reported_in_order(self):
        R = self.web.root
        text = ("foo;\n"                       # 1
                "workers lots;\n"              # 2
                "location / {\n"               # 3
                "    static %s;\n"             # 4
                "    trace maybe;\n"           # 5
                "}\n"                          # 6
                "header X-A b;\n"              # 7
                "location / { static %s; }\n"  # 8
                "}\n" % (R, R))                # 9
        errs = self.errors(text)
        self.assertEqual([(l, c) for _, l, c, _ in errs],
                         [(1, 1), (2, 9), (5, 11), (7, 1), (8, 1), (9, 1)], errs)
        rc, out, err = self.check(text)
        self.assertIn("6 errors", err)

    def test_comments_and_quotes(self):
        # Neither a comment nor a quoted string is a directive or a ";".
        R = self.web.root
        rc, out, err = self.check("# a comment; with { braces }\n"
                                  "workers 1;  # trailing comment\n"
                                  "location / {\n"
                                  "    static '%s';\n"
                                  "    header X-Q \"a; b { \\\"c\\\" } # d\";\n"
                                  "}\n" % R)
        self.assertEqual((rc, err), (0, ""), err)


class PlacementErrors(ConfigCase):
    def test_location_directive_at_top_level(self):
        for name, args in [("header", "X-A b"), ("methods", "GET"), ("trace", "on"),
                           ("listing", "on"), ("index", "a.html")]:
            with self.subTest(name=name):
                self.assertOneError("workers 1;\n%s %s;\n" % (name, args), 2, 1,
                                    "%s is only allowed inside location" % name)

    def test_module_at_top_level(self):
        self.assertOneError("static %s;\n" % self.web.root, 1, 1,
                            "static is only allowed inside location")

    def test_server_directive_in_location(self):
        for name, arg in [("listen", "127.0.0.1:0"), ("workers", "2"),
                          ("access_log", "off"), ("error_log", "stderr"),
                          ("unknown_method", "405")]:
            with self.subTest(name=name):
                self.assertOneError("location / {\n    static %s;\n    %s %s;\n}\n"
                                    % (self.web.root, name, arg), 3, 5,
                                    "%s is not allowed inside location" % name)

    def test_nested_location(self):
        R = self.web.root
        self.assertOneError("location / {\n    static %s;\n    location /a/ { static %s; }\n}\n"
                            % (R, R), 3, 5, "location is not allowed inside location")

    def test_location_without_block(self):
        self.assertOneError("location /a/;\n", 1, 1, "location needs a block: location /a/ { ... }")

    def test_location_without_module(self):
        self.assertOneError("workers 1;\nlocation /a/ {\n    trace on;\n}\n", 2, 1,
                            "location /a/ has no module directive (built in: %s; for example: "
                            "static PATH;)" % ", ".join(builtin_modules()))

    def test_location_with_two_modules(self):
        R = self.web.root
        self.assertOneError("location /a/ {\n    static %s;\n    static %s;\n}\n" % (R, R), 3, 5,
                            "location /a/ already has a module (static, line 2); one module per "
                            "location")

    def test_module_not_built_in(self):
        built = builtin_modules()
        self.assertIn("static", built)
        for name in ("webdav", "proxy"):
            if name in built:
                continue
            with self.subTest(name=name):
                self.assertOneError("location /files/ {\n    %s ./data;\n}\n" % name, 2, 5,
                                    "module %s is not built into this verbd (built in: %s)"
                                    % (name, ", ".join(built)))

    def test_duplicate_location(self):
        R = self.web.root
        path = os.path.join(self.dir, "verbd.conf")
        self.assertOneError("location /a/ { static %s; }\nlocation = /a/ { static %s; }\n"
                            "  location /a/ { static %s; }\n" % (R, R, R), 3, 3,
                            "duplicate location /a/ (first at %s:1)" % path)

    def test_duplicate_exact_location(self):
        R = self.web.root
        self.assertOneError("location = /a { static %s; }\nlocation = /a { static %s; }\n"
                            % (R, R), 2, 1,
                            "duplicate location = /a (first at %s:1)"
                            % os.path.join(self.dir, "verbd.conf"))

    def test_location_path_must_be_absolute(self):
        self.assertOneError("location files/ { static %s; }\n" % self.web.root, 1, 10,
                            'location path "files/" must start with "/"')

    def test_unknown_location_modifier_refused(self):
        self.assertOneError("location ~~ \\.php$ { static %s; }\n" % self.web.root, 1, 10,
                            'location modifier "~~" is not supported (= for one exact path, ^~ '
                            'for a prefix that stops the regex search, ~ and ~* for a regular '
                            'expression)')


class ValueErrors(ConfigCase):
    def test_bad_setting_value(self):
        cases = [("workers", "lots"), ("max_body", "1q"), ("header_timeout", "soon"),
                 ("max_connections", "-1"), ("unknown_method", "404"),
                 ("refusal_cache", "forever"), ("log_level", "loud")]
        for name, value in cases:
            with self.subTest(name=name):
                errs = self.errors("workers 1;\n%s %s;\n" % (name, value))
                self.assertEqual(len(errs), 1, errs)
                self.assertEqual(errs[0][1:3], (2, len(name) + 2))
                self.assertIn(value, errs[0][3])
                self.assertIn(name, errs[0][3])

    def test_bad_listen_address(self):
        for addr in ("8080", "127.0.0.1:99999", "[::1]8080", "1.2.3.4:"):
            with self.subTest(addr=addr):
                self.assertOneError("listen %s;\n" % addr, 1, 8,
                                    'invalid listen address "%s" (want ADDR:PORT or [V6]:PORT)'
                                    % addr)

    def test_error_log_level(self):
        errs = self.errors("error_log stderr loud;\n")
        self.assertEqual([e[1:3] for e in errs], [(1, 18)], errs)
        self.assertIn("loud", errs[0][3])

    def test_wrong_argument_counts(self):
        R = self.web.root
        cases = [
            ("listen;\n", 1, 1, "listen takes one address (ADDR:PORT) and optionally tls"),
            ("listen 127.0.0.1:0 127.0.0.1:0;\n", 1, 20,
             'listen: unexpected "127.0.0.1:0" (want tls)'),
            ("workers;\n", 1, 1, "workers takes one value"),
            ("max_body 1m 2m;\n", 1, 1, "max_body takes one value"),
            ("error_log;\n", 1, 1, "error_log takes a destination (PATH, stderr or off) and an "
                                   "optional level"),
            ("error_log stderr info more;\n", 1, 1, "error_log takes a destination (PATH, stderr "
                                                    "or off) and an optional level"),
            ("location { static %s; }\n" % R, 1, 1, "location takes a path: location [=|^~|~|~*] "
                                                    "PATH { ... }"),
            ("location /a/ {\n  static %s %s;\n}\n" % (R, R), 2, 3,
             "static takes one argument (the root directory)"),
            ("include;\n", 1, 1, "include takes one file name or pattern"),
        ]
        for text, line, col, msg in cases:
            with self.subTest(text=text):
                self.assertOneError(text, line, col, msg)

    def test_location_directive_arity(self):
        # The mapping's setter reports it at the directive.
        R = self.web.root
        for text in ("header X-A;", "header X-A b c;", "trace;", "listing on off;", "methods;",
                     "index;"):
            with self.subTest(text=text):
                errs = self.errors("location / {\n    static %s;\n    %s\n}\n" % (R, text))
                self.assertEqual([e[1:3] for e in errs], [(3, 5)], errs)

    def test_bad_location_values(self):
        R = self.web.root
        cases = [("trace maybe;", 11, "maybe"), ("listing perhaps;", 13, "perhaps"),
                 ("index ../x;", 11, "../x")]
        for text, col, word in cases:
            with self.subTest(text=text):
                errs = self.errors("location / {\n    static %s;\n    %s\n}\n" % (R, text))
                self.assertEqual([e[1:3] for e in errs], [(3, col)], errs)
                self.assertIn(word, errs[0][3])

    def test_methods_cannot_widen(self):
        errs = self.errors("location / {\n    static %s;\n    methods GET PUT;\n}\n"
                           % self.web.root)
        # At the method named.
        self.assertEqual([e[1:3] for e in errs], [(3, 17)], errs)
        self.assertIn("PUT", errs[0][3])

    def test_missing_root(self):
        missing = os.path.join(self.dir, "no-such-dir")
        errs = self.errors("location / {\n    static %s;\n}\n" % missing)
        self.assertEqual([e[1:3] for e in errs], [(2, 12)], errs)
        self.assertIn("No such file or directory", errs[0][3])


class IncludeErrors(ConfigCase):
    def test_include_not_found(self):
        self.assertOneError("workers 1;\ninclude  missing.conf;\n", 2, 10,
                            'include "%s": No such file or directory'
                            % os.path.join(self.dir, "missing.conf"))

    def test_error_in_included_file_names_that_file(self):
        self.write("conf.d/extra.conf", "workers 1;\n\n   bogus;\n")
        errs = self.errors("include conf.d/extra.conf;\n")
        self.assertEqual(errs, [(os.path.join(self.dir, "conf.d/extra.conf"), 3, 4,
                                 'unknown directive "bogus"')])

    def test_include_cycle(self):
        self.write("b.conf", "workers 1;\ninclude verbd.conf;\n")
        errs = self.errors("include b.conf;\n")
        self.assertEqual(errs, [(os.path.join(self.dir, "b.conf"), 2, 9,
                                 'include "%s": a cycle (the file is already being read)'
                                 % os.path.join(self.dir, "verbd.conf"))])

    def test_self_include(self):
        self.assertOneError("include verbd.conf;\n", 1, 9,
                            'include "%s": a cycle (the file is already being read)'
                            % os.path.join(self.dir, "verbd.conf"))

    def test_include_depth_limit(self):
        for i in range(1, 20):
            self.write("d%d.conf" % i, "include d%d.conf;\n" % (i + 1))
        self.write("d20.conf", "workers 1;\n")
        errs = self.errors("include d1.conf;\n")
        # verbd.conf and d1..d15 are 16 files deep; d15 may not include d16.
        self.assertEqual(errs, [(os.path.join(self.dir, "d15.conf"), 1, 9,
                                 'include "%s": includes nested more than 16 deep'
                                 % os.path.join(self.dir, "d16.conf"))])

    def test_total_includes_bounded(self):
        for i in range(300):
            self.write("many/%03d.conf" % i, "workers 1;\n")
        errs = self.errors("include many/*.conf;\n")
        self.assertTrue(all(e[1:3] == (1, 9) for e in errs), errs[:3])
        self.assertIn("more than 256 files included", errs[0][3])

    def test_include_inside_location_is_checked_there(self):
        self.write("loc.conf", "listen 127.0.0.1:0;\n")
        errs = self.errors("location / {\n    static %s;\n    include loc.conf;\n}\n"
                           % self.web.root)
        self.assertEqual(errs, [(os.path.join(self.dir, "loc.conf"), 1, 1,
                                 "listen is not allowed inside location")])

    def test_unbalanced_braces_in_included_file(self):
        self.write("half.conf", "location / {\n")
        errs = self.errors("include half.conf;\n")
        self.assertIn((os.path.join(self.dir, "half.conf"), 1, 12, '"{" is not closed (missing "}")'),
                      errs)


# --------------------------------------------------------------------------
# verbd -t, -M and the command line with -c
# --------------------------------------------------------------------------

class CheckMode(ConfigCase):
    def test_ok(self):
        rc, out, err = self.check(self.HEAD + "location / { static %s; }\n" % self.web.root)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "%s: ok\n" % os.path.join(self.dir, "verbd.conf"))
        self.assertEqual(err, "")

    def test_ok_names_the_file_as_given(self):
        self.write("verbd.conf", self.HEAD + "location / { static %s; }\n" % self.web.root)
        p = run_verbd("-t", "-c", "verbd.conf", cwd=self.dir)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, "verbd.conf: ok\n"), p.stderr)

    def test_check_binds_nothing(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        text = "listen 127.0.0.1:%d;\nlisten [::1]:%d;\nlocation / { static %s; }\n" % (
            port, port, self.web.root)
        rc, out, err = self.check(text)
        self.assertEqual(rc, 0, err)
        # Served for real, the same file fails: the address is taken.
        p = run_verbd("-c", os.path.join(self.dir, "verbd.conf"))
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr.decode(), r"verbd\.conf:1:8: listen 127\.0\.0\.1:%d: " % port)

    def test_the_example_file_checks(self):
        example = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..",
                                                "verbd.conf.example"))
        with open(example) as f:
            text = f.read()
        # Its roots are placeholders: point them at real directories.
        for d in ("public", "hello", "data"):
            os.makedirs(os.path.join(self.dir, d))
        rc, out, err = self.check(text)
        self.assertEqual(rc, 0, err)

    def test_t_without_c(self):
        p = run_verbd("-t")
        self.assertEqual(p.returncode, 2)
        self.assertTrue(p.stderr.decode().startswith("verbd: "), p.stderr)

    def test_directory_with_c(self):
        path = self.write("verbd.conf", "location / { static %s; }\n" % self.web.root)
        p = run_verbd("-c", path, self.web.root)
        self.assertEqual(p.returncode, 2)
        self.assertTrue(p.stderr.decode().startswith("verbd: "), p.stderr)

    def test_trace_and_listing_flags_with_c(self):
        path = self.write("verbd.conf", "location / { static %s; }\n" % self.web.root)
        for flag in ("--trace", "--listing"):
            with self.subTest(flag=flag):
                p = run_verbd("-c", path, flag)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(len(p.stderr.decode().splitlines()), 1, p.stderr)

    def test_errors_exit_1_when_serving(self):
        path = self.write("verbd.conf", self.HEAD + "bogus;\n")
        p = run_verbd("-c", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:4:1: unknown directive \"bogus\"" % path, p.stderr.decode())
        self.assertNotIn("listening", p.stdout.decode())

    def test_help_mentions_config_options(self):
        out = run_verbd("--help").stdout.decode()
        for flag in ("-c, --config", "-t, --test", "-M, --modules"):
            self.assertIn(flag, out)


class Modules(ConfigCase):
    def test_lists_built_in_modules(self):
        p = run_verbd("-M")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        line = [l for l in out.splitlines() if re.search(r"\bstatic\b", l)]
        self.assertTrue(line, out)
        for m in ("GET", "HEAD"):
            self.assertIn(m, line[0])
        self.assertNotIn("/", out.replace("\n", " ").split("static", 1)[0])

    def test_with_config_lists_locations(self):
        R = self.web.root
        path = self.write("verbd.conf", self.HEAD + "location / { static %s; trace on; }\n"
                          "location /ro/ { static %s; methods GET HEAD; }\n" % (R, R))
        p = run_verbd("-M", "-c", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        ro = [l for l in out.splitlines() if "/ro/" in l]
        self.assertEqual(len(ro), 1, out)
        self.assertIn("GET, HEAD", ro[0])
        self.assertNotIn("TRACE", ro[0])
        root = [l for l in out.splitlines() if re.search(r"(^|\s)/(:|\s|$)", l)]
        self.assertEqual(len(root), 1, out)
        self.assertIn("TRACE", root[0])
        self.assertNotIn(R, out, "a file-system path in -M output")

    def test_with_broken_config(self):
        path = self.write("verbd.conf", "bogus;\n")
        p = run_verbd("-M", "-c", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:1:1: unknown directive" % path, p.stderr.decode())


class CommandLineOverrides(ConfigCase):
    def test_listen_on_command_line_replaces_the_files(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        text = "listen 127.0.0.1:%d;\naccess_log off;\nlocation / { static %s; }\n" % (
            busy.getsockname()[1], self.web.root)
        srv = self.serve(text, "--listen", "127.0.0.1:0")
        self.assertEqual(len(srv.addresses), 1)
        self.assertNotEqual(srv.port, busy.getsockname()[1])
        r = self.fetch("/index.html")
        self.assertEqual(r.body, self.web.index)

    def test_set_overrides_the_file(self):
        self.serve(self.HEAD + "max_body 10;\nlocation / { static %s; }\n" % self.web.root,
                   "--set", "max_body=100")
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", "50")], b"x" * 50))
        self.assertEqual(c.read_response().status, 200)

    def test_file_applies_without_override(self):
        self.serve(self.HEAD + "max_body 10;\nlocation / { static %s; }\n" % self.web.root)
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", "50")], b"x" * 50))
        self.assertEqual(c.read_response().status, 413)

    def test_access_log_option_overrides_the_file(self):
        log = os.path.join(self.dir, "cli.log")
        self.serve("listen 127.0.0.1:0;\nworkers 1;\naccess_log file.log;\n"
                   "location / { static %s; }\n" % self.web.root, "--access-log", log)
        self.fetch("/index.html")
        self.assertTrue(wait_for(lambda: b"GET /index.html" in read(log)), read(log))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "file.log")))

    def test_default_listen_when_none_given(self):
        claim_fixed_port(self, 8080)
        self.serve("access_log off;\nworkers 1;\nlocation / { static %s; }\n" % self.web.root)
        self.assertEqual(self.server.addresses, [("127.0.0.1", 8080)])
        self.assertIn("verbd: listening on http://127.0.0.1:8080/", self.server.stdout_lines)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# --------------------------------------------------------------------------
# Each directive's effect
# --------------------------------------------------------------------------

class ServerDirectives(ConfigCase):
    def test_listen_from_the_file(self):
        srv = self.serve("listen 127.0.0.1:0;\nlisten 127.0.0.1:0;\naccess_log off;\n"
                         "location / { static %s; }\n" % self.web.root)
        self.assertTrue(wait_for(lambda: len(srv.addresses) == 2), srv.stdout_lines)
        for host, port in srv.addresses:
            conn = Conn(host, port)
            self.conns.append(conn)
            self.assertEqual(conn.request("GET", "/index.html").body, self.web.index)

    def test_listen_ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        srv = self.serve("listen [::1]:0;\naccess_log off;\nlocation / { static %s; }\n"
                         % self.web.root)
        self.assertEqual(srv.host, "::1")
        self.assertEqual(self.fetch("/index.html").status, 200)

    def test_workers(self):
        srv = self.serve("listen 127.0.0.1:0;\naccess_log off;\nworkers 3;\n"
                         "location / { static %s; }\n" % self.web.root)
        def children():
            try:
                with open("/proc/%d/task/%d/children" % (srv.pid, srv.pid)) as f:
                    return f.read().split()
            except OSError:
                return None
        if children() is None:
            self.skipTest("no /proc children file")
        self.assertTrue(wait_for(lambda: len(children()) == 3), children())

    def test_limits(self):
        self.serve(self.HEAD + "max_target 100;\nmax_header 1k;\nmax_fields 10;\nmax_body 1k;\n"
                   "location / { static %s; }\n" % self.web.root)
        cases = [
            (build_request("GET", "/" + "a" * 100), 414),
            (build_request("GET", "/", [("X-Big", "b" * 1100)]), 431),
            (build_request("GET", "/", [("X-F%d" % i, "v") for i in range(10)]), 431),
            (build_request("GET", "/", [("Content-Length", "1025")]), 413),
        ]
        for raw, status in cases:
            with self.subTest(status=status):
                c, r = self.exchange(raw)
                self.assertStatus(r, status)
        c, r = self.exchange(build_request("GET", "/" + "a" * 99))
        self.assertStatus(r, 404)

    def test_header_timeout(self):
        self.serve(self.HEAD + "header_timeout 1s;\nlocation / { static %s; }\n" % self.web.root)
        c = self.connect()
        started = time.monotonic()
        c.send(b"GET /ind")
        self.assertTrue(c.is_closed(timeout=4.0))
        self.assertLess(time.monotonic() - started, 3.5)

    def test_idle_timeout(self):
        self.serve(self.HEAD + "idle_timeout 1s;\nlocation / { static %s; }\n" % self.web.root)
        c = self.connect()
        self.assertEqual(c.request("GET", "/index.html").status, 200)
        started = time.monotonic()
        self.assertFalse(c.is_closed(timeout=0.5), "closed long before idle_timeout")
        self.assertTrue(c.is_closed(timeout=3.0), "idle connection not closed")
        self.assertLess(time.monotonic() - started, 3.5)

    def test_default_idle_timeout_keeps_connection(self):
        self.serve(self.HEAD + "location / { static %s; }\n" % self.web.root)
        c = self.connect()
        self.assertEqual(c.request("GET", "/index.html").status, 200)
        self.assertFalse(c.is_closed(timeout=1.5))

    def test_body_timeout(self):
        self.serve(self.HEAD + "body_timeout 1s;\nlocation / { static %s; }\n" % self.web.root)
        c = self.connect()
        c.send(build_request("GET", "/pipe/1.txt", [("Content-Length", "5")]) + b"he")
        started = time.monotonic()
        c.read_all_responses(timeout=4.0)
        self.assertLess(time.monotonic() - started, 3.5)

    def test_shutdown_timeout(self):
        srv = self.serve(self.HEAD + "shutdown_timeout 1s;\nsend_timeout 30s;\n"
                         "location / { static %s; }\n" % self.web.root)
        c = self.connect(rcvbuf=4096)
        c.send(get_request("/big.bin") * 50)
        time.sleep(0.3)
        started = time.monotonic()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(8), 0)
        self.assertLess(time.monotonic() - started, 4.0)

    def test_max_connections(self):
        self.serve(self.HEAD + "max_connections 2;\nlocation / { static %s; }\n" % self.web.root)
        first = [self.connect() for _ in range(2)]
        for c in first:
            self.assertUsable(c)
        c = self.connect(timeout=3.0)
        c.try_send(get_request("/index.html"))
        data = c.read_until_close(timeout=3.0)
        if data:
            c.buf = data
            self.assertEqual(c.read_response().status, 503)

    def test_access_log_relative_to_the_config(self):
        # Started from another directory: the log lands beside the config.
        os.makedirs(os.path.join(self.dir, "logs"))
        self.serve("listen 127.0.0.1:0;\nworkers 1;\naccess_log logs/access.log;\n"
                   "location / { static %s; }\n" % self.web.root, cwd="/")
        self.fetch("/index.html", headers=[("User-Agent", "conf-test")])
        log = os.path.join(self.dir, "logs", "access.log")
        self.assertTrue(wait_for(lambda: b"conf-test" in read(log)), read(log))
        self.assertIn(b'"GET /index.html HTTP/1.1" 200 1024', read(log))

    def test_access_log_off(self):
        srv = self.serve("listen 127.0.0.1:0;\nworkers 1;\naccess_log off;\n"
                         "location / { static %s; }\n" % self.web.root)
        self.fetch("/index.html")
        time.sleep(0.3)
        self.assertFalse([l for l in srv.stdout_lines if "GET /index.html" in l])

    def test_access_log_stdout(self):
        srv = self.serve("listen 127.0.0.1:0;\nworkers 1;\naccess_log stdout;\n"
                         "location / { static %s; }\n" % self.web.root)
        self.fetch("/index.html")
        self.assertTrue(wait_for(lambda: any("GET /index.html" in l for l in srv.stdout_lines)),
                        srv.stdout_lines)

    def test_error_log_file_and_level(self):
        # A reload is logged at info level: in the file named, relative to
        # the config; at level error, not at all.
        text = self.HEAD + "error_log %s %s;\nlocation / { static %s; header X-Gen %d; }\n"
        path = self.write("verbd.conf", text % ("logs/info.log", "info", self.web.root, 1))
        os.makedirs(os.path.join(self.dir, "logs"))
        srv = config_server(path, cwd="/").start()
        self.addCleanup(srv.cleanup)
        self._servers = [srv]
        self.server = srv
        self.write("verbd.conf", text % ("logs/info.log", "info", self.web.root, 2))
        srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.fetch("/").header("X-Gen") == "2"))
        log = os.path.join(self.dir, "logs", "info.log")
        self.assertTrue(wait_for(lambda: b"reload" in read(log)), read(log))

        quiet = os.path.join(self.dir, "logs", "quiet.log")
        path = self.write("quiet.conf", text % ("logs/quiet.log", "error", self.web.root, 1))
        srv = config_server(path, cwd="/").start()
        self.addCleanup(srv.cleanup)
        self._servers.append(srv)
        self.write("quiet.conf", text % ("logs/quiet.log", "error", self.web.root, 2))
        srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.fetch("/", server=srv).header("X-Gen") == "2"))
        srv.stop()
        self.assertTrue(os.path.exists(quiet))
        self.assertEqual(read(quiet), b"")

    def test_error_log_info_explains_a_dormant_method(self):
        if "webdav" not in builtin_modules():
            self.skipTest("webdav is not built in")
        self.serve(self.HEAD + "error_log err.log info;\nlocation / { static %s; }\n"
                   % self.web.root)
        r = self.fetch("/", method="PROPFIND")
        self.assertStatus(r, 501)
        self.assertIn(b"webdav", r.body)
        log = os.path.join(self.dir, "err.log")
        self.assertTrue(wait_for(lambda: b"PROPFIND" in read(log) and b"webdav" in read(log)),
                        read(log))

    def test_unknown_method_405(self):
        self.serve(self.HEAD + "unknown_method 405;\nlocation / { static %s; }\n" % self.web.root)
        r = self.fetch("/index.html", method="BREW")
        self.assertStatus(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_unknown_method_default_is_501(self):
        self.serve(self.HEAD + "location / { static %s; }\n" % self.web.root)
        r = self.fetch("/index.html", method="BREW")
        self.assertStatus(r, 501)
        self.assertIsNone(r.header("Cache-Control"))

    def test_refusal_cache(self):
        self.serve(self.HEAD + "refusal_cache max-age=60;\n"
                   "location / { static %s; trace on; }\n"
                   "location /ro/ { static %s; methods GET HEAD; }\n"
                   % (self.web.root, self.web.root))
        r405 = self.fetch("/ro/x", method="TRACE")
        self.assertStatus(r405, 405)
        self.assertEqual(r405.header("Cache-Control"), "max-age=60")
        r501 = self.fetch("/", method="BREW")
        self.assertStatus(r501, 501)
        self.assertEqual(r501.header("Cache-Control"), "max-age=60")
        ok = self.fetch("/index.html")
        self.assertEqual(ok.status, 200)
        self.assertNotEqual(ok.header("Cache-Control"), "max-age=60")

    def test_refusal_cache_off(self):
        self.serve(self.HEAD + "refusal_cache off;\nlocation / { static %s; }\n" % self.web.root)
        r = self.fetch("/", method="BREW")
        self.assertStatus(r, 501)
        self.assertIsNone(r.header("Cache-Control"))


class LocationDirectives(ConfigCase):
    def test_methods_narrowing_gives_405_with_exact_allow(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; trace on; }\n"
                   "location /ro/ { static %s; methods GET HEAD; }\n" % (R, R))
        r = self.fetch("/ro/x", method="TRACE")
        self.assertStatus(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.fetch("/", method="TRACE")
        self.assertStatus(r, 200)
        r = self.fetch("/ro/index.html")
        self.assertEqual(r.body, self.web.index)
        r = self.fetch("/ro/index.html", method="OPTIONS")
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        r = self.fetch("/index.html", method="OPTIONS")
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS, TRACE")

    def test_methods_head_without_get_is_an_error(self):
        # HEAD is GET without the body: HEAD allowed where GET is refused
        # would answer with header fields GET never sends (issue 11, item 7).
        R = self.web.root
        msg = ("methods: HEAD without GET (HEAD answers as GET does; allow GET, which brings "
               "HEAD, or neither)")
        for methods in ("HEAD", "HEAD OPTIONS", "OPTIONS HEAD"):
            with self.subTest(methods=methods):
                text = "location / {\n    static %s;\n    methods %s;\n}\n" % (R, methods)
                self.assertOneError(text, 3, 13 + methods.split().index("HEAD") * 8, msg)
                # The same error stops a start, not only -t.
                p = run_verbd("-c", os.path.join(self.dir, "verbd.conf"))
                self.assertEqual(p.returncode, 1)
                self.assertIn(":3:", p.stderr.decode())
        if "webdav" in builtin_modules():
            os.makedirs(os.path.join(self.dir, "dav"))
            self.assertOneError("location / { webdav dav; methods PROPFIND HEAD; }\n", 1, 43, msg)

    def test_methods_get_brings_head(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; }\n"
                   "location /g/ { static %s; methods GET; }\n" % (R, R))
        r = self.fetch("/g/index.html", method="HEAD")
        self.assertStatus(r, 200, method="HEAD")
        r = self.fetch("/g/index.html", method="OPTIONS")
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")

    def test_trace_off_everywhere_is_501(self):
        self.serve(self.HEAD + "location / { static %s; trace off; }\n" % self.web.root)
        self.assertStatus(self.fetch("/", method="TRACE"), 501)

    def test_trace_never_echoes_credentials(self):
        self.serve(self.HEAD + "location / { static %s; trace on; }\n" % self.web.root)
        r = self.fetch("/", method="TRACE", headers=[("Cookie", "s=secret"), ("X-Ok", "1")])
        self.assertEqual(r.status, 200)
        self.assertNotIn(b"secret", r.body)
        self.assertIn(b"X-Ok", r.body)

    def test_options_star_lists_the_union(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; methods GET HEAD; }\n"
                   "location /t/ { static %s; trace on; }\n" % (R, R))
        c = self.connect()
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response("OPTIONS")
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS, TRACE")

    def test_header(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; }\n"
                   "location /sub/ {\n    static %s/sub;\n    header X-Frame-Options DENY;\n"
                   "    header X-Quoted \"a \\\"b\\\" c\";\n}\n" % (R, R))
        r = self.fetch("/sub/file.txt")
        self.assertEqual(r.body, self.web.sub_file)
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertEqual(r.header("X-Quoted"), 'a "b" c')
        r = self.fetch("/index.html")
        self.assertIsNone(r.header("X-Frame-Options"))

    def test_listing(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; }\n"
                   "location /l/ { static %s/list; listing on; }\n" % (R, R))
        r = self.fetch("/l/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"a.txt", r.body)
        r = self.fetch("/list/")
        self.assertNotEqual(r.status, 200)

    def test_index(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; }\n"
                   "location /p/ { static %s/pipe; index missing.txt 3.txt 4.txt; }\n" % (R, R))
        r = self.fetch("/p/")
        self.assertEqual((r.status, r.body), (200, b"pipe-3\n"))
        self.assertNotEqual(self.fetch("/pipe/").status, 200)

    def test_exact_location_matches_only_its_path(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; header X-Loc root; }\n"
                   "location = /sub { static %s/list; header X-Loc exact; listing on; }\n"
                   % (R, R))
        r = self.fetch("/sub")
        self.assertEqual(r.header("X-Loc"), "exact")
        r = self.fetch("/sub/file.txt")
        self.assertEqual(r.header("X-Loc"), "root")
        self.assertEqual(r.body, self.web.sub_file)
        self.assertEqual(self.fetch("/subx").header("X-Loc"), "root")

    def test_exact_and_prefix_on_the_same_path(self):
        R = self.web.root
        self.serve(self.HEAD + "location /pipe { static %s/pipe; header X-Loc prefix; }\n"
                   "location = /pipe { static %s/pipe; header X-Loc exact; index 9.txt; }\n"
                   "location / { static %s; }\n" % (R, R, R))
        r = self.fetch("/pipe")
        self.assertEqual(r.header("X-Loc"), "exact")
        r = self.fetch("/pipe/1.txt")
        self.assertEqual((r.header("X-Loc"), r.body), ("prefix", b"pipe-1\n"))

    def test_longest_prefix_wins(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; header X-Loc root; }\n"
                   "location /a/ { static %s; header X-Loc a; }\n"
                   "location /a/b/ { static %s/pipe; header X-Loc ab; }\n" % (R, R, R))
        r = self.fetch("/a/b/2.txt")
        self.assertEqual((r.header("X-Loc"), r.body), ("ab", b"pipe-2\n"))
        r = self.fetch("/a/sub/file.txt")
        self.assertEqual((r.header("X-Loc"), r.body), ("a", self.web.sub_file))
        r = self.fetch("/index.html")
        self.assertEqual(r.header("X-Loc"), "root")
        # A prefix matches on a segment boundary only.
        self.assertEqual(self.fetch("/ab").header("X-Loc"), "root")

    def test_relative_root_is_relative_to_the_config(self):
        os.makedirs(os.path.join(self.dir, "site"))
        self.write("site/page.txt", "relative page\n")
        self.serve(self.HEAD + "location / { static ./site; }\n", cwd="/")
        self.assertEqual(self.fetch("/page.txt").body, b"relative page\n")

    def test_webdav_paths_relative_to_the_config(self):
        if "webdav" not in builtin_modules():
            self.skipTest("webdav is not built in")
        os.makedirs(os.path.join(self.dir, "site", "data"))
        self.serve(self.HEAD + "location /dav/ {\n    webdav data;\n    dav_db props.sqlite;\n}\n",
                   name="site/verbd.conf", cwd="/")
        c = self.connect()
        r = c.request("PUT", "/dav/new.txt", [("Content-Length", "5")], b"hello")
        self.assertIn(r.status, (201, 204), r)
        self.assertEqual(read(os.path.join(self.dir, "site", "data", "new.txt")), b"hello")
        self.assertTrue(os.path.exists(os.path.join(self.dir, "site", "props.sqlite")))

    def test_include_adds_locations(self):
        os.makedirs(os.path.join(self.dir, "conf.d", "site"))
        self.write("conf.d/site/page.txt", "included page\n")
        self.write("conf.d/site.conf", "location /inc/ {\n    static site;\n}\n")
        self.write("conf.d/limits.conf", "header_timeout 5s;\n")
        self.write("conf.d/headers.inc", "header X-Inc yes;\n")
        self.serve(self.HEAD + "include conf.d/*.conf;\n"
                   "location / { static %s; include conf.d/headers.inc; }\n" % self.web.root,
                   cwd="/")
        r = self.fetch("/inc/page.txt")
        self.assertEqual(r.body, b"included page\n")
        r = self.fetch("/index.html")
        self.assertEqual(r.header("X-Inc"), "yes")

    def test_include_glob_without_match_is_fine(self):
        rc, out, err = self.check(self.HEAD + "include none/*.conf;\nlocation / { static %s; }\n"
                                  % self.web.root)
        self.assertEqual(rc, 0, err)

    def test_405_names_location_not_paths(self):
        R = self.web.root
        self.serve(self.HEAD + "location / { static %s; trace on; }\n"
                   "location /ro/ { static %s; methods GET HEAD; }\n" % (R, R))
        r = self.fetch("/ro/x", method="TRACE")
        self.assertEqual(r.status, 405)
        self.assertNotIn(R.encode(), r.body)


# --------------------------------------------------------------------------
# Configs that checked OK and then did not work (issue 11, items 3 and 14)
# --------------------------------------------------------------------------

class ListenTwice(ConfigCase):
    def test_same_address_twice_is_an_error_at_check_and_start(self):
        port = free_port()
        for first, second in (("127.0.0.1", "127.0.0.1"), ("127.0.0.1", "localhost")):
            with self.subTest(second=second):
                text = ("listen %s:%d;\nlisten %s:%d;\nlocation / { static %s; }\n"
                        % (first, port, second, port, self.web.root))
                self.assertOneError(text, 2, 8, "duplicate listen %s:%d (first at %s:1)"
                                    % (second, port, os.path.join(self.dir, "verbd.conf")))
                p = run_verbd("-c", os.path.join(self.dir, "verbd.conf"))
                self.assertEqual(p.returncode, 1)
                self.assertIn("verbd.conf:2:8: duplicate listen", p.stderr.decode())

    def test_address_and_its_wildcard_clash(self):
        port = free_port()
        text = "listen 0.0.0.0:%d;\nlisten 127.0.0.1:%d;\nlocation / { static %s; }\n" % (
            port, port, self.web.root)
        self.assertOneError(text, 2, 8, "listen 127.0.0.1:%d overlaps listen 0.0.0.0:%d" %
                            (port, port), exact=False)

    def test_port_zero_twice_is_two_ports(self):
        srv = self.serve("listen 127.0.0.1:0;\nlisten 127.0.0.1:0;\naccess_log off;\n"
                         "workers 1;\nlocation / { static %s; }\n" % self.web.root)
        self.assertEqual(len([l for l in srv.stdout_lines if "listening on" in l]), 2,
                         srv.stdout_lines)


class NoLocation(ConfigCase):
    WARNING = ("warning: no location: every request but OPTIONS will get 501 (add one, for "
               "example: location / { static DIR; })")

    def test_warned_at_check(self):
        for text in ("", self.HEAD, "# nothing\n"):
            with self.subTest(text=text):
                rc, out, err = self.check(text)
                self.assertEqual(rc, 0, err)
                path = os.path.join(self.dir, "verbd.conf")
                self.assertEqual(out, "%s: ok\n" % path)
                self.assertEqual(err, "%s:1:1: %s\n" % (path, self.WARNING))

    def test_warned_at_start(self):
        srv = self.serve(self.HEAD)
        self.assertTrue(wait_for(lambda: self.WARNING in srv.stderr_text()), srv.stderr_text())
        self.assertStatus(self.fetch("/"), 501)

    def test_not_warned_with_a_location(self):
        rc, out, err = self.check(self.HEAD + "location / { static %s; }\n" % self.web.root)
        self.assertEqual((rc, err), (0, ""))


class EncodedLocation(ConfigCase):
    def test_percent_encoded_location_matches_as_request_paths_do(self):
        os.makedirs(os.path.join(self.dir, "sp"))
        self.write("sp/x.txt", "spaced\n")
        self.serve(self.HEAD + "location / { static %s; }\n"
                   "location /a%%20b/ { static sp; }\n"
                   "location /caf%%C3%%A9/ { static sp; }\n" % self.web.root)
        for target in ("/a%20b/x.txt", "/caf%c3%a9/x.txt", "/caf%C3%A9/x.txt"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertStatus(r, 200)
                self.assertEqual(r.body, b"spaced\n")

    def test_written_decoded_or_encoded_is_one_location(self):
        self.assertOneError('location /a%%20b/ { static %s; }\nlocation "/a b/" { static %s; }\n'
                            % (self.web.root, self.web.root), 2, 1,
                            "duplicate location /a b/ (first at %s:1)"
                            % os.path.join(self.dir, "verbd.conf"))

    def test_location_no_request_can_match(self):
        R = self.web.root
        cases = [("/a//b/", 'location path "/a//b/" never matches: request paths are '
                            'normalised first (write "/a/b/")'),
                 ("/a/../b/", 'location path "/a/../b/" never matches: request paths are '
                              'normalised first (write "/b/")'),
                 ("/x%2Fy", 'location path "/x%2Fy" has an encoded slash (%2F): no request '
                            'path matches it'),
                 ("/x%zz", 'location path "/x%zz" is not a valid path (a bad %-escape, a '
                           'control character or ".." above the root)')]
        for path, msg in cases:
            with self.subTest(path=path):
                self.assertOneError("location %s { static %s; }\n" % (path, R), 1, 10, msg)


class DidYouMean(ConfigCase):
    def test_misspelt_module_is_the_error(self):
        # Not "location / has no module directive": the misspelt name is.
        self.assertOneError("location / {\n    statc %s;\n}\n" % self.web.root, 2, 5,
                            'unknown directive "statc" (did you mean static?)')

    def test_hints(self):
        R = self.web.root
        top = [("listn 127.0.0.1:0;", 'unknown directive "listn" (did you mean listen?)'),
               ("wokers 2;", 'unknown directive "wokers" (did you mean workers?)'),
               ("autoindex on;", 'unknown directive "autoindex" (did you mean listing? it '
                                 'belongs inside a location)'),
               ("client_max_body_size 8m;",
                'unknown directive "client_max_body_size" (did you mean max_body?)'),
               ("add_header X-A b;", 'unknown directive "add_header" (did you mean header? '
                                     'it belongs inside a location)'),
               ("ssl_certificate a.pem;",
                'unknown directive "ssl_certificate" (did you mean tls_certificate?)'),
               ("proxy_pass http://b;", 'unknown directive "proxy_pass" (did you mean proxy? it '
                                        'belongs inside a location)'),
               ("proxy_cache_path /c;",
                'unknown directive "proxy_cache_path" (did you mean cache_zone?)'),
               ("proxy_cache z;", 'unknown directive "proxy_cache" (did you mean cache? it '
                                  'belongs inside a location)'),
               ("gzip_static on;",
                'unknown directive "gzip_static" (did you mean precompressed?)')]
        for line, msg in top:
            with self.subTest(line=line):
                self.assertOneError("%s\nlocation / { static %s; }\n" % (line, R), 1, 1, msg)
        inside = [("autoindex on;", 'unknown directive "autoindex" (did you mean listing?)'),
                  ("add_header X-A b;", 'unknown directive "add_header" (did you mean header?)'),
                  ("methds GET;", 'unknown directive "methds" (did you mean methods?)'),
                  ("tarce on;", 'unknown directive "tarce" (did you mean trace?)'),
                  ("client_max_body_size 8m;", 'unknown directive "client_max_body_size" (did '
                                               'you mean max_body?)')]
        for line, msg in inside:
            with self.subTest(line=line):
                self.assertOneError("location / {\n    static %s;\n    %s\n}\n" % (R, line),
                                    3, 5, msg)

    def test_listen_ssl(self):
        self.assertOneError("listen 127.0.0.1:8443 ssl;\nlocation / { static %s; }\n"
                            % self.web.root, 1, 23,
                            'listen: unknown flag "ssl" (did you mean tls?)')

    def test_types_block_is_data(self):
        # Its lines are content types, not directives (test_caching.py has
        # the rest).
        rc, out, err = self.check("types {\n    text/html html;\n    image/png png;\n}\n"
                                  "location / { static %s; }\n" % self.web.root)
        self.assertEqual((rc, err), (0, ""))

    def test_nothing_close_no_hint(self):
        self.assertOneError("location / { static %s; frobnicate 1; }\n" % self.web.root, 1,
                            23 + len(self.web.root), 'unknown directive "frobnicate"')


class ByteOrderMark(ConfigCase):
    BOM = b"\xef\xbb\xbf"

    def test_skipped(self):
        path = self.write("verbd.conf", self.BOM + ("listen 127.0.0.1:0;\nlocation / { static "
                                                    "%s; }\n" % self.web.root).encode())
        p = run_verbd("-t", "-c", path)
        self.assertEqual((p.returncode, p.stderr.decode()), (0, ""))

    def test_not_part_of_a_name(self):
        self.assertOneError(self.BOM + b"bogus 1;\n", 1, 1, 'unknown directive "bogus"')

    def test_included_file(self):
        self.write("inc.conf", self.BOM + b"header_timeout 5s;\n")
        rc, out, err = self.check("include inc.conf;\nlocation / { static %s; }\n"
                                  % self.web.root)
        self.assertEqual((rc, err), (0, ""))


class DavDatabase(ConfigCase):
    """dav_db must lie outside the share and be an SQLite database."""

    def setUp(self):
        super().setUp()
        if "webdav" not in builtin_modules():
            self.skipTest("webdav is not built in")
        os.makedirs(os.path.join(self.dir, "share", "sub"))
        os.makedirs(os.path.join(self.dir, "db"))

    def conf(self, db):
        return "location /dav/ {\n    webdav share;\n    dav_db %s;\n}\n" % db

    def assertRefused(self, db, msg):
        """-t and a start both refuse it, at the dav_db argument."""
        text = self.HEAD + self.conf(db)
        self.assertOneError(text, 6, 12, msg, exact=False)
        p = run_verbd("-c", os.path.join(self.dir, "verbd.conf"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("verbd.conf:6:12: ", p.stderr.decode())
        self.assertIn(msg, p.stderr.decode())
        self.assertNotIn("listening", p.stdout.decode())

    def test_inside_the_share(self):
        os.symlink("share", os.path.join(self.dir, "sharelink"))
        for db in ("share/props.sqlite", "./share/sub/../props.sqlite", "share/sub/p.db",
                   "%s/share/props.sqlite" % self.dir, "sharelink/props.sqlite", "db/../share/x"):
            with self.subTest(db=db):
                self.assertRefused(db, "is inside the shared directory")
                self.assertFalse(os.path.exists(os.path.join(self.dir, "share", "props.sqlite")))

    def test_symlink_into_the_share(self):
        self.write("share/real.sqlite", b"")
        os.symlink("../share/real.sqlite", os.path.join(self.dir, "db", "props.sqlite"))
        self.assertRefused("db/props.sqlite", "is inside the shared directory")

    def test_wal_or_shm_sibling_into_the_share(self):
        self.write("share/taken", b"")
        for suffix in ("-wal", "-shm"):
            with self.subTest(suffix=suffix):
                link = os.path.join(self.dir, "db", "props.sqlite" + suffix)
                os.symlink("../share/taken", link)
                self.assertRefused("db/props.sqlite", "its %s/db/props.sqlite%s leads into the "
                                   "shared directory" % (self.dir, suffix))
                os.unlink(link)

    def test_not_an_sqlite_database(self):
        self.write("db/w.db", b"garbage\n")
        self.assertRefused("db/w.db", "dav_db: %s/db/w.db exists and is not an SQLite "
                           "database" % self.dir)

    def test_someone_elses_database(self):
        import sqlite3
        c = sqlite3.connect(os.path.join(self.dir, "db", "app.db"))
        c.execute("CREATE TABLE users(name TEXT)")
        c.commit()
        c.close()
        self.assertRefused("db/app.db", 'is an SQLite database of something else (it has a '
                                        'table "users")')

    def test_check_creates_nothing(self):
        rc, out, err = self.check(self.HEAD + self.conf("db/props.sqlite"))
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(os.listdir(os.path.join(self.dir, "db")), [])

    def test_its_own_database_checks_while_served(self):
        srv = self.serve(self.HEAD + self.conf("db/props.sqlite"))
        c = self.connect()
        body = (b'<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop>'
                b'<x:color xmlns:x="urn:t">red</x:color></prop></set></propertyupdate>')
        r = c.request("PUT", "/dav/f.txt", [("Content-Length", "2")], b"hi")
        self.assertIn(r.status, (201, 204), r)
        r = c.request("PROPPATCH", "/dav/f.txt", [("Content-Length", str(len(body))),
                                                  ("Content-Type", "application/xml")], body)
        self.assertEqual(r.status, 207, r)
        rc, out, err = self.check(self.HEAD + self.conf("db/props.sqlite"))
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(srv.proc.poll(), None)


if __name__ == "__main__":
    unittest.main()
