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
python3 -m ruff check src tests bench
echo "==> mypy (installer, shell)"
python3 -m mypy
echo "==> pytest"
exec python3 -m pytest -q -n 2 "$@"
