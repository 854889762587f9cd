#!/bin/sh
# Installs the Debian packages verbd needs for one purpose:
#   deps.sh run    building and serving
#   deps.sh test   the test suite (adds the peers the probe is compared with)
#   deps.sh asan   the test suite under clang's sanitizers, and the fuzzers
# (the test suite runs the fuzzers briefly, so it needs clang too)
# As root it runs apt-get; otherwise it prints the command to run and fails.
set -e
purpose=${1:-run}
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -f /usr/include/libxml2/libxml/parser.h ] || need="$need libxml2-dev"
[ -f /usr/include/sqlite3.h ] || need="$need libsqlite3-dev"
# WebDAV properties and locks shared by several nodes: libpq (PostgreSQL).
[ -f /usr/include/postgresql/libpq-fe.h ] || need="$need libpq-dev"
[ -f /usr/include/openssl/ssl.h ] || need="$need libssl-dev"
# Password hashes (bcrypt, SHA-crypt) for auth_basic: libxcrypt.
[ -f /usr/include/crypt.h ] || need="$need libcrypt-dev"
# Regular expressions for rewrite: PCRE2.
[ -f /usr/include/pcre2.h ] || need="$need libpcre2-dev"
# Compression on the fly: gzip with zlib, brotli with libbrotlienc.
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
[ -f /usr/include/brotli/encode.h ] || need="$need libbrotli-dev"
# HTTP/2: framing, HPACK and flow control.
[ -f /usr/include/nghttp2/nghttp2.h ] || need="$need libnghttp2-dev"
if [ "$purpose" != run ]; then
    command -v python3 >/dev/null 2>&1 || need="$need python3"
    command -v curl >/dev/null 2>&1 || need="$need curl"
    command -v clang-format >/dev/null 2>&1 || need="$need clang-format"
    # The manual pages are rendered with groff -ww (test_install.py).
    command -v groff >/dev/null 2>&1 || need="$need groff-base"
    # Compression round trips (test_compression.py) decode brotli with
    # Python's brotli module, or with the brotli command under a Python
    # that lacks it.
    command -v brotli >/dev/null 2>&1 || need="$need brotli"
    /usr/bin/python3 -c "import brotli" >/dev/null 2>&1 || need="$need python3-brotli"
    # Test certificates for https are made with the openssl command.
    command -v openssl >/dev/null 2>&1 || need="$need openssl"
    # The TLS audit (scripts/tls-audit.sh) runs testssl against verbd.
    command -v testssl >/dev/null 2>&1 || command -v testssl.sh >/dev/null 2>&1 ||
        need="$need testssl.sh"
    # Peers that the probe's tests run on loopback with their own configs.
    [ -x /usr/sbin/nginx ] || need="$need nginx"
    [ -x /usr/sbin/apache2 ] || need="$need apache2"
    # WebDAV clients the webdav module's tests drive.
    command -v litmus >/dev/null 2>&1 || need="$need litmus"
    command -v rclone >/dev/null 2>&1 || need="$need rclone"
    command -v cadaver >/dev/null 2>&1 || need="$need cadaver"
    # A real PostgreSQL for the WebDAV store shared by several nodes
    # (test_webdav_pg.py starts its own, as an unprivileged user).
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
    # Several nodes sharing it behind HAProxy (test_webdav_nodes.py), one of
    # them with its clock shifted by libfaketime.
    [ -x /usr/sbin/haproxy ] || need="$need haproxy"
    ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need="$need libfaketime"
    # FastCGI: PHP-FPM as the application (test_fastcgi.py), and DokuWiki,
    # a PHP application from Debian run behind verbd unchanged (test_apps.py).
    ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need="$need php-fpm"
    [ -f /usr/share/dokuwiki/doku.php ] || need="$need dokuwiki"
    # HTTP/2 clients: nghttp2's and Python's h2 (test_http2.py).
    command -v nghttp >/dev/null 2>&1 || need="$need nghttp2-client"
    [ -d /usr/lib/python3/dist-packages/h2 ] || need="$need python3-h2"
    # The independent HTTP cache test suite (test_cache_suite.py) runs on
    # Node.js; npm installs it from the npm registry under build/.
    command -v node >/dev/null 2>&1 || need="$need nodejs"
    command -v npm >/dev/null 2>&1 || need="$need npm"
    # strace kills a worker at a chosen system call (test_cache_disk.py).
    command -v strace >/dev/null 2>&1 || need="$need strace"
fi
if [ "$purpose" != run ]; then
    command -v clang >/dev/null 2>&1 || need="$need clang"
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.a >/dev/null 2>&1 ||
        need="$need libclang-rt-dev"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "verbd: missing packages; run: sudo apt-get install -y$need" >&2
    exit 1
fi
echo "verbd: installing:$need"
# The packages' services must not start: peers run only under the tests.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
fi
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
if [ -n "$created_policy" ]; then
    rm -f /usr/sbin/policy-rc.d
fi
