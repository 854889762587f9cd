#!/bin/sh
# Installs the Debian packages that building and testing verbd need.
# As root it runs apt-get; otherwise it prints the command to run.
set -e
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v curl >/dev/null 2>&1 || need="$need curl"
if [ -n "${VERBD_NEED_CLANG:-}" ]; then
    command -v clang >/dev/null 2>&1 || need="$need clang"
    [ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan*.a 2>/dev/null)" ] || need="$need libclang-rt-dev"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "verbd: installing:$need"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
else
    echo "verbd: missing packages; run: sudo apt-get install -y$need" >&2
    exit 1
fi
