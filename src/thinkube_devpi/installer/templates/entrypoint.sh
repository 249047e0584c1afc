#!/bin/sh
# Start devpi-server. Managed by thinkube-devpi: the next install overwrites edits here.
#
# - The server secret arrives as a Secret volume file (0644 in a read-only folder), which
#   devpi-server refuses: it is copied into a 0700 folder as a 0600 file first.
# - On first start the server directory is initialised with root's password from
#   DEVPISERVER_ROOT_PASSWD (a secretKeyRef): devpi-init reads it from the environment, so the
#   password (or its hash) never appears in any process's argv.
# - A server directory this entrypoint did not create is refused, never initialised over.
# - The server runs with --restrict-modify root (nobody anonymous creates users or indexes); its
#   pages link to the host a request came in on when it is one of DEVPI_OUTSIDE_HOSTS (else to the
#   first, the API host), whatever X-Outside-Url a client sends (the launcher decides, not devpi's
#   header or a fixed --outside-url, which would send the dashboard's links to the API host).
# Extra arguments are passed on to devpi-server.
set -eu

: "${DEVPI_DATA:=/data}"
: "${DEVPI_SERVERDIR:=$DEVPI_DATA/server}"
: "${DEVPI_SECRET_SOURCE:=/run/secrets/devpi-server/secret}"
: "${DEVPI_SECRET_DIR:=${TMPDIR:-/tmp}/devpi-secret}"
: "${DEVPI_HOST:=0.0.0.0}"
: "${DEVPI_PORT:=3141}"
: "${DEVPI_LAUNCHER:=/opt/thinkube-devpi/devpi_server_launch.py}"
: "${DEVPI_OUTSIDE_HOSTS:?DEVPI_OUTSIDE_HOSTS must name the API host and the dashboard host, such as devpi-api.example.com,devpi.example.com}"
export DEVPI_OUTSIDE_HOSTS
MARKER=.thinkube-devpi

umask 077
if [ ! -r "$DEVPI_SECRET_SOURCE" ]; then
    echo "devpi-entrypoint: server secret $DEVPI_SECRET_SOURCE is missing or unreadable" >&2
    exit 1
fi
mkdir -p "$DEVPI_SECRET_DIR"
chmod 0700 "$DEVPI_SECRET_DIR"
cp "$DEVPI_SECRET_SOURCE" "$DEVPI_SECRET_DIR/secret"
chmod 0600 "$DEVPI_SECRET_DIR/secret"

if [ ! -e "$DEVPI_SERVERDIR" ]; then
    if [ -z "${DEVPISERVER_ROOT_PASSWD:-}" ]; then
        echo "devpi-entrypoint: DEVPISERVER_ROOT_PASSWD is empty: refusing to create root without a password" >&2
        exit 1
    fi
    echo "devpi-entrypoint: initialising $DEVPI_SERVERDIR"
    # initialise beside the target and rename, so a failed start never leaves half a directory
    partial="$DEVPI_SERVERDIR.partial"
    rm -rf "$partial"
    devpi-init --serverdir "$partial"
    : > "$partial/$MARKER"
    mv "$partial" "$DEVPI_SERVERDIR"
elif [ ! -e "$DEVPI_SERVERDIR/$MARKER" ]; then
    echo "devpi-entrypoint: $DEVPI_SERVERDIR exists but was not created by thinkube-devpi: refusing to use it." >&2
    echo "devpi-entrypoint: move it aside (its packages stay there) or mark it as ours with: touch $DEVPI_SERVERDIR/$MARKER" >&2
    exit 1
fi
unset DEVPISERVER_ROOT_PASSWD

exec python3 "$DEVPI_LAUNCHER" \
    --serverdir "$DEVPI_SERVERDIR" \
    --host "$DEVPI_HOST" \
    --port "$DEVPI_PORT" \
    --secretfile "$DEVPI_SECRET_DIR/secret" \
    --restrict-modify root \
    "$@"
