#!/usr/bin/env bash
# The test bed: LocalStack (AWS) + etcd and kube-apiserver (Kubernetes), all on 127.0.0.1.
#
#   hack/bed.sh up     install what is missing (cached under ~/.cache/alb-controller), start both,
#                      write $BED_DIR/env (KUBECONFIG, AWS_ENDPOINT_URL, credentials, PATH for kubectl)
#   hack/bed.sh down   stop both
#
# BED_DIR (default <repo>/.bed/demo) holds state, logs and the env file; LOCALSTACK_PORT
# (default 4566) is LocalStack's port. `make test` uses its own BED_DIR and a free port.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BED_DIR="${BED_DIR:-$REPO/.bed/demo}"
export LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
mkdir -p "$BED_DIR"

case "${1:-}" in
up)
    "$REPO/localstack/up.sh"
    "$REPO/hack/controlplane/up.sh"
    cat "$BED_DIR/localstack.env" "$BED_DIR/k8s.env" > "$BED_DIR/env"
    echo "bed is up; source $BED_DIR/env" >&2
    ;;
down)
    "$REPO/hack/controlplane/down.sh" || true
    "$REPO/localstack/down.sh" || true
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
