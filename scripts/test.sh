#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs the whole suite.
# Safe to re-run: every step is skipped when it is already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v fish >/dev/null 2>&1; then
    echo "==> installing fish (Debian package) for the fish function tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fish tmux >/dev/null
fi

echo "==> installing thinkube-devpi with its test dependencies"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'

if [ -f tests/validators/package.json ] && command -v npm >/dev/null 2>&1; then
    echo "==> installing the npm schema validators (ArgoCD Application, Gateway API HTTPRoute)"
    (cd tests/validators && npm ci --silent --no-audit --no-fund)
fi

echo "==> ruff"
python3 -m ruff check src tests bench
echo "==> mypy (installer, shell)"
python3 -m mypy
echo "==> pytest"
if [ $# -gt 0 ]; then
    exec python3 -m pytest -q -n 2 "$@"
fi
python3 -m pytest -q -n 2 -m "not real_cluster"

# the real control plane stage (tests/real_cluster): when its binaries are built
if bash scripts/cluster.sh built; then
    echo "==> pytest against the real control plane (scripts/cluster.sh)"
    start=$(date +%s)
    python3 -m pytest -q -n 2 -m real_cluster tests/real_cluster
    echo "==> real control plane stage: $(( $(date +%s) - start )) s"
else
    echo "==> real control plane stage skipped: not built; run 'bash scripts/cluster.sh build' once (Go, ~30 min cold on 2 cores)"
fi
