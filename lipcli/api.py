"""lip from Python (notebooks, scripts): one function per command, arrays in and out, nothing printed.

The commands call these same functions; the CLI only adds parsing, file names, progress bars and
writing. So a notebook gets exactly what `lip restore`, `lip prune`, `lip transfer` and `lip cs`
(`recoverer`) compute:

    import numpy as np
    from lipcli import api
    noisy = np.load("noisy.npy")                         # HxW or HxWxC, any integer or float dtype
    ticket = api.prune([noisy], rounds=2, iters=300)     # a mask artifact: every round + theta0
    out = api.restore(noisy, mask=ticket)                # out.image: same shape, dtype and range

Images are numpy arrays (HxW or HxWxC, C = 1..4 with alpha last), torch tensors (CxHxW or
1xCxHxW, values in [0, 1]), `lipcli.images.Image`s or file paths; results come back in the input's form
(lipcli.images.from_array says how values are scaled). Options left at None take the preset's value
(`config`: "fast" on CPUs, "paper" on CUDA, or a YAML file), as on the command line, where each
option is documented (`lip restore --help`). Bad input raises `LipError` with a one-line message.
Progress is reported only through the optional callbacks (`on_step(step)`, `notify(line)`, ...).
"""
from __future__ import annotations

import inspect
import math
import os
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from . import artifact, cs as cs_solvers, device as devices, files, generators, images as images_io, library, nets
from .seeds import MAX as SEED_MAX  # as the CLI's --seed: a CPU generator reads 32 bits of a seed
from .config import (check_init, check_lr, check_names, count, fit_config, fraction, known_keys, leveled,
                     no_exact_step, resolve_settings)
from .cs_problem import CSInputs, CSProblem, load_problem as load_cs_problem
from .ensemble import Elsewhere, fit_share, restore_ensemble
from .errors import LipError, LipRuntimeError
from .fit import DivergenceError, FitConfig, Step, TargetResult, returned
from .gan import GENERATOR
from .physics import TASKS, task_options
from .physics.cs_task import MedianOfMeans, check_batches
from .physics.measurements import is_operator_file
from .problem import Problem, fitted_size, load_problem, provenance
from .prune.imp import ImpSettings
from .prune.run import SearchRequest, channel_score_for, check_method_options, rounds_for, search
from .resume import Keeper, check_every, clear, fit_state
from .restore import Prior, check_channels, dense_prior, masked_prior, memory_plan, restore as fit_prior
from .transfer import (Cell, Grid, cell_problem, check_experiment, exclusive, load_masks, parse_baselines,
                       parse_rounds, parse_tasks, pending, read_rows, run_cells, task_operator)
from .transfer.experiments import IMPEDANCE_TARGETS
from .watch import Watch

__all__ = ["Diverged", "Pruner", "Recovered", "Recoverer", "Restored", "Restorer", "Search", "load_mask", "prune",
           "pruner", "recoverer", "restore", "restorer", "save_mask", "transfer", "transfer_grid"]

load_mask = artifact.load  # (path) -> Artifact: the masks of every round (`.mask(k)`), theta0, metadata


def _device(device: str | torch.device) -> torch.device:
    """A device as the CLI's --device takes it (a torch.device too), checked to exist here."""
    if not isinstance(device, (str, torch.device)):
        raise LipError(f"device={device!r}: give a device name such as 'cpu', 'cuda:0' or 'auto', or a torch.device")
    return devices.resolve(str(device))


def _quiet(line: str) -> None:
    """The default `notify`: the library prints nothing."""


def _check_options(fn: Callable[..., Any], given: dict[str, Any], known: set[str]) -> None:
    """`given`, what `fn`'s **options caught, must be among `known`; `fn`'s named parameters are candidates for the
    did-you-mean (`round=1` -> round_)."""
    named = {n for n, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_KEYWORD}
    check_names(given, known | named, f"api.{fn.__name__}")


def _check_types(fn: Callable[..., Any], given: dict[str, Any]) -> None:
    """`fn`'s named options annotated bool, int or float hold one (None where allowed): `dense="no"` is truthy
    and `sparsity="0.3"` fails deep inside, where the CLI's flags arrive typed. A float for an int is left to
    `_whole`, which names the option's lowest value."""
    for name, p in inspect.signature(fn).parameters.items():
        value, kind = given.get(name), str(p.annotation).removesuffix(" | None")
        if value is None or kind not in ("bool", "int", "float"):
            continue
        flag = f"--{name.rstrip('_').replace('_', '-')} {value!r}"  # named as _whole names them
        if kind == "bool" and not isinstance(value, (bool, np.bool_)):
            raise LipError(f"{flag} must be True or False")
        if kind != "bool" and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number))):
            raise LipError(f"{flag} must be {'a whole number' if kind == 'int' else 'a number'}")  # 1.5: _whole


def _check_seed_range(seed: int, count: int, flag: str) -> None:
    """Seeds seed..seed + count - 1 (ensemble members, a grid's seeds) within range: past it a CPU generator
    would draw seed 0's numbers again."""
    if seed + count - 1 > SEED_MAX:
        raise LipError(f"{flag} {count} from --seed {seed} runs seeds up to {seed + count - 1}, past the largest, "
                       f"{SEED_MAX}: give --seed {SEED_MAX - count + 1} or lower")


def _whole(name: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """A whole-number argument (a seed, a count, a round), or a LipError naming it as its flag: a float, a
    string or a seed beyond the 32 bits a CPU generator reads would otherwise fail deep inside, or be truncated."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or \
            high is not None and value > high:
        raise LipError(f"--{name.rstrip('_').replace('_', '-')} {value!r} must be a whole number from {low}"
                       + ("" if high is None else f" to {high}"))
    return int(value)


def _path(value: Path | str | None, name: str = "path") -> Path | None:
    """A path option given as a str or a Path (None stays None); anything else is refused, naming the option."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise LipError(f"{name} takes a file's path (str or Path), not {type(value).__name__}: write the array "
                       "with numpy.save, or as a PNG, and give its path")
    return None if value is None else Path(value)


def _listed(items: Any) -> list[Any] | None:
    """A list of images or masks, one given alone included (a path, an array, a tensor); None stays None."""
    if items is None:
        return None
    alone = isinstance(items, (str, Path, np.ndarray, torch.Tensor, images_io.Image, artifact.Artifact))
    return [items] if alone else list(items)


