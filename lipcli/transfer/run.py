"""Running grid cells: each cell's problem and prior, one fit with restore's engine, one row appended.

Images are clean ground truth (simulate mode): each cell degrades them, seeded by the cell's seed,
so every prior at one seed sees the same observation. A re-run skips the cells that already have a
row, and refuses a row made with other settings rather than silently reusing it.
Nothing here prints; the CLI renders through the callbacks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .. import images as images_io, nets
from ..config import differences
from ..errors import LipError
from ..fit import DivergenceError, Step
from ..jsonsafe import finite
from ..masks import Masks
from ..problem import Problem, load_problem
from ..prune import scores
from ..restore import Prior, masked_prior, restore
from ..watch import Watch
from .experiments import IMPEDANCE_TARGETS, impedance_problem, spectrum
from .grid import Cell, Grid, MaskSource, task_operator
from .rows import append_row, row_key, rounded

CURVE_POINTS = 200  # curves are stored at about this many iterations per run


def cell_problem(grid: Grid, cell: Cell) -> Problem:
    """The cell's image degraded by its task, seeded by its seed (an impedance target: through the identity)."""
    task, _ = task_operator(cell.task)
    problem = load_problem(cell.image, task, grid.settings[cell.task], simulate=True, seed=cell.seed,
                           inpaint_mask=grid.inpaint_mask, max_pixels=images_io.MAX_PIXELS)
    return impedance_problem(problem, cell.task, cell.seed) if cell.task in IMPEDANCE_TARGETS else problem


def cell_prior(grid: Grid, cell: Cell) -> tuple[Prior, dict[str, Any]]:
    """The cell's prior, and the row fields that describe it (sparsity, sizes, matched k)."""
    m = grid.mask(cell.mask) if cell.mask else None
    theta0 = m.art.theta0 if m is not None and grid.init == "artifact" else None
    fresh = grid.init == "fresh"  # the draw the mask cells get too (restore.Prior)
    if cell.method == "dense":
        return Prior(m.art.spec, theta0, None, fresh=fresh), {"sparsity": 0.0, "nonzero_params": m.total_params}
    kept, _ = m.art.counts(cell.round)
    info = {"sparsity": m.art.sparsity(cell.round), "kept": kept, "nonzero_params": m.nonzero(cell.round)}
    if cell.method == "mask":
        return masked_prior(m.path, cell.round, None, grid.init), {**info, "mask_method": m.method}
    if cell.method == "random":
        return Prior(m.art.spec, theta0, random_masks(m, kept, cell.seed), fresh=fresh), info
    if cell.method == "deep-decoder":
        k = nets.decoder_k_for_params(m.nonzero(cell.round))
        spec = nets.preset("deep-decoder", k=k)
        return Prior(spec, None, None), {**info, "dd_k": k, "matched_params": m.nonzero(cell.round),
                                         "nonzero_params": nets.count_params(nets.skeleton(spec))}
    raise LipError(f"unknown method {cell.method!r}")


def random_masks(m: MaskSource, kept: int, seed: int) -> Masks:
    """The random baseline of the artifact's masked parameters keeping exactly `kept` (`scores.random_mask`)."""
    return scores.random_mask(nets.skeleton(m.art.spec), m.art.prune_round, kept, seed)


def pending(cells: list[Cell], rows: list[dict[str, Any]], grid: Grid, where: str) -> list[Cell]:
    """Cells without a row yet; a row made with other settings is an error, never silently reused."""
    done = {row_key(r): r for r in rows}
    todo = []
    for cell in cells:
        row = done.get(cell.key)
        if row is None:
            todo.append(cell)
            continue
        old, new = row.get("settings") or {}, grid.identity(cell)
        if "image_sha256" not in old:  # a row of a lip that did not record its image's pixels yet
            new.pop("image_sha256")
        elif old["image_sha256"] != new["image_sha256"]:
            raise LipError(f"{where} holds runs on another picture named {cell.image_name}; use another --out, "
                           "or rename the image")
        if old != new:
            changed = differences(old, new)
            # deep-decoder rows of a lip that fitted it with DIP's jitter and EMA: no flag makes those again
            stale = cell.method == "deep-decoder" and all(c.startswith(("fit.reg_noise", "fit.ema")) for c in changed)
            raise LipError(f"{where} already holds {cell.describe()} made with different settings "
                           f"({', '.join(changed)}); use another --out"
                           + (" (lip fits the deep decoder without input jitter and EMA since 2026-12-07)" if stale
                              else ", or the settings it was made with"))
    return todo


