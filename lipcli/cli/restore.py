"""`lip restore`: parse, restore each image with the chosen prior, write it and report it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .. import api, device as devices, files
from .. import images as images_io
from ..errors import LipError, LipRuntimeError
from ..fit import Step
from .render import RunLog, check_stdout_free, emit_json, err, fmt, guarded, progress, say
from .options import (Config, Device, EarlyStop, Ema, EsPatience, EsWindow, InpaintMask, Iters, Json, Keep,
                      Log, Lr, Precision, RegNoise, Scale, Seed, Sigma, Simulate, Task, Threads, net_option)


def output_paths(inputs: list[Path], out: Optional[Path], suffix: str = "_restored") -> list[Path]:
    """One output per input: --out is a file for one input, a folder (created) for several."""
    if out is not None and files.is_stdout(out):
        if len(inputs) > 1:
            raise LipError("-o - writes one image to stdout: give one input (or an output folder)")
        return [out]
    if out is None:  # beside the input, in its type (images_io.output_suffix); samples go to the working folder
        return [(Path(p.name) if str(p).startswith(images_io.SAMPLE_PREFIX) else p).with_name(
            f"{images_io.resolve(p).stem}{suffix}{images_io.output_suffix(p)}") for p in inputs]
    if len(inputs) > 1 or out.is_dir() or str(out).endswith("/"):
        if not out.is_dir():
            files.make_folder(out, "output folder")
        paths = [out / f"{p.stem}{images_io.output_suffix(p)}" for p in inputs]
        if len(set(paths)) < len(paths):
            raise LipError("two inputs share a file name; restore them into different --out folders")
        return paths
    return [out]


@guarded
def restore_cmd(
    images: list[Path] = typer.Argument(..., help="Degraded image(s) (or clean ones with --simulate)"),
    task: Task = "denoise", sigma: Sigma = None, inpaint_mask: InpaintMask = None,
    keep: Keep = None, scale: Scale = None, simulate: Simulate = False,
    mask: Optional[Path] = typer.Option(None, help="Mask artifact (.safetensors); dense net when absent",
                                        rich_help_panel="Prior"),
    round_: Optional[int] = typer.Option(None, "--round", help="Round of the mask trajectory "
                                         "[the artifact's recommended round]", rich_help_panel="Prior"),
    sparsity: Optional[float] = typer.Option(None, help="Pick the round closest to this sparsity",
                                             rich_help_panel="Prior"),
    init: str = typer.Option("artifact", help="artifact: the mask's theta0 (LIP ticket) | fresh: new "
                             "weights under the mask (OES transfer)", rich_help_panel="Prior"),
    prior: str = typer.Option("dip", help="dip | deep-decoder (dense priors without --mask)",
                              rich_help_panel="Prior"),
    net: net_option("Prior") = None,
    dd_k: int = typer.Option(128, help="Deep-decoder width k (6(k^2+2k)+3k parameters)", min=1,
                             rich_help_panel="Prior"),
    compact: Optional[bool] = typer.Option(None, "--compact/--no-compact", help="Fit the masked net with its "
                                           "entirely pruned filters removed (lipcli/nets/compact.py): the same "
                                           "function, faster. [on whenever the mask removes whole filters]",
                                           show_default=False, rich_help_panel="Prior"),
    iters: Iters = None, lr: Lr = None, reg_noise: RegNoise = None,
    ema: Ema = None, early_stop: EarlyStop = True, es_window: EsWindow = None,
    es_patience: EsPatience = None,
    ensemble: int = typer.Option(1, min=1, help="Average N fits with seeds SEED..SEED+N-1 (each auto-stopped; "
                                 "N times the time)", rich_help_panel="Fitting"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file, or folder for several inputs, or - "
                                       "for PNG bytes on stdout [INPUT_restored.png]"),
    clean: Optional[Path] = typer.Option(None, help="Clean reference for metrics only (reports the "
                                         "'oracle' best PSNR too)"),
    device: Device = "auto", seed: Seed = 0, precision: Precision = None,
    threads: Threads = None, config_: Config = None,
    checkpoint: Optional[bool] = typer.Option(None, "--checkpoint/--no-checkpoint", help="Recompute conv "
                                              "blocks in backward: about 1/3 less memory, each block's forward runs "
                                              "twice, same result [on only when the image would not fit otherwise]",
                                              show_default=False, rich_help_panel="Run"),
    json_: Json = False,
    log: Log = None,
) -> None:
    """Restore images with a dense or masked Deep Image Prior."""
    dev = devices.resolve(device)
    devices.set_threads(threads, say)
    job = api.restorer(task=task, simulate=simulate, inpaint_mask=inpaint_mask, mask=mask, round_=round_,
                       sparsity=sparsity, init=init, prior=prior, net=net, dd_k=dd_k, compact=compact,
                       early_stop=early_stop, checkpoint=checkpoint, config=config_, device=dev, seed=seed,
                       sigma=sigma, keep=keep, scale=scale, iters=iters, lr=lr, reg_noise=reg_noise, ema=ema,
                       es_window=es_window, es_patience=es_patience, precision=precision, ensemble=ensemble)
    if clean is not None and len(images) > 1:
        raise LipError("--clean gives one reference image; restore one input at a time with it")
    images_io.check_readable(images)
    check_stdout_free(out, json_)
    outs = output_paths(images, out)
    for path in outs:
        files.check_writable(path)
        images_io.check_suffix(path)  # before the run, not after it
    run_log = RunLog(log)
    try:
        for path, dest in zip(images, outs):
            _restore_one(path, dest, job, clean, json_, run_log)
    finally:
        run_log.close()


def _save(dest: Path, picture: images_io.Image) -> None:
    images_io.save_image(dest, picture.pixels, alpha=picture.alpha, stored=picture.stored)


def _restore_one(path: Path, dest: Path, job: api.Restorer, clean: Optional[Path], json_: bool,
                 run_log: RunLog) -> None:
    """Restore one image and write it, its report (stderr, --json) and its log lines."""
    with progress(job.cfg.iters * job.ensemble, f"{path.name}") as advance:
        def on_step(step: Step) -> None:
            shown = f"loss {step.loss:.5f}" + (f" psnr {step.metrics[0]:.2f}" if step.metrics[0] else "")
            advance(1, shown)
            run_log.write("step", input=path.name, iteration=step.iteration, loss=step.loss,
                          metric=step.metrics[0], stopped_at=step.stopped_at[0])
        try:
            restored = job(path, clean=clean, on_step=on_step, notify=say)
        except api.Diverged as exc:  # keep the last good output, then fail with exit 1
            _save(dest, exc.picture)
            raise LipRuntimeError(f"{exc} — the last good result (iteration {exc.iteration}) "
                                  f"was written to {dest}") from None
    _save(dest, restored.picture)
    report = {**restored.report, "output": str(dest)}
    _say_restored(report)
    run_log.write("result", **report)
    if json_:
        emit_json(report)


def _say_restored(r: dict[str, Any]) -> None:
    members = r.get("members", [])
    stops = "/".join(str(m["stopped_at"]) for m in members) or r["stopped_at"]
    line = (f"{r['input']} -> {r['output']}: {r['iterations']} iterations, auto-stop at "
            f"{stops}, {r['seconds']:.1f}s, sparsity {100 * r['sparsity']:.1f}%, "
            f"{r['params_fitted']:,} params fitted ({r['gflop_per_iter']:.2f} GFLOP/iteration)")
    if r.get("sigma_estimated") is not None:
        line += f", noise sigma ~{r['sigma_estimated']:.1f} (estimated)"
    if r["psnr_final"] is not None and members:
        line += (f"; {r['metric']} stopped members {'/'.join(fmt(m['psnr_stopped']) for m in members)}, "
                 f"their average {fmt(r['psnr_stopped'])} (final iterates averaged {fmt(r['psnr_final'])})")
    elif r["psnr_final"] is not None:
        line += (f"; {r['metric']} final {fmt(r['psnr_final'])} / stopped "
                 f"{fmt(r['psnr_stopped'])} / oracle best {fmt(r['oracle_best_psnr'])}"
                 f" (iteration {r['oracle_best_iter']})")
    err.print(line, markup=False, soft_wrap=True)
