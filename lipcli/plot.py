"""Small charts: grouped bars and line curves, as PNG drawn with Pillow (no matplotlib), or as PDF/SVG.

Generic on purpose: `bar_chart` draws the layer-wise sparsity figures of `lip inspect`, `line_chart`
PSNR-vs-sparsity or PSNR-vs-iteration curves. The file name's suffix picks the format. A PNG is drawn
at 2x and downsampled (smooth lines and text), uses Pillow's built-in font (no font files): the
zero-dependency default. A .pdf or .svg is the same chart (data, limits, colours, markers, labels and
legend decided here) drawn by `plot_vector` through matplotlib, the optional `plot` extra, for papers.
`tile_grid` lays grey images out in captioned rows (the map figures of `lip spectra`; PNG only).
Every file is written atomically.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import plot_vector
from .errors import LipError
from .files import atomic_path

SS = 2  # supersampling factor
# Okabe-Ito, then a few extra distinct colours: readable for colour-blind viewers.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#7F7F7F", "#8C564B", "#17BECF", "#BCBD22"]
INK, GRID, BG = "#222222", "#DDDDDD", "#FFFFFF"
MARKERS = ("o", "s", "^", "D")


FORMATS = ("png", "pdf", "svg")


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def check_format(path: Path | str) -> None:
    """Refuse, before any work, a chart name lip cannot write: an unknown suffix, or PDF/SVG without matplotlib."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise LipError(f"{path}: lip writes plots as PNG, PDF or SVG; give a name ending in .png, .pdf or .svg")
    _check_backend(fmt, str(path))


def parse_formats(text: str) -> list[str]:
    """`--plot-format png,pdf`: the formats to write every chart in, checked as `check_format` does."""
    formats = list(dict.fromkeys(s.strip().lower().lstrip(".") for s in text.split(",") if s.strip()))
    if not formats or any(f not in FORMATS for f in formats):
        raise LipError(f"--plot-format {text!r}: use png, pdf or svg, or a comma list such as png,pdf")
    for fmt in formats:
        _check_backend(fmt, f"--plot-format {fmt}")
    return formats


def _check_backend(fmt: str, what: str) -> None:
    if fmt != "png" and importlib.util.find_spec("matplotlib") is None:
        raise LipError(f"{what}: {plot_vector.NO_MATPLOTLIB}")


def _vector(path: Path | str) -> bool:
    return Path(path).suffix.lower() in (".pdf", ".svg")


def _font(px: int, scale: int = SS) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=px * scale)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font (small, but still readable)
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _nice_range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - (abs(lo) or 1) * 0.5, hi + (abs(hi) or 1) * 0.5
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _label(v: float, step: float) -> str:
    """A tick label with just the decimals the tick step needs (0.2 -> 1, 0.25 -> 2, 5 -> 0)."""
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9 * max(1.0, abs(step)):
        decimals += 1
    return f"{v:.{decimals}f}"


