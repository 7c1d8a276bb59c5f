#!/usr/bin/env bash
# `make bench`: build the release controller and the bench (benches/alb.rs) once, start a
# private bed (own state dir, free LocalStack port), create BENCH_INGRESSES Ingresses
# (default 200) and print the report; stop the bed on exit. Non-zero if convergence times out.
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

# One build, before the bed starts: `cargo bench` builds the controller binary with the
# bench profile (= release) next to the bench. Running the built executable afterwards
# (with --bench, as `cargo bench` does) means the binary measured is the one built here,
# even if sources change meanwhile.
echo "== building the release controller and the bench (cargo bench --no-run)" >&2
bench_exe="$(cargo bench --bench alb --no-run --message-format=json-render-diagnostics |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "alb" and m.get("executable"):
        print(m["executable"])')"
ctl_exe="$(dirname "$(dirname "$bench_exe")")/alb-controller"
[[ -x "$bench_exe" && -x "$ctl_exe" ]] || { echo "bench.sh: build produced no executables ($bench_exe, $ctl_exe)" >&2; exit 1; }
# A private copy: another build may replace target/release/alb-controller while we run.
mkdir -p "$BED_DIR"
cp "$ctl_exe" "$BED_DIR/alb-controller"
export ALB_CONTROLLER_BIN="$BED_DIR/alb-controller"

trap '"$REPO/hack/bed.sh" down' EXIT
start=$(date +%s)
"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"
echo "bed ready in $(( $(date +%s) - start ))s; $BENCH_INGRESSES Ingresses" >&2
"$bench_exe" --bench
