#!/usr/bin/env bash
# Set up and open optui on the simulated market with the embedded SQLite store (no account needed).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
exec optui "$@"