class _Figure:
    """A canvas with a plot area, axes, ticks, titles and a legend on the right (outside the data)."""

    def __init__(self, plot_w: int, plot_h: int, title: str, xlabel: str, ylabel: str,
                 legend: list[tuple[str, str, str]], ylim: tuple[float, float], y_ticks: list[float]) -> None:
        self.f_title, self.f_label, self.f_tick = _font(18), _font(14), _font(12)
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        self._probe = probe
        self.ylim, self.y_ticks = ylim, y_ticks
        y_step = (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 1.0
        self.y_labels = [_label(v, y_step) for v in y_ticks]
        tick_w = max((self.text_size(s, self.f_tick)[0] for s in self.y_labels), default=0)
        label_h = self.text_size("Ag", self.f_label)[1]
        tick_h = self.text_size("0", self.f_tick)[1]
        self.legend = legend
        entry_w = max((self.text_size(text, self.f_label)[0] for text, _, _ in legend), default=0)
        legend_w = entry_w + 48 * SS if legend else 0
        title_h = self.text_size(title, self.f_title)[1] if title else 0
        m = 14 * SS
        self.left = m + label_h + 10 * SS + tick_w + 8 * SS
        self.top = m + title_h + 14 * SS
        self.pw, self.ph = plot_w * SS, plot_h * SS
        self.right = self.left + self.pw
        self.bottom = self.top + self.ph
        legend_h = len(legend) * (label_h + 10 * SS) + 12 * SS
        width = self.right + (24 * SS + legend_w if legend else 0) + m
        height = max(self.bottom, self.top + legend_h) + 8 * SS + tick_h + 10 * SS + label_h + m
        self.img = Image.new("RGB", (width, height), BG)
        self.draw = ImageDraw.Draw(self.img)
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.legend_x = self.right + 24 * SS
        self.tick_h, self.label_h = tick_h, label_h

    def text_size(self, text: str, font: ImageFont.ImageFont) -> tuple[int, int]:
        x0, y0, x1, y1 = self._probe.textbbox((0, 0), text, font=font)
        return x1 - x0, y1 - y0

    def text(self, xy: tuple[float, float], text: str, font: ImageFont.ImageFont, anchor: str,
             fill: str = INK) -> None:
        self.draw.text(xy, text, font=font, fill=fill, anchor=anchor)

    def y_px(self, v: float) -> float:
        lo, hi = self.ylim
        frac = (min(max(v, lo), hi) - lo) / (hi - lo)
        return self.bottom - frac * self.ph

    def frame(self) -> None:
        """Grid, y ticks, axes, title and axis titles (x ticks are drawn by the chart)."""
        d = self.draw
        for v, s in zip(self.y_ticks, self.y_labels):
            y = self.y_px(v)
            d.line([(self.left, y), (self.right, y)], fill=GRID, width=SS)
            d.line([(self.left - 5 * SS, y), (self.left, y)], fill=INK, width=SS)
            self.text((self.left - 8 * SS, y), s, self.f_tick, "rm")
        if self.title:
            self.text(((self.left + self.right) / 2, 14 * SS), self.title, self.f_title, "mt")
        self.text(((self.left + self.right) / 2, self.img.height - 14 * SS), self.xlabel, self.f_label, "md")
        # The y title, rotated: drawn on its own strip, then pasted.
        w, h = self.text_size(self.ylabel, self.f_label)
        strip = Image.new("RGB", (w + 4 * SS, h + 8 * SS), BG)
        ImageDraw.Draw(strip).text((2 * SS, 2 * SS), self.ylabel, font=self.f_label, fill=INK, anchor="lt")
        strip = strip.rotate(90, expand=True)
        self.img.paste(strip, (14 * SS, int((self.top + self.bottom) / 2 - strip.height / 2)))

    def axes(self) -> None:
        d = self.draw
        d.line([(self.left, self.top), (self.left, self.bottom)], fill=INK, width=SS)
        d.line([(self.left, self.bottom), (self.right, self.bottom)], fill=INK, width=SS)

    def x_tick(self, x: float, label: str) -> None:
        self.draw.line([(x, self.bottom), (x, self.bottom + 5 * SS)], fill=INK, width=SS)
        self.text((x, self.bottom + 8 * SS), label, self.f_tick, "mt")

    def draw_legend(self, kind: str) -> None:
        d, y = self.draw, self.top + 6 * SS
        if not self.legend:
            return
        box_h = len(self.legend) * (self.label_h + 10 * SS) + 8 * SS
        entry_w = max(self.text_size(t, self.f_label)[0] for t, _, _ in self.legend)
        d.rectangle([self.legend_x - 6 * SS, y - 6 * SS, self.legend_x + entry_w + 38 * SS, y + box_h],
                    outline=GRID, width=SS)
        for text, col, marker in self.legend:
            cy = y + self.label_h / 2 + 3 * SS
            if kind == "bar":
                d.rectangle([self.legend_x, cy - 6 * SS, self.legend_x + 20 * SS, cy + 6 * SS], fill=col)
            else:
                d.line([(self.legend_x, cy), (self.legend_x + 24 * SS, cy)], fill=col, width=3 * SS)
                if marker:
                    _marker(d, self.legend_x + 12 * SS, cy, marker, col)
            self.text((self.legend_x + 30 * SS, cy), text, self.f_label, "lm")
            y += self.label_h + 10 * SS

    def save(self, path: Path | str) -> Path:
        out = self.img.resize((self.img.width // SS, self.img.height // SS), Image.Resampling.LANCZOS)
        path = Path(path)
        with atomic_path(path) as tmp:
            out.save(tmp, format="PNG", optimize=True)
        return path


def _marker(d: ImageDraw.ImageDraw, x: float, y: float, marker: str, col: str) -> None:
    r = 4 * SS
    if marker == "s":
        d.rectangle([x - r, y - r, x + r, y + r], fill=col)
    elif marker == "^":
        d.polygon([(x, y - r - SS), (x - r - SS, y + r), (x + r + SS, y + r)], fill=col)
    elif marker == "D":
        d.polygon([(x, y - r - SS), (x + r + SS, y), (x, y + r + SS), (x - r - SS, y)], fill=col)
    else:
        d.ellipse([x - r, y - r, x + r, y + r], fill=col)


def _x_label_every(fig: _Figure, labels: Sequence[str], spacing: float) -> int:
    """Show every k-th x label so neighbouring labels never overlap."""
    widest = max((fig.text_size(s, fig.f_tick)[0] for s in labels), default=0) + 6 * SS
    k = max(1, math.ceil(widest / max(spacing, 1e-9)))
    for nice in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if nice >= k:
            return nice
    return k


def bar_chart(groups: Sequence[str], series: dict[str, Sequence[float]], path: Path | str, title: str,
              xlabel: str, ylabel: str, ylim: tuple[float, float] | None = None,
              height: int = 380) -> Path:
    """Grouped bars: one group per x label, one coloured bar per series (legend = series names)."""
    names = list(series)
    if not groups or not names:
        raise ValueError("bar_chart needs at least one group and one series")
    for name in names:
        if len(series[name]) != len(groups):
            raise ValueError(f"series {name!r} has {len(series[name])} values for {len(groups)} groups")
    values = [v for name in names for v in series[name]]
    lo, hi = ylim if ylim is not None else (min(0.0, min(values)), _nice_range(values)[1])
    if _vector(path):
        bars = [(name, list(series[name]), color(i)) for i, name in enumerate(names)]
        return plot_vector.bar_chart(list(groups), bars, Path(path), title, xlabel, ylabel, (lo, hi))
    n, k = len(groups), len(names)
    # Bar width: 1-9 px per bar, chart 560-1800 px wide (taller when wide, to stay readable).
    bar = max(1.0, min(9.0, (1800 / n - 3) / k))
    group_w = bar * k + max(2.0, bar * 0.8)
    plot_w = int(min(1800, max(560, group_w * n + 12)))
    height = max(height, min(560, plot_w // 3))
    group_w = (plot_w - 12) / n
    bar = (group_w - max(2.0, min(bar * 0.8, group_w * 0.3))) / k
    legend = [(name, color(i), "") for i, name in enumerate(names)]
    fig = _Figure(plot_w, height, title, xlabel, ylabel, legend, (lo, hi), nice_ticks(lo, hi))
    fig.frame()
    x0 = fig.left + 6 * SS
    for i, name in enumerate(names):
        for g, v in enumerate(series[name]):
            if not math.isfinite(v):
                continue
            xa = x0 + (g * group_w + (group_w - bar * k) / 2 + i * bar) * SS
            ya, yb = sorted((fig.y_px(v), fig.y_px(max(lo, 0.0) if lo <= 0 <= hi else lo)))
            if yb - ya < 1:
                continue
            fig.draw.rectangle([xa, ya, xa + bar * SS - 1, yb], fill=color(i))
    every = _x_label_every(fig, groups, group_w * SS)
    for g, label in enumerate(groups):
        if g % every == 0 or (g == n - 1 and every == 1):
            fig.x_tick(x0 + (g + 0.5) * group_w * SS, label)
    fig.axes()
    fig.draw_legend("bar")
    return fig.save(path)


def line_chart(series: dict[str, list[tuple[float, float]]], path: Path | str, title: str, xlabel: str,
               ylabel: str, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
               markers: bool | None = None, width: int = 640, height: int = 400) -> Path:
    """Curves of (x, y) points, one colour (and marker shape) per series; e.g. PSNR vs sparsity.

    Markers are drawn when series are short (<= 40 points) unless `markers` says otherwise; NaN/inf
    points break a curve instead of being drawn.
    """
    names = [n for n in series if series[n]]
    if not names:
        raise ValueError("line_chart needs at least one non-empty series")
    xs = [x for n in names for x, _ in series[n] if math.isfinite(x)]
    ys = [y for n in names for _, y in series[n] if math.isfinite(y)]
    x_lo, x_hi = xlim if xlim is not None else _nice_range(xs, 0.02)
    y_lo, y_hi = ylim if ylim is not None else _nice_range(ys)
    dots = {n: markers if markers is not None else len(series[n]) <= 40 for n in names}
    legend = [(name, color(i), MARKERS[i % len(MARKERS)] if dots[name] else "") for i, name in enumerate(names)]
    if _vector(path):
        curves = [(name, sorted(series[name], key=lambda p: p[0]), col, marker) for name, col, marker in legend]
        return plot_vector.line_chart(curves, Path(path), title, xlabel, ylabel, (x_lo, x_hi), (y_lo, y_hi))
    fig = _Figure(width, height, title, xlabel, ylabel, legend, (y_lo, y_hi), nice_ticks(y_lo, y_hi))
    fig.frame()

    def x_px(v: float) -> float:
        return fig.left + (min(max(v, x_lo), x_hi) - x_lo) / (x_hi - x_lo) * fig.pw

    x_ticks = nice_ticks(x_lo, x_hi, 7)
    step = (x_ticks[1] - x_ticks[0]) if len(x_ticks) > 1 else 1.0
    for v in x_ticks:
        if x_lo <= v <= x_hi:
            fig.draw.line([(x_px(v), fig.top), (x_px(v), fig.bottom)], fill=GRID, width=SS)
            fig.x_tick(x_px(v), _label(v, step))
    for i, name in enumerate(names):
        col, shape = color(i), MARKERS[i % len(MARKERS)]
        pts = sorted(series[name], key=lambda p: p[0])
        segment: list[tuple[float, float]] = []
        for x, y in pts + [(math.nan, math.nan)]:
            if math.isfinite(x) and math.isfinite(y):
                segment.append((x_px(x), fig.y_px(y)))
                continue
            if len(segment) > 1:
                fig.draw.line(segment, fill=col, width=3 * SS, joint="curve")
            if dots[name]:
                for px, py in segment:
                    _marker(fig.draw, px, py, shape, col)
            segment = []
    fig.axes()
    fig.draw_legend("line")
    return fig.save(path)


def tile_grid(rows: dict[str, Sequence[tuple[str, np.ndarray | None]]], path: Path | str, side: int = 160) -> Path:
    """Grey images (H,W uint8) in a grid: one titled row per key, each tile captioned, a None tile left
    blank (its caption only). Every tile is shown at the size of the largest scaled to about `side` pixels
    on its long edge: by a whole factor when enlarged (a pixel stays a crisp square). PNG only (rasters)."""
    cols = max(len(r) for r in rows.values())
    shapes = [p.shape for r in rows.values() for _, p in r if p is not None]
    long = max((max(shape) for shape in shapes), default=side)
    k = max(1, side // long) if long <= side else side / long
    tw, th = (max(1, round(max(shape[axis] for shape in shapes) * k)) if shapes else side for axis in (1, 0))
    f_title, f_cap = _font(14, 1), _font(12, 1)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    title_h, cap_h = (probe.textbbox((0, 0), "Ag", font=f)[3] + extra for f, extra in ((f_title, 8), (f_cap, 6)))
    pad = 10
    canvas = Image.new("RGB", (pad + cols * (tw + pad), pad + len(rows) * (title_h + cap_h + th + pad)), BG)
    draw = ImageDraw.Draw(canvas)
    y = pad
    for title, tiles in rows.items():
        draw.text((pad, y), title, font=f_title, fill=INK)
        y += title_h
        for i, (caption, pixels) in enumerate(tiles):
            x = pad + i * (tw + pad)
            draw.text((x, y), caption, font=f_cap, fill=INK)
            if pixels is None:
                draw.rectangle([x, y + cap_h, x + tw - 1, y + cap_h + th - 1], outline=GRID)
                continue
            resample = Image.Resampling.NEAREST if k >= 1 else Image.Resampling.LANCZOS
            canvas.paste(Image.fromarray(pixels).resize((tw, th), resample), (x, y + cap_h))
        y += cap_h + th + pad
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    return path
