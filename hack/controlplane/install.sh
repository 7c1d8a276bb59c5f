#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and KWOK
# (the kubelet of the bed's nodes) from the Go module proxy and cache them outside the
# clone, keyed by version; download the Gateway API module (its CRDs) into the Go module cache. Idempotent: does nothing when the cached
# binaries already exist. Prints the cache directories on success.
#
#   ALB_CACHE   cache root (default: $HOME/.cache/alb-controller)
#   NO_KUBECTL  set to 1 to skip building kubectl
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
. "$HERE/versions.sh"

export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "install.sh: go not found (need Go >= 1.26)" >&2; exit 1; }

mkdir -p "$K8S_BIN_DIR" "$ETCD_BIN_DIR" "$KWOK_BIN_DIR"

log() { echo "install.sh: $*" >&2; }

# Version stamping, as kubernetes' hack/lib/version.sh does (otherwise the
# binaries report v0.0.0-master, which kubectl version cannot even parse).
K8S_MINOR=${K8S_VERSION#v1.}; K8S_MINOR=${K8S_MINOR%%.*}
K8S_LDFLAGS=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    K8S_LDFLAGS+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitCommit= -X $p.gitTreeState=clean"
    K8S_LDFLAGS+=" -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR"
done

# build MODULE_DIR PACKAGE DEST [EXTRA_LDFLAGS]
build() {
    local moddir=$1 pkg=$2 dest=$3 ldx=${4:-}
    if [[ -x $dest ]]; then
        log "cached: $dest"
        return 0
    fi
    local tmp="$dest.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    log "building $pkg -> $dest (slow: several minutes on 2 cores)"
    local t0=$SECONDS
    (cd "$moddir" && go build -trimpath -ldflags "-s -w$ldx" -o "$tmp" "$pkg")
    mv -f "$tmp" "$dest"
    trap - EXIT
    log "built $dest in $((SECONDS - t0)) s"
}

build "$HERE/etcd" . "$ETCD_BIN_DIR/etcd"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    build "$HERE/kube" "k8s.io/kubernetes/cmd/$cmd" "$K8S_BIN_DIR/$cmd" "$K8S_LDFLAGS"
done
if [[ ${NO_KUBECTL:-0} != 1 ]]; then
    build "$HERE/kube" k8s.io/kubernetes/cmd/kubectl "$K8S_BIN_DIR/kubectl" "$K8S_LDFLAGS"
fi
build "$HERE/kwok" sigs.k8s.io/kwok/cmd/kwok "$KWOK_BIN_DIR/kwok"
# The Gateway API CRDs up.sh installs (the Go module cache keeps them).
"$HERE/gateway-crds.sh" >/dev/null
echo "$K8S_BIN_DIR"
echo "$ETCD_BIN_DIR"
echo "$KWOK_BIN_DIR"
