# shellcheck shell=bash
# Setup shared by scripts/test.sh, scripts/demo.sh and .ci/run.  Sourced, not run.
#
#   cm_system_packages NAME...   the Debian packages that the interpreters NAME
#                                (cpython, pypy) need: installed when missing
#                                (as root), else a message naming them.
#                                CM_APT_FORCE=1: always apt-get update + install.
#   cm_venv NAME                 .venv/NAME ready: created once, test extras
#                                installed when pyproject.toml changed, and on
#                                every call curlmulti rebuilt and reinstalled
#                                (not editable) FROM A FRESH SDIST: the venv's
#                                own interpreter builds an sdist of the working
#                                tree, then a wheel from that sdist (python -m
#                                build), and installs the wheel; the sdist is
#                                left unpacked in .venv/NAME/.sdist/src (see
#                                CURLMULTI_TESTS_FROM_SDIST in scripts/test.sh).
#                                CURLMULTI_INSTALL=wheel:DIR: install instead
#                                the binary wheel in DIR made for NAME
#                                (scripts/wheels.sh's wheelhouse); the sdist
#                                is still built, for its tests.
#   cm_python NAME               the interpreter a venv is made from
#                                (CURLMULTI_CPYTHON / CURLMULTI_PYPY override);
#                                NAME cpython3.X: another CPython version (below).
#   cm_have_python NAME          true if that interpreter is installed.

CM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CM_VENVS="$CM_ROOT/.venv"
CM_SETUP_VERSION=2                      # bump to rebuild every venv

# openssh-server: the sshd that tests/sshserver.py runs, unprivileged, for the
# SSH callback tests (Debian's package does not start its service in a
# container whose policy-rc.d forbids it; elsewhere it starts one on port 22).
CM_APT_COMMON=(libcurl4-openssl-dev gcc libc6-dev openssh-server)
CM_APT_PYPY=(pypy3 pypy3-dev pypy3-venv)

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off

cm_say() { printf '==> %s\n' "$*"; }
cm_warn() { printf 'warning: %s\n' "$*" >&2; }
cm_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cm_python() {
    case "$1" in
        cpython) echo "${CURLMULTI_CPYTHON:-python3}" ;;
        cpython3.*) _cm_versioned_python "${1#cpython}" ;;   # see "More CPython versions" below
        pypy) echo "${CURLMULTI_PYPY:-pypy3}" ;;
        *) cm_die "unknown interpreter '$1' (expected cpython, pypy or cpython3.X)" ;;
    esac
}

