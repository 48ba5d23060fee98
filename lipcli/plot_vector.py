"""The charts of plot.py as PDF or SVG, through matplotlib (the optional `plot` extra): figures for papers.

plot.py decides everything a chart shows (points, limits, colours, markers, labels); this module only
draws it. The text stays text: TrueType fonts embedded in PDFs (Type 42, which journals' checks and
vector editors accept, where matplotlib's default Type 3 is often refused) and `<text>` in SVGs (editable,
searchable). The bytes are reproducible: no creation date, a fixed SVG id salt. Only `Figure` objects,
never pyplot: no global figure state, no GUI backend.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from .errors import LipError
from .files import atomic_path

INK, GRID = "#222222", "#DDDDDD"
STYLE = {"pdf.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "lip", "font.size": 9,
         "axes.titlesize": 9, "legend.fontsize": 8, "axes.edgecolor": INK, "axes.labelcolor": INK,
         "xtick.color": INK, "ytick.color": INK, "text.color": INK}
NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}
# Not the plot extra by name: PyPI's `lip` is another project, which `pip install 'lip[plot]'` would install.
NO_MATPLOTLIB = "PDF/SVG figures need matplotlib: pip install 'matplotlib>=3.7' (or write .png)"


def _matplotlib() -> Any:
    """matplotlib, imported when a vector figure is drawn (plot.check_format refuses earlier, in the CLI)."""
    try:
        import matplotlib
    except ImportError:
        raise LipError(NO_MATPLOTLIB) from None
    return matplotlib


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Any, ax: Any, title: str, xlabel: str, ylabel: str, path: Path) -> Path:
    """Labels, grid, the legend outside the data (right), and the file."""
    fig.suptitle(title, x=0.01, ha="left", fontsize=STYLE["axes.titlesize"])  # above the legend, not under it
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(loc="outside right upper", frameon=False)
    fmt = path.suffix.lower().lstrip(".")
    with _matplotlib().rc_context(STYLE), atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata=NO_DATE[fmt])
    return path


def bar_chart(groups: list[str], bars: Sequence[tuple[str, list[float], str]], path: Path, title: str,
              xlabel: str, ylabel: str, ylim: tuple[float, float]) -> Path:
    """Grouped bars: `bars` = (legend name, one value per group, colour) per series."""
    with _style():
        n, k = len(groups), len(bars)
        fig = _figure(min(14.0, max(6.4, 2.5 + 0.12 * n)), 3.6)
        ax = fig.add_subplot()
        width = 0.8 / k
        for i, (name, values, col) in enumerate(bars):
            xs = [g + (i - (k - 1) / 2) * width for g in range(n)]
            ax.bar(xs, [v if math.isfinite(v) else math.nan for v in values], width, color=col, label=name)
        every = next((s for s in (1, 2, 5, 10, 20, 50, 100, 200) if n / s <= 20), math.ceil(n / 20))
        ax.set_xticks(range(0, n, every), groups[::every])
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(*ylim)
        return _finish(fig, ax, title, xlabel, ylabel, path)


def line_chart(curves: Sequence[tuple[str, list[tuple[float, float]], str, str]], path: Path, title: str,
               xlabel: str, ylabel: str, xlim: tuple[float, float], ylim: tuple[float, float]) -> Path:
    """Curves: (legend name, points sorted by x, colour, marker or "") each; NaN/inf break a curve."""
    with _style():
        fig = _figure(6.4, 4.0)
        ax = fig.add_subplot()
        for name, points, col, marker in curves:
            xs = [x if math.isfinite(x) else math.nan for x, _ in points]
            ys = [y if math.isfinite(y) else math.nan for _, y in points]
            ax.plot(xs, ys, color=col, marker=marker or None, markersize=4, linewidth=1.5, label=name)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        return _finish(fig, ax, title, xlabel, ylabel, path)


def _style() -> Any:
    """The style while a figure is built (fonts and sizes are read then)."""
    return _matplotlib().rc_context(STYLE)
