#!/usr/bin/env bash
# Wall time of the README's install (scripts/install.sh) with the distribution's Python, in a
# throwaway HOME: once with a cold pip cache (everything downloaded from PyPI), then warm (a second
# install into a new HOME), then a re-run over an existing install (an upgrade).
#   bash bench/bench_install.sh [PYTHON]        default: /usr/bin/python3
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-/usr/bin/python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

run() {  # run LABEL HOME CACHE
    local start end
    start=$(date +%s%N)
    env -i HOME="$2" PATH=/usr/local/bin:/usr/bin:/bin PYTHON="$PY" PIP_CACHE_DIR="$3" \
        bash "$ROOT/scripts/install.sh" >"$WORK/$1.log" 2>&1
    end=$(date +%s%N)
    local tenths=$(( (end - start) / 100000000 ))
    printf '%-34s %4d.%d s\n' "$1" $((tenths / 10)) $((tenths % 10))
}

mkdir -p "$WORK/h1" "$WORK/h2"
echo "scripts/install.sh with $PY ($("$PY" --version)), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
run "cold pip cache, new HOME" "$WORK/h1" "$WORK/cache"
run "warm pip cache, new HOME" "$WORK/h2" "$WORK/cache"
run "re-run over an install (upgrade)" "$WORK/h2" "$WORK/cache"
