"""The options several commands share, declared once as `Annotated` aliases: `task: Task = "denoise"`.

The default stays in each command's signature (commands differ there); the flag name, help text and
help panel are written here only. `RegistryChoice` turns a registry into an option's choices. A task's own
flags (--sigma, --scale, the MRI and CS ones) are declared by the task (physics/task.py `Flag`) and added to a
command by `with_task_flags`.
"""
from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperCommand
from typer.models import OptionInfo

from .. import seeds
from ..config import PRESETS
from ..nets import image_presets
from ..physics import TASKS, Flag, task_flags
from ..registry import Registry


ARGS = "lip_args"  # ctx.meta key of a KeepArgs command's own arguments


class KeepArgs(TyperCommand):
    """Keeps the command's own arguments in `ctx.meta[ARGS]`: `transfer --device A,B` and `restore --jobs N`
    start their worker processes with the user's command line."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGS] = list(args)
        return super().parse_args(ctx, args)


class RegistryChoice:
    """Parses an option whose values are a registry's names, reading the names when used, not at import.

    An entry registered after import (a plug-in, a test) is accepted and listed in `--help` like the
    built-in ones; an unknown name is a one-line usage error (exit 2) that lists the choices.
    `choices` is a `Registry` or a function returning the names (a subset of a registry, e.g. the
    net presets that restore images); `kind` names them in the error.
    """

    def __init__(self, choices: Registry[Any] | Callable[[], list[str]], kind: str | None = None) -> None:
        self.choices = choices.names if isinstance(choices, Registry) else choices
        self.kind = kind or (choices.kind if isinstance(choices, Registry) else "value")

    def __call__(self, value: str) -> str:
        if value not in self.choices():
            raise typer.BadParameter(f"unknown {self.kind} {value!r}: use one of {self.names(', ')}")
        return value

    def names(self, sep: str) -> str:
        return sep.join(self.choices())

    @property
    def metavar(self) -> str:
        return f"<{self.names('|')}>"


class _ListingOption(OptionInfo):
    """An option whose help lists names read each time the command is built (typer builds it on every
    run, so `--help` shows the names registered by then); `{names}` in the template becomes the list."""

    def __init__(self, names: Callable[[], str], help: str, **kwargs: Any) -> None:
        self._names, self._help = names, help
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def help(self) -> str:
        return self._help.format(names=self._names())

    @help.setter
    def help(self, value: Any) -> None:  # set by OptionInfo.__init__; the template wins
        pass


class _ChoiceOption(_ListingOption):
    """A `_ListingOption` whose value must be one of the names: parsed and shown as a choice."""

    def __init__(self, choice: RegistryChoice, help: str, **kwargs: Any) -> None:
        self._choice = choice
        super().__init__(lambda: choice.names(" | "), help, parser=choice, **kwargs)

    @property  # type: ignore[override]
    def metavar(self) -> str:
        return self._choice.metavar

    @metavar.setter
    def metavar(self, value: Any) -> None:
        pass


def given_flags(ctx: typer.Context, names: set[str] | frozenset[str]) -> list[str]:
    """The flags among the parameters `names` that the command line gave (not defaults): what a workflow
    that does not read them must refuse rather than ignore."""
    # the source by its name: typer vendors click, so its ParameterSource is not click's class
    return [p.opts[0] for p in ctx.command.params
            if p.name in names and getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]


def registry_option(choices: Registry[Any] | Callable[[], list[str]], *param_decls: str, help: str = "{names}",
                    kind: str | None = None, **kwargs: Any) -> Any:
    """`typer.Option` choosing among `choices`' names; `{names}` in `help` becomes "a | b | c"."""
    return _ChoiceOption(RegistryChoice(choices, kind), help, default=..., param_decls=param_decls, **kwargs)


def listing_option(names: Callable[[], list[str]], *param_decls: str, help: str, **kwargs: Any) -> Any:
    """`typer.Option` (any value, e.g. a comma list) whose help names the current choices: "a, b, c"."""
    return _ListingOption(lambda: ", ".join(names()), help, default=..., param_decls=param_decls, **kwargs)


