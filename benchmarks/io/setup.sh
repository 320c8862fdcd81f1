#!/usr/bin/env bash
# What the I/O benchmarks need beyond scripts/setup.sh (which installs the Python packages
# of requirements-dev.txt and tests/requirements.txt into .venv): wrk, the HTTP load
# generator, from Debian's packages. Safe to run again: it installs only what is missing.
# Without root or without the package, it says so, and run.py falls back to its Python load
# generator (benchmarks/io/http_load.py), which it records in the results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/setup.sh
if command -v wrk >/dev/null; then
    echo "bench-io setup: wrk already installed ($(command -v wrk))"
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "bench-io setup: installing wrk (apt-get)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
        || echo "bench-io setup: could not install wrk; the Python load generator will be used"
else
    echo "bench-io setup: wrk is missing and cannot be installed here (needs root and apt-get);"
    echo "               the Python load generator will be used"
fi
