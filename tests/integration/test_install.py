"""make install, then the embedding docs' own build command (issue 11, item
13): `make install` into a DESTDIR, and both programs in examples/ built
with the command docs/embedding.md gives, through the installed verbd.pc,
then one of them run.  Issue 16: exactly the listed files are installed;
the manual pages render without a warning, the systemd unit verifies, the
example config checks; `make deb` packages the same files.

The install is a build of its own (in a temporary directory, with the
default compiler and flags), whatever build the rest of the suite tests:
what it checks is what a user gets from `make install`."""

import os
import re
import shutil
import signal
import sys
import subprocess
import tempfile
import unittest
import urllib.request

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PREFIX = "/usr/local"

# Everything `make install` puts under DESTDIR, and nothing else: the
# prefix's files, then the system's (SYSCONFDIR is /etc by default).
INSTALLED = sorted([
    "usr/local/bin/verbd",
    "usr/local/lib/libverbd.a",
    "usr/local/lib/pkgconfig/verbd.pc",
    "usr/local/include/verbd.h",
    "usr/local/share/man/man8/verbd.8",
    "usr/local/share/man/man5/verbd.conf.5",
    "usr/local/share/doc/verbd/verbd.conf.example",
    "usr/local/lib/systemd/system/verbd.service",
    "etc/logrotate.d/verbd",
])
MAN_PAGES = ("usr/local/share/man/man8/verbd.8", "usr/local/share/man/man5/verbd.conf.5")


