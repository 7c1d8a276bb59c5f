#!/usr/bin/env bash
# Stop the LocalStack started by up.sh (whole process group). Idempotent.
set -euo pipefail
BED_DIR="${BED_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.bed}"
PIDFILE="$BED_DIR/localstack.pid"
log() { echo "[localstack/down] $*" >&2; }

[ -f "$PIDFILE" ] || { log "not running (no pid file)"; exit 0; }
pid="$(cat "$PIDFILE")"
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  log "not running (stale pid file)"; rm -f "$PIDFILE"; exit 0
fi
# up.sh starts it with setsid, so pid == pgid; signal the group (children included)
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if kill -0 "$pid" 2>/dev/null; then
  log "still alive after 10s; SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
fi
# stragglers in the group
kill -KILL -- "-$pid" 2>/dev/null || true
rm -f "$PIDFILE"
log "stopped (pid $pid)"
