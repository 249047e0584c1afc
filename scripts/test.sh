#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs the whole suite.
# Safe to re-run: every step is skipped when it is already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v fish >/dev/null 2>&1 || [ ! -x /usr/sbin/sshd ]; then
    # fish: the fish function tests; openssh-server: the build's git steps run against a real
    # sshd on 127.0.0.1 as the pod's uid
    echo "==> installing fish, tmux and openssh-server (Debian packages) for the tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fish tmux openssh-server >/dev/null
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
exec python3 -m pytest -q -n 2 "$@"
