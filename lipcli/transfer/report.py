"""From rows to files: summary.csv, the PSNR-vs-sparsity and curve plots, and the experiments' outputs.

Plots follow LIP: PSNR against sparsity per task (Fig. 3-5, dense drawn across as the reference),
PSNR and loss against iteration (Fig. 11), the spectral energy kept, and one impedance plot per prior
(Fig. 10). Curves and spectra show each method at its sparsest evaluated round.
"""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import files, plot
from .experiments import IMPEDANCE_TARGETS, RADIAL_BINS, TARGET_NAMES
from .summary import SUMMARY_COLUMNS, label, mean_of, method_order, summarise, tasks_of

PLOT_METRICS = {"stopped": ("psnr_stopped", "auto-stopped"), "final": ("psnr_final", "final iterate"),
                "oracle": ("oracle_best_psnr", "oracle best, reads the clean image")}


PNG = ("png",)
# Every name write_outputs (and a merge's rows) may give a file in the --out folder.
OUTPUT_NAME = re.compile(r"(results|impedance)(\.shard-\d+-of-\d+)?\.jsonl|(summary|spectrum)\.csv|"
                         rf"(psnr_vs_sparsity|curves|spectrum|impedance)_.*\.({'|'.join(plot.FORMATS)})")


def check_outputs(folder: Path) -> None:
    """Refuse now, before any fit, a grid whose rows, summary or plots would replace one of its own inputs lying
    in `folder` (files.check_writable knows them), rather than after hours of fitting."""
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if OUTPUT_NAME.fullmatch(path.name):
                files.check_writable(path)


def _charts(folder: Path, stem: str, formats: Sequence[str], draw: Callable[[Path], Path]) -> list[Path]:
    """One chart written in each asked format (plot.FORMATS): folder/stem.png, stem.pdf, ..."""
    return [draw(folder / f"{stem}.{fmt}") for fmt in formats]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _by_label(rows: list[dict[str, Any]], every: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=method_order):
        out.setdefault(label(r, every), []).append(r)
    return out


def _extent(rows: list[dict[str, Any]]) -> str:
    n_img, n_seed = len({r["image"] for r in rows}), len({r["seed"] for r in rows})
    return f"{n_img} image{'s' * (n_img > 1)} x {n_seed} seed{'s' * (n_seed > 1)}"


def _metric_name(rows: list[dict[str, Any]]) -> str:
    return "PSNR-Y" if any(r.get("metric") == "psnr_y" for r in rows) else "PSNR"


def plot_sparsity(rows: list[dict[str, Any]], folder: Path, metric: str = "stopped",
                  formats: Sequence[str] = PNG) -> list[Path]:
    """Per task, PSNR against sparsity (%), one line per method/mask, dense as a horizontal reference."""
    column, what = PLOT_METRICS[metric]
    paths = []
    for task in tasks_of(rows):
        trows = [r for r in rows if r["task"] == task]
        points: dict[str, list[tuple[float, float]]] = {}
        reference = set()
        for name, rs in _by_label(trows, rows).items():
            rounds = {k: [r for r in rs if r["round"] == k] for k in dict.fromkeys(r["round"] for r in rs)}
            means = [(100 * at[0]["sparsity"], mean_of(r.get(column) for r in at)) for at in rounds.values()]
            if rs[0]["method"] == "dense":
                name += " (reference)"
                reference.add(name)
            points[name] = sorted((x, v) for x, v in means if v is not None)
        right = max((x for pts in points.values() for x, _ in pts), default=0.0)
        series = {name: [(0.0, pts[0][1]), (right, pts[0][1])] if name in reference and right > 0 else pts
                  for name, pts in points.items() if pts}  # dense: its 0 % point drawn across
        if not series:
            continue
        paths += _charts(folder, f"psnr_vs_sparsity_{_slug(task)}", formats, lambda path: plot.line_chart(
            series, path, f"{task}: {_metric_name(trows)} ({what}) vs sparsity, mean of {_extent(trows)}",
            "sparsity (%)", f"{_metric_name(trows)} (dB), {what}", xlim=(0.0, min(100.0, right + 5))))
    return paths