def _comma(value: Any) -> str | None:
    """A comma list given as the command line spells it, as a Python sequence ([3, 6, 9]) or one number."""
    if value is None or isinstance(value, str):
        return value
    return str(value) if isinstance(value, (int, float)) else ",".join(map(str, value))


def save_mask(path: Path | str, art: artifact.Artifact, slim: bool = False) -> None:
    """Write a mask artifact atomically (the same bytes for the same content) to a .safetensors file: a name
    such as photo.png is refused, as on the command line, rather than put a mask under an image's name."""
    if not isinstance(art, artifact.Artifact):
        raise LipError(f"save_mask writes an Artifact (what api.prune returns), not {type(art).__name__}")
    artifact.check_output(path)
    artifact.save(path, art, slim)


# ---------------------------------------------------------------------------------------- restore

@dataclass
class Restored:
    """A restored image (`picture`, in the input's mode) and its report (scores, stopping, sparsity)."""

    picture: images_io.Image
    report: dict[str, Any]
    state: Path | None = None  # the folder of the fits' saved states, kept until `discard_state`

    def discard_state(self) -> str | None:
        """Remove the fits' saved states: call it once the image is stored. Until then the same call continues
        from them (a write that failed, e.g. on a full disk, does not cost the whole fit). Returns why they could
        not be removed, or None."""
        return None if self.state is None else clear(self.state)

    @property
    def image(self) -> np.ndarray | torch.Tensor:
        """The result in the input's form: layout, dtype and value range (alpha last)."""
        return images_io.to_array(self.picture)


class Diverged(LipRuntimeError):
    """The fit diverged beyond recovery; `picture` is the last good result, from `iteration`."""

    def __init__(self, message: str, picture: images_io.Image, iteration: int) -> None:
        super().__init__(message)
        self.picture, self.iteration = picture, iteration


@contextmanager
def diverged_keeps(state: Path | None, last_good: Callable[[DivergenceError, TargetResult], Diverged]
                   ) -> Iterator[None]:
    """Turn a fit's divergence into `Diverged` carrying `last_good`'s result (its saved states removed:
    continuing would diverge again); a fit that diverged before it had any result re-raises."""
    try:
        yield
    except DivergenceError as exc:
        if state is not None:
            clear(state)
        last = exc.result.targets[0] if exc.result.targets else None
        if last is None or not last.final.numel():
            raise
        raise last_good(exc, last) from None


@dataclass
class Restorer:
    """A restore set up once (settings, fitting config, prior, device) and applied image after image."""

    task: str
    settings: dict[str, Any]
    cfg: FitConfig
    prior: Prior
    device: torch.device
    seed: int
    simulate: bool
    inpaint_mask: Path | None
    ensemble: int = 1  # fits averaged (lipcli/ensemble.py)
    snapshot_every: int | None = None  # iterations between learning-process snapshots (None: none)
    members_elsewhere: Elsewhere | None = None  # fits an ensemble's members (None: here, one after the other)
    resume_every: float | None = 60.0  # seconds between saves of a call's `state` (None: only when stopped)
    note: str | None = None  # what to say once before the fits (a library mask fitted for another task)

    def problem(self, image: images_io.Source, clean: images_io.Source | None = None) -> Problem:
        """The observation of `image` (degraded first when `simulate`), the same for every fit of it. A file too
        large for the memory is refused from its header, before it is decoded (a 4000x3000 photo took 14 s and
        3.7 GB to be refused)."""
        def fitted(width: int, height: int) -> tuple[int, int]:
            return fitted_size(self.prior.spec, self.task, self.settings, self.simulate, width, height)

        def cost(width: int, height: int) -> str:  # past the pixel limit: the least this fit would need
            need = nets.estimate_bytes(self.prior.fitted_spec, *fitted(width, height), self.cfg.precision, True)
            return f"restoring it would need about {need / 2**30:,.0f} GiB of memory"
        size = images_io.header_size(image) if isinstance(image, (str, Path)) else None
        if size is not None and size[0] * size[1] <= images_io.MAX_PIXELS:  # past it: refused as too many pixels
            try:
                memory_plan(self.prior.fitted_spec, fitted(*size), self.cfg, self.device)
            except LipError as exc:
                raise LipError(f"{images_io.resolve(image).name}: {exc}") from None
        return load_problem(image, self.task, self.settings, simulate=self.simulate, seed=self.seed,
                            inpaint_mask=self.inpaint_mask, clean=clean, max_pixels=images_io.MAX_PIXELS, cost=cost)

    def fit_share(self, image: images_io.Source, share: tuple[int, int], folder: Path, *,
                  clean: images_io.Source | None = None, on_step: Callable[[Step], None] | None = None,
                  notify: Callable[[str], None] = _quiet) -> None:
        """Fit members j, j+m, ... (`share` j/m) of this ensemble on `image` and leave each in `folder`:
        a worker's part of an ensemble fitted at once (lipcli/jobs.py)."""
        problem = self.problem(image, clean)
        fit_share(problem, self.prior, self.config(problem), self.device, self.seed, self.ensemble, share,
                  folder, [on_step] if on_step else [], notify, self.resume_every)

    def config(self, problem: Problem) -> FitConfig:
        """The fit's settings for this observation: a schedule (jitter, the stop's window and gate:
        `config.leveled`) follows its noise level."""
        return leveled(self.cfg, self.settings, problem.noise_sigma())

    def __call__(self, image: images_io.Source, *, clean: images_io.Source | None = None,
                 on_step: Callable[[Step], None] | None = None,
                 notify: Callable[[str], None] = _quiet,
                 on_problem: Callable[[Problem], None] | None = None,
                 on_snapshot: Callable[[int, images_io.Image], None] | None = None,
                 state: Path | None = None, on_result: Callable[[Restored], None] | None = None) -> Restored:
        """Restore one image (degrade it first when `simulate`); `clean` only scores the result.
        `on_problem` sees the observation before the fit (e.g. to save simulated k-space); `on_snapshot`
        gets (iteration, image in the input's mode) of what the fit shows at every multiple of
        `snapshot_every`. `state`: a folder for the fits' states, saved every `resume_every` seconds and on
        SIGINT/SIGTERM; a later call for the same restore continues from them. They stay there until
        `Restored.discard_state()`, called once the image is stored (lipcli/resume.py). `on_result` stores it:
        with a `state`, a SIGINT/SIGTERM that comes after the fit waits until `on_result` has returned, so a
        finished fit is never lost to a signal between its last iteration and its written image."""
        problem = self.problem(image, clean)
        cfg = self.config(problem)
        warning = problem.warning()  # e.g. outliers in half of Median-of-Means' batches
        if warning:
            notify(f"lip: warning: {warning}")
        state = None if state is None else Path(state)
        keeper = None if state is None or self.ensemble > 1 else Keeper(fit_state(state, self.seed),
                                                                          self.resume_every, notify)
        if on_problem is not None:
            on_problem(problem)
        with keeper.holding() if keeper is not None else nullcontext():
            restored = self._restore(problem, cfg, state, keeper, on_step, notify, on_snapshot)
            if on_result is not None:
                on_result(restored)
        return restored

    def _restore(self, problem: Problem, cfg: FitConfig, state: Path | None, keeper: Keeper | None,
                 on_step: Callable[[Step], None] | None, notify: Callable[[str], None],
                 on_snapshot: Callable[[int, images_io.Image], None] | None) -> Restored:
        with diverged_keeps(state, lambda exc, last: Diverged(str(exc), problem.picture(last.stopped),
                                                              last.stopped_at)):
            callbacks: list[Callable[[Step], None]] = [on_step] if on_step else []
            if self.snapshot_every and on_snapshot is not None:
                callbacks.append(Watch(self.snapshot_every,
                                       lambda it, shown: on_snapshot(it, problem.picture(shown))))
            if self.ensemble == 1:
                result, report = fit_prior(problem, self.prior, cfg, self.device, self.seed, callbacks, notify, keeper)
            else:
                result, report = restore_ensemble(problem, self.prior, cfg, self.device, self.seed,
                                                  self.ensemble, callbacks, notify, self.members_elsewhere,
                                                  state, self.resume_every)
        tr = result.targets[0]
        report.update(device=str(self.device), precision=cfg.precision, preset=self.settings["preset"],
                      seed=self.seed, early_stop=cfg.early_stop, data_consistency=cfg.data_consistency,
                      iters=cfg.iters, lr=cfg.lr, ema=cfg.ema, reg_noise=cfg.reg_noise, es_window=cfg.es_window,
                      es_patience=cfg.es_patience,
                      es_gate=cfg.es_gate if problem.task.noisy else None,  # no noise level: no gate applied
                      es_white=cfg.es_white, es_close=cfg.es_close, es_spike=cfg.es_spike,
                      weight_decay=cfg.weight_decay,
                      jump_factor=cfg.jump_factor,
                      threads=torch.get_num_threads(),
                      ensemble=self.ensemble)
        if cfg.sgld:  # recorded when on, as FitConfig.recorded records it
            report["sgld"] = cfg.sgld
        if cfg.reg_noise_every:
            report["reg_noise_every"] = cfg.reg_noise_every
        if result.thread_changes:  # other lip fits ran meanwhile: (iteration, threads) wherever it changed
            report["threads_shared"] = [list(change) for change in result.thread_changes]
        shown = getattr(tr, returned(cfg.early_stop))
        fields, note = problem.op.review(shown)
        report.update(fields)
        if note:
            notify(f"lip: note: {note}")
        return Restored(problem.picture(shown), report, state)


