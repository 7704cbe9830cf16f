#!/usr/bin/env bash
# The lifetime, leak, share and thread tests with curlmulti._curl built under
# AddressSanitizer, on CPython:    bash scripts/asan.sh [PYTEST ARGS]
#
#   bash scripts/asan.sh                          the default test files (below)
#   bash scripts/asan.sh tests/test_share.py -k cycle
#
# curlmulti._curl is compiled with -fsanitize=address -fno-omit-frame-pointer
# (through build_ffi.py's CURLMULTI_EXTRA_CFLAGS / CURLMULTI_EXTRA_LDFLAGS) into
# its own venv, .venv/asan/cpython.  The interpreter is not instrumented, so
# libasan is preloaded (LD_PRELOAD) into pytest and, through the environment,
# into every scenario subprocess the tests start; PYTHONMALLOC=malloc sends
# Python's own objects through ASan's malloc/free too, so a use of a freed
# Python object from C is caught.  detect_leaks=0: CPython leaks at exit.
#
# Fails if pytest fails, or if any process wrote an AddressSanitizer report
# (reports go to .venv/asan/logs-<interpreter>/asan.<pid>, printed at the end).
# Not in the default test run: it takes a few minutes.
#
# CURLMULTI_PYTHONS=pypy bash scripts/asan.sh: the same on PyPy (one
# interpreter a run; .venv/asan/pypy).  PyPy's objects live in its own GC
# heap, which ASan does not see; curlmulti's C, cffi's raw memory and
# libcurl's allocations it does.
set -uo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
trap 'echo; cm_die "interrupted"' INT

# The default files: those of this list that exist.
DEFAULT_FILES=(test_multi_lifetimes.py test_leaks.py test_share.py
               test_threads.py test_ownership.py test_signals.py test_signals_locks.py
               test_mime.py test_url.py
               test_callbacks_more.py)

NAME=${CURLMULTI_PYTHONS:-cpython}
case "$NAME" in cpython|pypy) ;; *) cm_die "CURLMULTI_PYTHONS: one of cpython, pypy (got '$NAME')" ;; esac
cm_system_packages "$NAME"
command -v gcc >/dev/null || cm_die "gcc not found"
LIBASAN=$(gcc -print-file-name=libasan.so)
if [ "${LIBASAN#/}" = "$LIBASAN" ] || [ ! -e "$LIBASAN" ]; then
    cm_die "gcc has no libasan.so (Debian: apt-get install libgcc-12-dev)"
fi
LIBASAN=$(readlink -f "$LIBASAN")
# libcrypt is preloaded with it: ASan intercepts crypt(), and its interceptor
# finds the real crypt() once, when it starts.  A libcrypt loaded later (by
# Python's _crypt, which `import crypt` loads and calls at once, as pyftpdlib
# does for tests/test_callbacks_more.py's FTP server) leaves it calling
# address 0: a SEGV in crypt_crypt_impl.  Preloaded, the real one is found.
PRELOAD=$LIBASAN
LIBCRYPT=$(gcc -print-file-name=libcrypt.so.1)
if [ "${LIBCRYPT#/}" != "$LIBCRYPT" ] && [ -e "$LIBCRYPT" ]; then
    PRELOAD="$PRELOAD $(readlink -f "$LIBCRYPT")"
fi

# Its own venv, so the ordinary .venv/cpython keeps an uninstrumented build.
CM_VENVS="$CM_ROOT/.venv/asan"
mkdir -p "$CM_VENVS"
exec 9>"$CM_VENVS/.lock"
if command -v flock >/dev/null && ! flock -n 9; then
    cm_say "another scripts/asan.sh is running in this checkout; waiting for it"
    flock 9
fi

export CURLMULTI_EXTRA_CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1"
export CURLMULTI_EXTRA_LDFLAGS="-fsanitize=address"
# (cm_venv's import check runs without libasan preloaded, so it fails: ours is below.)
cm_venv "$NAME" 2> >(grep -v 'does not import' >&2) || exit 1
unset CURLMULTI_EXTRA_CFLAGS CURLMULTI_EXTRA_LDFLAGS
venv="$CM_VENVS/$NAME"

LOGS="$CM_VENVS/logs-$NAME"
mkdir -p "$LOGS"
rm -f "$LOGS"/asan.* "$LOGS"/pytest-asan*.log
asan_env() {
    LD_PRELOAD="$PRELOAD${LD_PRELOAD:+ $LD_PRELOAD}" PYTHONMALLOC=malloc \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$LOGS/asan:${ASAN_OPTIONS:-}" \
        "$@"
}

