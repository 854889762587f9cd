#!/usr/bin/env python3
"""verbd test runner: unit test binaries + black-box integration tests.

usage: tests/run.py --build DIR [-k SUBSTRING] [--unit-only | --integration-only]
                    [-j N] [-v]

Unit tests: every executable DIR/tests/test_*; each prints FAIL lines and
ends with "N passed, N failed".  A crash, a timeout or a missing summary
counts as one failure.

Integration tests: every tests/integration/test_*.py, loaded by unittest
discovery, run with VERBD_BIN=DIR/verbd.  Files run in parallel (one child
process per file); results are printed in file order.  Each test method is
one pass or fail (errors are failures).

Then scripts/format.sh and a short TLS audit (scripts/tls-audit.sh
--short, testssl against verbd) count as one test each, and the fuzz
harnesses, with --fuzz-seconds, one each.

The last line is always "total: N passed, N failed"; the exit status is 1 if
anything failed or nothing ran.
"""

import argparse
import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION_DIR = os.path.join(HERE, "integration")
UNIT_TIMEOUT = 120
FILE_TIMEOUT = 240
SUMMARY_RE = re.compile(r"^\s*(\d+) passed, (\d+) failed\s*$")
# Files run a second time with every server and connection over TLS: the
# method decision and the hostile-input corpora hold over both transports.
OVER_TLS = ["test_methods.py", "test_smuggling.py", "test_traversal.py"]


# --------------------------------------------------------------------------
# Unit tests
# --------------------------------------------------------------------------

def unit_binaries(build):
    out = []
    for p in sorted(glob.glob(os.path.join(build, "tests", "test_*"))):
        if os.path.isfile(p) and os.access(p, os.X_OK) and not p.endswith((".d", ".o", ".c")):
            out.append(p)
    return out


