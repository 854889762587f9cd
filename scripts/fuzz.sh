#!/bin/sh
# Builds every libFuzzer harness fuzz/fuzz_*.c against the library sources
# (clang, -fsanitize=fuzzer,address,undefined) and runs each for SECONDS.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]     e.g. scripts/fuzz.sh 600 parse chunked
#
# SECONDS defaults to 30; NAMEs (parse, chunked, path, config, ...) default
# to every harness.  Each harness NAME starts from its seeds in
# fuzz/corpus/NAME and the reproducers in fuzz/regressions/NAME (read-only),
# and keeps what it finds in build/fuzz/corpus/NAME (not committed).
# Leaks are detected, an input running longer than 10 s is a timeout, and a
# run fails on any crash, leak, timeout or out-of-memory: the input is left
# in build/fuzz/artifacts/ and the path printed.  Exit status 0 only if
# every harness ran clean.
#
# Environment:
#   FUZZ_BUILD   build directory (default build/fuzz)
#   FUZZ_JOBS    harnesses run at once (default: number of CPUs)
#   FUZZ_CC      compiler (default clang)
#   LIB_CFLAGS   compiler flags the library needs (default: libxml2's and
#                libpq's, as the Makefile's XML_CFLAGS and PQ_CFLAGS)
#   LDLIBS       libraries the library needs (default: -lxml2 -lsqlite3 -lpq -lssl
#                -lcrypto -lcrypt -lpcre2-8 -lbrotlienc -lz -lnghttp2, as the
#                Makefile's LDLIBS)
#   FUZZ_ARGS    extra libFuzzer flags, e.g. "-only_ascii=1"
#   FUZZ_CFLAGS_EXTRA  extra compiler flags (a change rebuilds everything)
set -u
cd "$(dirname "$0")/.."

seconds=${1:-30}
[ $# -gt 0 ] && shift
case $seconds in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [NAME...]" >&2; exit 2 ;;
esac
build=${FUZZ_BUILD:-build/fuzz}
cc=${FUZZ_CC:-clang}
ldlibs=${LDLIBS:--lxml2 -lsqlite3 -lpq -lssl -lcrypto -lcrypt -lpcre2-8 -lbrotlienc -lz -lnghttp2}
lib_cflags=${LIB_CFLAGS:-$(pkg-config --cflags libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2) $(pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# -- toolchain ----------------------------------------------------------------
if ! command -v "$cc" >/dev/null 2>&1 ||
    ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    echo "fuzz.sh: clang with libFuzzer is missing; run:" >&2
    echo "  sudo apt-get install -y clang libclang-rt-14-dev" >&2
    exit 1
fi

# -- harnesses ------------------------------------------------------------------
if [ $# -gt 0 ]; then
    names="$*"
else
    names=$(for f in fuzz/fuzz_*.c; do n=${f#fuzz/fuzz_}; echo "${n%.c}"; done)
fi
for n in $names; do
    [ -f "fuzz/fuzz_$n.c" ] || { echo "fuzz.sh: no harness fuzz/fuzz_$n.c" >&2; exit 2; }
done

# -- build ----------------------------------------------------------------------
# The library once, instrumented for coverage (fuzzer-no-link), into an
# archive: each harness links only the objects it uses.
cflags="-std=c17 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -DVERBD_VERSION=\"fuzz\" -Iinclude -Ilib"
cflags="$cflags $lib_cflags -fsanitize=address,undefined -fno-sanitize-recover=all ${FUZZ_CFLAGS_EXTRA:-}"
mkdir -p "$build/obj" "$build/artifacts" "$build/corpus" "$build/logs"

# A header change rebuilds everything; a source change rebuilds its object.
newest_header=$(ls -t include/*.h lib/*/*.h lib/mod/*/*.h 2>/dev/null | head -n 1)
# New flags rebuild everything too.
if [ "$(cat "$build/cflags" 2>/dev/null)" != "$cc $cflags" ]; then
    rm -f "$build"/obj/*.o
    echo "$cc $cflags" > "$build/cflags"
fi
objs=""
failed_build=""
for src in lib/*/*.c lib/mod/*/*.c; do
    [ -f "$src" ] || continue
    obj="$build/obj/$(echo "${src%.c}" | tr / _).o"
    objs="$objs $obj"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || { [ -n "$newest_header" ] && [ "$newest_header" -nt "$obj" ]; }; then
        echo "$src $obj"
    fi
done > "$build/todo"
if [ -s "$build/todo" ]; then
    echo "fuzz.sh: compiling $(wc -l < "$build/todo") library files"
    # shellcheck disable=SC2086
    export FUZZ_CFLAGS="$cflags -fsanitize=fuzzer-no-link -Wall -Wextra"
    if ! xargs -P "$jobs" -n 2 sh -c 'exec "$0" $FUZZ_CFLAGS -c "$1" -o "$2"' "$cc" \
        < "$build/todo"; then
        echo "fuzz.sh: the library does not compile" >&2
        exit 1
    fi
fi
lib="$build/libverbd-fuzz.a"
rm -f "$lib"
# shellcheck disable=SC2086
ar rcs "$lib" $objs

for n in $names; do
    bin="$build/fuzz_$n"
    # shellcheck disable=SC2086
    if ! "$cc" $cflags -fsanitize=fuzzer "fuzz/fuzz_$n.c" "$lib" $ldlibs -o "$bin"; then
        failed_build="$failed_build $n"
    fi
done
if [ -n "$failed_build" ]; then
    echo "fuzz.sh: harness(es) failed to build:$failed_build" >&2
    exit 1
fi

# -- run ------------------------------------------------------------------------
# libFuzzer exits non-zero on a crash, a leak (detect_leaks), a timeout and
# an out-of-memory; the artifact files are checked as well.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

run_one() {
    n=$1
    work="$build/corpus/$n"
    log="$build/logs/$n.log"
    mkdir -p "$work"
    rm -f "$build/artifacts/$n-"*
    dirs="$work fuzz/corpus/$n"
    [ -d "fuzz/regressions/$n" ] && dirs="$dirs fuzz/regressions/$n"
    dict=""
    [ -f "fuzz/$n.dict" ] && dict="-dict=fuzz/$n.dict"
    # shellcheck disable=SC2086
    "$build/fuzz_$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$build/artifacts/$n-" \
        $dict ${FUZZ_ARGS:-} $dirs > "$log" 2>&1
    rc=$?
    last=$(grep -aE '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    artifacts=$(ls "$build/artifacts/$n-"* 2>/dev/null)
    if [ $rc -ne 0 ] || [ -n "$artifacts" ]; then
        echo "FAIL fuzz_$n: exit $rc after ${execs:-?} runs; log: $log"
        grep -aE '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_[a-z]+: |ALARM|.*out-of-memory|artifact_prefix)' "$log" | head -n 12 | sed 's/^/    /'
        for a in $artifacts; do echo "    input: $a"; done
        return 1
    fi
    echo "ok   fuzz_$n: ${seconds}s, ${execs:-?} runs, ${eps:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?} corp: ${corp:-?}"
    return 0
}

echo "fuzz.sh: running $(echo $names | wc -w) harness(es) for ${seconds}s each, $jobs at a time"
. scripts/pool.sh
pool_jobs=$jobs
for n in $names; do
    pool_run "$build/logs/$n.result" run_one "$n"
done
pool_finish
status=$pool_status
if [ $status -ne 0 ]; then
    echo "fuzz.sh: FAILED (reproduce: $build/fuzz_NAME INPUT)"
else
    echo "fuzz.sh: all harnesses clean"
fi
exit $status
