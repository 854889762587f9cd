#!/bin/sh
# Runs a subset of the integration suite with every verbd process under
# valgrind memcheck, and fails if valgrind reports any error or any
# definitely or indirectly lost block.
#
#   scripts/valgrind.sh [-k SUBSTRING]...
#
# Default subset: test_methods, test_parse, test_static, test_traversal.
# verbd is taken from $BUILD/verbd (default build/; build it first).  Each
# verbd process (workers included) writes its report to
# $BUILD/valgrind/vg.PID.log; the reports with errors are printed at the
# end.  VALGRIND_ARGS adds options (e.g. --track-origins=yes when chasing
# an uninitialised value).
#
# The harness runs verbd under $VERBD_WRAPPER.  Valgrind does not know
# openat2(2) (it warns "unhandled syscall: 437" and returns ENOSYS); the
# static module then falls back to realpath + per-component O_NOFOLLOW
# opens, so test_traversal checks that path here.
set -u
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind is missing; run: sudo apt-get install -y valgrind" >&2
    exit 1
fi
build=${BUILD:-build}
if [ ! -x "$build/verbd" ]; then
    echo "valgrind.sh: no $build/verbd; run make first" >&2
    exit 1
fi

subsets=""
while [ $# -gt 0 ]; do
    case $1 in
        -k) subsets="$subsets $2"; shift 2 ;;
        *) echo "usage: scripts/valgrind.sh [-k SUBSTRING]..." >&2; exit 2 ;;
    esac
done
[ -n "$subsets" ] || subsets="test_methods. test_parse. test_static. test_traversal."

logs="$build/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
logs_abs=$(cd "$logs" && pwd)

VERBD_WRAPPER="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect"
VERBD_WRAPPER="$VERBD_WRAPPER --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
VERBD_WRAPPER="$VERBD_WRAPPER --num-callers=30 ${VALGRIND_ARGS:-} --log-file=$logs_abs/vg.%p.log"
export VERBD_WRAPPER

# The subsets run side by side (VALGRIND_JOBS, default: number of CPUs),
# each file's tests one at a time: each verbd under valgrind keeps a core
# busy.
. scripts/pool.sh
pool_jobs=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 1)}
i=0
for k in $subsets; do
    i=$((i + 1))
    echo "valgrind.sh: integration tests matching $k"
    pool_run "$logs/run.$i.out" \
        python3 tests/run.py --build "$build" --integration-only -j 1 -k "$k"
done
pool_finish
status=$pool_status

# Every report: errors, or lost blocks, fail the run.
n=0
bad=0
for f in "$logs"/vg.*.log; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]' "$f"; then
        bad=$((bad + 1))
        echo "---- $f"
        sed -n '/^==[0-9]*== [A-Z]/,$p' "$f" | head -n 80
    fi
done
if [ "$n" -eq 0 ]; then
    echo "valgrind.sh: no valgrind reports written: did any test start verbd?" >&2
    exit 1
fi
if [ "$bad" -ne 0 ]; then
    echo "valgrind.sh: FAILED: $bad of $n verbd processes had memcheck errors or leaks (reports in $logs)"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "valgrind.sh: FAILED: tests failed under valgrind ($n verbd processes clean)"
    exit 1
fi
echo "valgrind.sh: $n verbd processes, no memcheck errors, no leaks"
