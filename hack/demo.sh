#!/usr/bin/env bash
# `make demo`: the bed (LocalStack + a Kubernetes control plane with KWOK nodes), the
# controller, the examples applied,
# and the resulting ALB printed as the AWS API describes it. `make down` stops it all.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export BED_DIR="${BED_DIR:-$REPO/.bed/demo}"
export LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
CLUSTER=demo

"$REPO/hack/bed.sh" up
# shellcheck disable=SC1091
source "$BED_DIR/env"

echo "== seeding the demo AWS account (VPC, tagged subnets, ACM certificate, two worker nodes)" >&2
seed="$("$REPO/localstack/seed.sh" --cluster "$CLUSTER" --nodes 2)"
vpc_id="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["vpc_id"])' <<<"$seed")"
"$REPO/hack/nodes.py" <<<"$seed" | kubectl apply -f - >&2

echo "== building and starting alb-controller" >&2
cargo build --quiet --bin alb-controller
if [[ -f "$BED_DIR/controller.pid" ]] && kill -0 "$(cat "$BED_DIR/controller.pid")" 2>/dev/null; then
    kill "$(cat "$BED_DIR/controller.pid")" && sleep 1
fi
metrics_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$REPO/target/debug/alb-controller" run --cluster-name "$CLUSTER" --aws-vpc-id "$vpc_id" \
    --metrics-bind-address "127.0.0.1:$metrics_port" >"$BED_DIR/controller.log" 2>&1 &
echo $! >"$BED_DIR/controller.pid"
echo "   log: $BED_DIR/controller.log   metrics: http://127.0.0.1:$metrics_port/metrics" >&2

echo "== applying examples/" >&2
kubectl apply -f "$REPO/examples/ingress-class.yaml" -f "$REPO/examples/shop.yaml" >&2

echo "== waiting for the pods and the Ingress hostname" >&2
kubectl rollout status deployment/web -n default --timeout=60s >&2
hostname=""
for _ in $(seq 1 600); do
    hostname="$(kubectl get ingress shop -n default -o jsonpath='{.status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true)"
    [[ -n "$hostname" ]] && break
    kill -0 "$(cat "$BED_DIR/controller.pid")" 2>/dev/null || { tail -20 "$BED_DIR/controller.log" >&2; exit 1; }
    sleep 0.2
done
[[ -n "$hostname" ]] || { echo "no hostname after 120s; controller log:" >&2; tail -20 "$BED_DIR/controller.log" >&2; exit 1; }

kubectl get ingress shop -n default
echo
kubectl get pods -n default -o wide
echo
venv="$("$REPO/localstack/venv_path.sh")"
"$venv/bin/python" "$REPO/hack/show-alb.py" "$hostname"
echo
echo "Events on the Ingress:"
kubectl get events -n default --field-selector involvedObject.name=shop -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message
echo
echo "Try: source $BED_DIR/env; kubectl edit ingress shop; make down to stop." >&2