def documented_command(marker):
    """The command docs/embedding.md gives for building a program: the cc
    line with `marker` in it (pkg-config: against an installed libverbd;
    build/libverbd.a: in a source tree)."""
    with open(os.path.join(REPO, "docs", "embedding.md")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line.startswith("cc ") and marker in line:
                return line
    return None


def clean_env():
    """The environment minus what a `make test` around us passes to its
    children (jobserver, command-line variables such as CC=clang)."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CC", "CFLAGS", "LDFLAGS",
              "LDLIBS"):
        env.pop(k, None)
    return env


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("pkg-config") or not shutil.which("cc"):
            raise unittest.SkipTest("pkg-config or cc is missing (scripts/deps.sh installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="verbd-install-")
        cls.dest = os.path.join(cls.tmp, "dest")
        cls.build = os.path.join(cls.tmp, "build")
        cls.make = subprocess.run(
            ["make", "-C", REPO, "--no-print-directory", "BUILD=" + cls.build,
             "DESTDIR=" + cls.dest, "PREFIX=" + PREFIX, "CFLAGS=-O0", "install"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=clean_env(), timeout=200)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.make.returncode, 0, self.make.stdout.decode(errors="replace"))

    def installed(self, rel):
        return os.path.join(self.dest, PREFIX.lstrip("/"), rel)

    def pkg_env(self):
        """pkg-config finds the installed verbd.pc; its prefix is moved into
        DESTDIR by the sysroot, as for any staged install."""
        env = clean_env()
        env["PKG_CONFIG_PATH"] = self.installed("lib/pkgconfig")
        env["PKG_CONFIG_SYSROOT_DIR"] = self.dest
        return env

    def build_example(self, name, marker="pkg-config"):
        """Builds examples/NAME.c with the documented command; returns the
        program's path."""
        cmd = documented_command(marker)
        self.assertIsNotNone(cmd, "docs/embedding.md gives no cc ... %s ... command" % marker)
        self.assertRegex(cmd, r"\bprog\.c\b.*-o prog\b", cmd)
        out = os.path.join(self.tmp, name + "-" + marker.split("/")[0])
        cmd = re.sub(r"\bprog\.c\b", os.path.join(REPO, "examples", name + ".c"), cmd)
        cmd = re.sub(r"-o prog\b", "-o " + out, cmd)
        # The source-tree command names build/: here, this test's build.
        cmd = cmd.replace("build/libverbd.a", os.path.join(self.build, "libverbd.a"))
        p = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self.pkg_env(), cwd=REPO,
                           timeout=120)
        self.assertEqual(p.returncode, 0, "%s\n%s" % (cmd, p.stdout.decode(errors="replace")))
        return out

    def test_files_installed(self):
        found = []
        for top, dirs, files in os.walk(self.dest):
            for name in files:
                found.append(os.path.relpath(os.path.join(top, name), self.dest))
        self.assertEqual(sorted(found), INSTALLED)
        self.assertTrue(os.access(self.installed("bin/verbd"), os.X_OK))

    def test_man_pages_render_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is missing (scripts/deps.sh test installs groff-base)")
        for rel in MAN_PAGES:
            with self.subTest(page=rel):
                p = subprocess.run(["groff", "-ww", "-z", "-mandoc", "-Tutf8",
                                    os.path.join(self.dest, rel)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                self.assertEqual((p.returncode, p.stderr.decode()), (0, ""))
                text = subprocess.run(["groff", "-mandoc", "-Tutf8", "-P-cbou",
                                       os.path.join(self.dest, rel)], stdout=subprocess.PIPE,
                                      timeout=60).stdout.decode()
                self.assertIn("SEE ALSO", text)

    def test_man_pages_cover_the_options_and_directives(self):
        """Each command-line option of verbd --help is in verbd(8); each
        directive docs/config.md documents is in verbd.conf(5)."""
        with open(os.path.join(self.dest, MAN_PAGES[0])) as f:
            page8 = f.read()
        usage = subprocess.run([self.installed("bin/verbd"), "--help"], stdout=subprocess.PIPE,
                               timeout=30).stdout.decode()
        options = set(re.findall(r"^\s+(?:-\w, )?--([a-z][a-z-]+)", usage, re.M))
        self.assertGreater(len(options), 10, usage)
        for opt in sorted(options):
            with self.subTest(option=opt):
                self.assertTrue("Fl -" + opt in page8, "verbd(8) does not list --" + opt)
        with open(os.path.join(self.dest, MAN_PAGES[1])) as f:
            page5 = f.read()
        with open(os.path.join(REPO, "docs", "config.md")) as f:
            doc = f.read()
        doc = doc.split("\n## Errors")[0]  # not its table of nginx's names
        names = set(re.findall(r"^\| `([a-z_]+)[ ;`]", doc, re.M))
        names = {n for n in names if not n.startswith("verbd_")}  # the status page's metrics
        names |= {"status", "include", "server", "server_name", "location", "user", "expires", "types",
                  "mime_types", "upstream"}
        for name in sorted(names):
            with self.subTest(directive=name):
                self.assertTrue(re.search(r"\.It Ic %s\b|Ic %s ," % (name, name), page5),
                                "verbd.conf(5) does not list %s" % name)

    def test_systemd_unit(self):
        unit = self.installed("lib/systemd/system/verbd.service")
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                     "ExecStartPre=%s/bin/verbd -t -c /etc/verbd/verbd.conf" % PREFIX,
                     "ExecStart=%s/bin/verbd -c /etc/verbd/verbd.conf" % PREFIX,
                     "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "ProtectHome=yes"):
            self.assertIn("\n" + line + "\n", text)
        caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
        self.assertEqual(sorted(caps), ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                                        "CAP_SETGID", "CAP_SETUID"])
        if not shutil.which("systemd-analyze"):
            print("test_systemd_unit: systemd-analyze is not installed; "
                  "the unit is not verified", file=sys.stderr)
            return
        # Verified as installed at its prefix: the binary where the unit
        # names it.
        tmp = os.path.join(self.tmp, "unit")
        os.makedirs(tmp, exist_ok=True)
        local = os.path.join(tmp, "verbd.service")
        with open(local, "w") as f:
            f.write(text.replace(PREFIX + "/bin/verbd", self.installed("bin/verbd")))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", local],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("verbd.service:", out)

    def test_logrotate_snippet(self):
        with open(os.path.join(self.dest, "etc/logrotate.d/verbd")) as f:
            text = f.read()
        self.assertIn("/var/log/verbd/*.log {", text)
        self.assertRegex(text, r"postrotate\n\s+systemctl kill --kill-whom=main --signal=USR1 "
                         r"verbd\.service")

    def test_example_config_checks_where_installed(self):
        example = os.path.join(self.dest, "usr/local/share/doc/verbd/verbd.conf.example")
        p = subprocess.run([self.installed("bin/verbd"), "-t", "-c", example],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual((p.returncode, p.stderr.decode()), (0, ""))

    def test_pkg_config_names_what_the_static_library_needs(self):
        p = subprocess.run(["pkg-config", "--cflags", "--libs", "verbd"], env=self.pkg_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        flags = p.stdout.decode().split()
        self.assertIn("-I" + self.installed("include"), flags)
        self.assertIn("-L" + self.installed("lib"), flags)
        for lib in ("-lverbd", "-lxml2", "-lsqlite3", "-lpq", "-lssl", "-lcrypto", "-lcrypt",
                    "-lpcre2-8", "-lbrotlienc", "-lz", "-lnghttp2"):
            self.assertIn(lib, flags)
        self.assertLess(flags.index("-lverbd"), flags.index("-lsqlite3"))

    def test_source_tree_command_links(self):
        self.build_example("echo", marker="build/libverbd.a")

    def test_both_examples_build_and_hello_runs(self):
        self.build_example("echo")
        hello = self.build_example("hello")
        proc = subprocess.Popen([hello, "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            line = proc.stdout.readline().decode()
            m = re.search(r"listening on (http://\S+/)", line)
            if not m:
                proc.kill()
                self.fail("%r\n%s" % (line, proc.stderr.read().decode(errors="replace")))
            with urllib.request.urlopen(m.group(1) + "hello", timeout=10) as r:
                self.assertEqual(r.status, 200)
                self.assertTrue(r.read())
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=15), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()


class Deb(unittest.TestCase):
    """make deb: the same files under /usr (and /etc), packaged by dpkg-deb."""

    def test_package_lists_the_files(self):
        if not shutil.which("dpkg-deb"):
            self.skipTest("dpkg-deb is missing (not a Debian system)")
        tmp = tempfile.mkdtemp(prefix="verbd-deb-")
        self.addCleanup(shutil.rmtree, tmp, True)
        p = subprocess.run(["make", "-C", REPO, "--no-print-directory", "BUILD=" + tmp,
                            "CFLAGS=-O0", "deb"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(),
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        debs = [n for n in os.listdir(tmp) if n.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(tmp))
        self.assertRegex(debs[0], r"^verbd_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        deb = os.path.join(tmp, debs[0])
        listing = subprocess.run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE,
                                 timeout=60).stdout.decode()
        files = sorted(line.split()[-1].lstrip(".") for line in listing.splitlines()
                       if line.startswith("-"))
        want = sorted("/" + rel.replace("usr/local/", "usr/") + (".gz" if "/man/" in rel else "")
                      for rel in INSTALLED)
        self.assertEqual(files, want)
        self.assertIn("root/root", listing)
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"],
                                stdout=subprocess.PIPE, timeout=60).stdout.decode()
        self.assertIn("Package: verbd", fields)
        for dep in ("libxml2", "libsqlite3", "libssl"):
            self.assertIn(dep, fields)
        conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], stdout=subprocess.PIPE,
                                   timeout=60).stdout.decode().split()
        self.assertEqual(conffiles, ["/etc/logrotate.d/verbd"])
