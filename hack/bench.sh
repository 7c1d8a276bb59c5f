#!/usr/bin/env bash
# `make bench`: start a private bed (own state dir, free LocalStack port), build the release
# controller, create BENCH_INGRESSES Ingresses (default 200) and print the report
# (benches/alb.rs); stop the bed on exit. Non-zero if convergence times out.
#
#   BENCH_INGRESSES            number of Ingresses (default 200)
#   BENCH_TIMEOUT_SECS         convergence deadline (default 1200)
#   BENCH_CREATE_CONCURRENCY   object creations in flight (default 16)
#   BENCH_RAW_CALLS / BENCH_RAW_CONCURRENCY   LocalStack raw-rate probe (default 300 / 8)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export BED_DIR="${BED_DIR:-$REPO/.bed/bench}"
if [[ -z "${LOCALSTACK_PORT:-}" ]]; then
    LOCALSTACK_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
export LOCALSTACK_PORT
export BENCH_INGRESSES="${BENCH_INGRESSES:-200}"

# Build first (slow when cold), so the bed is not idling meanwhile.
echo "== building the release controller and the bench" >&2
cargo build --release --bin alb-controller
cargo bench --bench alb --no-run
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export ALB_CONTROLLER_BIN="$target_dir/release/alb-controller"

trap '"$REPO/hack/bed.sh" down' EXIT
start=$(date +%s)
"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"
echo "bed ready in $(( $(date +%s) - start ))s; $BENCH_INGRESSES Ingresses" >&2
cargo bench --bench alb
