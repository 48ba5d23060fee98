"""`lip transfer`: parse, build the grid, run it with one progress bar, render the summary."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.table import Table

from .. import api, config, device as devices, files, plot as charts, transfer
from ..errors import LipError
from ..fit import Step
from ..physics import grid_flags, task_variants
from ..transfer import Cell, workers
from .render import Terminated, emit_json, err, fmt, guarded, print_wide, progress, say
from .options import (ARGS, DEVICE_HELP, Config, DataConsistency, EarlyStop, Ema, EsClose, EsGate, EsPatience,
                      EsSpike, EsWhite, EsWindow, InpaintMask, JumpFactor, Lr, Precision, RegNoise, RegNoiseEvery, Seed,
                      Sgld, Threads, WeightDecay, given_flags, json_flag, listing_option, with_task_flags)

GRID = "Grid"
# What --merge reads: it fits nothing, so every other flag would be ignored and is refused.
MERGE_READS = {"merge", "curves", "plot_metric", "plot_format", "experiment", "json_"}
RowsJson = json_flag("Print each row of the grid as one JSON line on stdout (those an earlier run finished "
                     "first, then each as it finishes)")


@guarded
@with_task_flags(after="inpaint_mask", flags=grid_flags)
def transfer_cmd(
    ctx: typer.Context,
    images: Optional[list[Path]] = typer.Argument(None, help="CLEAN images (ground truth); each cell degrades "
                                                  "them, seeded by the cell's seed", show_default=False),
    mask: Optional[list[Path]] = typer.Option(None, "--mask", help="Mask artifact (.safetensors, or a library "
                                              "name: lip masks); repeat for several", rich_help_panel=GRID,
                                              show_default=False),
    tasks: Annotated[Optional[str], listing_option(lambda: list(task_variants()), "--tasks", help="Comma list of "
                                                   "{names} [denoise]", rich_help_panel=GRID)] = None,
    rounds: Optional[str] = typer.Option(None, help="all | recommended | e.g. 3,6,9 (rounds of every mask) "
                                         "[all pruned rounds]", rich_help_panel=GRID),
    sparsities: Optional[str] = typer.Option(None, help="e.g. 0.5,0.8,0.9: each mask's rounds nearest to "
                                             "these sparsities", rich_help_panel=GRID),
    seeds: int = typer.Option(1, help="Seeds per cell (seed, seed+1, ...): degradation, input code, weights",
                              rich_help_panel=GRID),
    baselines: str = typer.Option("dense", help="Comma list of dense, random (same kept count, global), "
                                  "deep-decoder (closest parameter count; fitted as Heckel & Hand do: no input "
                                  "jitter, no output average), or none", rich_help_panel=GRID),
    init: str = typer.Option("artifact", help="artifact: the mask's theta0 (LIP ticket) | fresh: new weights "
                             "under the mask (OES transfer), drawn from --seed apart from the ticket's own draw; the "
                             "baselines get them too", rich_help_panel=GRID),
    experiment: str = typer.Option("grid", help="grid | impedance (fit clean/noisy/shuffled/noise images "
                                   "through the identity) | spectrum (grid plus FFT energy kept)",
                                   rich_help_panel=GRID),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results folder (created)"),
    shard: Optional[str] = typer.Option(None, help="i/n: run only cells with index % n == i into "
                                        "results.shard-i-of-n.jsonl (join them with --merge); auto: this "
                                        "task's place in a SLURM job array (docs/scale-out.md); for several "
                                        "devices of one machine, --device A,B does this itself"),
    merge: Optional[Path] = typer.Option(None, help="Join the shard files in this results folder, then write "
                                         "summary.csv and plots (no fitting)"),
    curves: bool = typer.Option(False, "--curves", help="Also plot PSNR and loss against iteration"),
    plot_metric: str = typer.Option("stopped", help="PSNR plotted against sparsity: stopped (auto-stopped) | "
                                    "final | oracle (best over iterations, reads the clean image)"),
    plot_format: str = typer.Option("png", help="png | pdf | svg, or a comma list (png,pdf): the plots' "
                                    "file types; pdf and svg (for papers) need matplotlib: pip install "
                                    "'matplotlib>=3.7'"),
    inpaint_mask: InpaintMask = None,
    iters: Optional[int] = typer.Option(None, help="Adam iterations per run (upper bound when early stopping) "
                                        "[preset]", rich_help_panel="Fitting"),
    lr: Lr = None, reg_noise: RegNoise = None, reg_noise_every: RegNoiseEvery = None, ema: Ema = None,
    sgld: Sgld = None, weight_decay: WeightDecay = None, early_stop: EarlyStop = None,
    data_consistency: DataConsistency = None,
    es_window: EsWindow = None, es_patience: EsPatience = None, es_gate: EsGate = None, es_white: EsWhite = None,
    es_close: EsClose = None, es_spike: EsSpike = None, jump_factor: JumpFactor = None,
    device: str = typer.Option("auto", help=f"{DEVICE_HELP}, or a comma list (cuda:0,cuda:1):"
                               " one worker process per device runs --shard i/n there, then the shards are "
                               "merged (--json prints the rows after the merge); repeats are allowed, e.g. "
                               "cpu,cpu,cpu,cpu on a many-core CPU", envvar="LIP_DEVICE", rich_help_panel="Run"),
    seed: Seed = 0, precision: Precision = None, threads: Threads = None,
    config_: Config = None,
    json_: RowsJson = False,
    task_flags: dict[str, Any] = None,  # type: ignore[assignment]  # filled by with_task_flags
) -> None:
    """Run a transfer grid: masks x rounds x images x tasks x seeds, with baselines, plots and a summary."""
    transfer.check_experiment(experiment)
    if plot_metric not in transfer.PLOT_METRICS:
        raise LipError(f"unknown --plot-metric {plot_metric!r}: use {', '.join(transfer.PLOT_METRICS)}")
    formats = charts.parse_formats(plot_format)
    if merge is not None:
        unread = (["images"] if images else []) + given_flags(ctx, {p.name for p in ctx.command.params}
                                                              - MERGE_READS - {"images"})
        if unread:
            raise LipError(f"--merge FOLDER only joins finished shards and plots them: drop {', '.join(unread)}")
        if not merge.is_dir():
            raise LipError(f"--merge {merge}: no such folder")
        with transfer.tables_held(merge):
            _merge(merge, curves, experiment == "spectrum", plot_metric, formats, json_)
        return
    shard_ = config.parse_shard(shard)
    plots = given_flags(ctx, {"curves", "plot_metric", "plot_format"}) if shard_ is not None else []
    if plots:
        raise LipError(f"{', '.join(plots)}: a shard writes its rows only; give {'it' if len(plots) == 1 else 'them'} "
                       f"to lip transfer --merge, which writes the summary and plots")
    if "," in device and shard_ is not None:
        raise LipError(f"--device {device} runs one --shard per device itself: drop --shard {shard}")
    device_list = workers.parse_devices(device)
    dev = devices.resolve(device_list[0] if device_list else device)  # settings, to check the grid now
    grid = api.transfer_grid(
        list(images or []), list(mask or []), tasks=tasks, rounds=rounds, sparsities=sparsities, seeds=seeds,
        baselines=baselines, init=init, experiment=experiment, inpaint_mask=inpaint_mask, early_stop=early_stop,
        config=config_, device=dev, seed=seed, **task_flags, iters=iters, lr=lr, reg_noise=reg_noise,
        reg_noise_every=reg_noise_every, ema=ema, sgld=sgld, weight_decay=weight_decay,
        data_consistency=data_consistency, es_window=es_window,
        es_patience=es_patience, es_gate=es_gate, es_white=es_white, es_close=es_close, es_spike=es_spike,
        jump_factor=jump_factor, precision=precision)
    if out is None:
        raise LipError("give --out FOLDER for results.jsonl, summary.csv and the plots")
    transfer.check_outputs(out)
    devices.set_threads(threads, say)  # its notes (a busy machine) only once the grid is known to be good

    files.make_folder(out, "--out")
    if device_list is not None:
        # Every worker gets the preset chosen here (the first device's), so a mixed list such as
        # cuda:0,cpu does not fill one grid with runs made under different default presets.
        preset = [] if config_ is not None else ["--config", grid.settings[grid.tasks[0]]["preset"]]
        runs = len(grid.cells())
        if len(device_list) > runs:  # a worker with no run would only load torch, and name a file it never writes
            say(f"lip transfer: {runs} run{'s' * (runs != 1)} for {len(device_list)} devices: using the first "
                f"{runs} (a worker with no run would idle)")
            device_list = device_list[:runs]
        with transfer.tables_held(out):  # a second parent is refused here, before its workers write any log
            for i in range(len(device_list)):  # each worker locks its shard file: refuse hand-started shards now
                with transfer.exclusive(out / transfer.rows_name(grid.stem, (i, len(device_list)))):
                    pass
            _run_workers(preset + ctx.meta[ARGS], device_list, threads, out, grid)
            _merge(out, curves, experiment == "spectrum", plot_metric, formats, json_)
        return
    rows_path = out / transfer.rows_name(grid.stem, shard_)
    files.check_writable(rows_path)
    with transfer.exclusive(rows_path):  # released, its empty file removed, before files.tidy removes a new --out
        _run_grid(grid, shard_, out, rows_path, dev, curves, experiment == "spectrum", plot_metric, formats, json_)
    if shard_ is not None and not rows_path.exists():  # a shard with nothing to run (more shards than runs) is
        with files.atomic_path(rows_path):  # done: its empty file says so to --merge, which called it missing
            pass


def _run_grid(grid: transfer.Grid, shard_: Optional[tuple[int, int]], out: Path, rows_path: Path, dev: Any,
              curves: bool, spectra: bool, plot_metric: str, formats: list[str], json_: bool) -> None:
    """Run this process's cells (the grid's, or its shard's) not yet in `rows_path`, then, unsharded, write the
    summary and plots."""
    cells = config.shard_of(grid.cells(), shard_)
    # A shard also skips what the folder's table holds (a stopped plain run continued as shards or workers).
    sources = [rows_path] + ([out / transfer.rows_name(grid.stem, None)] if shard_ is not None else [])
    have = [row for path in sources for row in transfer.read_rows(path)]
    todo = transfer.pending(cells, have, grid, rows_path.name)
    held = " and ".join(str(p) for p in sources if _written(p)) or str(rows_path)  # the files that hold rows
    if json_:  # the rows an earlier run finished first, so that --json always gives the whole grid
        finished = {transfer.row_key(r): r for r in have}
        for cell in cells:
            if cell.key in finished:
                emit_json(finished[cell.key])
    total = sum(grid.configs[c.task].iters for c in todo)
    shard_name = f"{shard_[0]}/{shard_[1]}" if shard_ else ""
    err.print(f"lip transfer: {len(cells)} run{'s' * (len(cells) != 1)}"
              + (f" (shard {shard_name})" if shard_ else "")
              + f", {len(cells) - len(todo)} already in {held}, {len(todo)} to run", markup=False, soft_wrap=True)
    with progress(max(total, 1), "transfer") as advance:
        done = {"n": 0}

        def on_step(cell: Cell, step: Step) -> None:
            advance(1, f"run {done['n'] + 1}/{len(todo)} {cell.describe()}")

        def on_row(cell: Cell, row: dict[str, Any]) -> None:
            done["n"] += 1
            advance(grid.configs[cell.task].iters - row["iterations"], "")  # early stop: skip the rest
            _say_row(cell, row)
            if json_:
                emit_json(row)

        try:
            transfer.run_cells(grid, todo, dev, rows_path, on_step, on_row)
        except (KeyboardInterrupt, Terminated):
            kept = len(transfer.read_rows(rows_path))
            err.print(f"lip: stopped; {kept} finished runs are kept in {rows_path}. Continue with the same command "
                      "(finished runs are skipped)" if kept else "lip: stopped before the first run ended; nothing "
                      "was kept", markup=False, soft_wrap=True)
            raise
    if shard_ is not None:
        err.print(f"shard {shard_name} done: {rows_path if _written(rows_path) else held}. When every shard is done: "
                         f"lip transfer --merge {out}", markup=False, soft_wrap=True)
        return
    rows = transfer.joined([rows_path])  # de-duplicated and checked, as a merge is: another run may share the folder
    results, impedance = (rows, []) if grid.stem == "results" else ([], rows)
    _write(out, results, impedance, curves, spectra, plot_metric, formats)


def _written(path: Path) -> bool:
    """Whether a rows file holds anything (the lock of a run creates it empty)."""
    return path.is_file() and path.stat().st_size > 0


def _run_workers(args: list[str], device_list: list[str], threads: Optional[int], out: Path,
                 grid: transfer.Grid) -> None:
    runs, n = len(grid.cells()), len(device_list)
    say(f"lip transfer: {runs} run{'s' * (runs != 1)} as {n} shard{'s' * (n != 1)}, one worker per device "
         f"({', '.join(device_list)})")
    try:
        workers.run(args, device_list, threads, out, grid.stem, say)
    except (KeyboardInterrupt, Terminated):
        shards = [out / transfer.rows_name(grid.stem, (i, n)) for i in range(n)]
        if any(transfer.read_rows(p) for p in shards):
            say(f"lip: stopped the workers; their finished runs are kept in {out}/{grid.stem}.shard-*.jsonl. "
                "Continue with the same command (finished runs are skipped)")
        else:  # nothing to keep: their logs go too, and with them a --out this run made (files.tidy)
            for p in shards:
                p.with_suffix(".log").unlink(missing_ok=True)
            say("lip: stopped the workers before any run ended; nothing was kept")
        raise


def _merge(folder: Path, curves: bool, spectra: bool, metric: str, formats: list[str], json_: bool) -> None:
    merged = {stem: transfer.merge(folder, stem) for stem in transfer.STEMS}
    if not any(merged.values()):
        raise LipError(f"--merge {folder}: no results.jsonl or shard files with rows there")
    for stem, rows in merged.items():
        if rows:
            err.print(f"merged {len(rows)} rows into {folder / (stem + '.jsonl')}", markup=False,
                             soft_wrap=True)
        missing = transfer.missing_shards(folder, stem)
        if missing:
            say(f"note: {stem}: no file for shard{'s' * (len(missing) > 1)} {', '.join(missing)} in {folder}; the "
                "merge holds the other shards' rows only (merge again once they are there)")
        if json_:
            for row in rows:
                emit_json(row)
    _write(folder, merged["results"], merged["impedance"], curves, spectra, metric, formats)


def _write(folder: Path, results: list[dict[str, Any]], impedance: list[dict[str, Any]], curves: bool,
           spectra: bool, metric: str, formats: list[str]) -> None:
    summary, written = transfer.write_outputs(folder, results, impedance, curves, spectra, metric, formats)
    if summary:
        print_wide(_summary_table(summary))
    if impedance:
        print_wide(_impedance_table(impedance))
    for path in written:
        err.print(f"wrote {path}", markup=False, soft_wrap=True)


def _say_row(cell: Cell, row: dict[str, Any]) -> None:
    stop = f"auto-stop {row['stopped_at']}" if row.get("auto_stopped", True) else "no automatic stop"
    err.print(f"{cell.describe()}: sparsity {100 * row['sparsity']:.1f}%, {row['iterations']} "
                     f"iterations ({stop}), {row['metric']} stopped "
                     f"{fmt(row['psnr_stopped'])} final {fmt(row['psnr_final'])} oracle "
                     f"{fmt(row['oracle_best_psnr'])}, {row['seconds']:.1f}s"
                     + (f" [DIVERGED: {row['diverged']}]" if row.get("diverged") else ""), markup=False, soft_wrap=True)


def _pm(s: dict[str, Any], stat: str, digits: int = 2) -> str:
    mean, std = s[f"{stat}_mean"], s[f"{stat}_std"]
    return fmt(mean, digits) + ("" if std is None else f" ± {std:.{digits}f}")


def _summary_table(summary: list[dict[str, Any]]) -> Table:
    t = Table(title="Transfer summary (mean ± std over seeds; oracle = best over iterations, reads the "
                    "clean image)", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("task", "image", "method / mask", "round", "sparsity", "seeds", "PSNR stopped", "PSNR final",
                "SSIM stopped", "oracle PSNR"):
        t.add_column(col, justify="left" if col in ("task", "image", "method / mask") else "right")
    for s in summary:
        name = s["label"] + (f" ({s['diverged']} diverged)" if s["diverged"] else "")
        t.add_row(s["task"], s["image"], name, str(s["round"]), f"{100 * s['sparsity']:.1f}%",
                  str(s["seeds"]), _pm(s, "psnr_stopped"), _pm(s, "psnr_final"), _pm(s, "ssim_stopped", 3),
                  _pm(s, "oracle_best_psnr"))
    return t


def _impedance_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Impedance: final training loss (MSE, mean over seeds) per target", box=box.SIMPLE_HEAD,
              title_justify="left")
    for col in ("prior", "round", "image") + transfer.IMPEDANCE_TARGETS:
        t.add_column(col, justify="left" if col in ("prior", "image") else "right")
    groups: dict[tuple, dict[str, list[float]]] = {}
    for r in sorted(rows, key=transfer.method_order):
        g = groups.setdefault((transfer.label(r, rows), r["round"], r["image"]), {})
        g.setdefault(r["task"], []).append(r["final_loss"])
    for (name, round_, image), losses in groups.items():
        t.add_row(name, str(round_), image, *(fmt(transfer.mean_of(losses.get(k, [])), 5)
                                              for k in transfer.IMPEDANCE_TARGETS))
    return t
