#!/usr/bin/env bash
# Every check of the project, in order, stopping at the first failure:
#
#   bash scripts/test.sh             all of them (what CI runs, via .ci/run)
#   bash scripts/test.sh book lint   only the named groups, in the order given
#
# Groups: rust (fmt, clippy, cargo test, cargo doc), loom, python (the extension
# and the conformance suite), pythons (the suite and CPython's mixins on CPython
# 3.12 and 3.13, scripts/test_pythons.sh), wheels (a wheel per CPython 3.11-3.13,
# each installed into a fresh venv and smoke-tested), lint (ruff), tables (the
# book's generated tables and the README's chart match the committed benchmark
# results), book (mdbook build and test), notebooks (committed without outputs;
# every one executes). Setup runs first and installs only what the chosen
# groups need (scripts/setup.sh GROUP...): `test.sh rust` needs cargo alone.
set -Eeuo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

all_groups=(rust loom python pythons wheels lint tables book notebooks)
if (($#)); then groups=("$@"); else groups=("${all_groups[@]}"); fi
for g in "${groups[@]}"; do
    [[ " ${all_groups[*]} " == *" $g "* ]] || { echo "test.sh: unknown group '$g' (known: ${all_groups[*]})" >&2; exit 2; }
done

# --- step bookkeeping ---------------------------------------------------------
passed=0
current=""
timings=()
trap 'echo; echo "test.sh: FAILED at step: ${current:-setup}" >&2' ERR

# step NAME COMMAND...: prints a header, runs the command, records its time.
step() {
    current=$1
    shift
    printf '\n==> %s\n' "$current"
    local started=$SECONDS
    "$@"
    local took=$((SECONDS - started))
    printf '<== %s: ok (%ss)\n' "$current" "$took"
    timings+=("$(printf '%5ss  %s' "$took" "$current")")
    passed=$((passed + 1))
}

step "setup (scripts/setup.sh ${groups[*]})" bash scripts/setup.sh "${groups[@]}"
# shellcheck source=scripts/env.sh
source scripts/env.sh

# --- rust -----------------------------------------------------------------------
# The phase-* features add up (the newest enabled is the build's default): the
# test that checks it runs once more with two of them on. The docs of every crate
# build without a warning (broken or private intra-doc links fail).
run_feature_test() {
    cargo test -p pyloop --test build_default_phase --features phase-3-1-1,phase-3-1-4
}
run_cargo_doc() {
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
}
group_rust() {
    step "cargo fmt --check" cargo fmt --all --check
    step "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
    step "cargo test --workspace" cargo test --workspace
    step "cargo test: two phase features at once" run_feature_test
    step "cargo doc -D warnings" run_cargo_doc
}

# --- loom -----------------------------------------------------------------------
# The phases' synchronisation goes through pyloop-core's `sync` module; built
# with --cfg loom, the loom models in crates/pyloop-core/tests/loom.rs check
# every interleaving. Its own target dir: --cfg loom rebuilds everything.
run_loom() {
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p pyloop-core --release --test loom
}
group_loom() {
    step "loom models" run_loom
}

# --- python extension and suite ---
# Build the extension into .venv (release: the suite also runs the benchmarks'
# quick mode), check the stub against it, then run the conformance suite on
# stock asyncio and on every phase, once plainly and once with
# PYTHONASYNCIODEBUG=1 (asyncio's debug mode: extra checks in every loop).
run_pytest_debug() {
    PYTHONASYNCIODEBUG=1 python -m pytest -q -p no:cacheprovider tests \
        --ignore=tests/cpython --ignore=tests/test_benchmarks_quick.py \
        --ignore=tests/test_soak_quick.py
}
group_python() {
    step "maturin develop --release" maturin develop --release --quiet
    step "stubtest pyloop._native" python -m mypy.stubtest pyloop._native
    step "pytest (asyncio and every phase)" python -m pytest -q -p no:cacheprovider tests
    step "pytest with PYTHONASYNCIODEBUG=1" run_pytest_debug
}

# --- other Pythons -------------------------------------------------------------
# The same suite on the other CPython versions the machine has (3.12, 3.13), each in
# its own venv under target/ with the extension built for it; a version that is not
# installed is skipped with a message. Stock asyncio, the default phase and one seed
# phase there; every phase on 3.11 above.
group_pythons() {
    step "pytest on CPython 3.12 and 3.13 (scripts/test_pythons.sh)" bash scripts/test_pythons.sh
}

# --- wheels -------------------------------------------------------------------
# What a user installs: scripts/wheels.sh builds a wheel per CPython (3.11, 3.12,
# 3.13; one not on the machine is skipped, and said so), installs each into a
# fresh venv with the pinned tests/wheels/requirements.txt, and runs
# tests/wheels/smoke.py there: metadata, asyncio.run / Runner / install(),
# uvicorn, uvicorn --workers 2, gunicorn with pyloop.uvicorn_worker. Each build
# has its own target dir under target/wheels/, so a rerun rebuilds nothing.
group_wheels() {
    step "wheels: build, fresh venv, smoke test (scripts/wheels.sh)" bash scripts/wheels.sh
}

# --- lint -----------------------------------------------------------------------
# ruff, configured by pyproject.toml when it has a [tool.ruff] table (defaults
# otherwise), on every Python file we own or run: benchmarks, tests, scripts.
run_ruff() {
    local targets=() p
    shopt -s nullglob
    for p in benchmarks/*.py benchmarks/pyloop benchmarks/io benchmarks/instr benchmarks/profile benchmarks/soak tests scripts crates/pyloop/python; do
        [[ -e "$p" ]] && targets+=("$p")
    done
    shopt -u nullglob
    ruff --version
    ruff check "${targets[@]}"
    ruff format --check "${targets[@]}"
}
group_lint() {
    step "ruff check + format --check" run_ruff
}

# --- tables -----------------------------------------------------------------------
# The book shows benchmark results only through book/src/generated/, written by
# benchmarks/tables.py from the committed results JSON. Regenerate them and
# fail if anything differs from what is committed (or is new and untracked):
# a table edited by hand, or results committed without their tables.
CORE_JSON=benchmarks/results/core.json
check_tables() {
    python benchmarks/tables.py "$CORE_JSON" --out book/src/generated
    # The Python-level and I/O tables and plots, from their committed runs.
    python benchmarks/pyloop/tables.py benchmarks/results/python.json --out book/src/generated >/dev/null
    python benchmarks/io/tables.py benchmarks/results/io.json --out book/src/generated >/dev/null
    # Two earlier full I/O runs the I/O chapter compares with: io-0a67f45.json (the previous
    # run) and io-82ad72a.json (before the read buffer was aligned, for the 100 KB finding).
    python benchmarks/io/tables.py benchmarks/results/io-0a67f45.json --out book/src/generated/io_prev --no-plots >/dev/null
    python benchmarks/io/tables.py benchmarks/results/io-82ad72a.json --out book/src/generated/io_before --no-plots >/dev/null
    # Phase 3.3.1's single-run distributions (core_spread), from their committed run.
    python benchmarks/spread_tables.py benchmarks/results/spread.json --out book/src/generated
    # Instructions per item (benchmarks/instr) and the full soak runs (benchmarks/soak).
    python benchmarks/instr/tables.py benchmarks/results/instr.json --out book/src/generated >/dev/null
    python benchmarks/soak/tables.py benchmarks/soak/results/full-*.json --out book/src/generated >/dev/null
    # The Amdahl chapter's fit table and plots, from the committed sweep
    # (crates/pyloop-model/results/sweep.json) and python.json if present.
    cargo run --quiet -p pyloop-model --bin amdahl_book -- --out book/src/generated
    # The README's headline chart, from python.json and io.json.
    python benchmarks/headline.py
    git diff --exit-code --stat -- book/src/generated benchmarks/results/headline.svg
    local untracked
    untracked=$(git ls-files --others --exclude-standard -- book/src/generated benchmarks/results/headline.svg)
    if [[ -n "$untracked" ]]; then
        printf 'not committed:\n%s\n' "$untracked" >&2
        return 1
    fi
    echo "book/src/generated and the README's chart match the committed results"
}
group_tables() {
    step "book tables regenerated from $CORE_JSON" check_tables
}

# --- book -----------------------------------------------------------------------
# mdbook does not fail on an include whose anchor is missing (it includes
# nothing), so scripts/check_book.py checks every {{#include}} first.
#
# `mdbook test` hands each chapter to rustdoc as doctests. The code the book
# shows is never pasted: it is pulled from crates/pyloop-core by anchor, and an
# anchored region is a fragment (an impl block, a private helper) that cannot
# compile on its own, with or without `-L target/debug/deps`. Passing the deps
# dir would also make the test depend on whatever rlibs a previous build left
# there (two versions of a crate make rustdoc fail with "multiple candidates").
# So every included block is fenced ```rust,ignore: it is highlighted, and
# rustdoc lists it as ignored. The code itself is compiled and tested where it
# lives (cargo test, loom); `mdbook test` still fails on any Rust block that
# someone adds to the book unmarked and that does not compile.
# mdbook exits 0 after logging some errors (an unreadable include, a broken
# link target); treat any WARN or ERROR it logs as a failure.
mdbook_strict() {
    local log
    log=$(mdbook "$@" book 2>&1) || { printf '%s\n' "$log"; return 1; }
    printf '%s\n' "$log" | grep -v ' \[INFO\] ' || true
    if printf '%s\n' "$log" | grep -Eq ' \[(WARN|ERROR)\] '; then
        echo "mdbook $1 logged warnings or errors (above)" >&2
        return 1
    fi
}
group_book() {
    # What is generated for the book from sources rather than from benchmark
    # results is checked here too: each phase chapter's diff (from the phase
    # files), loom's report on the deliberately broken variants (which must
    # still fail: crates/pyloop-core/tests/broken.rs, built in target/loom like
    # the loom group), the notebooks' rendered pages (from their last executed
    # run; stale if a notebook's cells changed) and the profile's tables (from
    # its committed results). Then the built book is loaded, page by page, in
    # headless Chromium (Debian's package, installed by scripts/setup_browser.sh):
    # a broken image, a link out of the book or to nowhere, or a table or figure
    # wider than the text column outside the appendix fails the step.
    step "book includes resolve" python scripts/check_book.py book
    step "phase diffs match the sources" python scripts/phase_diffs.py --check
    step "loom catches the broken variants (report as in the book)" python scripts/loom_failures.py --check
    step "notebook pages match the notebooks" python scripts/render_notebooks.py --check
    step "profile tables match their results" python benchmarks/profile/callgrind.py \
        --tables benchmarks/results/callgrind.json \
        --before benchmarks/results/callgrind-57b79b8.json --check
    step "mdbook build" mdbook_strict build
    step "mdbook test" mdbook_strict test
    step "headless Chromium (scripts/setup_browser.sh)" bash scripts/setup_browser.sh
    step "every page in the browser" python scripts/check_book_browser.py book/book
}

# --- notebooks ----------------------------------------------------------------
# notebooks/*.ipynb are thin (their logic is crates/pyloop-model) and committed
# without outputs; scripts/run_notebooks.sh executes each on the evcxr kernel,
# rerunning its measurements in quick mode, and fails on any cell error.
group_notebooks() {
    step "notebooks committed without outputs" python scripts/check_notebooks.py
    step "execute every notebook (quick mode)" bash scripts/run_notebooks.sh
}

for g in "${groups[@]}"; do
    "group_$g"
done

current=""
printf '\ntest.sh: step times\n'
printf '  %s\n' "${timings[@]}"
echo "steps: ${passed} passed, 0 failed"
