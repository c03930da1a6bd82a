#!/usr/bin/env bash
# Set up everything (Debian packages for the real Redis and InfluxDB servers, tmux, the Python
# test tools) and run lint plus the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" test
cd "$ROOT"
apt_install redis-server influxdb victoria-metrics tmux
echo "ruff check"
ruff check optui tests benchmarks
echo "mypy"
mypy
echo "import contracts"
lint-imports
echo "pytest"
exec python -m pytest -p no:cacheprovider "$@"
