"""`lip prune`: parse, then run one of its two workflows and render the per-round table.

`--prior dip` (the default) searches a DIP mask on images (`prune_dip`, here); `--prior gan` prunes a
pretrained generator (`prune_gan.py`). Their flags are grouped into small settings objects on the way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import typer

from .. import api, artifact, device as devices, files
from .. import images as images_io
from ..api import Search
from ..errors import LipError
from ..fit import Step
from ..gan import check_data_name
from ..prune.gan_imp import GanImpSettings
from ..prune.channel_scores import CHANNEL_SCORES
from ..prune.run import every_method, methods
from .render import (RunLog, Terminated, check_stdout_free, emit_json, guarded, progress, say, say_round,
                     say_stopped, set_threads_quietly)
from .options import (Config, Device, InpaintMask, Json, Log, Lr, Precision, RegNoise, Seed, Sgld, Simulate, Task,
                      Threads, generator_spec_option, given_flags, net_option, registry_option, with_task_flags)
from .prune_gan import GanPrune, prune_gan

# What `--prior gan` reads (every other flag is the DIP search's), and what only it reads: a flag given on
# the command line that the chosen prior would ignore is refused, not silently dropped.
GAN_READS = {"images", "prior", "method", "rounds", "rate", "generator", "generator_spec", "data", "epochs", "ratio",
             "fine_tune_random", "out", "resume", "seed", "threads", "json_"}
GAN_ONLY = {"generator", "generator_spec", "data", "epochs", "ratio", "fine_tune_random"}


@dataclass
class Targets:
    """What the DIP search fits: the images, how they were degraded, and optional clean references."""

    images: list[Path]
    task: str
    degradation: dict[str, Any]  # the task flags (sigma, scale, the MRI and CS ones): None = the preset's
    inpaint_mask: Optional[Path]
    simulate: bool
    oracle_target: Optional[list[Path]]  # fit these clean images instead (the paper's protocol)
    clean: Optional[list[Path]]  # for per-round PSNR reports only


@dataclass
class Session:
    """Where the artifact goes, and how the search runs and reports."""

    out: Optional[Path]
    resume: Optional[Path]
    seed: int
    precision: Optional[str]
    threads: Optional[int]
    config: Optional[str]
    json_: bool
    log: Optional[Path]
    slim: bool = False


def artifact_output(resume: Optional[Path], out: Optional[Path], default: Path) -> Path:
    """The artifact a search writes: the one resumed (a regular file: it is read back and continued in place),
    else `out` or `default`, which must be named .safetensors (or be a stream): `-o photo.png` is a slip that
    would write a mask under an image's name."""
    if resume is None:
        artifact.check_output(out or default)
        return out or default
    if files.is_stream(resume):
        raise LipError(f"--resume {resume}: give the artifact file itself, not a device or pipe")
    if out is not None and out.resolve() != resume.resolve():
        raise LipError(f"--resume continues the search in {resume} itself, so -o {out} would be ignored: drop it")
    files.check_writable(resume)
    return resume


def check_prior_flags(ctx: typer.Context, prior: str) -> None:
    """Refuse the flags given on the command line that `prior`'s workflow does not read."""
    ignored = {p.name for p in ctx.command.params} - GAN_READS if prior == "gan" else GAN_ONLY
    given = given_flags(ctx, ignored)
    if not given:
        return
    flags, them = ", ".join(given), "it" if len(given) == 1 else "them"
    if prior == "gan":
        raise LipError(f"--prior gan prunes a pretrained generator and does not read {flags} (the DIP search's): "
                       f"drop {them}")
    raise LipError(f"{flags}: only --prior gan (pruning a generator) reads {them}; the DIP search would not")


