#!/usr/bin/env bash
# `make bench-churn`: build the release controller and the churn bench (benches/churn.rs) once,
# start a private bed (own state dir, free LocalStack port), set up CHURN_INGRESSES Ingresses
# (default 50) with CHURN_ENDPOINTS endpoints each (default 40), replace endpoints at CHURN_RATE
# changes/s (default 100) for CHURN_SECONDS (default 60) and print the report; stop the bed on
# exit. Non-zero if setup times out or the final targets do not match the slices.
#
#   CHURN_INGRESSES / CHURN_ENDPOINTS   Ingresses and endpoints per EndpointSlice (50 / 40)
#   CHURN_RATE / CHURN_SECONDS          endpoint changes per second and for how long (100 / 60)
#   CHURN_IN_FLIGHT                     EndpointSlice writes in flight at most (4)
#   CHURN_SETUP_TIMEOUT_SECS            setup deadline (600)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export BED_DIR="${BED_DIR:-$REPO/.bed/churn}"
if [[ -z "${LOCALSTACK_PORT:-}" ]]; then
    LOCALSTACK_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
export LOCALSTACK_PORT

# One build, before the bed starts (see hack/bench.sh): the controller binary is built with the
# bench profile (= release) next to the bench, and a private copy of it is what runs.
echo "== building the release controller and the churn bench (cargo bench --no-run)" >&2
bench_exe="$(cargo bench --bench churn --no-run --message-format=json-render-diagnostics |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "churn" and m.get("executable"):
        print(m["executable"])')"
ctl_exe="$(dirname "$(dirname "$bench_exe")")/alb-controller"
[[ -x "$bench_exe" && -x "$ctl_exe" ]] || { echo "bench-churn.sh: build produced no executables ($bench_exe, $ctl_exe)" >&2; exit 1; }
mkdir -p "$BED_DIR"
cp "$ctl_exe" "$BED_DIR/alb-controller"
export ALB_CONTROLLER_BIN="$BED_DIR/alb-controller"

trap '"$REPO/hack/bed.sh" down' EXIT
start=$(date +%s)
"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"
echo "bed ready in $(( $(date +%s) - start ))s" >&2
"$bench_exe" --bench
