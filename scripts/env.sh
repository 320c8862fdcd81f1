# Sourced by the scripts in this folder (not run): the pinned tool versions and
# a PATH on which the project's .venv and cargo-installed tools come first.
# Expects the current directory to be the repository root.

MDBOOK_VERSION=0.4.52
# The notebooks' kernel (scripts/setup.sh); a cold `cargo install` of it took
# EVCXR_BUILD_MINUTES on this project's 2-core machines.
EVCXR_VERSION=0.22.0
EVCXR_BUILD_MINUTES=20

# cargo install puts binaries here; a login shell usually has it on PATH, CI's
# environment may not.
PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [[ -d .venv/bin ]]; then
    PATH="$PWD/.venv/bin:$PATH"
fi
export PATH
