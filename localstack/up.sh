#!/usr/bin/env bash
# Start LocalStack (host mode, no Docker) in the background on 127.0.0.1:${LOCALSTACK_PORT:-4566}.
# Idempotent: if our instance is already running and healthy, does nothing.
# Files: $BED_DIR/localstack.{log,pid,env}, state under $BED_DIR/localstack/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
log() { echo "[localstack/up] $*" >&2; }

PORT="$LOCALSTACK_PORT"
URL="http://127.0.0.1:$PORT"
PIDFILE="$BED_DIR/localstack.pid"
LOGFILE="$BED_DIR/localstack.log"
ENVFILE="$BED_DIR/localstack.env"
DEADLINE="${LOCALSTACK_START_TIMEOUT:-60}"
mkdir -p "$BED_DIR/localstack/fs"

write_env() {
  cat > "$ENVFILE" <<ENV
export AWS_ENDPOINT_URL=$URL
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=000000000000
export AWS_SECRET_ACCESS_KEY=test
ENV
}

healthy() {
  # ready = health endpoint answers and elbv2 (our plugin) is listed
  curl -fsS --max-time 2 "$URL/_localstack/health" 2>/dev/null | grep -q '"elbv2"'
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if pid="$(running_pid)" && healthy; then
  log "already running (pid $pid) at $URL"
  write_env
  exit 0
fi
if pid="$(running_pid)"; then
  log "pid $pid alive but not healthy; restarting"
  "$LS_DIR/down.sh"
fi
if curl -s --max-time 2 -o /dev/null "$URL/" 2>/dev/null; then
  log "ERROR: something else is listening on 127.0.0.1:$PORT (not started by this bed); set LOCALSTACK_PORT"
  exit 1
fi

if [ ! -f "$LS_HOME/.complete" ]; then
  log "venv missing; running install.sh"
  "$LS_DIR/install.sh" >/dev/null
fi

log "starting LocalStack on $URL (log: $LOGFILE)"
: > "$LOGFILE"
(
  cd "$BED_DIR/localstack"
  export GATEWAY_SERVER=hypercorn \
    GATEWAY_LISTEN="127.0.0.1:$PORT" \
    LOCALSTACK_HOST="127.0.0.1:$PORT" \
    SERVICES=elbv2,ec2,acm,sts,iam,resourcegroupstaggingapi \
    DNS_ADDRESS=0 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    EAGER_SERVICE_LOADING=1 \
    FILESYSTEM_ROOT="$BED_DIR/localstack/fs" \
    LOCALSTACK_VOLUME_DIR="$BED_DIR/localstack/fs/var/lib/localstack" \
    PYTHONUNBUFFERED=1
  # own session/process group so down.sh can kill the whole tree
  exec setsid "$LS_VENV/bin/python" -m localstack.runtime.main </dev/null >>"$LOGFILE" 2>&1
) &
echo $! > "$PIDFILE"

start=$(date +%s)
until healthy; do
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "ERROR: LocalStack exited during startup; log tail:"; tail -n 40 "$LOGFILE" >&2
    rm -f "$PIDFILE"; exit 1
  fi
  if [ $(( $(date +%s) - start )) -ge "$DEADLINE" ]; then
    log "ERROR: not healthy after ${DEADLINE}s; log tail:"; tail -n 40 "$LOGFILE" >&2
    "$LS_DIR/down.sh" || true
    exit 1
  fi
  sleep 0.3
done
write_env
log "ready in $(( $(date +%s) - start ))s (pid $(cat "$PIDFILE")); env: $ENVFILE"
