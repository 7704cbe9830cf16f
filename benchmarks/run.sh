#!/usr/bin/env bash
# One command for the whole benchmark: bash benchmarks/run.sh [--quick] [--only ...] [--interp ...]
# (the same as python3 benchmarks/run.py; this wrapper only makes sure python3 exists).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then echo "python3 is missing" >&2; exit 1; fi
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
fi
exec python3 benchmarks/run.py "$@"
