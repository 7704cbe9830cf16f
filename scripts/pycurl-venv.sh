#!/usr/bin/env bash
# The real pycurl, built from its source against this machine's libcurl, in
# its own CPython venv (.venv/pycurl), for tests/test_vs_pycurl.py:
#
#   bash scripts/pycurl-venv.sh        prints the venv's python on its last line
#   PYCURL_PYTHON=$(bash scripts/pycurl-venv.sh | tail -1) bash scripts/test.sh tests/test_vs_pycurl.py
#
# The sdist comes from the package index (pip download --no-binary :all:), so
# the build uses the system libcurl, as curlmulti's does, never a wheel's.  A
# venv that already has that pycurl is reused.  If pycurl cannot be built, the
# reason goes to .venv/pycurl.unavailable (and stderr) and the exit status is
# 1: .ci/run then passes it on as PYCURL_UNAVAILABLE, and the side-by-side test
# is skipped with that reason instead of failing.
set -uo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

PYCURL_VERSION=${CURLMULTI_PYCURL_VERSION:-7.49.0}
venv="$CM_VENVS/pycurl"
reason_file="$CM_VENVS/pycurl.unavailable"
mkdir -p "$CM_VENVS"
rm -f "$reason_file"

unavailable() {
    echo "$*" >"$reason_file"
    cm_warn "pycurl $PYCURL_VERSION unavailable: $*"
    exit 1
}

have() {
    "$venv/bin/python" -c "import pycurl, sys; sys.exit(pycurl.version.split()[0] != 'PycURL/$PYCURL_VERSION')" \
        >/dev/null 2>&1
}

start=$SECONDS
if [ -x "$venv/bin/python" ] && have; then
    cm_say "pycurl $PYCURL_VERSION: .venv/pycurl is ready"
    echo "$venv/bin/python"
    exit 0
fi

py=$(cm_python cpython)
command -v "$py" >/dev/null || unavailable "$py not found"
command -v curl-config >/dev/null || unavailable "curl-config not found (libcurl's development files)"
# pycurl includes the headers of libcurl's TLS library (OpenSSL here).
if command -v dpkg-query >/dev/null && ! dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'ok installed'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        cm_say "apt-get install libssl-dev (pycurl's build needs OpenSSL's headers)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libssl-dev </dev/null \
            >/dev/null || unavailable "apt-get install libssl-dev failed"
    else
        unavailable "libssl-dev is not installed (run as root, or: sudo apt-get install libssl-dev)"
    fi
fi

cm_say "pycurl $PYCURL_VERSION: building from source into .venv/pycurl"
rm -rf "$venv"
"$py" -m venv "$venv" || unavailable "'$py -m venv' failed"
src="$venv/src"
mkdir -p "$src"
log="$venv/build.log"
if ! _cm_pip "$venv" download -q --no-binary :all: --no-deps "pycurl==$PYCURL_VERSION" -d "$src" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    unavailable "pip download pycurl==$PYCURL_VERSION failed (see .venv/pycurl/build.log)"
fi
if ! _cm_pip "$venv" install --no-binary pycurl "$src"/pycurl-*.tar.gz >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    unavailable "building pycurl $PYCURL_VERSION from source failed (see .venv/pycurl/build.log)"
fi
have || unavailable "the pycurl built does not import as PycURL/$PYCURL_VERSION"
cm_say "pycurl $PYCURL_VERSION built in $((SECONDS - start))s: $("$venv/bin/python" -c 'import pycurl; print(pycurl.version)')"
echo "$venv/bin/python"