# Packages a Debian python3 needs for venvs and for compiling extensions;
# nothing for a python3 that isn't Debian's (pyenv, /usr/local).
_cm_cpython_packages() {
    local py exe
    py=$(cm_python cpython)
    command -v "$py" >/dev/null || { echo python3 python3-dev python3-venv; return; }
    exe=$("$py" -c 'import os, sys; print(os.path.realpath(sys.executable))')
    case "$exe" in /usr/bin/*) echo python3-dev python3-venv ;; esac
}

_cm_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

cm_system_packages() {
    local name want=("${CM_APT_COMMON[@]}") missing=() pkg extra=()
    for name in "$@"; do
        case "$name" in
            cpython) read -r -a extra <<<"$(_cm_cpython_packages)"; want+=("${extra[@]}") ;;
            pypy) want+=("${CM_APT_PYPY[@]}") ;;
        esac
    done
    if ! command -v dpkg-query >/dev/null; then
        # Not Debian: check for the tools themselves and name what is missing.
        command -v curl-config >/dev/null || missing+=("libcurl development files (curl-config)")
        command -v cc >/dev/null || command -v gcc >/dev/null || missing+=("a C compiler")
        for name in "$@"; do
            command -v "$(cm_python "$name")" >/dev/null || missing+=("$(cm_python "$name")")
        done
        [ ${#missing[@]} -eq 0 ] || cm_die "missing: ${missing[*]}; install them and run again"
        return 0
    fi
    for pkg in "${want[@]}"; do
        _cm_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ] && [ "${CM_APT_FORCE:-0}" != 1 ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        cm_die "missing Debian packages: ${missing[*]}
run as root, or install them first:  sudo apt-get install -y ${missing[*]}"
    fi
    cm_say "apt-get install ${want[*]}${missing[*]:+ (missing: ${missing[*]})}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -q; then
        [ ${#missing[@]} -eq 0 ] || cm_die "apt-get update failed and ${missing[*]} are missing"
        cm_warn "apt-get update failed; every package needed is installed, going on"
        return 0
    fi
    apt-get install -y -q --no-install-recommends "${want[@]}" </dev/null \
        || cm_die "apt-get install ${want[*]} failed"
}

# pip in a venv, without this machine's notes about absent local indexes.
_cm_pip() {
    local venv=$1; shift
    "$venv/bin/python" -m pip "$@" 2>&1 | grep -v 'is ignored: it is neither a file nor a directory'
    return "${PIPESTATUS[0]}"
}

cm_venv() {
    local name=$1 py venv interp_id deps_id
    py=$(cm_python "$name")
    venv="$CM_VENVS/$name"
    command -v "$py" >/dev/null || cm_die "$py not found (needed for the $name venv)"
    interp_id="$("$py" -c 'import platform, sys; print(sys.executable, platform.python_implementation(), platform.python_version())') setup=$CM_SETUP_VERSION"
    deps_id=$(sha256sum "$CM_ROOT/pyproject.toml" | cut -d' ' -f1)

    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.cm-interp" 2>/dev/null)" != "$interp_id" ] \
            || ! "$venv/bin/python" -c '' 2>/dev/null; then
        cm_say "$name: creating .venv/$name with $py"
        rm -rf "$venv"
        "$py" -m venv "$venv" || cm_die "'$py -m venv' failed"
        echo "$interp_id" >"$venv/.cm-interp"
    fi

    # A build directory of our own, emptied every time: no object or .py left
    # over from another interpreter, another developer or a deleted module.
    local build="$venv/.build"
    rm -rf "$build"
    mkdir -p "$build"
    printf '[build]\nbuild_base = %s\n' "$build" >"$venv/.cm-build.cfg"
    export DIST_EXTRA_CONFIG="$venv/.cm-build.cfg"

    # The sdist, then a wheel built from it (never from the checkout), each in
    # build's isolated environment (setuptools and cffi as pyproject.toml asks):
    # a file missing from MANIFEST.in fails here, on this interpreter.
    local dist="$venv/.sdist" wheel
    rm -rf "$dist"
    mkdir -p "$dist"
    if ! "$venv/bin/python" -c 'import build' 2>/dev/null; then
        cm_say "$name: pip install build (first run)"
        _cm_pip "$venv" install -q build || cm_die "$name: pip install build failed"
    fi
    # --- binary wheels (scripts/wheels.sh): CURLMULTI_INSTALL=wheel:DIR ---
    local build_what=() wheel_dir=""
    case "${CURLMULTI_INSTALL:-}" in
        "") ;;
        wheel:*)
            wheel_dir=${CURLMULTI_INSTALL#wheel:}
            build_what=(--sdist) ;;
        *) cm_die "CURLMULTI_INSTALL must be empty or wheel:DIRECTORY" ;;
    esac
    # --- end binary wheels ---
    cm_say "$name: building the sdist$([ -z "$wheel_dir" ] && echo ", then a wheel from it")"
    if ! "$venv/bin/python" -m build "${build_what[@]}" --outdir "$dist" "$CM_ROOT" >"$dist/build.log" 2>&1; then
        tail -n 40 "$dist/build.log" >&2
        cm_die "$name: building curlmulti from its sdist failed (log: $dist/build.log)"
    fi
    # --- binary wheels: the wheel for this interpreter from DIR ---
    if [ -n "$wheel_dir" ]; then
        local pattern='curlmulti-*-cp3*-abi3-*.whl'
        [ "$name" = pypy ] && pattern='curlmulti-*-pp3*.whl'
        # shellcheck disable=SC2206
        local found=($wheel_dir/$pattern)
        [ -f "${found[0]}" ] || cm_die "$name: no $pattern in $wheel_dir"
        cp "${found[0]}" "$dist/"
        cm_say "$name: installing $(basename "${found[0]}") (CURLMULTI_INSTALL), not a build of the tree"
    fi
    # --- end binary wheels ---
    local wheels=("$dist"/curlmulti-*.whl) sdists=("$dist"/curlmulti-*.tar.gz)
    if [ ! -f "${wheels[0]}" ] || [ ! -f "${sdists[0]}" ]; then
        cm_die "$name: python -m build made no sdist or no wheel (log: $dist/build.log)"
    fi
    wheel=${wheels[0]}
    mkdir -p "$dist/src"
    tar -xzf "${sdists[0]}" -C "$dist/src" --strip-components=1 || cm_die "$name: unpacking the sdist failed"

    if [ "$(cat "$venv/.cm-deps" 2>/dev/null)" != "$deps_id" ]; then
        cm_say "$name: pip install curlmulti[test] (test dependencies changed or first run)"
        _cm_pip "$venv" install -q "${wheel}[test]" || cm_die "$name: pip install curlmulti[test] failed"
        echo "$deps_id" >"$venv/.cm-deps"
    fi
    cm_say "$name: installing the wheel built from the sdist"
    _cm_pip "$venv" install -q --no-deps --force-reinstall "$wheel" \
        || cm_die "$name: installing the curlmulti wheel failed"
    unset DIST_EXTRA_CONFIG
    (cd "$venv" && "$venv/bin/python" -c 'import curlmulti._curl') >/dev/null 2>&1 \
        || cm_warn "$name: the installed curlmulti._curl does not import"
}

# -- More CPython versions --------------------------------------------------------
# NAME cpython3.X (cpython3.9, cpython3.13, ...) is the newest pyenv interpreter
# 3.X.* under $PYENV_ROOT (default ~/.pyenv/versions), else python3.X on PATH;
# CURLMULTI_CPYTHON3X (CURLMULTI_CPYTHON39=/usr/bin/python3.9) overrides.  They
# get a venv .venv/cpython3.X like the others and need no Debian package of
# their own (a pyenv build has its headers and venv).
_cm_versioned_python() {
    local ver=$1 var root cand
    var="CURLMULTI_CPYTHON${ver//./}"
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    root=${PYENV_ROOT:-$HOME/.pyenv}
    cand=$(find "$root/versions" -maxdepth 1 -name "$ver.*" 2>/dev/null | sort -V | tail -1)
    if [ -n "$cand" ] && [ -x "$cand/bin/python$ver" ]; then
        echo "$cand/bin/python$ver"
    else
        command -v "python$ver" 2>/dev/null || echo "python$ver"
    fi
}

cm_have_python() {
    command -v "$(cm_python "$1")" >/dev/null 2>&1
}
