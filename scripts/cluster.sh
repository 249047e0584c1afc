#!/usr/bin/env bash
# A real Kubernetes control plane for the test bed, built from pinned Go modules (no containers):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake Nodes whose pods get
# realistic status), all on 127.0.0.1.
#
#   bash scripts/cluster.sh build   # go build into .cluster/bin (cold: many minutes; warm: seconds)
#   bash scripts/cluster.sh up      # start it, shape it like thinkube, write .cluster/kubeconfig
#   bash scripts/cluster.sh env     # prints: export KUBECONFIG=...
#   bash scripts/cluster.sh status  # which components run, and where
#   bash scripts/cluster.sh down    # stop everything; no process or port is left behind
#
# Versions are pinned in tools/cluster/go.mod (control plane, etcd) and tools/cluster/kwok/go.mod.
# Environment: CLUSTER_DIR (default <repo>/.cluster), GOCACHE / GOMODCACHE (default under
# ~/.cache/thinkube-devpi-cluster, kept between runs).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/.cluster}"
BIN="$CLUSTER_DIR/bin"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/thinkube-devpi-cluster"
export GOTOOLCHAIN=local
export GOCACHE="${GOCACHE:-$CACHE_BASE/gocache}"
export GOMODCACHE="${GOMODCACHE:-$CACHE_BASE/gomod}"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export CGO_ENABLED=0

