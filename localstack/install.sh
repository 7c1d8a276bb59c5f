#!/usr/bin/env bash
# Idempotent installer for the LocalStack + elbv2 plugin venv.
# Venv: ${ALB_CACHE:-$HOME/.cache/alb-controller}/localstack-<key>/venv, where <key> hashes
# python major.minor + requirements.lock + elbv2_plugin sources. Reused across clones.
# Last line of stdout: the venv path. Progress goes to stderr.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

log() { echo "[localstack/install] $*" >&2; }

if [ -f "$LS_HOME/.complete" ] && [ -x "$LS_VENV/bin/python" ]; then
  log "up to date: $LS_VENV"
  echo "$LS_VENV"
  exit 0
fi

mkdir -p "$LS_HOME"
# serialise concurrent installers of the same key
exec 9>"$LS_HOME/.install.lock"
flock 9
if [ -f "$LS_HOME/.complete" ] && [ -x "$LS_VENV/bin/python" ]; then
  log "up to date (installed concurrently): $LS_VENV"; echo "$LS_VENV"; exit 0
fi

"$LS_PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
  || { log "need python >= 3.10 (localstack-core 4.13.1); set LS_PYTHON"; exit 1; }

log "creating $LS_VENV"
rm -rf "$LS_VENV"
"$LS_PYTHON" -m venv "$LS_VENV"
PY="$LS_VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
log "installing requirements.lock (a few minutes on a cold pip cache)"
"$PY" -m pip install -q --no-deps -r "$LS_DIR/requirements.lock" >&2
"$PY" -m pip check >&2 || log "WARNING: pip check reported problems"

# Plugin: regular (non-editable) install from a temp copy, so the build leaves
# nothing in the checkout and the venv doesn't depend on the checkout afterwards.
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cp -r "$LS_DIR/elbv2_plugin" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp"/src/*.egg-info
log "installing elbv2 plugin"
"$PY" -m pip install -q --no-deps --no-build-isolation "$tmp/src" >&2

# plux caches the entry-point index in ${XDG_CACHE_HOME:-~/.cache}/plux/<hash>.entry_points.txt,
# keyed on sys.prefix + mtimes of entry_points.txt files. A new venv gets a new key, but verify
# anyway and drop stale cache files if the provider isn't visible.
check='from plux import PluginManager; import sys; sys.exit(0 if "elbv2:default" in PluginManager("localstack.aws.provider").list_names() else 1)'
if ! "$PY" -c "$check"; then
  log "elbv2:default not discovered; clearing plux entry-point cache"
  rm -f "${XDG_CACHE_HOME:-$HOME/.cache}"/plux/*.entry_points.txt
  "$PY" -c "$check" || { log "ERROR: elbv2:default provider still not discovered"; exit 1; }
fi

touch "$LS_HOME/.complete"
log "done: $LS_VENV"
echo "$LS_VENV"