def restorer(*, task: str = "denoise", simulate: bool = False, inpaint_mask: Path | None = None,
             mask: Path | str | artifact.Artifact | None = None, round_: int | None = None,
             sparsity: float | None = None, init: str = "artifact", prior: str = "dip", net: str | None = None,
             dd_k: int | None = None, compact: bool | None = None, early_stop: bool | None = None,
             checkpoint: bool | None = None,
             config: str | None = None, device: str | torch.device = "auto", seed: int = 0, dense: bool = False,
             ensemble: int = 1, snapshot_every: int | None = None, resume_every: float | None = 60.0,
             **flags: Any) -> Restorer:
    """Check the options and set up a restore: `lip restore`'s options, `flags` being the fitting and
    degradation ones (sigma, keep, scale, sampling_mask, acceleration, center_fraction, mask_type, the CS ones
    (measurements, outliers, operator, matrix, shape, solver), iters, lr, reg_noise, reg_noise_every, ema, sgld,
    weight_decay, es_window, es_patience, es_gate, es_white, es_close, es_spike, jump_factor, precision).
    `early_stop` None: the preset's (on, except for inpainting under the fast preset and the oes and deep-decoder
    protocols).

    With no mask, net or deep decoder asked for, the preset's `ticket` (a shipped mask, by name) is the
    prior; `dense` asks for the dense net instead. `snapshot_every` N: hand what the fit shows every N
    iterations to the call's `on_snapshot` (its learning process: one fit, so not with an ensemble)."""
    _check_types(restorer, locals())
    if isinstance(ensemble, int) and not isinstance(ensemble, bool) and ensemble < 1:
        raise LipError(f"--ensemble {ensemble} must be at least 1 (the number of fits averaged)")
    seed, ensemble = _whole("seed", seed, high=SEED_MAX), _whole("ensemble", ensemble, 1)
    _check_seed_range(seed, ensemble, "--ensemble")
    round_ = None if round_ is None else _whole("round_", round_)
    if not (mask is None or isinstance(mask, (str, Path, artifact.Artifact))):
        raise LipError(f"mask is a mask file, a shipped mask's name or an Artifact (api.prune, api.load_mask), "
                       f"not {type(mask).__name__}")
    if snapshot_every is not None and (snapshot_every < 1 or ensemble > 1):
        raise LipError(f"--snapshots {snapshot_every}: " + ("N must be at least 1 (iterations between snapshots)"
                       if snapshot_every < 1 else "snapshots show one fit's learning: drop --ensemble"))
    _check_options(restorer, flags, known_keys(search=False))  # a search's rounds=2 would change nothing
    inpaint_mask = _path(inpaint_mask, "inpaint_mask")
    dd_k = None if dd_k is None else _whole("dd_k", dd_k, 1)
    dev = _device(device)
    given = {**flags, "net": net, "early_stop": early_stop}
    settings = resolve_settings(task, config, dev, given)
    TASKS.get(task).check_flags(flags, simulate, inpaint_mask)
    TASKS.get(task).check_settings(settings, flags)
    if dense and (mask is not None or prior != "dip"):
        raise LipError("--dense fits the dense DIP net: drop --mask / --prior")
    if prior not in ("dip", "deep-decoder"):
        raise LipError(f"unknown --prior {prior!r}: use dip or deep-decoder")
    if mask is not None and (net is not None or prior != "dip"):
        raise LipError(f"--mask brings its own net: drop {'--net' if net is not None else '--prior'}")
    if prior == "deep-decoder" and net is not None:
        raise LipError("--prior deep-decoder is its own net: drop --net (its width is --dd-k)")
    net_ = "deep-decoder" if prior == "deep-decoder" else settings["net"]
    kind = nets.resolve_spec(net_)["kind"]
    if dense and kind != "skip":  # as --dense --prior deep-decoder is refused above
        raise LipError(f"--dense fits the dense DIP net, not the {kind} net of "
                       f"{'--net' if net is not None else '--config'}: drop --dense")
    if dd_k is not None and (mask is not None or kind != "decoder"):
        raise LipError(f"--dd-k {dd_k} sets the deep decoder's width: add --prior deep-decoder"
                       + (" and drop --mask" if mask is not None else ""))
    default = mask is None and prior == "dip" and not dense and settings.get("ticket")
    if default:
        mask = settings["ticket"]
    check_init(init)
    if init != "artifact" and mask is None:
        raise LipError(f"--init {init} chooses a mask's starting weights, and the dense net has none (it is drawn "
                       "from --seed): give a mask, or drop --init")
    if compact and mask is None:
        raise LipError("--compact needs a masked net (--mask): the dense net has no pruned filters to remove")
    if mask is None and (round_ is not None or sparsity is not None):
        raise LipError(f"--{'round' if round_ is not None else 'sparsity'} picks a round of a mask, and the dense "
                       "net has none: add --mask")
    own = library.fast_settings(mask, settings["preset"], task, named=bool(default))
    if own:  # a library entry measured with its own settings: they go over the preset's, under the user's
        settings = resolve_settings(task, config, dev, given, own)
    cfg = replace(fit_config(settings, settings["early_stop"], dev, seed), checkpoint=checkpoint)
    if mask is not None:
        try:
            chosen = masked_prior(library.entry_file(mask) if default else mask, round_, sparsity, init, compact,
                                  label=mask if default else None)
        except LipError as exc:  # the user named no mask: say which one the options were applied to
            raise LipError(f"the default prior, library mask {mask}: {exc}" if default else str(exc)) from None
    else:  # the deep decoder's width follows --dd-k however it was asked for (--prior, --net, --config)
        chosen = dense_prior(net_, **({} if dd_k is None else {"k": dd_k}))
    check_every(resume_every)
    entry = library.named_entry(mask) if mask is not None and not default else None
    note = (f"{mask} is the library's {entry.task} mask: fitted for {task}, without the settings it was measured "
            f"with" if entry is not None and entry.task != task else None)
    return Restorer(task, settings, cfg, chosen, dev, seed, simulate, inpaint_mask, ensemble, snapshot_every,
                    resume_every=resume_every, note=note)


