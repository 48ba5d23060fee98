"""The `lip` command line: parse options, call the engine, render results. No algorithms here."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import torch
import typer
from typer.core import TyperGroup

from . import __version__, config, device as devices, files, nets, render
from . import images as images_io
from .errors import LipError, LipRuntimeError
from .fit import DivergenceError, FitConfig, Step
from .problem import load_problem
from .restore import Prior, dense_prior, masked_prior, restore



# Click's usage error as typer uses it (typer >= 0.28 vendors its own click, older ones import click).
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageError(_UsageError):  # type: ignore[misc, valid-type]
    """A usage error (bad option value, unknown option, missing argument) as one `lip: error:` line.

    Click prints the usage, a hint and the error on four lines; lip's errors are one line everywhere.
    """

    def show(self, file: Any = None) -> None:
        where = "lip"
        if self.ctx is not None:
            root = self.ctx.find_root().info_name or ""
            where += self.ctx.command_path[len(root):]
        typer.echo(f"lip: error: {self.format_message()} (see {where} --help)", file=file or sys.stderr)


def _one_line(exc: Any) -> Any:
    if isinstance(exc, _OneLineUsageError) or type(exc).__name__ == "NoArgsIsHelpError":
        return exc  # `lip` alone prints the help
    return _OneLineUsageError(exc.format_message(), exc.ctx)


class _Group(TyperGroup):
    """The root command: parsing errors of it and of every subcommand become one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            raise _one_line(exc) from None


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  rich_markup_mode=None,
                  help="Lottery image priors: restore images with (sparse) Deep Image Priors.")

MAX_PIXELS = 64_000_000


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"lip {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit",
                                       is_eager=True, callback=_print_version)) -> None:
    """Lottery image priors: find sparse Deep Image Prior subnetworks once, reuse them everywhere."""  # refuse absurd inputs from the header, before decoding


# Options shared by every command that fits images (one definition, reused).
def _opt(default: Any, help: str, **kw: Any) -> Any:
    return typer.Option(default, help=help, **kw)


TASK = _opt("denoise", "denoise | inpaint | sr", rich_help_panel="Task")
SIGMA = _opt(None, "Gaussian noise level, 0-255 units (used with --simulate) [25]", rich_help_panel="Task")
INPAINT_MASK = _opt(None, "Inpainting mask PNG, white = observed, black = missing", rich_help_panel="Task")
KEEP = _opt(None, "With --simulate and no mask: Bernoulli fraction of pixels observed [0.5]",
            rich_help_panel="Task")
SCALE = _opt(None, "Super-resolution factor: 2, 4 or 8 [4]", rich_help_panel="Task")
SIMULATE = _opt(False, "The input is CLEAN: degrade it (seeded) and score against it",
                rich_help_panel="Task")
ITERS = _opt(None, "Adam iterations (upper bound when early stopping) [preset]", min=1,
             rich_help_panel="Fitting")
LR = _opt(None, "Adam learning rate [0.01]", rich_help_panel="Fitting")
REG_NOISE = _opt(None, "Std of the input-code jitter [1/30 denoise, 0.03 inpaint/sr]",
                 rich_help_panel="Fitting")
EMA = _opt(None, "Output moving average (0 = off) [0.99 denoise, 0 otherwise]", rich_help_panel="Fitting")
EARLY_STOP = _opt(True, "Stop automatically when the output stops improving (never reads the clean image)",
                  rich_help_panel="Fitting")
ES_WINDOW = _opt(None, "Early-stop variance window [200]", min=2, rich_help_panel="Fitting")
ES_PATIENCE = _opt(None, "Early-stop patience in iterations [1000 paper, 300 fast]", min=1,
                   rich_help_panel="Fitting")
DEVICE = _opt("auto", "auto | cpu | cuda | cuda:N | mps", envvar="LIP_DEVICE", rich_help_panel="Run")
SEED = _opt(0, "Seed for weights, input code and simulated degradations", rich_help_panel="Run")
PRECISION = _opt(None, "fp32 | bf16 | auto. auto (the fast preset) = bf16 autocast + channels_last on "
                       "CPUs with AVX512-BF16/AMX and on bf16 GPUs, else fp32", rich_help_panel="Run")
THREADS = _opt(None, "CPU threads (results are bit-reproducible at a fixed count)", rich_help_panel="Run")
CONFIG = _opt(None, "Preset (paper | fast) or a YAML file; flags override it. Default: fast on CPU, "
                    "paper on GPU", rich_help_panel="Run")
JSON = _opt(False, "Print one JSON object per result on stdout", rich_help_panel="Run")
LOG = _opt(None, "Append a JSON-lines log of every iteration, round and result (follow with tail -f)",
           rich_help_panel="Run")


