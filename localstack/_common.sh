# Sourced by install.sh / up.sh / down.sh / seed.sh / venv_path.sh. Not executable on its own.
# Computes the cached venv location for this checkout's lock + plugin sources.
LS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LS_PYTHON="${LS_PYTHON:-python3}"
ALB_CACHE="${ALB_CACHE:-$HOME/.cache/alb-controller}"
BED_DIR="${BED_DIR:-$(cd "$LS_DIR/.." && pwd)/.bed}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"

# key = sha256 over: python version, requirements.lock, every plugin source file
# (paths + contents, sorted). Same inputs in any clone folder => same venv.
ls_key() {
  (
    cd "$LS_DIR"
    "$LS_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
    echo "== requirements.lock"; cat requirements.lock
    find elbv2_plugin -type f \( -name '*.py' -o -name '*.toml' -o -name '*.cfg' \) \
      -not -path '*/build/*' -not -path '*.egg-info/*' -not -path '*/__pycache__/*' \
      | LC_ALL=C sort | while read -r f; do echo "== $f"; cat "$f"; done
  ) | sha256sum | cut -c1-16
}

LS_KEY="$(ls_key)"
LS_HOME="$ALB_CACHE/localstack-$LS_KEY"
LS_VENV="$LS_HOME/venv"
