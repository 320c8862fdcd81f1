"""The book's matplotlib figures: one size, one type scale, one colour per contender.

Used by the three table scripts (``benchmarks/tables.py``, ``benchmarks/pyloop/tables.py``,
``benchmarks/io/tables.py``). Figures are drawn at the width the book shows them (its text
column is 750 px; a figure here is ``WIDTH_IN`` inches = 672 px), so that an 9.5 pt label is
about 12.7 px on the page and never scaled down. SVG text stays text, and a fixed hash salt
keeps element ids stable: the same results give the same file, byte for byte.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# 7 in at 72 pt/in is 504 pt, which a browser draws as 672 px: under the book's 750 px column.
WIDTH_IN = 7.0
FONT_PT = 9.5

# Every contender has one colour in every figure of the book (Okabe–Ito and Tol's colours,
# distinguishable with the common colour-vision deficiencies). Peers are also drawn dashed,
# and each line series has its own marker, so no two series depend on colour alone.
COLOURS: dict[str, str] = {
    "asyncio": "#7f7f7f",
    "uvloop": "#0072b2",
    "rloop": "#d55e00",
    "3.1.1": "#cc79a7",
    "3.1.2": "#e69f00",
    "3.1.3": "#56b4e9",
    "3.1.4": "#009e73",
    "3.1.5": "#882255",
    "3.2.1": "#000000",
    "pyloop": "#000000",
    "pyloop-asyncio-transport": "#999933",
    "std-mpsc": "#999933",
    "crossbeam": "#44aa99",
    "swap-all": "#aa4499",
}
MARKERS = "os^vDP*Xhp<>"
PEERS = {"asyncio", "uvloop", "rloop", "std-mpsc", "crossbeam", "swap-all"}


def colour(contender: str) -> str:
    """The contender's colour; one not listed gets a grey that still differs from asyncio's."""
    for key, value in COLOURS.items():
        if contender == key or contender.endswith(" " + key):
            return value
    return "#bbbbbb"


def line_style(contender: str, index: int) -> dict[str, Any]:
    """Colour, dash and marker of a contender's line."""
    return {
        "color": colour(contender),
        "linestyle": "--" if contender in PEERS else "-",
        "marker": MARKERS[index % len(MARKERS)],
        "markersize": 4,
        "linewidth": 1.4,
    }


def pyplot() -> Any:
    """matplotlib.pyplot with the book's settings (non-interactive backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "pyloop",  # stable element ids: same data, same file
            "svg.fonttype": "none",  # text as text, in the page's font
            "font.family": "sans-serif",
            "font.size": FONT_PT,
            "axes.titlesize": FONT_PT + 0.5,
            "axes.labelsize": FONT_PT,
            "xtick.labelsize": FONT_PT,
            "ytick.labelsize": FONT_PT,
            "legend.fontsize": FONT_PT,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlelocation": "left",
        }
    )
    return plt


def figure(rows: int = 1, cols: int = 1, height_in: float = 3.2, **kw: Any) -> tuple[Any, Any]:
    """A figure ``WIDTH_IN`` wide with ``rows`` × ``cols`` axes (always a 2-D array)."""
    plt = pyplot()
    return plt.subplots(
        rows, cols, figsize=(WIDTH_IN, height_in), squeeze=False, layout="constrained", **kw
    )


def save(fig: Any, path: Path, comment: str) -> None:
    """Writes ``fig`` as SVG at its own size (no tight bounding box: the width stays
    ``WIDTH_IN``), with ``comment`` (an HTML comment line) first."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    # The comment goes first, so the XML declaration (which must come first if present) goes.
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1].lstrip()
    # XML forbids "--" inside a comment (a command line's `--out`): an image with one is broken.
    inner = comment.strip().removeprefix("<!--").removesuffix("-->").replace("--", "\u2011\u2011")
    path.write_text(f"<!--{inner}-->\n" + svg)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plain_log(ax: Any, axis: str = "x") -> None:
    """A log axis labelled 0.5, 1, 2, 5, 10 ... rather than 5 × 10⁻¹. Call it once the axis
    has its limits."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    which = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    # 1, 2, 5 in every decade while they fit; powers of ten alone over a wide range.
    wide = lo > 0 and math.log10(hi / lo) > 3.5
    which.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    which.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    which.set_minor_formatter(NullFormatter())


def hbars(
    ax: Any,
    labels: Sequence[str],
    ids: Sequence[str],
    values: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    title: str,
    unit: str,
    log: bool = False,
    fmt: Any = None,
    missing: str = "not measured",
) -> None:
    """Horizontal bars, one per contender (first at the top), each with its min–max whisker
    and its value written beside it. ``None`` leaves the row empty, labelled ``missing``."""
    n = len(labels)
    ys = list(range(n))[::-1]
    shown = [
        (y, v, lo, hi, i) for y, v, lo, hi, i in zip(ys, values, lows, highs, ids, strict=True)
    ]
    for y, v, lo, hi, i in shown:
        if v is None:
            ax.text(
                0.01,
                y,
                missing,
                va="center",
                fontsize=FONT_PT - 1,
                color="#666666",
                transform=ax.get_yaxis_transform(),
            )
            continue
        ax.barh(
            y,
            v,
            color=colour(i),
            height=0.7,
            hatch="//" if i in PEERS else None,
            edgecolor="white" if i in PEERS else None,
            linewidth=0,
        )
        if lo is not None and hi is not None and hi > lo:
            ax.plot([lo, hi], [y, y], color="#222222", linewidth=0.9)
    top = max((h if h is not None else v) or 0 for v, h in zip(values, highs, strict=True))
    if log:
        ax.set_xscale("log")
        positive = [v for v in list(values) + list(lows) if v]
        if positive:
            ax.set_xlim(min(positive) / 1.6, top * 6)
        plain_log(ax, "x")
    else:
        ax.set_xlim(0, top * 1.35 if top > 0 else 1)
    for y, v, _lo, hi, _i in shown:
        if v is None:
            continue
        x = hi if hi is not None else v
        ax.text(
            x * (1.12 if log else 1) + (0 if log else top * 0.02),
            y,
            fmt(v) if fmt else f"{v:.3g}",
            va="center",
            fontsize=FONT_PT - 1,
        )
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_title(title)
    ax.set_xlabel(unit)
    ax.grid(True, axis="x", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)


def panel_height(rows_of_bars: int, panels_down: int = 1) -> float:
    """Figure height for ``panels_down`` stacked bar panels of ``rows_of_bars`` bars each."""
    return max(1.6, panels_down * (0.75 + 0.22 * rows_of_bars))