def described_option(describe: Callable[[], str], *param_decls: str, **kwargs: Any) -> Any:
    """`typer.Option` whose whole help text is written by `describe` when the command is built."""
    return _ListingOption(describe, "{names}", default=..., param_decls=param_decls, **kwargs)


def json_flag(help: str = "Print one JSON object per result on stdout", panel: Optional[str] = "Run") -> Any:
    """`--json`: every command has it; what one JSON object stands for differs, so the help does."""
    return Annotated[bool, typer.Option("--json", help=help, rich_help_panel=panel)]


def net_option(panel: str) -> Any:
    """`--net`: the presets a DIP restore can fit; commands show it in different help panels."""
    return Annotated[Optional[str], registry_option(image_presets, "--net", help="Net preset: {names} [dip]",
                                                    kind="net preset", rich_help_panel=panel)]


TASK_FLAGS = "task_flags"  # the parameter a `with_task_flags` command receives the task flags' values in


def _task_flag_option(name: str, flag: Flag) -> Any:
    """The typer option of a task's `Flag`, in the Task help panel; default None (the preset's)."""
    decls = (f"--{name.replace('_', '-')}",) + ((flag.short,) if flag.short else ())
    limits = {} if flag.min is None else {"min": flag.min}
    option = (described_option(flag.help, *decls, rich_help_panel="Task", **limits) if callable(flag.help)
              else typer.Option(*decls, help=flag.help, rich_help_panel="Task", **limits))
    return Annotated[Optional[flag.type], option]  # type: ignore[name-defined]


def with_task_flags(after: str, flags: Callable[[], dict[str, Flag]] = task_flags
                    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the registered tasks' `flags` (physics/task.py `Flag`; every one by default) as options
    right after its parameter `after`, and hand it their values as one dict in its `task_flags` parameter. A new
    task's flags thus reach restore, prune and transfer with no edit to them or to this file."""
    return functools.partial(_WithTaskFlags, after=after, flags=flags)


class _WithTaskFlags:
    """A command whose signature, as typer reads it each time it builds the CLI, holds the task flags registered
    by then (a task registered after import, e.g. a plug-in, included)."""

    def __init__(self, command: Callable[..., Any], after: str, flags: Callable[[], dict[str, Flag]]) -> None:
        functools.update_wrapper(self, command)
        self.command, self.after, self.flags = command, after, flags

    @property
    def __signature__(self) -> inspect.Signature:
        sig = inspect.signature(self.command, eval_str=True)  # typer reads the Annotated options off it
        own = [p for p in sig.parameters.values() if p.name != TASK_FLAGS]
        flags = self.flags()
        clash = set(flags) & {p.name for p in own}
        if clash:
            raise TypeError(f"{self.command.__name__} declares task flags itself: {', '.join(sorted(clash))}")
        added = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                   annotation=_task_flag_option(name, flag)) for name, flag in flags.items()]
        at = [p.name for p in own].index(self.after) + 1
        return sig.replace(parameters=own[:at] + added + own[at:])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in self.flags()}
        return self.command(*args, **kwargs, **{TASK_FLAGS: given})


def generator_spec_option(panel: str) -> Any:
    """`--generator-spec`: the architecture of an external `--generator` state dict (docs/generators.md)."""
    return Annotated[Optional[Path], typer.Option(help="Spec (YAML/JSON) of an external --generator: a "
                                                  "safetensors state dict under lip's names (docs/generators.md)",
                                                  rich_help_panel=panel)]


# Task: what degraded the image.
Task = Annotated[str, registry_option(TASKS, rich_help_panel="Task")]
InpaintMask = Annotated[Optional[Path], typer.Option(help="Inpainting mask: an image, white = observed, black = "
                                                     "missing (or 0/1), or a 0/1 .npy array", rich_help_panel="Task")]
Simulate = Annotated[bool, typer.Option(help="The input is CLEAN: degrade it (seeded) and score against it",
                                        rich_help_panel="Task")]

# Fitting: the DIP loop (defaults come from the preset).
Iters = Annotated[Optional[int], typer.Option(help="Adam iterations (upper bound when early stopping) [preset]",
                                              min=1, rich_help_panel="Fitting")]
