#!/usr/bin/env bash
# Installs thinkube-devpi for the current user, on any machine with Python >= 3.11, the stock
# Debian 12/13 and Ubuntu 24.04 system Python included (PEP 668 forbids `pip install` into it).
#
#   bash scripts/install.sh                 install or upgrade from this checkout
#   bash scripts/install.sh --uninstall     remove what the install made (settings are kept)
#
# It makes a virtual environment of its own and links `tk-devpi` and `thinkube-devpi-tui` into
# ~/.local/bin. Why not pipx or `uv tool install`: neither is on a stock Debian or Ubuntu without
# another download, while `python3 -m venv` is (Debian splits it into the python3-venv package,
# which this script installs with apt when it is missing and the user may).
# Safe to run again: a re-run reuses the environment and upgrades the package in it.
#
# Environment: PYTHON (the interpreter to use, default python3), THINKUBE_DEVPI_VENV (where the
# environment goes, default ${XDG_DATA_HOME:-~/.local/share}/thinkube-devpi/venv),
# THINKUBE_DEVPI_BIN_DIR (where the commands are linked, default ~/.local/bin).
set -euo pipefail

[ -n "${HOME:-}" ] || { echo "error: HOME is not set; the install goes under \$HOME/.local" >&2; exit 1; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/thinkube-devpi"
VENV="${THINKUBE_DEVPI_VENV:-$DATA_DIR/venv}"
BIN_DIR="${THINKUBE_DEVPI_BIN_DIR:-$HOME/.local/bin}"
COMMANDS=(tk-devpi thinkube-devpi-tui)
# Folders this install created, removed again on --uninstall when they are empty.
CREATED_LIST="$VENV/.thinkube-devpi-created-dirs"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# mkdir -p that remembers every folder it had to create, deepest last.
created=()
make_dir() {
    local dir="$1" missing=()
    while [ ! -d "$dir" ]; do missing=("$dir" "${missing[@]}"); dir="$(dirname "$dir")"; done
    [ "${#missing[@]}" -eq 0 ] && return 0
    mkdir -p "$1"
    created+=("${missing[@]}")
}

uninstall() {
    local cmd target removed=0
    for cmd in "${COMMANDS[@]}"; do
        target="$BIN_DIR/$cmd"
        # Only our own links: never a command of the same name installed another way.
        if [ -L "$target" ] && [ "$(readlink "$target")" = "$VENV/bin/$cmd" ]; then
            rm -f "$target"; removed=1
        fi
    done
    local dirs=()
    [ -f "$CREATED_LIST" ] && mapfile -t dirs < "$CREATED_LIST"
    if [ -d "$VENV" ]; then rm -rf "$VENV"; removed=1; fi
    # Deepest first; a folder that holds anything else (settings, other programs) stays.
    local i
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        rmdir "${dirs[$i]}" 2>/dev/null || true
    done
    if [ "$removed" = 1 ]; then
        say "removed $VENV and the commands in $BIN_DIR (settings and keyring entries are kept)"
    else
        say "nothing to remove: no install found at $VENV"
    fi
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    --uninstall) uninstall; exit 0 ;;
    "") ;;
    *) die "unknown option '$1' (allowed: --uninstall, --help)" ;;
esac

command -v "$PY" >/dev/null 2>&1 || die "no '$PY' found: install Python 3.11 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv), or set PYTHON=/path/to/python3.11"
version="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    die "$PY is Python $version; thinkube-devpi needs Python 3.11 or newer (set PYTHON=/path/to/python3.11 to use another one)"
fi

# Debian and Ubuntu ship venv without ensurepip until python3-venv is installed.
venv_works() {
    local probe
    probe="$(mktemp -d)"
    if "$PY" -m venv "$probe/v" >/dev/null 2>&1; then rm -rf "$probe"; return 0; fi
    rm -rf "$probe"; return 1
}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    if ! venv_works; then
        pkg="python${version}-venv"
        if command -v apt-get >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else SUDO=(none); fi
            [ "${SUDO[0]:-}" = none ] && die "$PY cannot make a virtual environment; install the $pkg package as root (apt-get install $pkg), then run this again"
            say "installing $pkg with apt (Python's venv module; Debian and Ubuntu ship it separately)"
            "${SUDO[@]}" apt-get update -qq
            DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$pkg" >/dev/null \
                || die "apt-get install $pkg failed; install it (or python3-venv) by hand, then run this again"
        else
            die "$PY cannot make a virtual environment (python -m venv fails); install Python's venv module, then run this again"
        fi
        venv_works || die "$PY still cannot make a virtual environment after installing $pkg"
    fi
    rm -rf "$VENV"
    make_dir "$(dirname "$VENV")"
    say "making a virtual environment at $VENV (Python $version)"
    "$PY" -m venv "$VENV"
    created+=("$VENV")
fi
if [ "${#created[@]}" -gt 0 ]; then printf '%s\n' "${created[@]}" >> "$CREATED_LIST"; fi

say "installing thinkube-devpi from $ROOT (about a minute the first time, seconds after)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade --force-reinstall --no-deps "$ROOT"
# pip's own lines are the progress on a first install; a re-run only says what changed.
quiet=(--quiet); [ "${#created[@]}" -gt 0 ] && quiet=()
"$VENV/bin/python" -m pip install "${quiet[@]}" --disable-pip-version-check "$ROOT"

created=()
make_dir "$BIN_DIR"
if [ "${#created[@]}" -gt 0 ]; then printf '%s\n' "${created[@]}" >> "$CREATED_LIST"; fi
for cmd in "${COMMANDS[@]}"; do
    target="$BIN_DIR/$cmd"
    if [ -e "$target" ] && ! { [ -L "$target" ] && [ "$(readlink "$target")" = "$VENV/bin/$cmd" ]; }; then
        die "$target exists and is not this install's link; move it away, then run this again"
    fi
    ln -sfn "$VENV/bin/$cmd" "$target"
done
say "installed: $BIN_DIR/tk-devpi and $BIN_DIR/thinkube-devpi-tui"

case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *)
        say "$BIN_DIR is not on your PATH yet. A new login shell on Debian/Ubuntu adds it (see ~/.profile);"
        say "or add it now: bash/zsh: export PATH=\"$BIN_DIR:\$PATH\"   fish: fish_add_path $BIN_DIR"
        ;;
esac
