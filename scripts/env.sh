# Sourced by the scripts in this folder (not run): the pinned tool versions and
# a PATH on which the project's .venv and cargo-installed tools come first.
# Expects the current directory to be the repository root.

MDBOOK_VERSION=0.4.52

# cargo install puts binaries here; a login shell usually has it on PATH, CI's
# environment may not.
PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [[ -d .venv/bin ]]; then
    PATH="$PWD/.venv/bin:$PATH"
fi
export PATH