Lr = Annotated[Optional[float], typer.Option(help="Adam learning rate [0.01]", rich_help_panel="Fitting")]
RegNoise = Annotated[Optional[float], typer.Option(help="Std of the input-code jitter [1/30 denoise and cs, 0.03 "
                                                   "other tasks; 0 under --config oes and deep-decoder; the "
                                                   "default denoising ticket: 1/30 up to an estimated sigma of 25, "
                                                   "rising to 0.05 at 50]",
                                                   rich_help_panel="Fitting")]
RegNoiseEvery = Annotated[Optional[int], typer.Option(help="Decay the input-code jitter as the deep decoder's code "
                                                        "does: its std x 0.7 at iteration 0 and every N iterations "
                                                        "after (their inpainting demo: --reg-noise 0.005 "
                                                        "--reg-noise-every 500) [0 = constant]", min=0,
                                                        rich_help_panel="Fitting")]
Ema = Annotated[Optional[float], typer.Option(help="Output moving average (0 = off) [0.99 denoise, and inpaint/sr "
                                              "under fast; 0 other tasks and under --config oes and deep-decoder]",
                                              rich_help_panel="Fitting")]
Sgld = Annotated[Optional[float], typer.Option(help="SGLD-DIP (Cheng et al. 2019): after every Adam step add "
                                               "Gaussian noise of std SGLD x lr to the conv kernels (pruned weights "
                                               "stay 0); GP-DIP used 2, OES 0.5 [0 = off]",
                                               rich_help_panel="Fitting")]
WeightDecay = Annotated[Optional[float], typer.Option(help="Decoupled weight decay (AdamW's) of the conv kernels: "
                                                      "after every Adam step each kernel shrinks by lr x this, "
                                                      "so the fit does not slow down as its kernels grow [0; the "
                                                      "default denoising ticket: 0.1 where the estimated sigma is "
                                                      "above 12.5 and up to 20, 0.2 above 20 and up to 37.5; "
                                                      "inpainting under the fast preset: 0.2]", min=0,
                                                      rich_help_panel="Fitting")]
EarlyStop = Annotated[Optional[bool], typer.Option(help="Stop automatically when the output stops improving "
                                                   "(never reads the clean image; off, the fit runs to --iters and "
                                                   "the rule's pick, which the --es-* flags set, is still reported: "
                                                   "stopped_at, psnr_stopped) [on; off for inpainting under "
                                                   "the fast preset and under --config oes and deep-decoder]",
                                                   show_default=False,
                                                   rich_help_panel="Fitting")]
DataConsistency = Annotated[Optional[bool], typer.Option(
    "--data-consistency/--no-data-consistency", help="Return the net's output with what the observation "
    "holds exactly put back: inpainting's observed pixels, MRI's sampled k-space (the fit is unchanged) "
    "[on for inpainting under the fast preset; off for MRI (it trades SSIM for PSNR) and under --config paper, "
    "which scores the net's output as the papers do]", show_default=False, rich_help_panel="Fitting")]
EsWindow = Annotated[Optional[int], typer.Option(help="Early-stop variance window [200; the default denoising "
                                                      "ticket: 400 where the estimated sigma is above 37.5]", min=2,
                                                 rich_help_panel="Fitting")]
EsPatience = Annotated[Optional[int], typer.Option(help="Early-stop patience in iterations [1000 paper, 150 "
                                                   "fast for denoising, 300 fast for the other tasks]", min=1,
                                                   rich_help_panel="Fitting")]
EsGate = Annotated[Optional[float], typer.Option(help="Denoising (a task with a noise level): a variance minimum "
                                                 "counts only once the loss "
                                                 "is under this x the estimated noise variance (0 = off) [1.05; "
                                                 "the default denoising ticket: 1.2 where the estimated sigma is "
                                                 "above 52.5]",
                                                 min=0, rich_help_panel="Fitting")]
EsWhite = Annotated[Optional[float], typer.Option(help="A variance minimum counts only once the residual's "
                                                  "(observation - degraded output) lag-1 autocorrelation is under "
                                                  "this (0 = off) [0; "
                                                  "the default denoising ticket: 0.02 where the estimated sigma "
                                                  "is 20 or below, 0.01 above 37.5, 0.005 above 52.5]",
                                                  min=0, max=0.999,
                                                  rich_help_panel="Fitting")]