def run_cell(grid: Grid, cell: Cell, dev: torch.device,
             callbacks: Iterable[Callable[[Step], None]] = ()) -> dict[str, Any]:
    """Fit one cell with restore's engine and return its JSON-able row.

    A fit that diverges beyond rollback still gives a row (scored at its last good iterate, with
    `diverged` set), so one bad cell neither stops the grid nor is retried forever on resume.
    """
    problem = cell_problem(grid, cell)
    prior, info = cell_prior(grid, cell)
    cfg = grid.config(cell)
    stride = max(1, math.ceil(cfg.iters / CURVE_POINTS))
    # SSIM beside the PSNR curve, of the image the fit shows (oracle: the clean image, for reporting only).
    curve_ssim: list[tuple[int, float | None]] = []
    watch = Watch(stride, lambda it, shown: curve_ssim.append((it, problem.scores(shown)["ssim"])))
    diverged = None
    try:
        result, report = restore(problem, prior, cfg, dev, cell.seed, [*callbacks, watch])
        params = report["params"]
    except DivergenceError as exc:
        result, diverged, params = exc.result, str(exc), nets.count_params(nets.skeleton(prior.spec))
    tr = result.targets[0]
    ran = tr.final.numel() > 0
    baseline = problem.baseline()  # a reconstruction without a prior (MRI: zero-filled), where the task has one
    final, stopped = (problem.scores(tr.final), problem.scores(tr.stopped)) if ran else ({}, {})
    row: dict[str, Any] = {
        "method": cell.method, "mask": cell.mask, "round": cell.round, "image": cell.image_name,
        "task": cell.task, "seed": cell.seed, "init": "fresh" if cell.method == "deep-decoder" else grid.init,
        **info, "params": params, "metric": problem.metric_name,
        "psnr_final": final.get("psnr"), "psnr_stopped": stopped.get("psnr"),
        "ssim_final": final.get("ssim"), "ssim_stopped": stopped.get("ssim"),
        "oracle_best_psnr": tr.oracle_best, "oracle_best_iter": tr.oracle_best_iter,
        "iterations": result.iterations, "stopped_at": tr.stopped_at,
        "auto_stopped": tr.auto_stopped and cfg.early_stop,  # the rule ended the fit (with it off, it only picked)
        "final_loss": result.losses[-1] if result.losses else None, "diverged": diverged,
        "recoveries": result.recoveries, "seconds": round(result.seconds, 3), "operator": problem.op.params(),
        "device": str(dev), "settings": grid.identity(cell),
        **({key: report[key] for key in ("compact", "params_fitted", "gflop_per_iter") if key in report}
           if diverged is None else {}),
        **({"baseline": baseline} if baseline else {}),
    }
    if grid.experiment != "impedance" and ran:  # cheap; kept so --experiment spectrum works on any grid
        row["spectrum"] = spectrum(tr.stopped, problem.clean)
    if ran and (not curve_ssim or curve_ssim[-1][0] != result.iterations):  # the last iterate, as curve_psnr's
        curve_ssim.append((result.iterations, problem.scores(tr.final)["ssim"]))
    row["curve_psnr"] = [[it, rounded(v)] for it, v in tr.curve if it % stride == 0 or it == result.iterations]
    row["curve_ssim"] = [[it, rounded(v, 6)] for it, v in curve_ssim if v is not None]
    row["curve_loss"] = [[i + 1, rounded(v, 7)] for i, v in enumerate(result.losses)
                         if (i + 1) % stride == 0 or i + 1 == result.iterations]
    return finite(row)


def run_cells(grid: Grid, cells: list[Cell], dev: torch.device, path: Path,
              on_step: Callable[[Cell, Step], None], on_row: Callable[[Cell, dict[str, Any]], None]) -> None:
    """Run cells in order, appending each row to `path` the moment it is done."""
    for cell in cells:
        row = run_cell(grid, cell, dev, [lambda step, c=cell: on_step(c, step)])
        append_row(path, row)
        on_row(cell, row)
