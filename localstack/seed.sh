#!/usr/bin/env bash
# Runs seed.py with the cached LocalStack venv's python. Args are passed through.
# Sources $BED_DIR/localstack.env for AWS_ENDPOINT_URL etc. only for variables not already set
# (so a caller's AWS_ACCESS_KEY_ID - i.e. the test account - wins).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
[ -f "$LS_HOME/.complete" ] || "$LS_DIR/install.sh" >/dev/null
if [ -f "$BED_DIR/localstack.env" ]; then
  while IFS= read -r line; do
    kv="${line#export }"; k="${kv%%=*}"
    [ -n "${!k:-}" ] || export "$kv"
  done < "$BED_DIR/localstack.env"
fi
exec "$LS_VENV/bin/python" "$LS_DIR/seed.py" "$@"
