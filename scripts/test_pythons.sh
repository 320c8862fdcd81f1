#!/usr/bin/env bash
# The pytest suite and CPython's own loop tests (tests/cpython) on the other CPython versions
# the machine has: 3.12 and 3.13 (3.11 is the project's .venv, tested by the python group).
#
#   bash scripts/test_pythons.sh            # every version in PYLOOP_PYTHONS (default "3.12 3.13")
#   PYLOOP_PYTHONS=3.13 bash scripts/test_pythons.sh
#
# Per version: finds the interpreter (pyenv's ~/.pyenv/versions/<version>.*, else python<version>
# on PATH); a version that is not installed is SKIPPED with a message naming where it looked
# (never silently). Then a venv in target/venv-<version> (git-ignored) with the pinned test
# requirements (requirements-dev.txt, tests/requirements.txt: the same pins install on 3.12
# and 3.13), the extension built into it (maturin develop --release), and pytest on stock
# asyncio, the default phase and one seed phase (PYLOOP_OTHER_PYTHON_LOOPS, default
# asyncio,pyloop-3.2.1,pyloop-3.1.3): all six phases are tested on 3.11.
# Each version's pytest run is bounded by PYLOOP_PYTHON_TIMEOUT seconds (default 1800; SIGABRT
# makes faulthandler print every thread's stack first).
# Exit status: non-zero if any version that is installed fails.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

versions=(${PYLOOP_PYTHONS:-3.12 3.13})
loops=${PYLOOP_OTHER_PYTHON_LOOPS:-asyncio,pyloop-3.2.1,pyloop-3.1.3}
# A bound on each version's pytest run (seconds), beyond the suite's own per-test timeout:
# a test that hangs costs its 60 s, many of them could cost the whole CI budget.
version_timeout=${PYLOOP_PYTHON_TIMEOUT:-1800}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}

find_python() {
    local v=$1 candidate
    for candidate in $(ls -d "$pyenv_root"/versions/"$v".* 2>/dev/null | sort -V -r); do
        if [[ -x "$candidate/bin/python" ]]; then
            echo "$candidate/bin/python"
            return
        fi
    done
    command -v "python$v" || true
}

failed=()
for v in "${versions[@]}"; do
    python=$(find_python "$v")
    if [[ -z "$python" ]]; then
        echo "test_pythons: SKIPPED CPython $v: not installed (looked in $pyenv_root/versions/$v.* and for python$v on PATH)"
        continue
    fi
    started=$SECONDS
    venv=target/venv-$v
    echo "==> CPython $v: $python -> $venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$python" -m venv "$venv"
    fi
    stamp=$venv/.pyloop-requirements.sha256
    want=$(cat requirements-dev.txt tests/requirements.txt | sha256sum | cut -d' ' -f1)
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r requirements-dev.txt -r tests/requirements.txt
        echo "$want" >"$stamp"
    fi
    # maturin builds for the interpreter of the active virtualenv and installs into it.
    (
        export VIRTUAL_ENV=$PWD/$venv
        export PATH=$VIRTUAL_ENV/bin:$PATH
        maturin develop --release --quiet
    )
    if timeout --signal=ABRT --kill-after=30 "$version_timeout" \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider tests --loops "$loops"; then
        echo "<== CPython $v: ok ($((SECONDS - started)) s)"
    else
        echo "<== CPython $v: FAILED ($((SECONDS - started)) s)"
        failed+=("$v")
    fi
done
if ((${#failed[@]})); then
    echo "test_pythons: failed on CPython ${failed[*]}" >&2
    exit 1
fi
