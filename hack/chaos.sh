#!/usr/bin/env bash
# `make chaos`: tests/chaos.rs (ignored in `make test`: it takes minutes) on a private bed.
# N Ingresses through create / edit / endpoint change / delete, once without faults and once
# with mixed AWS faults and random SIGKILLs of the controller; prints a table per stage.
#   CHAOS_INGRESSES (30), CHAOS_FAULT_RATE (0.2), CHAOS_KILL_MAX_SECS (10),
#   CHAOS_STAGE_TIMEOUT_SECS (600), CHAOS_SEED (random)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export BED_DIR="${BED_DIR:-$REPO/.bed/chaos}"
if [[ -z "${LOCALSTACK_PORT:-}" ]]; then
    LOCALSTACK_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
export LOCALSTACK_PORT
cargo test --test chaos --no-run
trap '"$REPO/hack/bed.sh" down' EXIT
"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"
cargo test --test chaos -- --ignored --nocapture