def restore(image: images_io.Source, *, clean: images_io.Source | None = None,
            on_step: Callable[[Step], None] | None = None, **options: Any) -> Restored:
    """Restore one image with a dense or masked Deep Image Prior (`lip restore`; options: `restorer`).

    `mask` may be an artifact file or an `Artifact` (e.g. what `prune` returned). The result is the
    auto-stopped iterate (`early_stop=False`, or a preset without early stopping: the final one).
    """
    return restorer(**options)(image, clean=clean, on_step=on_step)


# ------------------------------------------------------------------------------------------ prune

@dataclass
class Search:
    """How `lip prune` searches a DIP mask: the method, its schedule, the net and fitting overrides
    (None = the preset's). The fields are `lip prune`'s options of the same names."""

    method: str = "imp"
    granularity: str = "element"
    channel_score: str | None = None
    rounds: int | None = None
    target_sparsity: float | None = None
    rate: float | None = None
    rewind: float = 0.0
    scope: str | None = None
    keep_input_dense: bool = False
    fresh_input: bool | None = None  # None: the preset's (paper: True, as the published code; fast: False)
    shared_input: bool = False
    stop_when_loss_rises: int | None = None
    early_bird: float | None = None
    early_bird_every: int = 50
    like: Path | None = None
    synflow_iters: int = 100
    oes_lambda: float = 1e-9
    oes_tau: float = 0.2
    net: str | None = None
    iters: int | None = None
    lr: float | None = None
    reg_noise: float | None = None
    sgld: float | None = None


@dataclass
class Pruner:
    """A checked search (its request and its problems), ready to run into an artifact."""

    request: SearchRequest
    problems: list[Problem]
    device: torch.device
    unread: tuple[str, ...] = ()  # fitting options given that the method does not read (said, not refused)

    @property
    def warning(self) -> str | None:
        """What the search will not read of what it was given: a score at initialisation fits nothing, and OES
        learns its mask without input jitter (refusing them would break a script looping over methods with one
        set of options)."""
        if not self.unread:
            return None
        flags = ", ".join("--" + n.replace("_", "-") for n in self.unread)
        method = self.request.method
        why = ("learns its mask without input jitter (the OES protocol)" if method == "oes" else
               "scores the net at initialisation and fits nothing")
        return f"{flags}: --method {method} {why}, so {'it is' if len(self.unread) == 1 else 'they are'} not read"

    @property
    def steps(self) -> int:
        """Progress units of a run: fitting iterations (IMP, OES) or rounds (one-shot scores)."""
        req = self.request
        return {"imp": (req.rounds + 1) * req.fit.iters, "oes": req.fit.iters}.get(req.method, req.rounds)

    def run(self, out: Path | None = None, resume: bool = False, on_start: Callable[[], None] = lambda: None,
            on_step: Callable[[Step], None] = lambda step: None,
            on_round: Callable[[dict[str, Any]], None] = lambda rec: None, slim: bool = False) -> artifact.Artifact:
        """Search; `out` is rewritten after every round (a temporary file when None; `slim`: in the
        slim encoding) and `resume` continues the search stored there."""
        if out is not None:
            return search(self.request, self.problems, provenance(self.problems), self.device, Path(out), resume,
                          on_start, on_step, on_round, slim)
        if resume:
            raise LipError("resume needs `out`, the artifact of the interrupted search")
        with tempfile.TemporaryDirectory(prefix="lip-prune-") as tmp:
            return self.run(Path(tmp) / "mask.safetensors", False, on_start, on_step, on_round)