def run_unit(path):
    """Returns (passed, failed, report_lines)."""
    name = os.path.basename(path)
    try:
        p = subprocess.run([path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=UNIT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        lines = [l for l in out.splitlines() if l.startswith("FAIL")]
        return 0, 1, lines + ["FAIL %s: timed out after %ds" % (name, UNIT_TIMEOUT)]
    except OSError as e:
        return 0, 1, ["FAIL %s: cannot run: %s" % (name, e)]
    out = p.stdout.decode("utf-8", "replace")
    lines = out.splitlines()
    report = [l for l in lines if l.startswith("FAIL")]
    summary = None
    for l in reversed(lines):
        if l.strip():
            summary = SUMMARY_RE.match(l)
            break
    if summary is None:
        tail = "\n    ".join(lines[-10:])
        how = "killed by signal %d" % -p.returncode if p.returncode < 0 else "exit %d" % p.returncode
        return 0, 1, report + ["FAIL %s: no 'N passed, N failed' summary (%s); output tail:\n    %s"
                               % (name, how, tail)]
    passed, failed = int(summary.group(1)), int(summary.group(2))
    if p.returncode != 0 and failed == 0:
        how = "killed by signal %d" % -p.returncode if p.returncode < 0 else "exit %d" % p.returncode
        failed = 1
        report.append("FAIL %s: %s with no failures reported" % (name, how))
    elif p.returncode == 0 and failed != 0:
        report.append("FAIL %s: exit status 0 despite %d failures" % (name, failed))
    return passed, failed, report


# --------------------------------------------------------------------------
# Integration tests: the worker (one per file, in a child process)
# --------------------------------------------------------------------------

class CollectingResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.order = []        # test ids in run order
        self.outcome = {}      # id -> "pass" | "fail" | "skip"
        self.details = {}      # id -> [traceback text]

    def _id(self, test):
        return test.id()

    def _note(self, test, outcome, detail=None):
        tid = self._id(test)
        if tid not in self.outcome:
            self.order.append(tid)
            self.outcome[tid] = outcome
        elif outcome == "fail":
            self.outcome[tid] = "fail"
        if detail:
            self.details.setdefault(tid, []).append(detail)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._note(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._note(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._note(test, "fail", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._note(test, "fail", "[subtest %s]\n%s" % (
                subtest._subDescription(), self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._note(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._note(test, "pass")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._note(test, "fail", "unexpected success")


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def worker(path, keyword, result_file):
    sys.path.insert(0, INTEGRATION_DIR)
    loader = unittest.TestLoader()
    suite = loader.discover(INTEGRATION_DIR, pattern=os.path.basename(path),
                            top_level_dir=INTEGRATION_DIR)
    tests = list(flatten(suite))
    if keyword:
        tests = [t for t in tests if keyword in t.id()]
    result = CollectingResult()
    if tests:
        unittest.TestSuite(tests).run(result)
    data = {"order": result.order, "outcome": result.outcome, "details": result.details}
    with open(result_file, "w") as f:
        json.dump(data, f)


def run_file(path, build, keyword, verbose, tls=False):
    """Runs one integration file in a child; returns (passed, failed, skipped, lines).
    With tls, its servers and connections use TLS (harness.TEST_TLS)."""
    name = os.path.relpath(path, HERE)
    env = dict(os.environ)
    env["VERBD_BIN"] = os.path.abspath(os.path.join(build, "verbd"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if tls:
        env["VERBD_TEST_TLS"] = "1"
    fd, result_file = tempfile.mkstemp(prefix="verbd-result-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", path, "--result-file", result_file]
    if keyword:
        cmd += ["-k", keyword]
    try:
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=FILE_TIMEOUT, env=env)
            out, rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            return 0, 1, 0, ["FAIL: %s did not finish within %ds\n%s" % (name, FILE_TIMEOUT, out[-3000:])]
        try:
            with open(result_file) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return 0, 1, 0, ["FAIL: %s: the test process crashed (exit %d)\n%s" % (name, rc, out[-3000:])]
    finally:
        try:
            os.unlink(result_file)
        except OSError:
            pass
    passed = failed = skipped = 0
    lines = []
    for tid in data["order"]:
        outcome = data["outcome"][tid]
        if outcome == "pass":
            passed += 1
            if verbose:
                lines.append("ok   %s" % tid)
        elif outcome == "skip":
            skipped += 1
            if verbose:
                lines.append("skip %s: %s" % (tid, "; ".join(data["details"].get(tid, []))))
        else:
            failed += 1
            lines.append("FAIL: %s\n%s" % (tid, "\n".join(data["details"].get(tid, [])).rstrip()))
    return passed, failed, skipped, lines


# --------------------------------------------------------------------------

def run_fuzz(seconds):
    """Runs scripts/fuzz.sh; each harness's "ok"/"FAIL" line is one test,
    and a build failure is one failure."""
    script = os.path.join(os.path.dirname(INTEGRATION_DIR), os.pardir, "scripts", "fuzz.sh")
    proc = subprocess.run(["sh", os.path.normpath(script), str(seconds)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    passed = failed = 0
    for line in proc.stdout.splitlines():
        if line.startswith("ok   fuzz_"):
            passed += 1
        elif line.startswith("FAIL fuzz_"):
            failed += 1
    if proc.returncode != 0 and failed == 0:
        failed = 1
    print("fuzz: %d passed, %d failed" % (passed, failed))
    if failed:
        print("  " + proc.stdout.replace("\n", "\n  "))
    else:
        for line in proc.stdout.splitlines():
            if line.startswith("ok   fuzz_"):
                print("  " + line)
    return passed, failed


def run_format():
    """scripts/format.sh: the C sources as .clang-format says; one test."""
    script = os.path.join(os.path.dirname(INTEGRATION_DIR), os.pardir, "scripts", "format.sh")
    proc = subprocess.run(["sh", os.path.normpath(script)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    ok = proc.returncode == 0
    print("format: %d passed, %d failed" % (ok, not ok))
    if not ok:
        print("  " + proc.stdout.rstrip().replace("\n", "\n  "))
    return int(ok), int(not ok)


def run_tls_audit(build):
    """scripts/tls-audit.sh --short: testssl against verbd over TLS; one
    test.  Skipped, with a line saying so, if testssl is not installed."""
    script = os.path.join(os.path.dirname(INTEGRATION_DIR), os.pardir, "scripts", "tls-audit.sh")
    proc = subprocess.run(["sh", os.path.normpath(script), "--short", "--verbd",
                           os.path.join(build, "verbd")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode == 77:
        msg = proc.stdout.strip()
        print("tls-audit: skipped: " + (msg[len("tls-audit: "):] if msg.startswith("tls-audit: ") else msg))
        return 0, 0
    ok = proc.returncode == 0
    print("tls-audit: %d passed, %d failed" % (ok, not ok))
    for line in proc.stdout.splitlines():
        if not ok or line.startswith(("ok   ", "tls-audit: ")):
            print("  " + line)
    return int(ok), int(not ok)


def main(argv):
    ap = argparse.ArgumentParser(description="Run verbd's unit and integration tests.")
    ap.add_argument("--build", default="build", help="build directory (holds verbd and tests/)")
    ap.add_argument("-k", dest="keyword", default=None,
                    help="run only integration tests whose id contains SUBSTRING")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--unit-only", action="store_true")
    g.add_argument("--integration-only", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=0,
                    help="integration files run at once (default: 2 x CPUs, at most 8)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every test")
    ap.add_argument("--fuzz-seconds", type=int, default=0,
                    help="also run every fuzz harness this long (scripts/fuzz.sh); "
                         "each harness is one test")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker(args.worker, args.keyword, args.result_file)
        return 0

    total_pass = total_fail = total_skip = 0
    sys.stdout.reconfigure(line_buffering=True)

    if not args.integration_only and not args.keyword:
        bins = unit_binaries(args.build)
        if not bins:
            print("unit: no test binaries in %s/tests" % args.build)
        for b in bins:
            p, f, report = run_unit(b)
            total_pass += p
            total_fail += f
            print("unit %s: %d passed, %d failed" % (os.path.basename(b), p, f))
            for l in report:
                print("  " + l)

    if not args.unit_only:
        binary = os.path.join(args.build, "verbd")
        if not os.access(binary, os.X_OK):
            print("integration: warning: %s is not an executable; tests will fail" % binary)
        files = sorted(glob.glob(os.path.join(INTEGRATION_DIR, "test_*.py")))
        runs = [(f, False) for f in files] + [
            (os.path.join(INTEGRATION_DIR, f), True) for f in OVER_TLS]
        jobs = args.jobs or min(8, 2 * (os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            futs = [ex.submit(run_file, f, args.build, args.keyword, args.verbose, tls)
                    for f, tls in runs]
            for (path, tls), fut in zip(runs, futs):
                try:
                    p, f, s, lines = fut.result()
                except Exception:
                    p, f, s, lines = 0, 1, 0, ["FAIL: runner error\n" + traceback.format_exc()]
                total_pass += p
                total_fail += f
                total_skip += s
                if args.keyword and p + f + s == 0:
                    continue
                print("integration %s%s: %d passed, %d failed%s" % (
                    os.path.basename(path), " over TLS" if tls else "", p, f,
                    ", %d skipped" % s if s else ""))
                for l in lines:
                    print("  " + l.replace("\n", "\n  "))

    if not args.keyword and not args.unit_only and not args.integration_only:
        p, f = run_format()
        total_pass += p
        total_fail += f
        p, f = run_tls_audit(args.build)
        total_pass += p
        total_fail += f

    if args.fuzz_seconds > 0 and not args.keyword:
        p, f = run_fuzz(args.fuzz_seconds)
        total_pass += p
        total_fail += f

    if total_skip:
        print("skipped: %d" % total_skip)
    print("total: %d passed, %d failed" % (total_pass, total_fail))
    return 1 if total_fail or total_pass == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
