# Sourced by install.sh / up.sh. Versions must match kube/go.mod and etcd/go.mod.
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
ALB_CACHE="${ALB_CACHE:-$HOME/.cache/alb-controller}"
K8S_BIN_DIR="$ALB_CACHE/k8s-$K8S_VERSION"
ETCD_BIN_DIR="$ALB_CACHE/etcd-$ETCD_VERSION"
