#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs the whole suite.
# Safe to re-run: every step is skipped when it is already satisfied.
# The tests run in a virtual environment of their own (.venv, or THINKUBE_DEVPI_TEST_VENV), so this
# works with the system Python of Debian and Ubuntu too, where PEP 668 refuses `pip install`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${THINKUBE_DEVPI_TEST_VENV:-$PWD/.venv}"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: $PY is older than Python 3.11; set PYTHON=/path/to/python3.11 or newer" >&2; exit 1; }

# Debian packages: fish and tmux for the fish and terminal tests, venv for the test environment.
missing=()
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]} (Debian packages)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> making the test environment $VENV"
    "$PY" -m venv "$VENV"
fi
PY="$VENV/bin/python"

echo "==> installing thinkube-devpi with its test dependencies"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'

if [ -f tests/validators/package.json ] && command -v npm >/dev/null 2>&1; then
    echo "==> installing the npm schema validators (ArgoCD Application, Gateway API HTTPRoute)"
    (cd tests/validators && npm ci --silent --no-audit --no-fund)
fi

echo "==> ruff"
"$PY" -m ruff check src tests bench
echo "==> mypy (installer, shell, cli)"
"$PY" -m mypy
echo "==> import contracts (faces > installer > shell/fish > leaves)"
PYTHONPATH=src "$(dirname "$PY")/lint-imports"
echo "==> pytest"
exec "$PY" -m pytest -q -n 2 "$@"
