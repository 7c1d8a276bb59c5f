#!/usr/bin/env bash
# `make down`: stops the demo controller and the demo bed.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BED_DIR="${BED_DIR:-$REPO/.bed/demo}"
if [[ -f "$BED_DIR/controller.pid" ]]; then
    kill "$(cat "$BED_DIR/controller.pid")" 2>/dev/null || true
    rm -f "$BED_DIR/controller.pid"
fi
"$REPO/hack/bed.sh" down
