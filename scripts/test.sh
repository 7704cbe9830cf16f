#!/usr/bin/env bash
# The whole test suite, on CPython and then on PyPy:  bash scripts/test.sh [PYTEST ARGS]
#
#   bash scripts/test.sh                      everything, both interpreters
#   bash scripts/test.sh -k easy -x           extra arguments go to pytest
#   bash scripts/test.sh tests/test_servers.py
#   CURLMULTI_PYTHONS=cpython bash scripts/test.sh     one interpreter (cpython, pypy)
#   CURLMULTI_TESTS_FROM_SDIST=1 bash scripts/test.sh  the tests of the unpacked sdist
#                                                      (the default when CI is set)
#   CURLMULTI_LIBCURL=8.14 bash scripts/test.sh        built against Debian's backported
#                                                      libcurl 8.14 (scripts/libcurl814.sh),
#                                                      in venvs of their own (.venv/libcurl-8.14/)
#   CURLMULTI_LIBCURL=8.23 bash scripts/test.sh        built against the libcurl 8.23 of pycurl's
#                                                      manylinux wheel (scripts/libcurl823.sh),
#                                                      in .venv/libcurl-8.23/
#
# Each interpreter gets a venv under .venv/ (made once, test dependencies
# reinstalled when pyproject.toml changes) with curlmulti built on every run
# as an sdist of the working tree, then a wheel from that sdist, and installed.
# pytest runs from inside the venv directory, so the tests import the installed
# package, never the source tree's curlmulti/.  With CURLMULTI_TESTS_FROM_SDIST=1
# the test files, examples and tools come from that sdist too (paths given
# under the checkout map to the same paths in it): a file the sdist lacks fails.
# Exits non-zero if any interpreter fails, crashes or runs no test.
set -uo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
trap 'echo; cm_die "interrupted"' INT

case "${CURLMULTI_LIBCURL:-}" in
    "") ;;
    8.14)
        # shellcheck source=scripts/libcurl814.sh
        source "$CM_ROOT/scripts/libcurl814.sh"
        cm_libcurl814
        eval "$(cm_libcurl814_flags)"
        CM_VENVS="$CM_ROOT/.venv/libcurl-8.14" ;;
    8.23)
        # shellcheck source=scripts/libcurl823.sh
        source "$CM_ROOT/scripts/libcurl823.sh"
        cm_libcurl823
        eval "$(cm_libcurl823_flags)"
        CM_VENVS="$CM_ROOT/.venv/libcurl-8.23" ;;
    *) cm_die "CURLMULTI_LIBCURL=$CURLMULTI_LIBCURL: only 8.14 and 8.23 are known (unset: the system's libcurl)" ;;
esac

read -r -a PYTHONS <<<"${CURLMULTI_PYTHONS:-cpython pypy}"
[ ${#PYTHONS[@]} -gt 0 ] || cm_die "CURLMULTI_PYTHONS is empty"
for name in "${PYTHONS[@]}"; do cm_python "$name" >/dev/null; done

# Paths among the arguments are made absolute (pytest runs from elsewhere);
# the values of options that take a non-path value are left alone.
ARGS=()
HAVE_PATH=0
prev=""
for a in "$@"; do
    case "$prev" in
        -k|-m|-p|-o|-W|-r|--tb|--maxfail|--timeout|--durations|--log-level|--import-mode)
            ARGS+=("$a"); prev=""; continue ;;
    esac
    prev=$a
    case "$a" in
        -*) ARGS+=("$a") ;;
        *)
            p=${a%%::*}
            rest=${a#"$p"}
            if [ -e "$p" ] && [ "${p#/}" != "$p" ]; then
                ARGS+=("$a"); HAVE_PATH=1
            elif [ -e "$PWD/$p" ]; then
                ARGS+=("$(cd "$(dirname "$PWD/$p")" && pwd)/$(basename "$p")$rest"); HAVE_PATH=1
            elif [ -e "$CM_ROOT/$p" ]; then
                ARGS+=("$CM_ROOT/$p$rest"); HAVE_PATH=1
            else
                ARGS+=("$a")
            fi ;;
    esac
done
[ $HAVE_PATH = 1 ] || ARGS+=("$CM_ROOT/tests")
COLOR=()
[ -t 1 ] && COLOR=(--color=yes)
case "${CURLMULTI_TESTS_FROM_SDIST:-}" in
    1|0) FROM_SDIST=$CURLMULTI_TESTS_FROM_SDIST ;;
    "") case "${CI:-}" in ""|0|false) FROM_SDIST=0 ;; *) FROM_SDIST=1 ;; esac ;;
    *) cm_die "CURLMULTI_TESTS_FROM_SDIST must be 1 or 0" ;;
