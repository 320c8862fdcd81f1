#!/usr/bin/env bash
# Installs what scripts/test.sh and scripts/main.sh need, at pinned versions, on
# a fresh machine that has only cargo (Rust 1.95), CPython 3.11 with pip, and
# gcc. Safe to run again: each step checks first and skips what is already in
# place.
#
#   bash scripts/setup.sh              everything (scripts/main.sh, the full test.sh)
#   bash scripts/setup.sh GROUP...     only what those groups of scripts/test.sh need:
#
#   rust, loom                  nothing: cargo alone
#   python, pythons, lint,      .venv/: python3 -m venv, then the pins of
#   tables, wheels              requirements-dev.txt, tests/requirements.txt and
#                               requirements-notebooks.txt
#   book                        .venv/ (the book's checks run Python scripts, the
#                               browser check among them) and mdbook (cargo
#                               install --locked, into $CARGO_HOME/bin); Chromium
#                               comes from scripts/setup_browser.sh, in the group
#   notebooks                   .venv/, and evcxr_jupyter, the notebooks' Rust
#                               kernel (cargo install --locked, about 20 minutes
#                               cold), registered with the .venv's Jupyter
#
# Other scripts source scripts/env.sh to put all of them on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

say() { printf 'setup: %s\n' "$*"; }

# --- what the groups asked for need -----------------------------------------
want_venv=0
want_mdbook=0
want_evcxr=0
if (($# == 0)); then set -- all; fi
for group in "$@"; do
    case "$group" in
        rust | loom) ;;
        python | pythons | lint | tables | wheels) want_venv=1 ;;
        book) want_venv=1 want_mdbook=1 ;;
        notebooks) want_venv=1 want_evcxr=1 ;;
        all) want_venv=1 want_mdbook=1 want_evcxr=1 ;;
        *)
            say "unknown group '$group' (known: rust loom python pythons lint tables wheels book notebooks)"
            exit 2
            ;;
    esac
done

# --- toolchain sanity -------------------------------------------------------
for tool in cargo rustc; do
    command -v "$tool" >/dev/null || { say "missing $tool: install it first"; exit 1; }
done
# rustfmt and clippy come with the toolchain here; rustup cannot fetch
# components on these machines, so say so plainly rather than fail later.
for sub in fmt clippy; do
    cargo "$sub" --version >/dev/null 2>&1 || say "warning: 'cargo $sub' is not installed"
done

# --- Python tools -------------------------------------------------------------
setup_venv() {
    command -v python3 >/dev/null || { say "missing python3: install CPython 3.11 first"; exit 1; }
    if [[ ! -x .venv/bin/python ]]; then
        say "creating .venv"
        python3 -m venv .venv
    fi

    local requirements=(requirements-dev.txt)
    [[ -f tests/requirements.txt ]] && requirements+=(tests/requirements.txt)
    # nbconvert and the jupyter command, for the notebooks (scripts/run_notebooks.sh)
    [[ -f requirements-notebooks.txt ]] && requirements+=(requirements-notebooks.txt)

    # pip is skipped when the requirement files are byte-for-byte what was last
    # installed into this .venv (a hash kept inside .venv), so a second run costs
    # nothing and does not touch the network.
    local stamp=.venv/.pyloop-requirements.sha256 want r
    want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "python tools already installed (${requirements[*]})"
    else
        say "installing ${requirements[*]} into .venv"
        local args=()
        for r in "${requirements[@]}"; do args+=(-r "$r"); done
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "${args[@]}"
        echo "$want" >"$stamp"
    fi

    # The distribution was called `pyloop` until it was renamed `pyloop-rs` (the name
    # `pyloop` is taken on PyPI): a .venv made before holds both records of one package.
    if compgen -G ".venv/lib/python3*/site-packages/pyloop-[0-9]*.dist-info" >/dev/null; then
        say "removing the former distribution name 'pyloop' from .venv (now pyloop-rs)"
        .venv/bin/python -m pip uninstall --quiet --yes pyloop
    fi
}
if ((want_venv)); then setup_venv; fi

# --- mdbook -------------------------------------------------------------------
# 0.4.52 is the last 0.4 release: it builds on rustc 1.95 (its MSRV is 1.82),
# supports {{#include file:anchor}}, and `mdbook test`. 0.5 changed the
# preprocessor and theme interfaces; move to it deliberately, not by accident.
if ((!want_mdbook)); then
    :
elif [[ "$(mdbook --version 2>/dev/null || true)" == "mdbook v${MDBOOK_VERSION}" ]]; then
    say "mdbook ${MDBOOK_VERSION} already installed"
else
    say "building mdbook ${MDBOOK_VERSION} (a cold build takes a few minutes on 2 cores)"
    cargo install --locked mdbook --version "${MDBOOK_VERSION}"
fi

# --- notebooks: the evcxr Rust kernel -----------------------------------------
# notebooks/*.ipynb run on evcxr_jupyter (scripts/run_notebooks.sh). A cold
# build compiles rust-analyzer's crates: about EVCXR_BUILD_MINUTES minutes on
# 2 cores (measured, see scripts/env.sh); skipped when that version is there.
# The kernelspec goes into the .venv's Jupyter data dir (JUPYTER_PATH), not the
# user's, so a fresh .venv registers it again and nothing leaks outside the
# clone; it is rewritten if it points at another evcxr_jupyter binary.
setup_evcxr() {
    if cargo install --list 2>/dev/null | grep -qx "evcxr_jupyter v${EVCXR_VERSION}:" &&
        command -v evcxr_jupyter >/dev/null; then
        say "evcxr_jupyter ${EVCXR_VERSION} already installed"
    else
        say "building evcxr_jupyter ${EVCXR_VERSION} (a cold build takes ~${EVCXR_BUILD_MINUTES} minutes on 2 cores)"
        cargo install --locked evcxr_jupyter --version "${EVCXR_VERSION}"
    fi
    local kernel_json=.venv/share/jupyter/kernels/rust/kernel.json
    if [[ -f "$kernel_json" ]] && grep -qF "\"$(command -v evcxr_jupyter)\"" "$kernel_json"; then
        say "rust kernel already registered ($kernel_json)"
    else
        say "registering the rust kernel with the .venv's Jupyter"
        JUPYTER_PATH="$PWD/.venv/share/jupyter" evcxr_jupyter --install >/dev/null
    fi
}
if ((want_evcxr)); then setup_evcxr; fi

say "done ($*)"