K8S_VERSION=v1.37.2
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok provisioner)
# modules read for their YAML only (CRDs, kwok's Stages): tools/cluster/crds/go.mod pins them
SOURCE_MODULES=(sigs.k8s.io/gateway-api github.com/argoproj/argo-workflows/v4 github.com/argoproj/argo-cd/v3 sigs.k8s.io/kwok)
# the helpers (tools/cluster/*.py) need PyYAML: the test environment's Python has it
if [ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="${PYTHON:-python3}"; fi

die() { echo "cluster.sh: $*" >&2; exit 1; }

ensure_tools() {  # what up needs besides the binaries; Debian's packages, installed when missing
    local missing=() tool
    for tool in openssl:openssl curl:curl ss:iproute2 awk:mawk; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "==> installing ${missing[*]} (Debian packages) for the control plane"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

binaries_present() {
    local b
    for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

cmd_build() {
    command -v go >/dev/null 2>&1 || die "go is not installed: the build needs Go >= 1.26.0 (go.mod files under tools/cluster)"
    ensure_tools
    mkdir -p "$BIN"
    local start end kv_major kv_minor ldflags
    start=$(date +%s)
    kv_major=${K8S_VERSION#v}; kv_major=${kv_major%%.*}
    kv_minor=${K8S_VERSION#v*.}; kv_minor=${kv_minor%%.*}
    # The version the Kubernetes build stamps in (hack/lib/version.sh); without it the servers
    # report v0.0.0 and clients that compare versions misjudge them.
    ldflags="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$kv_major -X $pkg.gitMinor=$kv_minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    echo "==> building kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION and etcd (tools/cluster/go.mod)"
    (cd "$ROOT/tools/cluster" \
        && go build -trimpath -ldflags "$ldflags" -o "$BIN/" \
            k8s.io/kubernetes/cmd/kube-apiserver \
            k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler \
        && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
    echo "==> fetching the modules read for their YAML (tools/cluster/crds/go.mod)"
    (cd "$ROOT/tools/cluster/crds" && go mod download "${SOURCE_MODULES[@]}")
    echo "==> building kwok (tools/cluster/kwok/go.mod)"
    (cd "$ROOT/tools/cluster/kwok" && go build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
    end=$(date +%s)
    echo "==> built in $((end - start)) s:"
    (cd "$BIN" && ls -l "${BINARIES[@]}" | awk '{printf "    %-26s %6.1f MiB\n", $9, $5/1048576}')
}

# ---------------------------------------------------------------------------------------------
# up / down

RUN="$CLUSTER_DIR/run"        # this run's state: pids, ports, etcd data, logs (wiped by up)
PKI="$CLUSTER_DIR/pki"        # certificates and keys (kept; made once per domain)
DOMAIN="${CLUSTER_DOMAIN:-example.com}"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mod_dir() {  # the module cache directory of a pinned source module (tools/cluster/crds/go.mod)
    (cd "$ROOT/tools/cluster/crds" && go mod download -json "$1") \
        | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["Dir"]) if "Dir" in d else sys.exit(d.get("Error"))'
}

make_pki() {
    [ -f "$PKI/done" ] && [ "$(cat "$PKI/done")" = "$DOMAIN" ] && return 0
    rm -rf "$PKI"
    mkdir -p "$PKI"
    (
        cd "$PKI"
        umask 077
        key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
        key ca
        openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=thinkube-devpi-test-ca" -out ca.crt 2>/dev/null
        cert() {  # NAME SUBJECT EXTENSIONS
            key "$1"
            openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
            printf '%s\n' "$3" > "$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
                -extfile "$1.ext" -out "$1.crt" 2>/dev/null
            rm -f "$1.csr" "$1.ext"
        }
        client=$'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
        server=$'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth'
        cert apiserver "/CN=kube-apiserver" "$server"$'\nsubjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local'
        cert admin "/O=system:masters/CN=thinkube-admin" "$client"
        cert harness "/O=system:masters/CN=test-harness" "$client"
        cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
        cert kube-scheduler "/CN=system:kube-scheduler" "$client"
        cert kwok "/O=system:masters/CN=kwok-controller" "$client"
        cert provisioner "/O=system:masters/CN=stand-in:provisioner" "$client"
        cert wildcard "/CN=*.$DOMAIN" "$server"$'\n'"subjectAltName=DNS:*.$DOMAIN,DNS:$DOMAIN"
        openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out sa.key
        openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
        echo "$DOMAIN" > done
    )
}

write_kubeconfig() {  # FILE USER SERVER
    local out="$1" user="$2" server="$3"
    printf '%s\n' \
        "apiVersion: v1" "kind: Config" \
        "clusters:" "- name: thinkube-devpi-test" "  cluster:" \
        "    server: $server" "    certificate-authority: $PKI/ca.crt" \
        "users:" "- name: $user" "  user:" \
        "    client-certificate: $PKI/$user.crt" "    client-key: $PKI/$user.key" \
        "contexts:" "- name: $user@thinkube-devpi-test" "  context:" \
        "    cluster: thinkube-devpi-test" "    user: $user" \
        "current-context: $user@thinkube-devpi-test" > "$out"
    chmod 600 "$out"
}

start() {  # NAME COMMAND...: in the background, logging to run/NAME.log, pid in run/NAME.pid
    local name="$1"
    shift
    "$@" >"$RUN/$name.log" 2>&1 </dev/null &
    echo $! > "$RUN/$name.pid"
}

pid_of() {  # the pid of a running component of THIS cluster (its argv names CLUSTER_DIR)
    local f="$RUN/$1.pid" pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$CLUSTER_DIR" || return 1
    echo "$pid"
}

wait_for() {  # SECONDS COMPONENT COMMAND...
    local deadline=$(( $(date +%s) + $1 )) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ] || ! pid_of "$what" >/dev/null; then
            echo "cluster.sh: $what did not become ready; the end of $RUN/$what.log:" >&2
            tail -n 30 "$RUN/$what.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
}

apiserver_ready() {
    [ "$(curl -sS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/harness.crt" --key "$PKI/harness.key" \
        "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null)" = ok ]
}

load_ports() {
    [ -f "$RUN/ports.env" ] || return 1
    # shellcheck disable=SC1091
    . "$RUN/ports.env"
}

is_up() {
    load_ports || return 1
    local c
    for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || return 1; done
    apiserver_ready
}

cmd_up() {
    binaries_present || die "the binaries are not built: run 'bash scripts/cluster.sh build' first"
    ensure_tools
    if is_up; then
        echo "==> already up"
        cmd_env
        return 0
    fi
    cmd_down >/dev/null
    # a failed start stops what it started
    trap 'rc=$?; if [ $rc -ne 0 ]; then cmd_down >&2; fi; exit $rc' EXIT
    local t0 kwok_dir gw_dir argo_dir argocd_dir
    t0=$(date +%s.%N)
    rm -rf "$RUN"
    mkdir -p "$RUN/etcd" "$RUN/pv"
    make_pki
    kwok_dir=$(mod_dir sigs.k8s.io/kwok) || die "cannot read the kwok module"
    gw_dir=$(mod_dir sigs.k8s.io/gateway-api) || die "cannot read the gateway-api module"
    argo_dir=$(mod_dir github.com/argoproj/argo-workflows/v4) || die "cannot read the argo-workflows module"
    argocd_dir=$(mod_dir github.com/argoproj/argo-cd/v3) || die "cannot read the argo-cd module"

    ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port)
    printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\n' "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" > "$RUN/ports.env"
    local server="https://127.0.0.1:$API_PORT" u
    for u in admin harness kube-controller-manager kube-scheduler kwok provisioner; do
        write_kubeconfig "$RUN/$u.kubeconfig" "$u" "$server"
    done
    cp "$RUN/admin.kubeconfig" "$CLUSTER_DIR/kubeconfig"
    chmod 600 "$CLUSTER_DIR/kubeconfig"

    start etcd "$BIN/etcd" --name default --data-dir "$RUN/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
    wait_for 60 etcd curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

    # the audit log records the admin's requests (the installer's), so tests count them server-side
    printf '%s\n' "apiVersion: audit.k8s.io/v1" "kind: Policy" 'omitStages: ["RequestReceived"]' \
        "rules:" "- level: Metadata" '  users: ["thinkube-admin"]' "- level: None" > "$RUN/audit-policy.yaml"
    start kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --endpoint-reconciler-type none \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins NodeRestriction \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
        --service-cluster-ip-range 10.96.0.0/16 \
        --allow-privileged=true \
        --audit-policy-file "$RUN/audit-policy.yaml" --audit-log-path "$RUN/audit.log" \
        --profiling=false
    wait_for 120 kube-apiserver apiserver_ready

    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$RUN/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig "$RUN/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig "$RUN/kube-controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
        --use-service-account-credentials \
        --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
        --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
        --profiling=false
    start kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig "$RUN/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$RUN/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$RUN/kube-scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --profiling=false

    # kwok with its own Stage objects from its module: node-fast, heartbeat with lease, pod-fast
    local f
    {
        # kwok applies its defaults only when no configuration is given: state them
        printf '%s\n' "apiVersion: config.kwok.x-k8s.io/v1alpha1" "kind: KwokConfiguration" "options:" \
            "  nodeLeaseDurationSeconds: 40" "  nodeLeaseParallelism: 4" "  podPlayStageParallelism: 4" \
            "  nodePlayStageParallelism: 4" "  podsOnNodeSyncParallelism: 1" \
            "  enablePodsOnNodeSyncListPager: true" "  enablePodsOnNodeSyncStreamWatch: false"
        for f in "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
                 "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
                 "$kwok_dir"/kustomize/stage/pod/fast/pod-ready.yaml \
                 "$kwok_dir"/kustomize/stage/pod/fast/pod-complete.yaml \
                 "$kwok_dir"/kustomize/stage/pod/fast/pod-delete.yaml; do
            echo "---"
            cat "$f"
        done
    } > "$RUN/kwok.yaml"
    start kwok "$BIN/kwok" --config "$RUN/kwok.yaml" --kubeconfig "$RUN/kwok.kubeconfig" \
        --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
        --cidr 10.244.0.0/16 --node-ip 127.0.0.1
    start provisioner "$PY" "$ROOT/tools/cluster/provisioner.py" \
        --kubeconfig "$RUN/provisioner.kubeconfig" --root "$RUN/pv"

    if ! "$PY" "$ROOT/tools/cluster/seed.py" --kubeconfig "$RUN/harness.kubeconfig" --domain "$DOMAIN" \
        --pki "$PKI" \
        --crds "$gw_dir/config/crd/standard" \
        --crds "$argo_dir/manifests/base/crds/minimal" \
        --crds "$argocd_dir/manifests/crds/application-crd.yaml" \
        --crds "$argocd_dir/manifests/crds/appproject-crd.yaml" > "$RUN/seed.log" 2>&1; then
        tail -n 40 "$RUN/seed.log" >&2
        die "shaping the cluster like thinkube failed (log: $RUN/seed.log)"
    fi
    local c
    for c in "${COMPONENTS[@]}"; do
        pid_of "$c" >/dev/null || { tail -n 30 "$RUN/$c.log" >&2; die "$c exited during start-up (log: $RUN/$c.log)"; }
    done
    printf '==> up in %s s: kube-apiserver %s on https://127.0.0.1:%s\n' \
        "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$K8S_VERSION" "$API_PORT"
    trap - EXIT
    cmd_env
}

cmd_down() {
    local c pid i stopped=()
    for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
        c=${COMPONENTS[$i]}
        pid=$(pid_of "$c") || { rm -f "$RUN/$c.pid"; continue; }
        kill -TERM "$pid" 2>/dev/null || true
        stopped+=("$c:$pid")
    done
    local entry deadline
    for entry in ${stopped[@]+"${stopped[@]}"}; do
        c=${entry%%:*}; pid=${entry##*:}
        deadline=$(( $(date +%s) + 15 ))
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$RUN/$c.pid"
    done
    if load_ports; then
        local p
        for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT"; do
            if ss -Htln "sport = :$p" | grep -q .; then die "port $p still has a listener after down"; fi
        done
        rm -f "$RUN/ports.env"
    fi
    echo "==> down: stopped ${#stopped[@]} process(es)"
}

cmd_env() {
    load_ports || die "the cluster is not up (bash scripts/cluster.sh up)"
    echo "export KUBECONFIG=$CLUSTER_DIR/kubeconfig"
}

cmd_status() {
    local c pid
    for c in "${COMPONENTS[@]}"; do
        if pid=$(pid_of "$c"); then echo "$c: running (pid $pid)"; else echo "$c: stopped"; fi
    done
    if load_ports; then
        echo "kube-apiserver: https://127.0.0.1:$API_PORT (kubeconfig $CLUSTER_DIR/kubeconfig)"
    fi
}

main() {
    local sub="${1:-}"
    shift || true
    case "$sub" in
        build) cmd_build "$@" ;;
        built) binaries_present ;;
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        env) cmd_env "$@" ;;
        status) cmd_status "$@" ;;
        -h|--help|help|"") sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
        *) die "unknown subcommand '$sub' (allowed: build, up, down, env, status)" ;;
    esac
}

main "$@"
