#!/usr/bin/env bash
# Prints the venv path that install.sh uses for this checkout (whether installed or not).
# Exit 0 if that venv is fully installed, 1 if not (run install.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
echo "$LS_VENV"
[ -f "$LS_HOME/.complete" ]
