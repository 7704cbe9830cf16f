#!/usr/bin/env bash
# libcurl 8.14 from Debian bookworm-backports, unpacked under the checkout
# (never installed over the system's libcurl):
#
#   bash scripts/libcurl814.sh            fetch and unpack once; print the prefix
#   eval "$(bash scripts/libcurl814.sh --env)"   CURLMULTI_CFLAGS/CURLMULTI_LIBS
#                                          to build curlmulti against it
#
# The prefix is .cache/libcurl-8.14/root; its libcurl.so.4 is found at run
# time through an rpath, so nothing else is needed to load it.  The packages'
# dependencies are all in Debian 12 itself.  On a machine without the
# bookworm-backports suite in its apt sources, the script (as root) adds it
# as a deb822 file signed by debian-archive-keyring, then runs apt-get update.
# scripts/test.sh sources it (CURLMULTI_LIBCURL=8.14) for cm_libcurl814 and
# cm_libcurl814_flags.

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

CM_814_DIR="$CM_ROOT/.cache/libcurl-8.14"
CM_814_ROOT="$CM_814_DIR/root"
CM_814_LIB="$CM_814_ROOT/usr/lib/x86_64-linux-gnu"
SUITE=bookworm-backports
PKGS=(libcurl4 libcurl4-openssl-dev)

cm_libcurl814_flags() {
    local multiarch
    multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    CM_814_LIB="$CM_814_ROOT/usr/lib/$multiarch"
    echo "export CURLMULTI_CFLAGS='-I$CM_814_ROOT/usr/include -I$CM_814_ROOT/usr/include/$multiarch'"
    echo "export CURLMULTI_LIBS='-L$CM_814_LIB -lcurl -Wl,-rpath,$CM_814_LIB'"
}

_cm_814_sources() {
    # Is the suite known to apt?  (apt-cache policy lists it once indexed.)
    if apt-cache policy 2>/dev/null | grep -q " $SUITE/main"; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || cm_die "apt does not know $SUITE; as root, run this script again (it adds the suite)"
    if ! grep -rqs "$SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
            || apt-get install -y -q debian-archive-keyring </dev/null
        cm_say "adding $SUITE to apt's sources (/etc/apt/sources.list.d/curlmulti-backports.sources)"
        cat >/etc/apt/sources.list.d/curlmulti-backports.sources <<SRC
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    apt-get update -q || cm_die "apt-get update failed"
}

cm_libcurl814() {
    if [ -f "$CM_814_DIR/.done" ]; then
        return 0
    fi
    command -v apt-get >/dev/null || cm_die "libcurl 8.14 comes from Debian's $SUITE: apt-get is needed"
    _cm_814_sources
    rm -rf "$CM_814_DIR"
    mkdir -p "$CM_814_DIR/debs" "$CM_814_ROOT"
    cm_say "apt-get download ${PKGS[*]} from $SUITE"
    local args=() p
    for p in "${PKGS[@]}"; do args+=("$p/$SUITE"); done
    (cd "$CM_814_DIR/debs" && apt-get download -q "${args[@]}" </dev/null) \
        || cm_die "apt-get download ${args[*]} failed"
    for p in "$CM_814_DIR"/debs/*.deb; do
        dpkg -x "$p" "$CM_814_ROOT" || cm_die "dpkg -x $p failed"
    done
    # The -dev package's libcurl.so points at the runtime library by a
    # relative link, so -lcurl finds 8.14 in the prefix.
    ls "$CM_814_ROOT"/usr/lib/*/libcurl.so.4 >/dev/null 2>&1 || cm_die "no libcurl.so.4 in the 8.14 packages"
    compgen -G "$CM_814_ROOT/usr/include/*/curl/curl.h" >/dev/null || [ -f "$CM_814_ROOT/usr/include/curl/curl.h" ] \
        || cm_die "no curl/curl.h in the 8.14 packages"
    touch "$CM_814_DIR/.done"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        --env) cm_libcurl814 >&2; cm_libcurl814_flags ;;
        "") cm_libcurl814; echo "$CM_814_ROOT" ;;
        *) cm_die "usage: bash scripts/libcurl814.sh [--env]" ;;
    esac
fi
