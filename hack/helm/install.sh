#!/usr/bin/env bash
# Build `helm` from the Go module proxy and cache it outside the clone, keyed by version
# (as hack/controlplane/install.sh does for kube-apiserver). Idempotent: does nothing when
# the cached binary exists. The last line of stdout is the path of the helm binary.
#
#   ALB_CACHE   cache root (default: $HOME/.cache/alb-controller)
#
# HELM_VERSION must match the helm.sh/helm/v3 requirement in ./go.mod.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELM_VERSION=v3.19.5
ALB_CACHE="${ALB_CACHE:-$HOME/.cache/alb-controller}"
DIR="$ALB_CACHE/helm-$HELM_VERSION"
DEST="$DIR/helm"

log() { echo "helm/install.sh: $*" >&2; }

if [[ -x $DEST ]]; then
    log "cached: $DEST"
    echo "$DEST"
    exit 0
fi

export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { log "go not found (need Go >= 1.24)"; exit 1; }
mkdir -p "$DIR"

# Version stamping, as helm's Makefile does: `helm version`, and the Kubernetes version
# that `helm template`/`helm lint` assume (.Capabilities.KubeVersion), from client-go's.
cd "$HERE"
kver="$(go list -m -f '{{.Version}}' k8s.io/client-go)" # v0.34.2
kver="${kver#v}"
kmajor=$(( ${kver%%.*} + 1 ))
kminor="${kver#*.}"; kminor="${kminor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
done

tmp="$DEST.tmp.$$"
trap 'rm -f "$tmp"' EXIT
log "building helm.sh/helm/v3/cmd/helm $HELM_VERSION -> $DEST (a few minutes on 2 cores)"
t0=$SECONDS
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" helm.sh/helm/v3/cmd/helm
mv -f "$tmp" "$DEST"
trap - EXIT
log "built $DEST in $((SECONDS - t0)) s"
echo "$DEST"
