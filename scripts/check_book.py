"""Fail if an mdbook include in the book would render as nothing.

mdbook 0.4 logs an error and carries on when an included file is missing, and
silently includes nothing when an anchor is missing, so a renamed anchor in
the crate would leave an empty code block in the book and a green build. This
checks every ``{{#include ...}}`` and ``{{#rustdoc_include ...}}`` in the
book's Markdown sources: the file exists, the anchor (if any) opens and closes
in it, and the selected region has at least one line that is not an anchor
marker.

Usage: python scripts/check_book.py BOOK_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# A backslash before the braces escapes a directive (mdbook prints it as text).
INCLUDE = re.compile(r"(?<!\\)\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
MARKER = re.compile(r"ANCHOR(?:_END)?:\s*[\w-]+")


def region(text: str, anchor: str) -> list[str] | None:
    """The lines between ANCHOR: anchor and ANCHOR_END: anchor, markers removed."""
    start = re.compile(r"ANCHOR:\s*" + re.escape(anchor) + r"\b")
    end = re.compile(r"ANCHOR_END:\s*" + re.escape(anchor) + r"\b")
    inside = False
    lines: list[str] = []
    for line in text.splitlines():
        if not inside and start.search(line):
            inside = True
            continue
        if inside and end.search(line):
            return lines
        if inside and not MARKER.search(line):
            lines.append(line)
    return None


def check(source: Path, target: str) -> str | None:
    """An error message for one include, or None if it is fine."""
    path, _, selector = target.partition(":")
    file = (source.parent / path).resolve()
    if not file.is_file():
        return f"no such file: {path}"
    if not selector or re.fullmatch(r"[\d:]*", selector):
        # Whole file or a line range: mdbook handles those, and a range that
        # drifts is still visible; the book uses anchors instead.
        return None
    lines = region(file.read_text(encoding="utf-8"), selector)
    if lines is None:
        return f"anchor '{selector}' not opened and closed in {path}"
    if not any(line.strip() for line in lines):
        return f"anchor '{selector}' in {path} selects nothing"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src = Path(argv[1]) / "src"
    errors = 0
    count = 0
    for md in sorted(src.rglob("*.md")):
        for number, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            for match in INCLUDE.finditer(line):
                count += 1
                problem = check(md, match.group(2))
                if problem:
                    errors += 1
                    print(f"{md}:{number}: {match.group(0)}: {problem}", file=sys.stderr)
    print(f"check_book: {count} includes checked, {errors} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
