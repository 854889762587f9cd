"""make install, then the embedding docs' own build command (issue 11, item
13): `make install` into a DESTDIR, and both programs in examples/ built
with the command docs/embedding.md gives, through the installed verbd.pc,
then one of them run.

The install is a build of its own (in a temporary directory, with the
default compiler and flags), whatever build the rest of the suite tests:
what it checks is what a user gets from `make install`."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.request

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PREFIX = "/usr/local"


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
        for rel in ("bin/verbd", "lib/libverbd.a", "include/verbd.h", "lib/pkgconfig/verbd.pc"):
            with self.subTest(rel=rel):
                self.assertTrue(os.path.isfile(self.installed(rel)), rel)
        self.assertTrue(os.access(self.installed("bin/verbd"), os.X_OK))

    def test_pkg_config_names_what_the_static_library_needs(self):
        p = subprocess.run(["pkg-config", "--cflags", "--libs", "verbd"], env=self.pkg_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        flags = p.stdout.decode().split()
        self.assertIn("-I" + self.installed("include"), flags)
        self.assertIn("-L" + self.installed("lib"), flags)
        for lib in ("-lverbd", "-lxml2", "-lsqlite3", "-lssl", "-lcrypto", "-lcrypt"):
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
