#!/bin/sh
# Checks (or, with --fix, applies) the project's C formatting: every C
# source and header git tracks, against .clang-format.
#
#   scripts/format.sh          list each file that deviates; exit 1 if any
#   scripts/format.sh --fix    rewrite them in place
set -u
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
    echo "format.sh: clang-format is missing; run: sudo apt-get install -y clang-format" >&2
    exit 1
fi
files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find include lib src tests fuzz examples bench -name '*.[ch]')
if [ "${1:-}" = --fix ]; then
    echo "$files" | xargs clang-format -i
    exit 0
fi
bad=0
for f in $files; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format.sh: $f deviates from .clang-format (scripts/format.sh --fix)"
        bad=1
    fi
done
exit $bad
