#!/usr/bin/env bash
# The lifetime scenarios under valgrind memcheck, on CPython:
#   bash scripts/valgrind.sh [PYTEST ARGS]
#
#   bash scripts/valgrind.sh                       tests/test_multi_lifetimes.py tests/test_share.py
#   bash scripts/valgrind.sh tests/test_share.py -k scenario
#
# pytest and every scenario subprocess it starts (--trace-children=yes) run
# under memcheck with PYTHONMALLOC=malloc, so Python objects are malloc blocks
# that memcheck watches; scripts/valgrind-python.supp hides CPython's own
# uninitialised-value noise (see the file).  Each process writes its report to
# .venv/valgrind/logs/vg.<pid>.log, stderr stays clean for the scenarios'
# "nothing on stderr" check.  Leaks are not errors (--errors-for-leak-kinds=none):
# tests/test_leaks.py covers them.
#
# Fails if pytest fails or if any process's report has errors.  Not in the
# default test run: about 20 minutes on two busy cores.
set -uo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
trap 'echo; cm_die "interrupted"' INT

DEFAULT_FILES=(test_multi_lifetimes.py test_share.py)
VG_ERROR_EXIT=97

cm_system_packages cpython
if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        cm_say "apt-get install valgrind"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind </dev/null \
            || cm_die "apt-get install valgrind failed"
    else
        cm_die "valgrind not found (Debian: apt-get install valgrind)"
    fi
fi

# Its own venv (an ordinary build), so scripts/test.sh can run beside it.
CM_VENVS="$CM_ROOT/.venv/valgrind"
mkdir -p "$CM_VENVS"
exec 9>"$CM_VENVS/.lock"
if command -v flock >/dev/null && ! flock -n 9; then
    cm_say "another scripts/valgrind.sh is running in this checkout; waiting for it"
    flock 9
fi
cm_venv cpython || exit 1
venv="$CM_VENVS/cpython"

ARGS=()
HAVE_PATH=0
for a in "$@"; do
    if [ "${a#-}" = "$a" ] && [ -e "$CM_ROOT/${a%%::*}" ]; then
        ARGS+=("$CM_ROOT/$a"); HAVE_PATH=1
    elif [ "${a#-}" = "$a" ] && [ -e "${a%%::*}" ]; then
        ARGS+=("$(readlink -f "${a%%::*}")${a#"${a%%::*}"}"); HAVE_PATH=1
    else
        ARGS+=("$a")
    fi
done
if [ $HAVE_PATH = 0 ]; then
    for f in "${DEFAULT_FILES[@]}"; do
        [ -e "$CM_ROOT/tests/$f" ] && ARGS+=("$CM_ROOT/tests/$f")
    done
fi

LOGS="$CM_VENVS/logs"
mkdir -p "$LOGS"
rm -f "$LOGS"/vg.*.log
VALGRIND=(valgrind --tool=memcheck --trace-children=yes
          "--error-exitcode=$VG_ERROR_EXIT" --errors-for-leak-kinds=none --leak-check=no
          --suppressions="$CM_ROOT/scripts/valgrind-python.supp"
          --num-callers=30 --log-file="$LOGS/vg.%p.log")
cm_say "pytest under valgrind: ${ARGS[*]#"$CM_ROOT/"}"
cm_say "${VALGRIND[*]} python -m pytest ..."
t0=$SECONDS
(
    cd "$venv" || exit 1
    # The scenarios' own time limit (120 s) is not raised: under memcheck one
    # takes 15 to 40 s.  pytest-timeout's per-test limit is, below.
    PYTHONMALLOC=malloc CURLMULTI_TEST_INSTALLED=1 exec "${VALGRIND[@]}" "$venv/bin/python" -m pytest \
        -c "$CM_ROOT/pyproject.toml" --rootdir "$CM_ROOT" -p no:cacheprovider --timeout 900 \
        "${ARGS[@]}" </dev/null
) 2>&1 | tee "$LOGS/pytest-valgrind.log"
rc=${PIPESTATUS[0]}
secs=$((SECONDS - t0))

nlogs=$(find "$LOGS" -name 'vg.*.log' | wc -l)
bad=$(grep -L "ERROR SUMMARY: 0 errors" "$LOGS"/vg.*.log 2>/dev/null)
echo
if [ -n "$bad" ]; then
    for f in $bad; do
        echo "================ $f"
        cat "$f"
    done
    cm_die "valgrind found errors in $(echo "$bad" | wc -l) of $nlogs processes (pytest exit $rc, ${secs}s)"
fi
[ "$rc" = 0 ] || cm_die "pytest failed under valgrind (exit $rc; $nlogs processes, ${secs}s)"
cm_say "valgrind: 0 errors in $nlogs processes; pytest passed in ${secs}s (logs: $LOGS)"