esac

cm_system_packages "${PYTHONS[@]}"

# tests/test_vs_pycurl.py compares with the real pycurl once it is built
# (bash scripts/pycurl-venv.sh; .ci/run does it): found here unless given.
if [ -z "${PYCURL_PYTHON:-}" ] && [ -z "${PYCURL_UNAVAILABLE:-}" ] && [ -x "$CM_VENVS/pycurl/bin/python" ]; then
    export PYCURL_PYTHON="$CM_VENVS/pycurl/bin/python"
fi

# One run at a time per checkout: two would rebuild the same venvs and
# write the same logs under each other.
mkdir -p "$CM_VENVS"
exec 9>"$CM_VENVS/.test.lock"
if command -v flock >/dev/null && ! flock -n 9; then
    cm_say "another scripts/test.sh is running in this checkout; waiting for it"
    flock 9
fi

LOGS="$CM_VENVS/logs"
mkdir -p "$LOGS"
declare -A SUMMARY STATUS VERSION
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0 RC=0
START=$SECONDS

for name in "${PYTHONS[@]}"; do
    t0=$SECONDS
    log="$LOGS/pytest-$name.log"
    : >"$log"
    if ! (cm_venv "$name"); then
        STATUS[$name]="SETUP FAILED"; SUMMARY[$name]="(see above)"; VERSION[$name]="?"
        TOTAL_FAILED=$((TOTAL_FAILED + 1)); RC=1
        continue
    fi
    venv="$CM_VENVS/$name"
    VERSION[$name]=$("$venv/bin/python" -c 'import platform; print(platform.python_implementation(), platform.python_version())')
    setup_s=$((SECONDS - t0))
    root=$CM_ROOT
    RUN_ARGS=("${ARGS[@]}")
    if [ "$FROM_SDIST" = 1 ]; then
        root="$venv/.sdist/src"
        RUN_ARGS=()
        for a in "${ARGS[@]}"; do
            case "$a" in
                "$CM_ROOT"/*) RUN_ARGS+=("$root/${a#"$CM_ROOT"/}") ;;
                *) RUN_ARGS+=("$a") ;;
            esac
        done
    fi
    cm_say "$name: pytest (${VERSION[$name]}, setup took ${setup_s}s$([ "$FROM_SDIST" = 1 ] && echo ", tests from the sdist"))"
    (
        cd "$venv" || exit 1
        CURLMULTI_TEST_INSTALLED=1 exec "$venv/bin/python" -m pytest \
            -c "$root/pyproject.toml" --rootdir "$root" "${COLOR[@]}" "${RUN_ARGS[@]}" </dev/null
    ) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # pytest's closing line: "==== 3 failed, 40 passed, 2 skipped in 5.01s ====" (no "=" with -q)
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(=+ )?([0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)|no tests ran)\b.* in [0-9.]+s' | tail -1 | sed -E 's/^=+ //; s/ =+$//')
    count() { echo "$line" | grep -oE "[0-9]+ $1" | head -1 | cut -d' ' -f1; }
    passed=$(count passed); failed=$(count failed); errors=$(count 'errors?'); skipped=$(count skipped)
    passed=${passed:-0}; failed=$(( ${failed:-0} + ${errors:-0} )); skipped=${skipped:-0}
    if [ -z "$line" ]; then
        line="pytest ended without a summary (exit $rc: crashed or killed?)"
        [ "$failed" -gt 0 ] || failed=1
    fi
    case $rc in
        0) STATUS[$name]="ok" ;;
        5) STATUS[$name]="NO TESTS"; [ "$failed" -gt 0 ] || failed=1 ;;
        *) STATUS[$name]="FAILED (exit $rc)"; [ "$failed" -gt 0 ] || failed=1 ;;
    esac
    [ "$rc" = 0 ] || RC=1
    SUMMARY[$name]="$line  [setup ${setup_s}s, total $((SECONDS - t0))s]"
    TOTAL_PASSED=$((TOTAL_PASSED + passed)); TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
done

echo
echo "================ curlmulti tests: per interpreter ================"
for name in "${PYTHONS[@]}"; do
    printf '%-8s %-16s %-14s %s\n' "$name" "${VERSION[$name]}" "${STATUS[$name]}" "${SUMMARY[$name]}"
done
echo "logs: $LOGS/pytest-<interpreter>.log; $((SECONDS - START))s in all"
if [ "$TOTAL_SKIPPED" -gt 0 ]; then
    echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
else
    echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
fi
exit $RC
