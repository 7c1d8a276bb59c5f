# Sourced by install.sh / up.sh. Versions must match kube/go.mod, etcd/go.mod and kwok/go.mod.
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
ALB_CACHE="${ALB_CACHE:-$HOME/.cache/alb-controller}"
K8S_BIN_DIR="$ALB_CACHE/k8s-$K8S_VERSION"
ETCD_BIN_DIR="$ALB_CACHE/etcd-$ETCD_VERSION"
KWOK_BIN_DIR="$ALB_CACHE/kwok-$KWOK_VERSION"
# Gateway API release whose standard-channel CRDs the bed installs and hack/gateway-types.sh
# generates src/k8s/gateway_api from (LBC v3.5 builds against v1.6).
GATEWAY_API_VERSION=v1.6.3