def pruner(images: list[images_io.Source], *, task: str = "denoise", simulate: bool = False,
           clean: list[images_io.Source] | None = None, oracle_target: list[images_io.Source] | None = None,
           inpaint_mask: Path | None = None, precision: str | None = None, config: str | None = None,
           device: str | torch.device = "auto", seed: int = 0, **options: Any) -> Pruner:
    """Check the options, read the images and set up a search (`lip prune --prior dip`); the `options` are the
    task's degradation settings (sigma, keep, scale, the MRI and CS ones: physics/task.py) and `Search`'s fields."""
    task_keys = task_options()
    degradation = {k: v for k, v in options.items() if k in task_keys}
    search_options = {k: v for k, v in options.items() if k not in degradation}
    _check_types(pruner, locals())
    _check_options(pruner, search_options, {f.name for f in fields(Search)} | task_keys)
    s = Search(**search_options)
    seed = _whole("seed", seed, high=SEED_MAX)
    images, clean, oracle_target = _listed(images), _listed(clean), _listed(oracle_target)
    images_io.check_given_once(images, "image")  # fitted twice, it would weigh twice in the search
    check_method_options(s.method, [f.name for f in fields(Search) if getattr(s, f.name) != f.default])
    dev = _device(device)
    fits = s.method in ("imp", "oes")  # the others score once: their fit flags, said to be unread, are not recorded
    settings = resolve_settings(task, config, dev, dict(
        **degradation, search_iters=s.iters if fits else None, lr=s.lr if fits else None,
        reg_noise=s.reg_noise if fits else None, sgld=s.sgld, precision=precision,
        net=s.net, rounds=s.rounds, rate=s.rate, early_bird=s.early_bird, scope=s.scope,
        target_sparsity=s.target_sparsity, fresh_input=s.fresh_input))
    inpaint_mask = _path(inpaint_mask, "inpaint_mask")
    TASKS.get(task).check_flags(degradation, simulate, inpaint_mask)
    TASKS.get(task).check_settings(settings, degradation)
    if isinstance(settings["search_iters"], Mapping):  # a config's `iters:` schedule, copied for the search
        raise LipError(f"a search runs one number of iterations per round, not a schedule over noise levels "
                       f"({dict(settings['search_iters'])!r}): give --iters N, or search_iters: N in the config")
    # a config's search_iters is read as restore reads iters (1500.0 is 1500), named as prune's flag
    cfg = replace(fit_config(settings, False, dev, seed), iters=count({"iters": settings["search_iters"]}, "iters"))
    if cfg.sgld and s.method != "imp":
        raise LipError(f"--sgld adds weight noise to IMP's fits; --method {s.method} trains no weights "
                       "(use --method imp, or drop --sgld)")
    rate, target = fraction(settings, "rate"), settings["target_sparsity"]
    if not 0 < rate < 1:
        raise LipError(f"--rate {rate} must be in (0, 1)")
    if target is not None and not (isinstance(target, (int, float)) and 0 < target < 1):
        raise LipError(f"--target-sparsity {target} must be in (0, 1)")
    if target is not None and s.rounds is not None and s.target_sparsity is None and s.method != "oes":
        target = None  # a config's (or preset's) target, and --rounds given: the flag decides, as flags do
    if target is not None and s.rounds is not None:
        source = "--target-sparsity" if s.target_sparsity is not None else f"the {settings['preset']} settings' target"
        raise LipError(f"--rounds {s.rounds} would be ignored: {source} {target} sets how far the search prunes "
                       "(give one of them)")
    if s.method == "random-layerwise":  # it copies --like's rounds, whose sparsities its layers take
        copied = [f"--{f.replace('_', '-')}" for f in ("rounds", "rate", "target_sparsity")
                  if getattr(s, f) is not None]
        if copied:
            raise LipError(f"{', '.join(copied)}: --method random-layerwise copies --like's rounds and their layer "
                           f"sparsities; drop {'it' if len(copied) == 1 else 'them'}")
    check_method_options(s.method, ["oracle_target"] * bool(oracle_target) + ["clean"] * bool(clean))
    if not 0 <= s.rewind < 1:
        raise LipError(f"--rewind {s.rewind} must be in [0, 1)")
    if s.rewind and round(s.rewind * cfg.iters) == 0:  # imp.run rewinds to that iteration: 0 is no rewind at all
        raise LipError(f"--rewind {s.rewind:g} of {cfg.iters} iterations is iteration 0, no rewind: give a larger "
                       "--rewind or more --iters")
    if s.early_bird_every != Search.early_bird_every and not settings["early_bird"]:
        raise LipError(f"--early-bird-every {s.early_bird_every} sets how often the early-bird check runs, and it is "
                       "off: add --early-bird F (or drop --early-bird-every)")
    channel_score = channel_score_for(s.method, s.granularity, s.channel_score)
    from_target = target is not None and s.method != "oes"  # the rounds --target-sparsity takes at --rate
    n_rounds = rounds_for(target, rate) if from_target else count(settings, "rounds")
    if s.method == "random-layerwise" and s.like is not None:
        n_rounds = artifact.load(_path(s.like, "like")).rounds  # it copies the mask's rounds
    if n_rounds > 255:
        raise LipError(f"{n_rounds} rounds {'needed' if from_target else 'asked for'}; at most 255 are supported"
                       + (" (lower --target-sparsity)" if from_target else ""))
    early_bird = fraction(settings, "early_bird")
    fresh_input = settings["fresh_input"]
    if not isinstance(fresh_input, bool):
        raise LipError(f"fresh_input {fresh_input!r} must be true or false")
    if not (math.isfinite(s.oes_tau) and s.oes_tau > 0):
        raise LipError(f"--oes-tau {s.oes_tau}: the Gumbel-softmax temperature is a number above 0")
    if not (math.isfinite(s.oes_lambda) and s.oes_lambda >= 0):
        raise LipError(f"--oes-lambda {s.oes_lambda}: the KL weight is a number >= 0")
    if not images:
        raise LipError("give at least one image to search on")
    refs = oracle_target or clean or []
    if refs and len(refs) != len(images):
        raise LipError(f"give one {'--oracle-target' if oracle_target else '--clean'} per image "
                       f"({len(images)} images, {len(refs)} references)")
    if oracle_target and clean:
        raise LipError("--oracle-target and --clean exclude each other")
    if oracle_target and simulate:
        raise LipError("--oracle-target and --simulate exclude each other: with --simulate the input is "
                       "already the clean image")
    if s.shared_input and len(images) == 1:
        raise LipError("--shared-input shares one z and one output between several images; with one image it "
                       "changes nothing: drop it, or give more images")
    problems = [load_problem(p, task, settings, simulate=simulate, seed=seed, inpaint_mask=inpaint_mask,
                             clean=refs[i] if refs else None, max_pixels=images_io.MAX_PIXELS,
                             clean_flag="--oracle-target" if oracle_target else "--clean")
                for i, p in enumerate(images)]
    sizes = list(dict.fromkeys(f"{p.size[1]}x{p.size[0]}" for p in problems))
    if s.shared_input and len(sizes) > 1:
        raise LipError(f"--shared-input fits one output to every image, so they must be one size (got "
                       f"{' and '.join(sizes[:3])}): crop them to one size, or drop --shared-input (each "
                       "image then gets its own z)")
    req = SearchRequest(
        method=s.method, task=task, net=settings["net"], rounds=n_rounds, rate=rate, scope=settings["scope"],
        keep_input_dense=s.keep_input_dense, fit=cfg, seed=seed, synflow_iters=s.synflow_iters,
        oes_lambda=s.oes_lambda, oes_tau=s.oes_tau, target_sparsity=target,
        like=str(s.like) if s.like else None, granularity=s.granularity, channel_score=channel_score,
        imp=ImpSettings(rounds=n_rounds, rate=rate, rewind=s.rewind, fresh_input=fresh_input,
                        shared_input=s.shared_input, rises=s.stop_when_loss_rises or 2,
                        stop_on_rises=s.stop_when_loss_rises is not None, oracle=bool(oracle_target),
                        early_bird=early_bird, early_bird_every=s.early_bird_every),
        extra={"threads": torch.get_num_threads(), "preset": settings["preset"], "device": dev.type})
    unread = {"imp": (), "oes": ("reg_noise",)}.get(s.method, ("iters", "lr", "reg_noise"))
    return Pruner(req, problems, dev, tuple(n for n in unread if getattr(s, n) is not None))


