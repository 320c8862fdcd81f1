#!/usr/bin/env bash
# The reader's command on a fresh machine: install the pinned tools, build,
# measure the phases quickly on this machine, print the phase table, and serve
# the book on http://127.0.0.1:3000.
#
#   bash scripts/main.sh              ... and keep serving until Ctrl-C
#   bash scripts/main.sh --no-serve   ... build the book and stop (for scripts/CI)
#
# Environment: PORT (default 3000) for `mdbook serve`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

serve=1
for arg in "$@"; do
    case "$arg" in
        --no-serve) serve=0 ;;
        -h | --help)
            sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "main.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

header() { printf '\n==> %s\n' "$*"; }

header "setup"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

header "build, quick benchmarks (Rust level and Python level), tables and plots"
# make bench: the extension into .venv, the core scenarios and the Python-level
# benchmarks in quick mode, then every table and plot of the book from these
# results, so that the book served below shows this machine's numbers.
# (`make tables` puts the published ones back.)
make bench

header "phase table from this run"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python benchmarks/tables.py benchmarks/results/quick/core.json --out "$scratch"

header "book"
mdbook build book
if ((serve)); then
    header "serving the book on http://127.0.0.1:${PORT:-3000} (Ctrl-C to stop)"
    mdbook serve book --hostname 127.0.0.1 --port "${PORT:-3000}"
else
    echo "book built in book/book/index.html (--no-serve: not serving)"
fi