# Search flags only some methods read: given with another method they would be dropped in silence.
@guarded
@with_task_flags(after="simulate")
def prune_cmd(
    ctx: typer.Context,
    images: Optional[list[Path]] = typer.Argument(None, help="Degraded image(s) to search on (clean ones "
                                                  "with --simulate); none with --prior gan"),
    task: Task = "denoise", inpaint_mask: InpaintMask = None, simulate: Simulate = False,
    method: Annotated[str, registry_option(
        every_method, "--method", kind="--method", rich_help_panel="Search",
        help=f"{{names}} (at --granularity channel: {' | '.join(methods('channel'))})")] = "imp",
    granularity: str = typer.Option("element", help="element: prune single weights | channel: prune whole "
                                    "conv filters (--rate of the remaining channels per round; never the head, "
                                    "at least one per conv), so the ticket compacts (restore --compact)",
                                    rich_help_panel="Search"),
    channel_score: Optional[str] = typer.Option(None, help=f"Channel IMP: rank filters after each round by "
                                                f"{' | '.join(CHANNEL_SCORES.names())} (l1: |w| per filter "
                                                "over sqrt(fan-in); bn: |BatchNorm gamma|) [l1]",
                                                rich_help_panel="Search"),
    rounds: Optional[int] = typer.Option(None, help="Pruning rounds [16 paper, 4 fast; 6 with --prior gan]",
                                         min=1, max=255,
                                         rich_help_panel="Search"),
    target_sparsity: Optional[float] = typer.Option(None, help="Prune until this sparsity (sets the rounds; "
                                                    "at --granularity channel, the fraction of channels removed, "
                                                    "which prunes a little fewer weights; --method oes learns one "
                                                    "mask at it, by default the ladder's last: 1 - (1 - rate)^rounds) "
                                                    "[0.95 under --config oes]",
                                                    rich_help_panel="Search"),
    rate: Optional[float] = typer.Option(None, help="Fraction of the remaining weights pruned per round "
                                         "[0.2 paper, 0.36 fast; 0.2 with --prior gan]",
                                         rich_help_panel="Search"),
    rewind: float = typer.Option(0.0, help="Rewind to the weights after this fraction of the first "
                                 "round (0 = to the init, LIP's default)", rich_help_panel="Search"),
    scope: Optional[str] = typer.Option(None, help="conv: conv weights (IMP) | all: every parameter (OES) "
                                        "[conv; all under --config oes]", rich_help_panel="Search"),
    keep_input_dense: bool = typer.Option(False, help="Leave the two z-facing convs unmasked (the published "
                                          "LIP code's choice; sparsity is counted over what is masked)",
                                          rich_help_panel="Search"),
    fresh_input: Optional[bool] = typer.Option(None, "--fresh-input/--no-fresh-input",
                                               help="Draw a new input code z every IMP round, as the published "
                                               "code does [on under --config paper, off under fast]",
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
                                               "changes by less than this fraction between checks (0 = off); the "
                                               "last round trains as long as the one before it [preset]",
                                               min=0.0, max=1.0, rich_help_panel="Search"),
    early_bird_every: int = typer.Option(50, help="IMP: iterations between early-bird checks", min=1,
                                         rich_help_panel="Search"),
    like: Optional[Path] = typer.Option(None, help="random-layerwise: copy this mask's per-layer ratios",
                                        rich_help_panel="Search"),
    synflow_iters: int = typer.Option(100, help="SynFlow re-scorings per round", min=1, rich_help_panel="Search"),
    oes_lambda: float = typer.Option(1e-9, help="OES KL weight", rich_help_panel="Search"),
    oes_tau: float = typer.Option(0.2, help="OES Gumbel-softmax temperature", rich_help_panel="Search"),
    net: net_option("Search") = None,
    prior: str = typer.Option("dip", help="dip: prune an untrained DIP on images | gan: prune a "
                              "pretrained generator on the CPU (--generator, --data; the DIP search's flags "
                              "are refused)", rich_help_panel="GAN"),
    generator: Optional[Path] = typer.Option(None, help="Generator artifact for --prior gan, or an external "
                                             "state dict with --generator-spec [the bundled MNIST generator]",
                                             rich_help_panel="GAN"),
    generator_spec: generator_spec_option("GAN") = None,
    data: str = typer.Option("mnist", help="Fine-tuning data for --prior gan: mnist or a folder of images",
                             rich_help_panel="GAN"),
    epochs: int = typer.Option(2, help="Fine-tuning epochs per round (--prior gan)", min=1, rich_help_panel="GAN"),
    ratio: float = typer.Option(0.4, help="Fraction of the data each round fine-tunes on, a new seeded draw "
                                "every round (--prior gan; LIP's code takes the same first 40% every round)",
                                rich_help_panel="GAN"),
    fine_tune_random: bool = typer.Option(False, help="--prior gan --method random: fine-tune every round as IMP "
                                          "does, as LIP's code does for its random rows (a random mask needs no "
                                          "training to choose: off, its rounds are the rewound generator)",
                                          rich_help_panel="GAN"),
    iters: Optional[int] = typer.Option(None, help="Adam iterations per IMP round (upper bound with "
                                        "--early-bird), or of the OES run [preset: 3000 paper (2000 sr, 1500 cs), "
                                        "1200 fast (1500 inpaint, mri and cs), 60000 oes, 1900 deep-decoder]",
                                        min=1, rich_help_panel="Fitting"),
    lr: Lr = None, reg_noise: RegNoise = None, sgld: Sgld = None,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Artifact to write [FIRST_METHOD.safetensors]"),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted search stored in this artifact"),
    slim: bool = typer.Option(False, help="Write the slim encoding: one round byte per filter where whole "
                              "filters go, theta0 regenerated from the seed (hash-checked); KBs for a channel "
                              "ticket; older lips refuse it, and a torch that initialises differently is refused"),
    device: Device = "auto", seed: Seed = 0, precision: Precision = None,
    threads: Threads = None,
    config_: Config = None,
    json_: Json = False,
    log: Log = None,
    task_flags: dict[str, Any] = None,  # type: ignore[assignment]  # filled by with_task_flags
) -> None:
    """Find a lottery image prior: a sparse mask (and its initial weights) for a DIP or a generator."""
    if prior not in ("dip", "gan"):
        raise LipError(f"unknown --prior {prior!r}: use dip or gan")
    check_prior_flags(ctx, prior)
    check_stdout_free(out, json_, log)
    if prior == "gan":
        if images:
            raise LipError("--prior gan fine-tunes the generator on --data, not on images: drop the image arguments")
        note = check_data_name(data, bool(given_flags(ctx, {"data"})))
        if note:
            say(note)
        given = {k: v for k, v in dict(rounds=rounds, rate=rate).items() if v is not None}  # else GanImpSettings'
        return prune_gan(GanPrune(generator, generator_spec, data, GanImpSettings(
            **given, epochs=epochs, ratio=ratio, method=method, seed=seed, fine_tune_random=fine_tune_random),
            artifact_output(resume, out, Path(f"generator_{method}.safetensors")), resume is not None, threads,
            json_))
    dev = devices.resolve(device)
    if not images:
        raise LipError("give at least one image to search on (or --prior gan)")
    prune_dip(Targets(images, task, task_flags, inpaint_mask, simulate, oracle_target, clean),
              Search(method, granularity, channel_score, rounds, target_sparsity, rate, rewind, scope,
                     keep_input_dense, fresh_input, shared_input, stop_when_loss_rises, early_bird,
                     early_bird_every, like, synflow_iters, oes_lambda, oes_tau, net, iters, lr, reg_noise, sgld),
              Session(out, resume, seed, precision, threads, config_, json_, log, slim), dev)