def prune(images: list[images_io.Source], *, out: Path | None = None, **options: Any) -> artifact.Artifact:
    """Find a lottery image prior on the images (`lip prune`; options: `pruner` and `Search`).

    Returns the artifact: `.mask(k)` is round k's keep-mask, `.recommended_round` the round to use,
    `.theta0` the initial weights. With `out` the artifact is also written there after every round.
    """
    if out is not None:
        artifact.check_output(out)
    return pruner(images, **options).run(out)


# --------------------------------------------------------------------------------------- transfer

def transfer_grid(images: list[images_io.Source], masks: list[Path | str], *, tasks: str | None = None,
                  rounds: str | None = None, sparsities: str | None = None, seeds: int = 1,
                  baselines: str = "dense", init: str = "artifact", experiment: str = "grid",
                  inpaint_mask: Path | None = None, early_stop: bool | None = None, config: str | None = None,
                  device: str | torch.device = "auto", seed: int = 0, **flags: Any) -> Grid:
    """Check the options and build a transfer grid (`lip transfer`); `flags` are the fitting and
    degradation options (sigma, keep, iters, lr, reg_noise, reg_noise_every, ema, sgld, es_window, es_patience,
    precision).
    `early_stop` None: the preset's. `data_consistency` True applies to the grid's tasks that have the exact
    step (inpaint, mri) and is refused only when none has. Every cell's problem is built once here, so a bad
    size, mask or image fails now, not hours later."""
    _check_types(transfer_grid, locals())
    _check_options(transfer_grid, flags, known_keys(search=False))
    inpaint_mask = _path(inpaint_mask, "inpaint_mask")
    if any(isinstance(m, artifact.Artifact) for m in _listed(masks) or []):
        raise LipError("a transfer grid reads its masks from files (rows name them, workers load them): "
                       "write the artifact first (api.save_mask)")
    images, masks = _listed(images), _listed(masks)
    tasks, rounds, sparsities = _comma(tasks), _comma(rounds), _comma(sparsities)
    if isinstance(flags.get("iters"), (int, float)) and flags["iters"] < 1:  # a str: resolve_settings reads it
        raise LipError(f"--iters {flags['iters']} must be at least 1")
    if isinstance(seeds, int) and seeds < 1:
        raise LipError(f"--seeds {seeds} must be at least 1")
    seed, seeds = _whole("seed", seed, high=SEED_MAX), _whole("seeds", seeds, 1)
    _check_seed_range(seed, seeds, "--seeds")
    if not images:
        raise LipError("give at least one clean image (and --mask A.safetensors)")
    check_experiment(experiment)
    if experiment == "impedance" and tasks is not None:
        raise LipError("--experiment impedance fits fixed targets (clean, noisy, shuffled, noise); drop --tasks")
    task_names = list(IMPEDANCE_TARGETS) if experiment == "impedance" else parse_tasks(tasks or "denoise")
    chosen_baselines = parse_baselines(baselines)
    if experiment == "impedance":  # four fixed targets through the identity (sigma makes the noisy one), no stop
        stops = ("es_window", "es_patience", "es_gate", "es_white", "es_close", "es_spike")
        unread = [f"--{k.replace('_', '-')}" for k in [*sorted(task_options() - {"sigma"}), *stops]
                  if flags.get(k) is not None]
        unread += ["--inpaint-mask"] * (inpaint_mask is not None) + ["--early-stop"] * bool(early_stop)
        unread += ["--data-consistency"] * bool(flags.get("data_consistency"))
        if unread:
            raise LipError(f"{', '.join(unread)}: --experiment impedance does not read "
                           f"{'it' if len(unread) == 1 else 'them'} (it fits its four targets to the end)")
    if experiment != "impedance":  # degradation flags no task of the grid reads would be dropped in silence
        kinds = {TASKS.get(task_operator(n)[0]).name: TASKS.get(task_operator(n)[0]) for n in task_names}
        unread = [f"--{k.replace('_', '-')}" for k in sorted(task_options()) if flags.get(k) is not None
                  and not any(k in t.options for t in kinds.values())]
        unread += ["--inpaint-mask"] if inpaint_mask is not None and "inpaint" not in kinds else []
        unread += ["--es-gate"] if flags.get("es_gate") and not any(t.noisy for t in kinds.values()) else []
        if unread:
            raise LipError(f"{', '.join(unread)}: no task of the grid ({', '.join(task_names)}) reads "
                           f"{'it' if len(unread) == 1 else 'them'}")
        if flags.get("operator") is not None and is_operator_file(str(flags["operator"])):
            raise LipError(f"--operator {flags['operator']}: a grid's csN tasks simulate N measurements of each image "
                           "with a seeded operator, and an operator file fixes its own m and image; give --operator "
                           "gaussian, dct or auto (lip restore, prune and cs read operator files)")
        fixed = [f"--{k.replace('_', '-')} (--tasks {n} sets it)" for n in task_names
                 for k in task_operator(n)[1] if flags.get(k) is not None]
        if fixed:
            raise LipError(f"{', '.join(fixed)}: a grid task's name gives its setting; drop the flag")
        for kind in kinds.values():  # a grid always simulates: each task's own checks (--keep beside a mask)
            kind.check_flags({k: flags.get(k) for k in kind.options}, True,
                             inpaint_mask if kind.name == "inpaint" else None)
    sources = [images_io.from_array(x, f"image{i}") if isinstance(x, (np.ndarray, torch.Tensor)) else x
               for i, x in enumerate(images)]
    images_io.check_readable([x for x in sources if not isinstance(x, images_io.Image)])
    if inpaint_mask is not None and not Path(inpaint_mask).is_file():
        raise LipError(f"cannot read --inpaint-mask {inpaint_mask}: no such file")
    mask_sources = load_masks([Path(m) for m in masks])
    chosen_rounds = parse_rounds(mask_sources, rounds, sparsities)
    dev = _device(device)
    exact = [n for n in task_names if TASKS.get(task_operator(n)[0]).data_consistency]
    if flags.get("data_consistency") and not exact:
        raise no_exact_step(f"no task of the grid ({', '.join(task_names)}) has an exact step")
    settings, configs = {}, {}
    for name in task_names:
        base, extra = task_operator(name)
        no_step = {} if name in exact or not flags.get("data_consistency") else {"data_consistency": None}
        settings[name] = resolve_settings(base, config, dev, {**flags, **extra, **no_step, "early_stop": early_stop})
        try:  # mri4 beside a config's sampling mask
            TASKS.get(base).check_settings(settings[name], {**flags, **extra})
        except LipError as exc:
            raise LipError(f"--tasks {name}: {exc}") from None
        # The impedance experiment records whole loss curves: never stop early.
        configs[name] = fit_config(settings[name], settings[name]["early_stop"] and experiment != "impedance",
                                   dev, 0)
    check_init(init)
    grid = Grid(mask_sources, chosen_rounds, sources, task_names, list(range(seed, seed + seeds)),
                chosen_baselines, init, settings, configs, inpaint_mask, experiment)
    for name in task_names:  # every image reads and suits every mask now, not after hours of other cells
        for source in sources:
            problem = cell_problem(grid, Cell("dense", None, 0, source, name, seed))
            for m in mask_sources:
                check_channels(m.art.spec, m.path, problem)
    return grid