def fit_config(settings: dict[str, Any], early_stop: bool, dev: torch.device, seed: int) -> FitConfig:
    """Turn resolved settings into the fitting loop's config (precision 'auto' decided here)."""
    precision = settings["precision"]
    if precision == "auto":
        precision = "bf16" if devices.fast_bf16(dev) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise LipError(f"unknown --precision {precision!r}: use fp32, bf16 or auto")
    for key in ("lr", "reg_noise", "ema"):
        if not 0 <= float(settings[key]) < (1 if key == "ema" else 10):
            raise LipError(f"--{key.replace('_', '-')} {settings[key]} is out of range")
    if float(settings["lr"]) == 0:
        raise LipError("--lr must be positive")
    return FitConfig(iters=int(settings["iters"]), lr=float(settings["lr"]),
                     reg_noise=float(settings["reg_noise"]), ema=float(settings["ema"]),
                     early_stop=early_stop, es_window=int(settings["es_window"]),
                     es_patience=int(settings["es_patience"]), precision=precision,
                     channels_last=precision == "bf16" and dev.type == "cpu", seed=seed)


def resolve_settings(task: str, config_name: Optional[str], dev: torch.device,
                     flags: dict[str, Any]) -> dict[str, Any]:
    default = "paper" if dev.type == "cuda" else "fast"
    settings = config.resolve(task, config_name, default, flags)
    try:
        nets.build(nets.resolve_spec(settings["net"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LipError(f"invalid net {settings['net']!r}: {exc}") from None
    return settings


def output_paths(inputs: list[Path], out: Optional[Path], suffix: str = "_restored") -> list[Path]:
    """One output per input: --out is a file for one input, a folder (created) for several."""
    if out is not None and files.is_stdout(out):
        if len(inputs) > 1:
            raise LipError("-o - writes one image to stdout: give one input (or an output folder)")
        return [out]
    if out is None:  # beside the input; bundled samples go to the working folder
        return [(Path(p.name) if str(p).startswith(images_io.SAMPLE_PREFIX) else p).with_name(
            f"{images_io.resolve(p).stem}{suffix}.png") for p in inputs]
    if len(inputs) > 1 or out.is_dir() or str(out).endswith("/"):
        if not out.is_dir():
            files.make_folder(out, "output folder")
        paths = [out / f"{p.stem}.png" for p in inputs]
        if len(set(paths)) < len(paths):
            raise LipError("two inputs share a file name; restore them into different --out folders")
        return paths
    return [out]


@app.command("restore")
@render.guarded
def restore_cmd(
    images: list[Path] = typer.Argument(..., help="Degraded image(s) (or clean ones with --simulate)"),
    task: str = TASK, sigma: Optional[float] = SIGMA, inpaint_mask: Optional[Path] = INPAINT_MASK,
    keep: Optional[float] = KEEP, scale: Optional[int] = SCALE, simulate: bool = SIMULATE,
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
    net: Optional[str] = typer.Option(None, help="Dense DIP net preset: dip | dip-inpaint | oes [dip]",
                                      rich_help_panel="Prior"),
    dd_k: int = typer.Option(128, help="Deep-decoder width k (6(k^2+2k)+3k parameters)", min=1,
                             rich_help_panel="Prior"),
    compact: bool = typer.Option(False, "--compact", help="Fit the masked net with its entirely pruned "
                                 "filters removed (lipcli/compact.py): same function, faster when whole "
                                 "filters are pruned (needs --mask)", rich_help_panel="Prior"),
    iters: Optional[int] = ITERS, lr: Optional[float] = LR, reg_noise: Optional[float] = REG_NOISE,
    ema: Optional[float] = EMA, early_stop: bool = EARLY_STOP, es_window: Optional[int] = ES_WINDOW,
    es_patience: Optional[int] = ES_PATIENCE,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file, or folder for several inputs, or - "
                                       "for PNG bytes on stdout [INPUT_restored.png]"),
    clean: Optional[Path] = typer.Option(None, help="Clean reference for metrics only (reports the "
                                         "'oracle' best PSNR too)"),
    device: str = DEVICE, seed: int = SEED, precision: Optional[str] = PRECISION,
    threads: Optional[int] = THREADS, config_: Optional[str] = typer.Option(None, "--config", help=CONFIG.help,
                                                                             rich_help_panel="Run"),
    checkpoint: Optional[bool] = typer.Option(None, "--checkpoint/--no-checkpoint", help="Recompute conv "
                                              "blocks in backward: about 1/3 less memory, each block's forward runs "
                                              "twice, same result [on only when the image would not fit otherwise]",
                                              show_default=False, rich_help_panel="Run"),
    json_: bool = typer.Option(False, "--json", help=JSON.help, rich_help_panel="Run"),
    log: Optional[Path] = LOG,
) -> None:
    """Restore images with a dense or masked Deep Image Prior."""
    dev = devices.resolve(device)
    devices.set_threads(threads, render.say)
    settings = resolve_settings(task, config_, dev, dict(
        sigma=sigma, keep=keep, scale=scale, iters=iters, lr=lr, reg_noise=reg_noise, ema=ema,
        es_window=es_window, es_patience=es_patience, precision=precision, net=net))
    cfg = replace(fit_config(settings, early_stop, dev, seed), checkpoint=checkpoint)
    if clean is not None and len(images) > 1:
        raise LipError("--clean gives one reference image; restore one input at a time with it")
    if compact and mask is None:
        raise LipError("--compact needs --mask: only a masked net has pruned filters to remove")
    if mask is not None:
        chosen: Prior = masked_prior(mask, round_, sparsity, init, compact)
    elif prior == "deep-decoder":
        chosen = dense_prior("deep-decoder", k=dd_k)
    elif prior == "dip":
        chosen = dense_prior(settings["net"])
    else:
        raise LipError(f"unknown --prior {prior!r}: use dip or deep-decoder")
    for path in images:  # fail before the first restore, not after it
        if not images_io.resolve(path).is_file():
            what = "it is a folder (give an image file)" if images_io.resolve(path).is_dir() \
                else "no such file (check the path)"
            raise LipError(f"cannot read {path}: {what}")
    render.check_stdout_free(out, json_)
    outs = output_paths(images, out)
    for path in outs:
        files.check_writable(path)
        images_io.check_suffix(path)  # before the run, not after it
    run_log = render.RunLog(log)
    try:
        for path, dest in zip(images, outs):
            _restore_one(path, dest, task, settings, simulate, seed, inpaint_mask, clean, chosen, cfg,
                         dev, json_, run_log)
    finally:
        run_log.close()


def _restore_one(path: Path, dest: Path, task: str, settings: dict[str, Any], simulate: bool, seed: int,
                 inpaint_mask: Optional[Path], clean: Optional[Path], chosen: Prior, cfg: FitConfig,
                 dev: torch.device, json_: bool, run_log: render.RunLog) -> None:
    """Restore one image and write it, its report (stderr, --json) and its log lines."""
    problem = load_problem(path, task, settings, simulate=simulate, seed=seed,
                           inpaint_mask=inpaint_mask, clean=clean, max_pixels=MAX_PIXELS)
    with render.progress(cfg.iters, f"{path.name}") as advance:
        def on_step(step: Step) -> None:
            shown = f"loss {step.loss:.5f}" + (f" psnr {step.metrics[0]:.2f}" if step.metrics[0] else "")
            advance(1, shown)
            run_log.write("step", input=path.name, iteration=step.iteration, loss=step.loss,
                          metric=step.metrics[0], stopped_at=step.stopped_at[0])
        try:
            result, report = restore(problem, chosen, cfg, dev, seed, [on_step], notify=render.say)
        except DivergenceError as exc:  # keep the last good output, then fail with exit 1
            last = exc.result.targets[0] if exc.result.targets else None
            if last is not None and last.final.numel():
                problem.save(dest, last.stopped)
                raise LipRuntimeError(f"{exc} — the last good result (iteration {last.stopped_at}) "
                                      f"was written to {dest}") from None
            raise
    tr = result.targets[0]
    problem.save(dest, tr.stopped if cfg.early_stop else tr.final)
    report.update(output=str(dest), device=str(dev), precision=cfg.precision,
                  preset=settings["preset"], seed=seed, early_stop=cfg.early_stop)
    _say_restored(report)
    run_log.write("result", **report)
    if json_:
        render.emit_json(report)


def _say_restored(r: dict[str, Any]) -> None:
    line = (f"{r['input']} -> {r['output']}: {r['iterations']} iterations, auto-stop at "
            f"{r['stopped_at']}, {r['seconds']:.1f}s, sparsity {100 * r['sparsity']:.1f}%")
    if r["psnr_final"] is not None:
        line += (f"; {r['metric']} final {render.fmt(r['psnr_final'])} / stopped "
                 f"{render.fmt(r['psnr_stopped'])} / oracle best {render.fmt(r['oracle_best_psnr'])}"
                 f" (iteration {r['oracle_best_iter']})")
    render.err.print(line, markup=False, soft_wrap=True)


def main() -> None:
    app()


from . import cli_prune  # noqa: E402,F401  (registers `lip prune`)
from . import cli_inspect  # noqa: E402,F401  (registers `lip inspect`)
from . import cli_transfer  # noqa: E402,F401  (registers `lip transfer`)
from . import cli_cs, cli_gan  # noqa: E402,F401  (registers `lip cs`, `lip train-generator`)
