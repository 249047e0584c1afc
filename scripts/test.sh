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

# Debian packages: fish and tmux for the fish and terminal tests, openssh-server for the git
# steps, venv for the test environment.
missing=()
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# openssh-server: the build's git steps run in tests against a real sshd on 127.0.0.1
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
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

# SeaweedFS (thinkube's object storage) for the backup tests, built from its Go module at a pinned
# version: its go.mod has replace directives, so `go install pkg@version` refuses it and it is
# built inside the module's own directory. About 7 CPU-minutes; without Go the backup tests use
# moto's server mode, a stand-in they name.
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
if [ ! -x .cache/bin/weed ] && command -v go >/dev/null 2>&1; then
    echo "==> building SeaweedFS weed $WEED_VERSION for the backup tests (a few minutes, once)"
    src=$(go mod download -json "github.com/seaweedfs/seaweedfs@$WEED_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    work=$(mktemp -d)
    cp -r "$src" "$work/seaweedfs" && chmod -R u+w "$work/seaweedfs"
    mkdir -p .cache/bin
    (cd "$work/seaweedfs" && go build -trimpath -ldflags "-s -w" -o "$OLDPWD/.cache/bin/weed.partial" ./weed)
    mv .cache/bin/weed.partial .cache/bin/weed
    rm -rf "$work"
fi

if [ -f tests/validators/package.json ] && command -v npm >/dev/null 2>&1; then
    echo "==> installing the npm schema validators (ArgoCD Application, Gateway API HTTPRoute)"
    (cd tests/validators && npm ci --silent --no-audit --no-fund)
fi

echo "==> ruff"
"$PY" -m ruff check src tests bench
echo "==> mypy (the whole package: faces, installer, shell, fish)"
"$PY" -m mypy
echo "==> import contracts (faces > installer > shell/fish > leaves)"
PYTHONPATH=src "$VENV/bin/lint-imports"
echo "==> pytest"
if [ $# -gt 0 ]; then
    exec "$PY" -m pytest -q -n 2 "$@"
fi
"$PY" -m pytest -q -n 2 -m "not real_cluster"

# the real control plane stage (tests/real_cluster, docs/test-bed.md): when its binaries are built
if bash scripts/cluster.sh built; then
    echo "==> pytest against the real control plane (scripts/cluster.sh)"
    start=$(date +%s)
    PYTHON="$PY" "$PY" -m pytest -q -n 2 -m real_cluster tests/real_cluster
    echo "==> real control plane stage: $(( $(date +%s) - start )) s"
else
    echo "==> real control plane stage skipped: not built; run 'bash scripts/cluster.sh build' once (Go; ~30 min cold on 2 cores, seconds warm)"
fi