def focus_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each method/mask at its sparsest evaluated round (dense as is): what curves and spectra show."""
    top: dict[tuple, int] = {}
    for r in rows:
        key = (r["method"], r["mask"])
        top[key] = max(top.get(key, r["round"]), r["round"])
    return [r for r in rows if r["round"] == top[(r["method"], r["mask"])]]


def mean_curve(curves: list[list[list[float]]], log: bool = False) -> list[tuple[float, float]]:
    """Mean over runs at the iterations every run reached (early-stopped runs end the curve)."""
    maps = [{int(it): v for it, v in c if v is not None and (not log or v > 0)} for c in curves if c]
    if not maps:
        return []
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return [(it, statistics.fmean(math.log10(m[it]) if log else m[it] for m in maps)) for it in common]


def _curve_label(name: str, rs: list[dict[str, Any]]) -> str:
    return name if rs[0]["method"] == "dense" else f"{name}, {100 * rs[0]['sparsity']:.1f}%"


def plot_curves(rows: list[dict[str, Any]], folder: Path, formats: Sequence[str] = PNG) -> list[Path]:
    """Per task, PSNR, SSIM (LIP Fig. 12 draws both) and log10 loss against iteration, one line per
    method/mask at its sparsest round. PSNR and SSIM read the clean image: reporting only (oracle)."""
    paths = []
    for task in tasks_of(rows):
        trows = focus_rows([r for r in rows if r["task"] == task])
        groups = _by_label(trows, rows)
        for kind, what, ylabel in (("psnr", "PSNR", f"{_metric_name(trows)} (dB) vs clean"),
                                   ("ssim", "SSIM", "SSIM vs clean (oracle)"),
                                   ("loss", "loss", "log10 training loss (MSE)")):
            series = {_curve_label(n, rs): mean_curve([r.get(f"curve_{kind}") for r in rs], kind == "loss")
                      for n, rs in groups.items()}
            series = {n: pts for n, pts in series.items() if pts}
            if not series:
                continue
            paths += _charts(folder, f"curves_{kind}_{_slug(task)}", formats, lambda path: plot.line_chart(
                series, path, f"{task}: {what} during fitting, sparsest round per method, "
                f"mean of {_extent(trows)}", "iteration", ylabel, markers=False))
    return paths


SPECTRUM_COLUMNS = ["task", "image", "seed", "method", "mask", "label", "round", "sparsity", "low_energy_ratio",
                    "high_energy_ratio", "low_magnitude_error", "high_magnitude_error"]


def write_spectrum(rows: list[dict[str, Any]], folder: Path, formats: Sequence[str] = PNG) -> list[Path]:
    """spectrum.csv (one line per run) and, per task, the radial energy ratio per method (sparsest round)."""
    rows = [r for r in rows if r.get("spectrum")]
    if not rows:
        return []
    tasks = tasks_of(rows)
    records = [{**{k: r.get(k) for k in SPECTRUM_COLUMNS}, "label": label(r, rows),
                **{k: v for k, v in r["spectrum"].items() if k != "radial_energy_ratio"}}
               for r in sorted(rows, key=lambda r: (tasks.index(r["task"]), r["image"], r["seed"], method_order(r)))]
    paths = [files.write_csv(folder / "spectrum.csv", records, SPECTRUM_COLUMNS)]
    centres = [(i + 0.5) / RADIAL_BINS for i in range(RADIAL_BINS)]
    for task in tasks:
        trows = focus_rows([r for r in rows if r["task"] == task])
        series = {}
        for name, rs in _by_label(trows, rows).items():
            rings = [[r["spectrum"]["radial_energy_ratio"][i] for r in rs] for i in range(RADIAL_BINS)]
            logs = [mean_of(math.log10(v) for v in ring if v) for ring in rings]
            series[_curve_label(name, rs)] = [(c, math.nan if y is None else y) for c, y in zip(centres, logs)]
        paths += _charts(folder, f"spectrum_{_slug(task)}", formats, lambda path: plot.line_chart(
            series, path, f"{task}: spectral energy kept (auto-stopped), sparsest round per method",
            "frequency (fraction of Nyquist)", "log10 energy ratio restored/clean (0 = same)"))
    return paths


def plot_impedance(rows: list[dict[str, Any]], folder: Path, formats: Sequence[str] = PNG) -> list[Path]:
    """One PNG per prior and image: log10 loss against iteration for the four targets (mean over seeds)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=method_order):
        groups.setdefault((r["method"], r["mask"], r["round"], r["image"]), []).append(r)
    paths = []
    for (method, _, round_, image), rs in groups.items():
        series = {TARGET_NAMES[t]: mean_curve([r.get("curve_loss") for r in rs if r["task"] == t], log=True)
                  for t in IMPEDANCE_TARGETS}
        series = {name: pts for name, pts in series.items() if pts}
        if not series:
            continue
        name = label(rs[0], rows)
        where = "" if method == "dense" else f", round {round_} ({100 * rs[0]['sparsity']:.1f}% sparse)"
        seeds = len({r["seed"] for r in rs})
        title = f"Impedance: {name}{where}, {image}" + (f", mean of {seeds} seeds" if seeds > 1 else "")
        paths += _charts(folder, f"impedance_{_slug(name)}_r{round_}_{_slug(Path(image).stem)}", formats,
                         lambda path: plot.line_chart(series, path, title, "iteration", "log10 training loss (MSE)",
                                                      markers=False))
    return paths


def write_outputs(folder: Path, results: list[dict[str, Any]], impedance: list[dict[str, Any]],
                  curves: bool, spectra: bool, metric: str,
                  formats: Sequence[str] = PNG) -> tuple[list[dict[str, Any]], list[Path]]:
    """Summary CSV and every plot the rows support, in each of `formats`; returns the summary and the
    files written."""
    written: list[Path] = []
    summary = summarise(results) if results else []
    if results:
        written.append(files.write_csv(folder / "summary.csv", summary, SUMMARY_COLUMNS))
        written += plot_sparsity(results, folder, metric, formats)
        if curves:
            written += plot_curves(results, folder, formats)
        if spectra:
            written += write_spectrum(results, folder, formats)
    if impedance:
        written += plot_impedance(impedance, folder, formats)
    return summary, written
