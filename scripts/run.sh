#!/usr/bin/env bash
# Set up (first run only) and start trailguard on the embedded DuckDB store in ./data.
# Extra arguments go to `trailguard serve` (e.g. --port 9090, --tls-cert/--tls-key).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/trailguard serve "$@"
