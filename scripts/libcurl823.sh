#!/usr/bin/env bash
# libcurl 8.23.0 as the pycurl 7.49.0 manylinux wheel on PyPI bundles it,
# unpacked under the checkout (never installed anywhere), for testing what
# libcurl gained after 8.14 (curl_multi_notify_enable, ...):
#
#   bash scripts/libcurl823.sh            download and unpack once; print the library directory
#   eval "$(bash scripts/libcurl823.sh --env)"   CURLMULTI_CFLAGS/CURLMULTI_LIBS
#                                          to build curlmulti against it
#
# Only the wheel's shared libraries are used (pycurl.libs/: libcurl and the
# libraries auditwheel put beside it, found by libcurl's $ORIGIN rpath); the
# headers are libcurl's public headers vendored under tests/libcurl-new/
# (curl 8.21.0's, see its README).  auditwheel renamed libcurl
# (libcurl-<hash>.so.4.8.0, that name its soname), so a libcurl.so link next
# to it lets -lcurl find it; curlmulti._curl finds it at run time through an
# rpath.  The wheel's sha256 is checked.  Downloading needs PyPI (pip download
# with any Python that has pip); when it fails the script exits with status 3
# (.ci/run then skips its 8.23 stage with a note), any other failure with 1.
# scripts/test.sh sources this file
# (CURLMULTI_LIBCURL=8.23) for cm_libcurl823 and cm_libcurl823_flags.

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

CM_823_DIR="$CM_ROOT/.cache/libcurl-8.23"
CM_823_LIB="$CM_823_DIR/lib"
CM_823_INCLUDE="$CM_ROOT/tests/libcurl-new/include"
CM_823_WHEEL=pycurl-7.49.0-cp311-cp311-manylinux_2_28_x86_64.whl
CM_823_SHA256=6f88539845d3bb2cf2ce0ccbc1bb8b9ed9e401a0d874798aeabc5f16f0f95c4d
CM_823_NO_DOWNLOAD=3    # the exit status when the wheel cannot be downloaded

cm_libcurl823_flags() {
    echo "export CURLMULTI_CFLAGS='-I$CM_823_INCLUDE'"
    echo "export CURLMULTI_LIBS='-L$CM_823_LIB -lcurl -Wl,-rpath,$CM_823_LIB -Wl,-rpath-link,$CM_823_LIB'"
}

# A Python with pip: python3's, else a venv of our own.
_cm_823_pip() {
    if python3 -m pip --version >/dev/null 2>&1; then
        echo python3
        return
    fi
    local venv="$CM_823_DIR/pip-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2 || cm_die "python3 -m venv failed"
    echo "$venv/bin/python"
}

cm_libcurl823() {
    if [ -f "$CM_823_DIR/.done" ]; then
        return 0
    fi
    [ "$(uname -m)" = x86_64 ] || cm_die "the pycurl wheel that bundles libcurl 8.23 is x86_64 only"
    [ -f "$CM_823_INCLUDE/curl/curl.h" ] || cm_die "no $CM_823_INCLUDE/curl/curl.h"
    rm -rf "$CM_823_DIR"
    mkdir -p "$CM_823_DIR/wheel" "$CM_823_LIB"
    local py
    py=$(_cm_823_pip)
    cm_say "pip download pycurl==7.49.0 (manylinux_2_28_x86_64 wheel: its bundled libcurl 8.23.0)"
    "$py" -m pip download -q --only-binary :all: --no-deps --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --dest "$CM_823_DIR/wheel" pycurl==7.49.0 </dev/null \
        || { printf 'error: %s\n' "pip download of the pycurl 7.49.0 wheel failed (is PyPI reachable?)" >&2
             exit "$CM_823_NO_DOWNLOAD"; }
    local whl="$CM_823_DIR/wheel/$CM_823_WHEEL"
    [ -f "$whl" ] || cm_die "pip download made no $CM_823_WHEEL"
    echo "$CM_823_SHA256  $whl" | sha256sum -c --quiet - || cm_die "$CM_823_WHEEL: unexpected sha256"
    "$py" - "$whl" "$CM_823_LIB" <<'PY' || cm_die "unpacking the wheel's libraries failed"
import os, sys, zipfile
whl, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.startswith("pycurl.libs/") and not name.endswith("/"):
            target = os.path.join(out, os.path.basename(name))
            with z.open(name) as src, open(target, "wb") as dst:
                dst.write(src.read())
            os.chmod(target, 0o755)
PY
    local lib
    lib=$(cd "$CM_823_LIB" && compgen -G 'libcurl-*.so.4*' | head -n 1)
    [ -n "$lib" ] || cm_die "no libcurl in the wheel's pycurl.libs/"
    ln -sf "$lib" "$CM_823_LIB/libcurl.so"
    rm -rf "$CM_823_DIR/wheel"
    touch "$CM_823_DIR/.done"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        --env) cm_libcurl823 >&2; cm_libcurl823_flags ;;
        "") cm_libcurl823; echo "$CM_823_LIB" ;;
        *) cm_die "usage: bash scripts/libcurl823.sh [--env]" ;;
    esac
fi