def transfer(images: list[images_io.Source], masks: list[Path | str], *, out: Path | None = None,
             device: str | torch.device = "auto",
             on_step: Callable[[Cell, Step], None] = lambda cell, step: None,
             on_row: Callable[[Cell, dict[str, Any]], None] = lambda cell, row: None,
             **options: Any) -> list[dict[str, Any]]:
    """Run a transfer grid in this process (`lip transfer`; options: `transfer_grid`) and return its
    rows (one dict per run: scores, sparsity, curves). With `out` (a folder) the rows are appended to
    its results.jsonl as they finish and a re-run resumes; summaries and plots stay with the CLI."""
    dev = _device(device)
    grid = transfer_grid(images, masks, device=dev, **options)
    if out is not None:  # before the first fit, whose row goes there
        files.make_folder(Path(out), "out")
    with nullcontext(out) if out is not None else tempfile.TemporaryDirectory(prefix="lip-transfer-") as folder:
        rows_path = Path(folder) / f"{grid.stem}.jsonl"
        with exclusive(rows_path):
            run_cells(grid, pending(grid.cells(), read_rows(rows_path), grid, rows_path.name), dev, rows_path,
                      on_step, on_row)
            return read_rows(rows_path)


@dataclass
class Recovered:
    """A `lip cs` result: the recovered (1, C, H, W) image in [0, 1] (cropped to the measured size) and its
    report; `state`, as `Restored`'s."""

    image: torch.Tensor
    report: dict[str, Any]
    state: Path | None = None

    def discard_state(self) -> str | None:
        return None if self.state is None else clear(self.state)