# The build must really be instrumented: a silent fallback would pass everything.
so=$(cd "$venv" && asan_env "$venv/bin/python" -c 'import curlmulti._curl as m; print(m.__file__)')
[ -n "$so" ] || cm_die "curlmulti._curl does not import in $venv (with libasan preloaded)"
case "$(nm -D --undefined-only "$so" 2>/dev/null)" in *__asan_init*) ;; *) false ;; esac \
    || cm_die "$so is not built with -fsanitize=address (no __asan_ symbols)"

# And the preload must really catch errors: read 64 freed bytes through cffi
# (memcpy is intercepted), expect a heap-use-after-free report and a non-zero exit.
(cd "$venv" && asan_env "$venv/bin/python" -c '
import cffi
import curlmulti._curl
ffi = cffi.FFI()
ffi.cdef("void *malloc(size_t); void free(void *);")
libc = ffi.dlopen(None)
p = libc.malloc(64)
libc.free(p)
bytes(ffi.buffer(ffi.cast("char *", p), 64))
' >/dev/null 2>&1) && cm_die "self-check: reading freed memory did not fail under ASan"
grep -qs "heap-use-after-free" "$LOGS"/asan.* \
    || cm_die "self-check: no heap-use-after-free report in $LOGS"
rm -f "$LOGS"/asan.* "$LOGS"/pytest-asan*.log
cm_say "self-check: ASan reports a read of freed memory (heap-use-after-free)"

ARGS=()
HAVE_PATH=0
HAVE_K=0
for a in "$@"; do
    case "$a" in -k|-k*) HAVE_K=1 ;; esac
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

# Tests whose verdict is an RSS bound: ASan keeps freed memory in quarantine
# (256 MiB) and adds redzones, so the RSS measures ASan, not curlmulti.  In
# the default run (no test path and no -k; other pytest options are passed
# on) they get a second pass of their own, which counts only ASan reports and
# crashes, not their assertions.
RSS_TESTS="keep_rss or test_failed_transfers_keep_fds_flat or test_setopt_cycles_without_transfer or test_replaced_while_attached_released_when_detached"

run_pytest() {   # LOG PYTEST-ARGS...
    local log=$1; shift
    (
        cd "$venv" || exit 1
        CURLMULTI_TEST_INSTALLED=1 asan_env "$venv/bin/python" -m pytest -c "$CM_ROOT/pyproject.toml" \
            --rootdir "$CM_ROOT" -p no:cacheprovider "$@" </dev/null
    ) 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

log="$LOGS/pytest-asan.log"
cm_say "$NAME: pytest under AddressSanitizer (preloaded: $PRELOAD): ${ARGS[*]#"$CM_ROOT/"}"
t0=$SECONDS
if [ $HAVE_PATH = 0 ] && [ $HAVE_K = 0 ]; then   # the default files, options such as -x kept
    run_pytest "$log" -k "not ($RSS_TESTS)" "${ARGS[@]}"
    rc=$?
    cm_say "pass 2: the RSS-bound tests, for ASan reports and crashes only"
    run_pytest "$LOGS/pytest-asan-rss.log" -q -k "$RSS_TESTS" "${ARGS[@]}"
    rc2=$?
    case $rc2 in
        0|1) ;;   # passed, or an RSS assertion failed: not counted under ASan
        *) cm_warn "pass 2 ended with exit $rc2 (crash, interrupt or no test)"; [ "$rc" != 0 ] || rc=$rc2 ;;
    esac
else
    run_pytest "$log" "${ARGS[@]}"
    rc=$?
fi

reports=$(grep -l "ERROR: AddressSanitizer" "$LOGS"/asan.* "$LOGS"/pytest-asan*.log 2>/dev/null)
echo
if [ -n "$reports" ]; then
    for r in $reports; do
        case "$r" in *.log) continue ;; esac
        echo "================ $r"
        cat "$r"
    done
    cm_die "AddressSanitizer reported errors ($(echo "$reports" | wc -l) file(s) in $LOGS); pytest exit $rc, $((SECONDS - t0))s"
fi
[ "$rc" = 0 ] || cm_die "pytest failed under AddressSanitizer (exit $rc; log: $log), $((SECONDS - t0))s"
cm_say "AddressSanitizer: no error reported; pytest passed in $((SECONDS - t0))s (log: $log)"
