#!/usr/bin/env bash
# Executes every notebook in notebooks/ on the evcxr Rust kernel, in order,
# failing at the first cell error. The notebooks rerun their measurements in
# quick mode. The executed copies (with outputs) go to target/notebooks/executed/
# for reading; the committed notebooks are never written.
#
#   bash scripts/run_notebooks.sh                     every notebook
#   bash scripts/run_notebooks.sh notebooks/01-amdahl.ipynb
#
# Needs what scripts/setup.sh installs (nbconvert in .venv, evcxr_jupyter and
# its kernelspec) and the Python extension in .venv (built here if missing).
#
# Environment: NOTEBOOK_CELL_TIMEOUT (seconds per cell, default 900: the first
# cell of the first notebook compiles the model crate and its dependencies).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

say() { printf 'run_notebooks: %s\n' "$*"; }

if (($#)); then notebooks=("$@"); else notebooks=(notebooks/*.ipynb); fi
out=target/notebooks/executed
mkdir -p "$out"

if ! jupyter kernelspec list 2>/dev/null | grep -qE '^ +rust '; then
    say "no 'rust' kernel registered: run bash scripts/setup.sh" >&2
    exit 1
fi
# Notebooks 01 and 03 run the Python benchmarks, which import the extension.
if ! python -c "import pyloop" 2>/dev/null; then
    say "building the Python extension into .venv (maturin develop --release)"
    maturin develop --release --quiet
fi

# evcxr builds each notebook's code as a crate in EVCXR_TMPDIR. One directory
# for all of them, so that the model crate and its dependencies are compiled
# once, not per notebook; the workspace's Cargo.lock, copied in, pins them to
# the versions the crate is tested with. Notebooks run one at a time: two
# kernels must not share the directory at once. It must lie outside this
# repository (cargo would take the crate for a stray member of our
# workspace), so it is a directory per clone under $TMPDIR.
clone_id=$(printf '%s' "$PWD" | cksum | cut -d' ' -f1)
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-${TMPDIR:-/tmp}/pyloop-evcxr-$clone_id}"
mkdir -p "$EVCXR_TMPDIR"
cp Cargo.lock "$EVCXR_TMPDIR/Cargo.lock"

timings=()
for nb in "${notebooks[@]}"; do
    say "executing $nb"
    started=$SECONDS
    jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.timeout="${NOTEBOOK_CELL_TIMEOUT:-900}" \
        --ExecutePreprocessor.kernel_name=rust \
        --output-dir "$out" "$nb"
    timings+=("$(printf '%5ss  %s' "$((SECONDS - started))" "$nb")")
done
say "all ${#notebooks[@]} notebooks ran without error (executed copies in $out/)"
printf '  %s\n' "${timings[@]}"
