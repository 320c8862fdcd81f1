#!/usr/bin/env bash
# Builds PyLoop's wheels and tests each one as a user would get it: for every CPython of
# WHEEL_PYTHONS (default: 3.11 3.12 3.13),
#
#   1. maturin build --release --locked --strip, for that interpreter
#      (its own cargo target dir, target/wheels/build-3.X, so that a rerun rebuilds nothing);
#   2. a fresh venv (target/wheels/venv-3.X, deleted and made again every run), into which
#      pip installs tests/wheels/requirements.txt (pinned, --no-deps, then `pip check`) and
#      the wheel alone;
#   3. tests/wheels/smoke.py --installed in that venv, from a scratch directory outside the
#      source tree: the metadata, asyncio.run / Runner / install(), uvicorn, uvicorn
#      --workers 2 and gunicorn with pyloop.uvicorn_worker.
#
# A Python this machine does not have is skipped with a message saying so, and the summary
# lists it; 3.11 (the project's baseline) is required. A failed smoke test fails the script
# once every Python has been tried. The summary (wheel, size, build and
# install time per Python) is printed and written to target/wheels/report.md.
#
#   bash scripts/wheels.sh                      # what `scripts/test.sh wheels` runs
#   WHEEL_PYTHONS="3.12" bash scripts/wheels.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

say() { printf 'wheels: %s\n' "$*"; }

read -r -a pythons <<<"${WHEEL_PYTHONS:-3.11 3.12 3.13}"
required=3.11
root=target/wheels
mkdir -p "$root"
command -v maturin >/dev/null || { say "maturin not found: run 'bash scripts/setup.sh wheels'"; exit 1; }
version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')

# find_python 3.12: the path of a CPython 3.12 interpreter (pyenv's newest 3.12.x first,
# then python3.12 and python3 on PATH), or nothing.
find_python() {
    local want=$1 candidate
    local candidates=()
    mapfile -t candidates < <(ls -d "$HOME"/.pyenv/versions/"$want".*/bin/python"$want" 2>/dev/null | sort -V -r)
    candidates+=("$(command -v "python$want" || true)" "$(command -v python3 || true)")
    for candidate in "${candidates[@]}"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        if "$candidate" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$want')" 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

repo=$PWD
rows=()
skipped=()
failed=()
for v in "${pythons[@]}"; do
    if ! py=$(find_python "$v"); then
        if [[ "$v" == "$required" ]]; then
            say "CPython $v not found (looked in ~/.pyenv/versions/$v.*/bin, python$v and python3 on PATH): it is required"
            exit 1
        fi
        say "SKIPPED CPython $v: not found on this machine (looked in ~/.pyenv/versions/$v.*/bin, python$v and python3 on PATH)"
        skipped+=("$v")
        continue
    fi
    full=$("$py" -c 'import platform; print(platform.python_version())')
    say "CPython $full ($py)"

    dist="$root/dist-$v"
    rm -rf "$dist"
    started=$(now)
    CARGO_TARGET_DIR="$root/build-$v" maturin build --release --locked --strip --quiet \
        --interpreter "$py" --out "$dist"
    build_s=$(since "$started")
    wheel=$(ls "$dist"/*.whl)
    size=$(stat -c %s "$wheel")
    say "built $(basename "$wheel") ($size bytes) in ${build_s}s"

    venv="$root/venv-$v"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
    started=$(now)
    "${pip[@]}" install --no-deps -r tests/wheels/requirements.txt
    deps_s=$(since "$started")
    started=$(now)
    "${pip[@]}" install --no-deps --no-index "$wheel"
    install_s=$(since "$started")
    "${pip[@]}" check
    say "installed into a fresh venv: requirements ${deps_s}s, the wheel ${install_s}s"

    scratch=$(mktemp -d)
    started=$(now)
    smoke=passed
    if ! (cd "$scratch" && "$repo/$venv/bin/python" "$repo/tests/wheels/smoke.py" --installed --version "$version"); then
        say "smoke test FAILED on CPython $full (the other Pythons are still tested)"
        failed+=("$full")
        smoke=FAILED
    fi
    smoke_s=$(since "$started")
    rm -rf "$scratch"
    rows+=("| $full | \`$(basename "$wheel")\` | $((size / 1024)) KiB | ${build_s} s | ${install_s} s | ${deps_s} s | $smoke, ${smoke_s} s |")
done

{
    echo "# PyLoop $version wheels, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo "$(nproc) CPUs, $(uname -sr), $(rustc -V), $(maturin --version)"
    echo
    echo "| CPython | wheel | size | build | install (wheel) | install (requirements) | smoke test |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    if ((${#skipped[@]})); then
        echo
        echo "Skipped (not on this machine): CPython ${skipped[*]}"
    fi
    if ((${#failed[@]})); then
        echo
        echo "Smoke test FAILED on CPython ${failed[*]} (output above)."
    fi
} >"$root/report.md"
echo
cat "$root/report.md"
((${#failed[@]} == 0))
