#!/usr/bin/env bash
# `make test`: start a private bed (own state dir, free LocalStack port), run every unit
# and integration test against it, stop the bed. Non-zero on any failure.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export BED_DIR="${BED_DIR:-$REPO/.bed/test}"
if [[ -z "${LOCALSTACK_PORT:-}" ]]; then
    LOCALSTACK_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
export LOCALSTACK_PORT

trap '"$REPO/hack/bed.sh" down' EXIT
start=$(date +%s)
"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"
echo "bed ready in $(( $(date +%s) - start ))s" >&2
export HELM="$("$REPO/hack/helm/install.sh" | tail -1)"
cargo test --all-targets -- --test-threads="${TEST_THREADS:-6}"
