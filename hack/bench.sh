#!/usr/bin/env bash
# `make bench` (the first three) / `make bench-alb|bench-churn|bench-scale|bench-rollout`:
# hack/bench.sh [alb|churn|scale|rollout] (default alb). Builds the
# release controller and the bench (benches/<name>.rs) once, starts a private bed (own
# state dir, free LocalStack port), runs the bench and stops the bed on exit.
#
#   alb    BENCH_INGRESSES (200), BENCH_TIMEOUT_SECS (1200), BENCH_CREATE_CONCURRENCY (16),
#          BENCH_RAW_CALLS / BENCH_RAW_CONCURRENCY (300 / 8), BENCH_DRIFT_SECS (120): convergence,
#          AWS calls, a full resync and one drift-check round.
#   churn  CHURN_INGRESSES / CHURN_ENDPOINTS (50 / 40), CHURN_RATE / CHURN_SECONDS (100 / 60),
#          CHURN_IN_FLIGHT (4), CHURN_BURST_SLICES (10), CHURN_SETUP_TIMEOUT_SECS (600): targets
#          under endpoint churn and rolling-update bursts.
#   scale  churn with CHURN_INGRESSES=1000, CHURN_ENDPOINTS=10, CHURN_SECONDS=20: memory with
#          1 000 Ingresses and 10 000 endpoints present.
#   rollout  ROLLOUT_DEPLOYMENTS / ROLLOUT_REPLICAS (100 / 10), ROLLOUT_GATES (1),
#          ROLLOUT_DRAIN_MS (3000), ROLLOUT_SETUP_TIMEOUT_SECS / ROLLOUT_TIMEOUT_SECS (1200 / 900):
#          real Deployments rolled out at once behind their ALBs (benches/rollout.rs).
#
# BENCH_AWS_BUDGET (off): the controller's AWS call budget. Off, the benches measure the
# controller's own speed against LocalStack (which does not throttle); `aws` keeps the
# buckets at AWS's documented limits, as a real account would see the controller's calls.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
BENCH="${1:-alb}"
export BED_DIR="${BED_DIR:-$REPO/.bed/bench-$BENCH}"
# LocalStack serves about one request at a time: with more target updates in flight each
# call only waits longer inside it (measured: Deregister p50 20 ms with 4 in flight, 70 ms
# with 16, for the same total rate). Real AWS serves them in parallel, hence the
# controller's default of 16; the benches run with 4 unless told otherwise.
export MAX_CONCURRENT_TARGET_UPDATES="${MAX_CONCURRENT_TARGET_UPDATES:-4}"
case "${BENCH_AWS_BUDGET:-off}" in
    off)
        # Each bucket off, unless set on its own (AWS_BUDGET_<CLASS> is the flag's variable).
        for class in ELBV2_ACCOUNT ELBV2_DESCRIBE ELBV2_REGISTRATION ELBV2_WRITE ELBV2_RESOURCE_INTENSIVE \
            EC2_DESCRIBE EC2_DESCRIBE_UNFILTERED EC2_WRITE EC2_RESOURCE_INTENSIVE ACM; do
            var="AWS_BUDGET_$class"
            export "$var=${!var:-off}"
        done
        ;;
    aws) ;;
    *) echo "bench.sh: BENCH_AWS_BUDGET is off or aws, not ${BENCH_AWS_BUDGET}" >&2; exit 2 ;;
esac
# `scale` is the churn bench with 1 000 Ingresses and 10 000 endpoints present (memory).
case "$BENCH" in
    scale)
        export CHURN_INGRESSES="${CHURN_INGRESSES:-1000}" CHURN_ENDPOINTS="${CHURN_ENDPOINTS:-10}"
        export CHURN_SECONDS="${CHURN_SECONDS:-20}" CHURN_SETUP_TIMEOUT_SECS="${CHURN_SETUP_TIMEOUT_SECS:-900}"
        BENCH=churn
        ;;
esac
if [[ -z "${LOCALSTACK_PORT:-}" ]]; then
    LOCALSTACK_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
export LOCALSTACK_PORT

# One build, before the bed starts: `cargo bench` builds the controller binary with the
# bench profile (= release) next to the bench. Running the built executable afterwards
# (with --bench, as `cargo bench` does) means the binary measured is the one built here,
# even if sources change meanwhile.
echo "== building the release controller and the $BENCH bench (cargo bench --no-run)" >&2
bench_exe="$(cargo bench --bench "$BENCH" --no-run --message-format=json-render-diagnostics |
    BENCH="$BENCH" python3 -c 'import json,os,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == os.environ["BENCH"] and m.get("executable"):
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
echo "bed ready in $(( $(date +%s) - start ))s" >&2
"$bench_exe" --bench
