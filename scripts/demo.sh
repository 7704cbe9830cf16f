#!/usr/bin/env bash
# The main job: `curlmulti demo`, a local server on 127.0.0.1 crawled with
# curlmulti.crawl (3,000 URLs, planted failures, a progress bar on a terminal).
# The first demo, ~50 URLs with CurlMulti and AsyncCurlMulti, is
# examples/demo.py.
#
#   bash scripts/demo.sh [--count N] [--quiet]        on CPython
#   CURLMULTI_PYTHONS=pypy bash scripts/demo.sh       on PyPy (or "cpython pypy")
#
# Sets itself up as scripts/test.sh does (system packages as root, a venv under
# .venv/ with curlmulti built and installed), then runs the demo.
set -uo pipefail

# shellcheck source=scripts/_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

read -r -a PYTHONS <<<"${CURLMULTI_PYTHONS:-cpython}"
for name in "${PYTHONS[@]}"; do cm_python "$name" >/dev/null; done
cm_system_packages "${PYTHONS[@]}"

# cm_venv rebuilds the venv's curlmulti and its unpacked sdist: wait for a
# scripts/test.sh running in this checkout, which may be testing them.
mkdir -p "$CM_VENVS"
exec 9>"$CM_VENVS/.test.lock"
if command -v flock >/dev/null && ! flock -n 9; then
    cm_say "scripts/test.sh is running in this checkout; waiting for it"
    flock 9
fi

rc=0
for name in "${PYTHONS[@]}"; do
    (cm_venv "$name") || { rc=1; continue; }
    cm_say "$name: curlmulti demo $*"
    # From the venv directory: the installed curlmulti, not the source tree's.
    (cd "$CM_VENVS/$name" && exec "$CM_VENVS/$name/bin/python" -m curlmulti demo "$@") || rc=1
done
exit $rc
