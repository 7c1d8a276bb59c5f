#!/usr/bin/env bash
# Stop the control plane started by up.sh (KWOK, scheduler, controller-manager, kube-apiserver,
# then etcd) and remove
# the etcd data dir. Idempotent. Keeps the PKI and logs in $BED_DIR/k8s.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BED_DIR="${BED_DIR:-$REPO/.bed}"
K="$BED_DIR/k8s"

log() { echo "down.sh: $*" >&2; }

stop() { # stop NAME: TERM, wait up to 20 s, then KILL; only if the pid runs our binary
    local f="$K/$1.pid" pid i
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)" | sed 's/ (deleted)$//') == "$1" ]]; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$1 ($pid) did not stop, killing"
            kill -KILL "$pid" 2>/dev/null
            sleep 0.2
        fi
        log "stopped $1 ($pid)"
    fi
    rm -f "$f"
}

stop kwok
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd
rm -rf "$K/etcd" "$K/ports.env" "$BED_DIR/k8s.env"
exit 0