EsClose = Annotated[Optional[float], typer.Option(help="A variance minimum no longer counts once one has "
                                                  "counted and that autocorrelation has come down to this: the "
                                                  "net has begun to draw the noise (0 = off) [0; the default "
                                                  "denoising ticket: 0.015 where the estimated sigma is above "
                                                  "37.5]",
                                                  min=0, max=0.999, rich_help_panel="Fitting")]
EsSpike = Annotated[Optional[float], typer.Option(help="Report the output at the variance minimum instead of "
                                                  "the one a lag after it when the loss in between rises above "
                                                  "this x its mean at the minimum (0 = off) [0; the default "
                                                  "denoising ticket: 1.2]",
                                                  min=0, rich_help_panel="Fitting")]
JumpFactor = Annotated[Optional[float], typer.Option(help="Roll the fit back to its last snapshot (every 10 "
                                                     "iterations) when the loss jumps above this x the snapshot's "
                                                     "loss; each rollback that repeats one before the next "
                                                     "snapshot halves the step size, which stays so until the "
                                                     "first rollback after a snapshot sets it back to --lr (DIP "
                                                     "only rolls back; --json: recoveries) [3.16: DIP's 5 dB]",
                                                     rich_help_panel="Fitting")]

# Run: where and how reproducibly.
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps"
Device = Annotated[str, typer.Option(help=DEVICE_HELP, envvar="LIP_DEVICE", rich_help_panel="Run")]
MaskRound = Annotated[Optional[int], typer.Option("--round", help="Round of the mask trajectory [the artifact's "
                                                  "recommended round]", rich_help_panel="Prior")]
MaskSparsity = Annotated[Optional[float], typer.Option(help="Pick the round closest to this sparsity",
                                                       rich_help_panel="Prior")]
Seed = Annotated[int, typer.Option(help="Seed for weights, input code and simulated degradations",
                                   min=0, max=seeds.MAX, rich_help_panel="Run")]  # a CPU generator reads 32 bits
Precision = Annotated[Optional[str], typer.Option(
    help="fp32 | bf16 | auto. auto (the fast preset) = bf16 autocast + channels_last on CPUs with "
         "AVX512-BF16/AMX and on GPUs with bf16 hardware (Ampere and later), else fp32. fp32 on a GPU leaves "
         "cuDNN as PyTorch sets it (TF32 convolutions on Ampere and later)", rich_help_panel="Run")]
Threads = Annotated[Optional[str], typer.Option(
    help="CPU threads, or auto: the cores other work leaves free. Default: every usable core (affinity, cgroup "
         "quota, OMP_NUM_THREADS and SLURM_CPUS_PER_TASK respected; a busy machine is reported), shared with other "
         "lip fits while they run (unless a count is given). Results are bit-reproducible at a fixed count "
         "(on a CPU)",
    rich_help_panel="Run")]
Jobs = Annotated[str, typer.Option(
    help="Inputs restored at once, each job a worker process with its share of the cores (or --threads each). "
         "auto: on a CPU as many as the cores allow at one thread each (1.2-2x the images per hour of one job "
         "on all cores), at most one per input and as many as the free memory holds; one on a GPU. 1: one after "
         "the other. One input with --ensemble N: its members are fitted at once instead (CPU only)",
    rich_help_panel="Run")]
Config = Annotated[Optional[str], typer.Option("--config", help=f"Preset ({' | '.join(PRESETS)}: oes and "
                                               "deep-decoder are those papers' protocols) or a YAML file; flags "
                                               "override it. Default: fast on CPU, paper on GPU",
                                               rich_help_panel="Run")]
ResumeEvery = Annotated[float, typer.Option(
    metavar="SECONDS", help="Save the fit's state beside the output (folder OUTPUT.lip-resume) every SECONDS and "
    "when stopped (Ctrl-C, SIGTERM, SIGHUP), so that the same command run again continues the fit where it was; "
    "0: only when stopped. Removed once the image is written", rich_help_panel="Run")]
Json = json_flag()
Log = Annotated[Optional[Path], typer.Option(help="Append a JSON-lines log of every iteration, round and result "
                                             "(follow with tail -f)", rich_help_panel="Run")]
