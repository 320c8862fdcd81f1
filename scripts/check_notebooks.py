#!/usr/bin/env python3
"""Checks that the notebooks are committed clean and thin (Python stdlib only):

- every notebook in notebooks/ is nbformat 4 JSON on the Rust kernel (evcxr);
- no code cell has outputs or an execution count, and no cell carries
  execution metadata (what running a notebook leaves behind);
- the first code cell pulls in this repository's model crate by path with
  `:dep`, so that the notebook's logic lives in tested Rust.

    python scripts/check_notebooks.py            # check notebooks/
    python scripts/check_notebooks.py --strip    # remove outputs in place, then check
    python scripts/check_notebooks.py a.ipynb    # check these files

Exits 1 and names every problem if any is found.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KERNEL = "rust"
DEP = ":dep pyloop-model"
# What Jupyter front ends and nbconvert write into a cell's metadata when it runs.
RUN_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


def strip(nb: dict) -> None:
    """Removes outputs, execution counts and run metadata, in place."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)


def problems(path: Path, nb: dict) -> list[str]:
    found: list[str] = []
    if nb.get("nbformat") != 4:
        found.append(f"nbformat is {nb.get('nbformat')!r}, expected 4")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        found.append(f"kernel is {kernel!r}, expected {KERNEL!r} (evcxr)")
    code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code_cells:
        found.append("no code cell")
    else:
        first = "".join(code_cells[0].get("source", []))
        if DEP not in first:
            found.append(f"the first code cell does not contain {DEP!r}")
    for i, cell in enumerate(nb.get("cells", [])):
        where = f"cell {i} ({cell.get('id', 'no id')})"
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                found.append(f"{where} has outputs")
            if cell.get("execution_count") is not None:
                found.append(f"{where} has execution_count {cell['execution_count']}")
        left = [k for k in RUN_METADATA if k in cell.get("metadata", {})]
        if left:
            found.append(f"{where} has run metadata {left}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--strip", action="store_true", help="strip outputs in place first")
    args = ap.parse_args(argv)
    paths = args.paths or sorted((REPO / "notebooks").glob("*.ipynb"))
    if not paths:
        print("check_notebooks: no notebooks found", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.strip:
            strip(nb)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        found = problems(path, nb)
        for p in found:
            print(f"{path}: {p}", file=sys.stderr)
        failed += bool(found)
    shown = ", ".join(p.name for p in paths)
    if failed:
        print(
            f"check_notebooks: {failed} of {len(paths)} notebooks need cleaning "
            "(python scripts/check_notebooks.py --strip)",
            file=sys.stderr,
        )
        return 1
    print(f"check_notebooks: {len(paths)} notebooks clean ({shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
