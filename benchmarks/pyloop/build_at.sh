#!/usr/bin/env bash
# Builds PyLoop's extension as it was at a commit, for the running Python, into a package
# directory that can go first on PYTHONPATH (for compare_builds.py):
#
#     bash benchmarks/pyloop/build_at.sh REV DIR [PYTHON]
#
# DIR/pyloop is then the package of REV with its extension. A git worktree of REV in
# DIR.src and its own target directory (DIR.target) keep the clone's tree and build alone.
set -euo pipefail
rev=$1
dir=$(realpath -m "$2")
python=$(realpath "$(command -v "${3:-python}")")
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)

# DIR is removed and made again: refuse one this script did not make.
if [ -e "$dir" ] && [ ! -e "$dir/.made-by-build_at" ]; then
    echo "build_at.sh: $dir exists and was not made by this script" >&2
    exit 2
fi
rm -rf "$dir" "$dir.src"
git -C "$repo" worktree prune
git -C "$repo" worktree add --detach -q "$dir.src" "$rev"
trap 'git -C "$repo" worktree remove --force "$dir.src"' EXIT
# As maturin builds it: an extension module, not linked to libpython.
(cd "$dir.src" && CARGO_TARGET_DIR="$dir.target" PYO3_PYTHON="$python" \
    PYO3_BUILD_EXTENSION_MODULE=1 cargo build -q --release -p pyloop)
mkdir -p "$dir"
touch "$dir/.made-by-build_at"
cp -r "$dir.src/crates/pyloop/python/pyloop" "$dir/"
rm -f "$dir"/pyloop/_native.*.so
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
cp "$dir.target/release/libpyloop.so" "$dir/pyloop/_native$suffix"
echo "$dir: pyloop at $(git -C "$repo" rev-parse --short "$rev")"
