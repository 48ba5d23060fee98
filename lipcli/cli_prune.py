"""`lip prune`: parse, call prune.run.search, render the per-round table."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer

from . import device as devices, files, render
from .cli import (CONFIG, DEVICE, INPAINT_MASK, JSON, KEEP, LOG, LR, MAX_PIXELS, PRECISION, REG_NOISE,
                  SCALE, SEED, SIGMA, SIMULATE, TASK, THREADS, app, fit_config, resolve_settings)
from .errors import LipError
from .fit import Step
from .problem import load_problem, provenance
from .prune.imp import ImpSettings
from .prune.run import SearchRequest, methods, rounds_for, search


def _round_line(rec: dict[str, Any]) -> str:
    loss = "-" if rec.get("loss") is None else f"{rec['loss']:.6f}"
    psnr = f"  psnr(clean, report only) {rec['psnr_final']:.2f}" if rec.get("psnr_final") is not None else ""
    return (f"round {rec['round']:>2}  sparsity {100 * rec['sparsity']:6.2f}%  kept {rec['kept']:>9}  "
            f"loss {loss}{psnr}  {rec['seconds']:.1f}s")


@app.command("prune")
@render.guarded
def prune_cmd(
    images: Optional[list[Path]] = typer.Argument(None, help="Degraded image(s) to search on (clean ones "
                                                  "with --simulate); none with --prior gan"),
    task: str = TASK, sigma: Optional[float] = SIGMA, inpaint_mask: Optional[Path] = INPAINT_MASK,
    keep: Optional[float] = KEEP, scale: Optional[int] = SCALE, simulate: bool = SIMULATE,
    method: str = typer.Option("imp", help=" | ".join(methods()), rich_help_panel="Search"),
    rounds: Optional[int] = typer.Option(None, help="Pruning rounds [16 paper, 4 fast]", min=1, max=255,
                                         rich_help_panel="Search"),
    target_sparsity: Optional[float] = typer.Option(None, help="Prune until this sparsity (sets the rounds)",
                                                    rich_help_panel="Search"),
    rate: Optional[float] = typer.Option(None, help="Fraction of the remaining weights pruned per round "
                                         "[0.2 paper, 0.36 fast]",
                                         rich_help_panel="Search"),
    rewind: float = typer.Option(0.0, help="Rewind to the weights after this fraction of the first "
                                 "round (0 = to the init, LIP's default)", rich_help_panel="Search"),
    scope: str = typer.Option("conv", help="conv: conv weights (IMP) | all: every parameter (OES)",
                              rich_help_panel="Search"),
    keep_input_dense: bool = typer.Option(False, help="Leave the two z-facing convs unmasked (the published "
                                          "LIP code's choice; sparsity is counted over what is masked)",
                                          rich_help_panel="Search"),
    fresh_input: bool = typer.Option(False, help="Draw a new input code z every round (published code)",
                                     rich_help_panel="Search"),
    shared_input: bool = typer.Option(False, help="Several images: one z and one output for all "
                                      "(Algorithm 2 as published); default: one z per image",
                                      rich_help_panel="Search"),
    stop_when_loss_rises: Optional[int] = typer.Option(None, help="End the search when the IMP loss has "
                                                       "risen N rounds in a row (the recommendation uses "
                                                       "N=2 otherwise)", min=1, rich_help_panel="Search"),
    oracle_target: Optional[list[Path]] = typer.Option(None, help="Fit these CLEAN images instead (the "
                                                       "paper's protocol; recorded as oracle)",
                                                       rich_help_panel="Search"),
    clean: Optional[list[Path]] = typer.Option(None, help="Clean references, for per-round PSNR reports only",
                                               rich_help_panel="Search"),
    early_bird: Optional[float] = typer.Option(None, help="IMP: end a round once the mask it would prune "
                                               "changes by less than this fraction between checks (0 = off) "
                                               "[preset]", min=0.0, max=1.0, rich_help_panel="Search"),
    early_bird_every: int = typer.Option(50, help="IMP: iterations between early-bird checks", min=1,
                                         rich_help_panel="Search"),
    like: Optional[Path] = typer.Option(None, help="random-layerwise: copy this mask's per-layer ratios",
                                        rich_help_panel="Search"),
    synflow_iters: int = typer.Option(100, help="SynFlow re-scorings per round", min=1, rich_help_panel="Search"),
    oes_lambda: float = typer.Option(1e-9, help="OES KL weight", rich_help_panel="Search"),
    oes_tau: float = typer.Option(0.2, help="OES Gumbel-softmax temperature", rich_help_panel="Search"),
    net: Optional[str] = typer.Option(None, help="Net preset: dip | dip-inpaint | oes [dip]",
                                      rich_help_panel="Search"),
    prior: str = typer.Option("dip", help="dip: prune an untrained DIP on images | gan: prune a "
                              "pretrained generator (--generator, --data)", rich_help_panel="GAN"),
    generator: Optional[Path] = typer.Option(None, help="Generator artifact for --prior gan "
                                             "[the bundled MNIST generator]", rich_help_panel="GAN"),
    data: str = typer.Option("mnist", help="Fine-tuning data for --prior gan: mnist or a folder of images",
                             rich_help_panel="GAN"),
    epochs: int = typer.Option(2, help="Fine-tuning epochs per round (--prior gan)", min=1, rich_help_panel="GAN"),
    ratio: float = typer.Option(0.4, help="Fraction of the data used per round (--prior gan)",
                                rich_help_panel="GAN"),
    iters: Optional[int] = typer.Option(None, help="Adam iterations per IMP round (upper bound with "
                                        "--early-bird), or of the OES run [preset: 3000 paper, 1200 fast]",
                                        min=1, rich_help_panel="Fitting"),
    lr: Optional[float] = LR, reg_noise: Optional[float] = REG_NOISE,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Artifact to write [FIRST_METHOD.safetensors]"),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted search stored in this artifact"),
    device: str = DEVICE, seed: int = SEED, precision: Optional[str] = PRECISION,
    threads: Optional[int] = THREADS,
    config_: Optional[str] = typer.Option(None, "--config", help=CONFIG.help, rich_help_panel="Run"),
    json_: bool = typer.Option(False, "--json", help=JSON.help, rich_help_panel="Run"),
    log: Optional[Path] = LOG,
) -> None:
    """Find a lottery image prior: a sparse mask (and its initial weights) for a DIP or a generator."""
    dev = devices.resolve(device)
    if prior == "gan":
        return _prune_gan(generator, data, method, rounds or 6, rate or 0.2, epochs, ratio, seed, out,
                          resume, json_)
    if prior != "dip":
        raise LipError(f"unknown --prior {prior!r}: use dip or gan")
    if not images:
        raise LipError("give at least one image to search on (or --prior gan)")
    n_threads = devices.set_threads(threads, render.say)
    settings = resolve_settings(task, config_, dev, dict(
        sigma=sigma, keep=keep, scale=scale, search_iters=iters, lr=lr, reg_noise=reg_noise,
        precision=precision, net=net, rounds=rounds, rate=rate, early_bird=early_bird))
    cfg = replace(fit_config(settings, False, dev, seed), iters=int(settings["search_iters"]))
    rate_ = float(settings["rate"])
    if not 0 < rate_ < 1:
        raise LipError(f"--rate {rate_} must be in (0, 1)")
    if target_sparsity is not None and not 0 < target_sparsity < 1:
        raise LipError(f"--target-sparsity {target_sparsity} must be in (0, 1)")
    if not 0 <= rewind < 1:
        raise LipError(f"--rewind {rewind} must be in [0, 1)")
    if method not in methods():
        raise LipError(f"unknown --method {method!r}: use one of {', '.join(methods())}")
    n_rounds = rounds_for(target_sparsity, rate_) if target_sparsity is not None and method != "oes" \
        else int(settings["rounds"])
    if n_rounds > 255:
        raise LipError(f"{n_rounds} rounds needed; at most 255 are supported (lower --target-sparsity)")
    refs = oracle_target or clean or []
    if refs and len(refs) != len(images):
        raise LipError(f"give one {'--oracle-target' if oracle_target else '--clean'} per image "
                       f"({len(images)} images, {len(refs)} references)")
    if oracle_target and clean:
        raise LipError("--oracle-target and --clean exclude each other")
    if oracle_target and simulate:
        raise LipError("--oracle-target and --simulate exclude each other: with --simulate the input is "
                       "already the clean image")
    out_path = _output(resume, out or images[0].with_name(f"{images[0].stem}_{method}.safetensors"))
    problems = [load_problem(p, task, settings, simulate=simulate, seed=seed, inpaint_mask=inpaint_mask,
                             clean=refs[i] if refs else None, max_pixels=MAX_PIXELS)
                for i, p in enumerate(images)]
    if shared_input and len({p.size for p in problems}) > 1:
        raise LipError("--shared-input needs images of one size (or drop it: each image then gets its own z)")
    req = SearchRequest(
        method=method, task=task, net=settings["net"], rounds=n_rounds, rate=rate_, scope=scope,
        keep_input_dense=keep_input_dense, fit=cfg, seed=seed, synflow_iters=synflow_iters,
        oes_lambda=oes_lambda, oes_tau=oes_tau, target_sparsity=target_sparsity,
        like=str(like) if like else None,
        imp=ImpSettings(rounds=n_rounds, rate=rate_, rewind=rewind, fresh_input=fresh_input,
                        shared_input=shared_input, rises=stop_when_loss_rises or 2,
                        stop_on_rises=stop_when_loss_rises is not None, oracle=bool(oracle_target),
                        early_bird=float(settings["early_bird"]), early_bird_every=early_bird_every),
        extra={"threads": n_threads, "preset": settings["preset"], "device": dev.type})
    total = (n_rounds + 1) * cfg.iters if method == "imp" else cfg.iters if method == "oes" else n_rounds
    def on_start() -> None:
        render.err.print(f"lip prune: {method} on {', '.join(p.name for p in images)} ({task}), "
                         f"{n_rounds} rounds, writing {out_path}", markup=False, soft_wrap=True)

    run_log = render.RunLog(log)
    try:
        with render.progress(total, f"{method}") as advance, files.checkpointed(out_path) as checkpoint:
            def on_step(step: Step) -> None:
                advance(1, f"loss {step.loss:.5f}")
                run_log.write("step", iteration=step.iteration, loss=step.loss)

            def on_round(rec: dict[str, Any]) -> None:
                if method not in ("imp", "oes"):
                    advance(1)
                render.err.print(_round_line(rec), markup=False)
                run_log.write("round", **rec)
                if json_:
                    render.emit_json({"type": "round", **rec})

            art = search(req, problems, provenance(problems), dev, checkpoint, resume is not None, on_start,
                         on_step, on_round)
    except (KeyboardInterrupt, render.Terminated):
        _say_stopped(out_path)
        raise
    finally:
        run_log.close()
    render.err.print(f"wrote {out_path}: {art.rounds} rounds, recommended round {art.recommended_round} "
                     f"(sparsity {100 * art.sparsity(art.recommended_round):.2f}%)", markup=False, soft_wrap=True)
    if json_:
        render.emit_json({"type": "result", "out": str(out_path), "method": method,
                          "rounds": art.meta["rounds"], "recommended_round": art.recommended_round})


def _prune_gan(generator: Optional[Path], data: str, method: str, rounds: int, rate: float, epochs: int,
               ratio: float, seed: int, out: Optional[Path], resume: Optional[Path], json_: bool) -> None:
    """GAN IMP (LIP Section 5): fine-tune G with D per round, prune G's convs, rewind to pretrained."""
    import sys

    from . import artifact, gan
    from .prune import gan_imp
    from .prune.search import Trajectory

    gen_path = generator or gan.GENERATOR
    out_path = _output(resume, out or Path(f"generator_{method}.safetensors"))
    settings = gan_imp.GanImpSettings(rounds=rounds, rate=rate, epochs=epochs, ratio=ratio, method=method,
                                      seed=seed)
    traj = (Trajectory.resume(artifact.load(out_path)) if resume
            else gan_imp.start(gen_path, settings, " ".join(["lip", *sys.argv[1:]])))
    train_data = gan.load_data(data, traj.spec)

    def on_round(rec: dict[str, Any]) -> None:
        render.err.print(_round_line(rec), markup=False)
        if json_:
            render.emit_json({"type": "round", **rec})

    try:
        with files.checkpointed(out_path) as checkpoint:
            art = gan_imp.run(traj, train_data, settings, checkpoint, on_round)
    except (KeyboardInterrupt, render.Terminated):
        _say_stopped(out_path)
        raise
    render.err.print(f"wrote {out_path}: {art.rounds} rounds of {method} on the generator", markup=False)
    if json_:
        render.emit_json({"type": "result", "out": str(out_path), "rounds": art.meta["rounds"]})


def _output(resume: Optional[Path], out: Path) -> Path:
    """The artifact to write: the one resumed (a regular file: it is read back), else `out`."""
    if resume is not None and files.is_stream(resume):
        raise LipError(f"--resume {resume}: give the artifact file itself, not a device or pipe")
    path = resume or out
    files.check_writable(path)
    return path


def _say_stopped(out_path: Path) -> None:
    """After Ctrl-C: where the finished rounds are (a stream target kept none: it gets only whole files)."""
    if files.is_stream(out_path):
        render.say(f"lip: stopped; nothing was written to {out_path} (it receives only the finished artifact)")
    elif out_path.exists():
        render.say(f"lip: stopped; finished rounds are kept in {out_path}. Continue with the same command "
                   f"plus --resume {out_path}")
