#!/bin/sh
# Builds a Debian package of verbd with dpkg-deb alone: `make install` with
# prefix /usr into a staging tree, a control file, the package.
#   scripts/deb.sh --build DIR --version VERSION   (make deb passes both)
# The package lands in DIR; its dependencies are the packages that hold the
# shared libraries the daemon links, as dpkg -S finds them here (no versions:
# a package for the Debian release it is built on).
set -e
build=build
version=0.1.0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) echo "usage: scripts/deb.sh [--build DIR] [--version VERSION]" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null 2>&1 || { echo "verbd: make deb needs dpkg-deb" >&2; exit 1; }
arch=$(dpkg --print-architecture)
stage=$build/deb/verbd_${version}_$arch
out=$build/verbd_${version}_$arch.deb
rm -rf "$stage"
make --no-print-directory BUILD="$build" PREFIX=/usr SYSCONFDIR=/etc DESTDIR="$stage" install >/dev/null
# Debian ships manual pages compressed.
gzip -9n "$stage/usr/share/man/man5/verbd.conf.5" "$stage/usr/share/man/man8/verbd.8"

deps=""
# The libraries the daemon names itself (not theirs), where ldd finds them.
needed=$(LC_ALL=C readelf -d "$stage/usr/bin/verbd" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for name in $needed; do
    lib=$(ldd "$stage/usr/bin/verbd" | awk -v n="$name" '$1 == n && $3 ~ /^\// { print $3 }')
    [ -n "$lib" ] || continue

    real=$(readlink -f "$lib")
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || true)
    pkg=${pkg%%:*}
    case " $deps " in *" $pkg "*) ;; *) [ -n "$pkg" ] && deps="$deps $pkg" ;; esac
done
deps=$(echo $deps | sed 's/ /, /g')

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage/usr" "$stage/etc" | awk '{ n += $1 } END { print n }')
cat > "$stage/DEBIAN/control" <<CONTROL
Package: verbd
Version: $version
Architecture: $arch
Maintainer: verbd developers <verbd@localhost>
Installed-Size: $size
Depends: $deps
Section: httpd
Priority: optional
Description: HTTP/1.1 server that knows exactly which methods it implements
 verbd serves files, WebDAV shares and upstream servers over HTTP/1.1 and
 HTTPS, answering 501 for methods nothing implements and 405 with a
 truthful Allow header where a method is not allowed.  The package holds
 the daemon, the libverbd static library and header, manual pages, an
 example configuration, a systemd unit and a logrotate snippet.
CONTROL
echo /etc/logrotate.d/verbd > "$stage/DEBIAN/conffiles"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "verbd: built $out"
