#!/usr/bin/env bash
# Prints the directory of the standard-channel CRDs of Gateway API $GATEWAY_API_VERSION
# (hack/controlplane/versions.sh), downloading the sigs.k8s.io/gateway-api Go module from
# the Go module proxy into the Go module cache if it is not there yet.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
. "$HERE/versions.sh"
export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "gateway-crds.sh: go not found (need Go >= 1.26)" >&2; exit 1; }

# Outside any module so that no go.mod is consulted or changed.
dir="$(cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
crds="$dir/config/crd/standard"
[[ -d $crds ]] || { echo "gateway-crds.sh: no $crds" >&2; exit 1; }
echo "$crds"