def prune_dip(t: Targets, s: Search, run: Session, dev: torch.device) -> None:
    """Search a DIP mask on the images (IMP, OES or a one-shot score), writing the artifact every round."""
    say_threads = set_threads_quietly(run.threads)
    job = api.pruner(t.images, task=t.task, simulate=t.simulate, clean=t.clean, oracle_target=t.oracle_target,
                     inpaint_mask=t.inpaint_mask, **t.degradation, precision=run.precision, config=run.config,
                     device=dev, seed=run.seed, **asdict(s))
    first = t.images[0]
    out_path = artifact_output(run.resume, run.out, images_io.beside(first, f"_{s.method}.safetensors"))
    say_threads()

    def on_start() -> None:  # the search has checked everything: warn, then say what runs
        if job.warning:
            say(f"lip: warning: {job.warning}")
        rounds = "one mask" if s.method == "oes" else f"{job.request.rounds} rounds"  # OES learns one
        say(f"lip prune: {s.method} on {', '.join(p.name for p in t.images)} ({t.task}), {rounds}, writing {out_path}")

    run_log = RunLog(run.log)
    try:
        with progress(job.steps, f"{s.method}") as advance, files.checkpointed(out_path) as checkpoint:
            def on_step(step: Step) -> None:
                advance(1, f"loss {step.loss:.5f}")
                run_log.write("step", iteration=step.iteration, loss=step.loss)

            def on_round(rec: dict[str, Any]) -> None:
                if s.method not in ("imp", "oes"):
                    advance(1)
                say_round(rec, run.json_)
                run_log.write("round", **rec)

            art = job.run(checkpoint, run.resume is not None, on_start, on_step, on_round, run.slim)
        result = {"out": str(out_path), "method": s.method, "rounds": art.meta["rounds"],
                  "recommended_round": art.recommended_round}
        run_log.write("result", **result)
    except (KeyboardInterrupt, Terminated):
        say_stopped(out_path)
        raise
    finally:
        run_log.close()
    say(f"wrote {out_path}: {art.rounds} rounds, recommended round {art.recommended_round} "
               f"(sparsity {100 * art.sparsity(art.recommended_round):.2f}%)")
    if run.json_:
        emit_json({"type": "result", **result})
