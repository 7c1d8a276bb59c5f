#!/usr/bin/env bash
# Start or stop only the kube-apiserver of a control plane that up.sh made, on the same
# port, PKI and etcd, so kubeconfigs and tokens issued before stay valid (tests use it to
# take the API server away for a while and bring it back).
#
#   hack/controlplane/apiserver.sh start   start it (unless running) and wait for /readyz
#   hack/controlplane/apiserver.sh stop    SIGTERM it by its pid file, wait until it is gone
#
#   BED_DIR        state dir (as up.sh); READY_TIMEOUT seconds to wait (default 90)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.sh
. "$HERE/versions.sh"

BED_DIR="${BED_DIR:-$REPO/.bed}"
K="$BED_DIR/k8s"
PKI="$K/pki"
PID_FILE="$K/kube-apiserver.pid"
READY_TIMEOUT="${READY_TIMEOUT:-90}"

log() { echo "apiserver.sh: $*" >&2; }

[[ -f $K/ports.env ]] || { log "no control plane in $K (run up.sh first)"; exit 1; }
# shellcheck disable=SC1091
. "$K/ports.env"

running() { # running -> the pid file names a live kube-apiserver
    local pid
    [[ -f $PID_FILE ]] || return 1
    pid=$(cat "$PID_FILE")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)" | sed "s/ (deleted)$//") == kube-apiserver ]]
}

readyz() {
    curl -fsS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
        "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

start() {
    if ! running; then
        mkdir -p "$K/apiserver-certs"
        setsid nohup "$K8S_BIN_DIR/kube-apiserver" \
            --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
            --bind-address 127.0.0.1 \
            --advertise-address 127.0.0.1 \
            --secure-port "$APISERVER_PORT" \
            --cert-dir "$K/apiserver-certs" \
            --tls-cert-file "$PKI/apiserver.crt" \
            --tls-private-key-file "$PKI/apiserver.key" \
            --client-ca-file "$PKI/ca.crt" \
            --token-auth-file "$PKI/tokens.csv" \
            --service-account-issuer https://kubernetes.default.svc \
            --service-account-key-file "$PKI/sa.pub" \
            --service-account-signing-key-file "$PKI/sa.key" \
            --service-cluster-ip-range 10.96.0.0/16 \
            --authorization-mode RBAC \
            --enable-admission-plugins PodNodeSelector \
            --endpoint-reconciler-type none \
            --profiling=false \
            </dev/null >>"$K/kube-apiserver.log" 2>&1 &
        echo $! >"$PID_FILE"
    fi
    local deadline=$(($(date +%s) + READY_TIMEOUT))
    until readyz; do
        if ! running; then
            log "kube-apiserver exited; last lines of $K/kube-apiserver.log:"
            tail -n 40 "$K/kube-apiserver.log" >&2 || true
            exit 1
        fi
        (($(date +%s) < deadline)) || { log "kube-apiserver not ready after ${READY_TIMEOUT}s"; exit 1; }
        sleep 0.3
    done
}

stop() {
    running || { rm -f "$PID_FILE"; return 0; }
    local pid i
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "kube-apiserver ($pid) did not stop, killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
