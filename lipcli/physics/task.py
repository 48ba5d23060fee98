"""Restoration tasks by name: everything `restore`, `prune`, `transfer` and the config need to know
about one degradation, so a new task is one file that registers a `Task`, imported in physics/__init__.py.

>>> task = TASKS.get("sr")
>>> op = task.build({"scale": 4}, 64, 64, gray=False, inpaint_mask=None, seed=0)
>>> task.metric_name(gray=False), op.output_size(16, 16)
('psnr_y', (64, 64))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import LipError
from ..metrics import psnr, ssim
from ..registry import Registry
from .base import LinearPhysics, Physics

Metric = Callable[[torch.Tensor, torch.Tensor], float]
SIMULATED = "restore and prune: with --simulate; transfer: always"  # when a degradation flag is read (help texts)


def on_mean(score: Metric) -> Metric:
    """`score` of the gray image a net's channels stand for: their mean, which is what is written (a gray
    image is fitted as three equal channels) and what an operator of a gray image measures."""
    return lambda x, ref: score(x.mean(dim=-3, keepdim=True), ref.mean(dim=-3, keepdim=True))


@dataclass
class Measured:
    """A real observation read from a file that is not an image (e.g. k-space): operator and values."""

    op: LinearPhysics
    y: torch.Tensor  # (1, C, h, w), or CS's (1, m): what the net's output is fitted to through op
    name: str
    sha256: str  # of the values, as artifacts record images by their pixels
    gray: bool = True  # the restored image has one channel (MRI's magnitude; CS of a gray image)


@dataclass(frozen=True)
class Flag:
    """How one of a task's options is given on the command line: cli/options.py makes each a `--name` option of
    restore, prune and transfer, so a new task's flags need no edit there. `help` may be a function, for text
    that lists a registry when the help is shown."""

    help: str | Callable[[], str]
    type: type = float
    short: str | None = None  # e.g. "-m" beside "--measurements"
    min: float | None = None
    grid: bool = True  # a transfer grid reads it (not a real acquisition's file, which a grid never has)


class Task:
    """One restoration task. Subclasses set `name` and `options` and implement `build`; the other
    methods are the defaults that fit a task whose observation is an image like the restored one."""

    name: str
    options: dict[str, Any]  # the settings the task reads, with the paper's defaults (--sigma, ...)
    flags: dict[str, Flag] = {}  # those of `options` the command line gives, and how
    numbers: dict[str, Flag] = {}  # those a config file gives but no flag (typed and bounded as a flag would be)
    simulated: frozenset[str] = frozenset()  # those of `options` that only shape what --simulate does
    real_hint = ""  # what a real observation has instead of them, for the message that refuses them
    # The paper's fitting settings for the task (anchors-spec a.3, LIP row; config.py builds the presets
    # from them) and the fast preset's iteration cap. These defaults are inpainting's and SR's.
    fitting: dict[str, Any] = {"iters": 3000, "reg_noise": 0.03, "ema": 0.0}
    fast_iters = 1200
    fast_search_iters: int | None = None  # IMP iterations per round under the fast preset (None: fast_iters)
    # Early-stop patience under the fast preset. 150 is validated only with denoising's noise gate; without a
    # gate 150 stopped MRI's phantom at 8x at iteration 313 (22.6 dB against 31.9 with 300, RESULTS-mri.md).
    fast_es_patience = 300
    # The shipped ticket (a lipcli/data/library entry of this task) the fast preset fits when no --mask, --net or
    # --dense is given; None: the dense net. Chosen by experiments/RESULTS-sparse.md; the paper preset never.
    fast_ticket: str | None = None
    # The fast preset's output average (None: the paper's, `fitting["ema"]`). Inpainting and SR report the
    # EMA too: their raw outputs jitter by tenths of a dB up to the cap (experiments/RESULTS-stop-tasks.md).
    fast_ema: float | None = None
    # Whether the fast preset stops automatically. The stop exists to end a fit before it fits the noise; a
    # task whose observation has none may do better to run to its cap (inpainting: RESULTS-stop-tasks.md).
    fast_early_stop = True
    # The fast preset's decay of the conv kernels (`FitConfig.weight_decay`; 0 = off, the paper's), for whatever
    # it fits; a shipped ticket's library entry may set its own (the denoising ticket's follows the noise level).
    fast_weight_decay = 0.0
    # Whether the task's operators have an exact data-consistency step (`Physics.consistent`: the observed values
    # put back), and whether the fast preset applies it. The paper preset scores the net's output, as the papers do.
    data_consistency = False
    fast_data_consistency = False
    one_channel = False  # the restored image has one channel whatever the input's (MRI: a magnitude image)
    variant_hint = ""  # why a bare `name` is not a transfer-grid task, when it is not (sr: give the factor)
    # Settings added later and left out of records at the value every record had before (SR's downscale
    # "operator", MRI's headroom 1), so older searches resume: what a record without the key was made with.
    absent: dict[str, Any] = {}

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> LinearPhysics:
        """The operator for an image of the given restored size (`gray`: one channel)."""
        raise NotImplementedError

    @property
    def noisy(self) -> bool:
        """Whether the observation has a Gaussian noise level (`sigma` among the options), which lip estimates
        and the stop's noise gate and the leveled schedules read; the other tasks' observations are noise-free."""
        return "sigma" in self.options

    def check_real(self, inpaint_mask: Path | None) -> None:
        """Refuse, before any work, a real observation the task cannot read."""

    def check_flags(self, given: dict[str, Any], simulate: bool, inpaint_mask: Path | None) -> None:
        """Refuse the degradation flags given that this task would ignore: another task's, one that only
        shapes a simulated degradation when the input is the observation itself, or the stop's noise gate
        (`es_gate`) where there is no noise level. Ignored in silence, `--sigma 15` on a real photo would let its
        user believe lip had been told the noise level."""
        if inpaint_mask is not None and self.name != "inpaint":
            raise LipError(f"--inpaint-mask applies to --task inpaint, not --task {self.name}")
        for key, v in ((k, v) for k, v in given.items() if v is not None):
            flag = "--" + key.replace("_", "-")
            owners = [name for name in TASKS if key in TASKS.get(name).options]
            if owners and key not in self.options:
                raise LipError(f"{flag} applies to --task {' or '.join(owners)}, not --task {self.name}")
            if key == "es_gate" and v and not self.noisy:
                raise LipError(f"--es-gate {v} gates the stop on the observation's noise level, and --task "
                               f"{self.name} has none: drop --es-gate")
            if key in self.simulated and not simulate:
                raise LipError(f"{flag} shapes the degradation --simulate gives a clean image; without "
                               f"--simulate the input is the observation itself: drop {flag}" + self.real_hint)

    def check_settings(self, settings: dict[str, Any], fixed: dict[str, Any]) -> None:
        """Refuse resolved settings that contradict what was `fixed` (flags, a grid task's name) where
        `check_flags` cannot see it: a config file's value beside a flag."""

    def read_observation(self, source: Any, settings: dict[str, Any]) -> Measured | None:
        """A real observation that is not an image (k-space), read from `source` (a path or an array), or
        None: the source is an image (images.as_image reads it)."""
        return None

    def read_real(self, op: Physics, y: torch.Tensor) -> torch.Tensor:
        """The observation a real input file gives: the file's pixels."""
        return y

    def upscale(self, settings: dict[str, Any]) -> int:
        """How many times larger than a real observation the restored image is (for memory estimates)."""
        return 1

    def metric_name(self, gray: bool) -> str:
        return "psnr"

    def metric(self, gray: bool) -> Metric:
        """Scores a restored image against the clean one; it must match `metric_name`."""
        return on_mean(psnr) if gray else psnr

    def similarity(self, gray: bool) -> Metric:
        """The structural score reported beside `metric` (SSIM)."""
        return on_mean(ssim) if gray else ssim

    def variants(self) -> dict[str, dict[str, Any]]:
        """Transfer-grid task names and the settings each overrides (sr -> sr2, sr4, sr8)."""
        return {self.name: {}}

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        """What a transfer row records of the degradation (an existing row must match it to be reused)."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    """File a task instance under its name."""
    stray = set(task.flags) - set(task.options)
    if stray:
        raise ValueError(f"task {task.name!r} declares flags for settings it does not read: {', '.join(sorted(stray))}")
    return TASKS.register(task.name)(task)


def task_options() -> set[str]:
    """Every option some registered task reads."""
    return {k for name in TASKS for k in TASKS.get(name).options}


def task_flags() -> dict[str, Flag]:
    """Every registered task's command-line flags, in registration order."""
    return {k: flag for name in TASKS for k, flag in TASKS.get(name).flags.items()}


def grid_flags() -> dict[str, Flag]:
    """The task flags a transfer grid reads: those it can use (`Flag.grid`) and that no grid task name always
    sets (sr4 sets --scale)."""
    fixed = {k for name in TASKS for k in set.intersection(*(set(v) for v in TASKS.get(name).variants().values()))}
    return {k: flag for k, flag in task_flags().items() if flag.grid and k not in fixed}


def task_variants() -> dict[str, tuple[Task, dict[str, Any]]]:
    """Every transfer-grid task name of every registered task: name -> (task, settings overrides)."""
    return {v: (TASKS.get(t), extra) for t in TASKS for v, extra in TASKS.get(t).variants().items()}