@dataclass
class Recoverer:
    """`lip cs` set up: the checked problem (measurements, operator, sizes) and prior, ready to solve; `warning`
    says, before the solve, why it would likely fail or disappoint."""

    problem: CSProblem
    task: str  # cs | inpaint
    prior: str  # generator | dip
    solver: str
    cfg: cs_solvers.CSConfig
    device: torch.device
    generator: torch.nn.Module | None  # the generator prior's net
    source: dict[str, Any]  # what the report records of the prior
    mask: Path | None  # the DIP prior's mask
    round_: int | None
    resume_every: float | None

    @property
    def steps(self) -> int:
        """Progress units of a solve: Adam iterations, over every restart of a generator."""
        return self.cfg.iters * (self.cfg.restarts if self.prior == "generator" else 1)

    @property
    def warning(self) -> str | None:
        """Why the solve will likely fail or disappoint, to say before it: outliers in half of Median-of-Means'
        batches or more; a generator whose training was stopped midway."""
        found = [f"the generator {self.source['generator']} is {self.source['unfinished']}"
                 if "unfinished" in self.source else None,
                 MedianOfMeans(self.problem.op, self.cfg.batch_size).warning(self.problem.y)
                 if (self.task, self.solver) == ("cs", "mom") else None]
        return "; ".join(w for w in found if w) or None

    def __call__(self, *, on_step: Callable[[int, float], None] = lambda done, loss: None,
                 notify: Callable[[str], None] = _quiet, state: Path | None = None) -> Recovered:
        """Solve; `on_step(done, loss)` after each iteration, `done` counting from the start (a continued DIP
        fit starts further on). `state`: as `Restorer`'s, for the DIP (a generator's restarts take seconds)."""
        p, cfg, dev = self.problem, self.cfg, self.device
        state = None if state is None else Path(state)
        op, y = p.op.to(dev), p.y.to(dev)
        if self.prior == "generator":
            count = iter(range(1, self.steps + 1))
            image, report = cs_solvers.solve_generator(self.generator.to(dev), op, y, p.ref, p.size, cfg,
                                                       on_step=lambda it, loss: on_step(next(count), loss))
            return Recovered(image, {**report, **self.source, "restarts": cfg.restarts})
        keeper = None if state is None else Keeper(fit_state(state, cfg.seed), self.resume_every, notify)

        def last_good(exc: DivergenceError, last: TargetResult) -> Diverged:
            pixels = images_io.from_tensor(images_io.as_channels(last.final, p.shape[0]))
            return Diverged(f"{exc}; the last iterate before it ({exc.result.iterations})",
                            images_io.Image(pixels, None, images_io.UINT8, p.name), exc.result.iterations)
        with diverged_keeps(state, last_good):
            image, report = cs_solvers.solve_dip(
                op, y, p.shape, p.ref, self.mask, self.round_, cfg.iters, cfg.lr, cfg.seed, dev,
                on_step=lambda step: on_step(step.iteration, step.loss), notify=notify,
                mom_batch=cfg.batch_size if self.solver == "mom" else None, keeper=keeper)
        return Recovered(image, {**report, **self.source}, state)


def recoverer(source: str | Path, *, task: str = "cs", simulate: bool = False, prior: str = "generator",
              generator: Path | None = None, generator_spec: Path | None = None, mask: Path | None = None,
              round_: int | None = None, weights: str = "auto", solver: str | None = None, iters: int = 1500,
              lr: float = 0.01, restarts: int = 2, mom_batch: int = 20, clean: Path | None = None, seed: int = 0,
              device: str | torch.device = "auto", resume_every: float | None = 60.0,
              **measuring: Any) -> Recoverer:
    """Check `lip cs`'s options, load the prior and the problem: `source` is y.npy (with `matrix` or an
    operator file), an image (clean, with `simulate`) or mnist:K; `measuring` holds the operator's options
    (operator, matrix, shape, measurements, outliers, noise, outlier_value, keep, inpaint_mask:
    cs_problem.CSInputs)."""
    _check_types(recoverer, locals())
    _check_options(recoverer, measuring, {f.name for f in fields(CSInputs)} - {"source", "task", "simulate", "clean",
                                                                                "seed"})
    check_every(resume_every)
    check_lr(lr)
    source = str(source) if isinstance(source, Path) else source  # a path, or mnist:K
    if not isinstance(source, str):
        raise LipError(f"source takes y.npy, an image file or mnist:K as a str or Path, not {type(source).__name__} "
                       "(api.restore takes arrays)")
    generator, generator_spec, mask, clean = (_path(v, n) for v, n in ((generator, "generator"),
                                              (generator_spec, "generator_spec"), (mask, "mask"), (clean, "clean")))
    measuring.update({k: _path(measuring[k], k) for k in ("matrix", "inpaint_mask") if measuring.get(k) is not None})
    for k in ("measurements", "outliers"):
        if measuring.get(k) is not None:
            measuring[k] = _whole(k, measuring[k], 0 if k == "outliers" else 1)
    seed, iters = _whole("seed", seed, high=SEED_MAX), _whole("iters", iters, 1)
    restarts, mom_batch = _whole("restarts", restarts, 1), _whole("mom_batch", mom_batch, 1)
    if task not in ("cs", "inpaint"):
        raise LipError(f"unknown --task {task!r}: use cs or inpaint")
    if prior not in ("generator", "dip"):
        raise LipError(f"unknown --prior {prior!r}: use generator or dip")
    if weights not in generators.WEIGHTS:
        raise LipError(f"unknown --weights {weights!r}: use {' or '.join(generators.WEIGHTS)}")
    if weights != "auto" and prior != "generator":
        raise LipError("--weights chooses a generator's weights (--prior generator)")
    if prior == "generator" and mask is not None and generator is not None:
        raise LipError("--mask, a GAN-IMP artifact, holds its generator's weights: drop --generator")
    if generator_spec is not None and (generator is None or mask is not None or prior != "generator"):
        raise LipError("--generator-spec describes the state dict given with --generator (a lip artifact, "
                       "--mask included, carries its own spec)")
    solver = solver or cs_solvers.default_solver(task)
    if solver not in cs_solvers.SOLVERS:
        raise LipError(f"unknown --solver {solver!r}: use {' or '.join(cs_solvers.SOLVERS)}")
    dev = _device(device)
    g, g_shape, described = None, None, {}
    if prior == "generator":
        g, g_shape, described = cs_solvers.generator_prior(mask or generator or GENERATOR, round_, weights,
                                                           generator_spec)
    inputs = CSInputs(source=source, task=task, simulate=simulate, clean=clean, seed=seed, **measuring)
    problem = load_cs_problem(inputs, g_shape)
    if problem.size != problem.shape[1:]:
        (h, w), (gh, gw) = problem.size, problem.shape[1:]
        described["padded"] = f"{w}x{h} -> {gw}x{gh}"
    if solver == "mom":  # its rows: CS's measurements, inpainting's values
        check_batches(problem.y[0].numel(), mom_batch)
    cfg = cs_solvers.CSConfig(solver=solver, iters=iters, lr=lr, restarts=restarts, batch_size=mom_batch, seed=seed)
    return Recoverer(problem, task, prior, solver, cfg, dev, g, described, mask, round_, resume_every)
