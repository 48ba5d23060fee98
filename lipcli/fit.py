"""The one fitting loop every command uses: fit a net's output(s) to observation(s) through operators.

DIP recipe (anchors-spec a.2): a fixed input code z jittered by N(0, reg_noise^2) each step, Adam,
MSE in observation space, an EMA of the output, and rollback when the loss jumps. Masks keep pruned
parameters exactly zero (gradients are masked before every Adam step, so weight and moments stay 0).
`sgld` turns the run into SGLD-DIP (Cheng et al. 2019): Langevin noise on the weights after each step
(`langevin_step`); `weight_decay` shrinks the conv kernels after each step (`decay_kernels`).
The clean image, when given, is used only to *report* metrics; nothing that steers the run
(loss, rollback, early stopping) reads it.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from . import seeds, sharing
from .earlystop import WindowedVariance
from .errors import LipError, LipRuntimeError
from .masks import Masks, MaskedParams
from .metrics import psnr
from .nets import is_channels_last, set_checkpointing
from .optim import Adam, adam
from .physics import Physics
from .resume import Keeper, fingerprint


LATER_KNOBS = ("sgld", "data_consistency", "es_white", "weight_decay", "es_spike", "es_close", "reg_noise_every")


@dataclass
class FitConfig:
    """Every knob of the loop. Defaults are the paper's denoising settings."""

    iters: int = 3000
    lr: float = 0.01
    reg_noise: float = 1 / 30
    reg_noise_every: int = 0  # the jitter's std x 0.7 at iteration 0 and every this many after (jitter_std); 0 = off
    ema: float = 0.99  # 0 turns the output average off (LIP scores inpainting/SR on the raw output)
    early_stop: bool = True  # end the run at the detector's stop point (it is always computed)
    es_window: int = 200  # 200 beat Wang et al.'s 100 on our runs (experiments/RESULTS-es.md)
    es_patience: int = 1000
    es_gate: float = 1.05  # a variance minimum counts once the loss is under es_gate x noise floor; 0 = off
    es_white: float = 0.0  # ... and once the residual's lag-1 autocorrelation is under es_white; 0 = off
    es_close: float = 0.0  # ... and no longer once a minimum has counted and it is under es_close; 0 = off
    es_spike: float = 0.0  # a loss over es_spike x its mean at the minimum before the lag: report the minimum's
    #                        output (SpikeGuard); 0 = off
    precision: str = "fp32"  # or "bf16" (autocast; loss and metrics stay fp32)
    channels_last: bool = False
    checkpoint: bool | None = False  # recompute conv blocks in backward (big images); None = as memory needs
    metric_every: int = 1
    checkpoint_every: int = 10  # rollback snapshot period
    jump_factor: float = 10 ** 0.5  # a loss above this x the last snapshot's rolls back: 5 dB, DIP's backtracking
    max_recoveries: int = 5
    seed: int = 0  # seeds the input jitter (and the SGLD noise, on a stream of its own)
    sgld: float = 0.0  # SGLD-DIP: weight noise of std sgld * lr after every step (langevin_step); 0 = off
    weight_decay: float = 0.0  # decay of the conv kernels by lr * weight_decay a step (decay_kernels); 0 = off
    # Show, score and return op.consistent(output, y): what the observation holds exactly is put back
    # (inpainting's observed pixels, MRI's sampled k-space); the fit and its stop are unchanged.
    data_consistency: bool = False

    def recorded(self) -> dict[str, Any]:
        """The settings as artifacts and result rows record them. A knob added later (LATER_KNOBS) is recorded
        only when on, so what older versions wrote still matches and resumes."""
        d = asdict(self)
        for knob in LATER_KNOBS:
            if not d[knob]:
                del d[knob]
        return d


@dataclass
class Target:
    """One image to fit: its input code, operator, observation and restored size.

    `clean` is for reporting only (oracle metrics); `metric` scores a restored image against it.
    `noise_floor`: the loss a fit reaches once only the noise is left (the estimated noise variance for
    denoising; None where the observation has no noise level): it gates the early stop (earlystop.py).
    """

    z: torch.Tensor
    op: Physics
    y: torch.Tensor
    size: tuple[int, int]
    clean: torch.Tensor | None = None
    metric: Callable[[torch.Tensor, torch.Tensor], float] = psnr
    noise_floor: float | None = None


@dataclass
class TargetResult:
    final: torch.Tensor
    stopped: torch.Tensor
    stopped_at: int
    auto_stopped: bool = False  # the stop rule chose `stopped` (else it is the last iterate: the cap was reached)
    oracle_best: float | None = None
    oracle_best_iter: int | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (iteration, metric vs clean)


def returned(early_stop: bool) -> str:
    """Which of a TargetResult's outputs lip returns ("stopped" or "final", also the report's key suffix): the
    stop's only when it ends the fit; without it the detector still runs, for the report, and the cap's is kept."""
    return "stopped" if early_stop else "final"


@dataclass
class FitResult:
    targets: list[TargetResult]
    iterations: int
    losses: list[float]
    recoveries: int
    seconds: float
    thread_changes: list[tuple[int, int]] = field(default_factory=list)  # (iteration, count), lipcli/sharing.py

    @property
    def tail_loss(self) -> float:
        """Mean loss over the last 10% of iterations: a jitter-robust end-of-run loss."""
        n = max(1, len(self.losses) // 10)
        return sum(self.losses[-n:]) / n


@dataclass
class Step:
    """What callbacks see after each iteration."""

    iteration: int
    total: int
    loss: float
    metrics: list[float | None]
    stopped_at: list[int]
    raw: list[torch.Tensor]  # this iteration's outputs (no copy: clone to keep them)
    # What the fit shows, scores and returns (no copy): the EMA when ema > 0, else raw; data-consistent when asked.
    shown: list[torch.Tensor]
    member: int | None = None  # an ensemble member's seed (lipcli/ensemble.py), whose steps may interleave


def crop_center(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


class Snapshot:
    """The last good state for rollback, copied into buffers allocated once: the weights (and Adam's moments) a
    loss was measured at, with that loss, taken before the step moves them, as DIP's backtracking keeps them. A
    snapshot taken after the step paired that loss with the next weights; a fit whose loss moves by more than
    the jump factor in one step (noise-free inpainting near zero loss, with weight decay) then rolled back to
    weights that failed the test on every retry, until the fit was given up (RESULTS-decay-tasks.md).

    A deepcopy of the state dicts every `checkpoint_every` steps cost 173 ms at 256x256 (a tenth of
    that per iteration); copying into fixed buffers with foreach calls is one plain memory pass.
    """

    def __init__(self, model: nn.Module, opt: Adam | torch.optim.Optimizer) -> None:
        self.opt = opt
        self.live = [t.detach() for t in model.state_dict(keep_vars=True).values()]
        self.saved = [t.clone() for t in self.live]
        self.moments: list[tuple[torch.Tensor, str, torch.Tensor]] = []  # Adam's state (after step 1)
        self.loss = math.inf

    def take(self, loss: float) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.saved, self.live)
            live = [(p, k, v) for p, state in self.opt.state.items() for k, v in state.items()
                    if torch.is_tensor(v)]
            if [(id(p), k) for p, k, _ in live] != [(id(p), k) for p, k, _ in self.moments]:
                self.moments = [(p, k, v.clone()) for p, k, v in live]
            elif live:  # (none before the first step)
                torch._foreach_copy_([m for *_, m in self.moments], [v for *_, v in live])
        self.loss = loss

    def state_dict(self, params: list[nn.Parameter]) -> dict[str, Any]:
        """What a resumed fit needs (lipcli/resume.py); moments are named by their parameter's index."""
        index = {id(p): i for i, p in enumerate(params)}
        return {"saved": self.saved, "loss": self.loss,
                "moments": [(index[id(p)], k, v) for p, k, v in self.moments]}

    def load_state_dict(self, state: dict[str, Any], params: list[nn.Parameter]) -> None:
        """`state_dict`'s, its tensors read on the CPU (they go to their parameters' device)."""
        with torch.no_grad():
            for mine, saved in zip(self.saved, state["saved"]):
                mine.copy_(saved)
        self.moments = [(params[i], k, v.to(params[i].device)) for i, k, v in state["moments"]]
        self.loss = state["loss"]

    def restore(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.live, self.saved)
            kept = {id(p) for p, *_ in self.moments}
            for p in [p for p in self.opt.state if id(p) not in kept]:
                del self.opt.state[p]  # state created after the snapshot (e.g. before any step)
            for p, k, v in self.moments:
                self.opt.state[p][k].copy_(v)


class DivergenceError(LipRuntimeError):
    """Rollback could not save the run; `result` holds the last good outputs."""

    def __init__(self, message: str, result: FitResult) -> None:
        super().__init__(message)
        self.result = result


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


SMALL = 1024  # observed values below which only a non-finite loss is a divergence (4x4 SR inputs "diverged")
REG_NOISE_DECAY = 0.7  # the deep decoder's jitter decay per period (its code's constant; `jitter_std`)


def langevin_step(kernels: list[torch.Tensor], std: float, gen: torch.Generator, masked: MaskedParams) -> None:
    """SGLD-DIP's weight noise after an Adam step: theta <- theta + N(0, std^2) on the conv kernels.

    The convention is the published code's (ZezhouCheng/GP-DIP's denoising notebook, and OES's SGLD
    baseline): std = param_noise_sigma * lr, on the 4-D parameters (conv kernels) only, biases and
    BatchNorm left alone; GP-DIP uses sigma 2 (std 0.02 at lr 0.01), OES 0.5. We keep it rather than
    textbook Langevin dynamics, N(0, 2 lr) beside a plain gradient step: that is std 0.14 at lr 0.01,
    which wipes out the DIP net in a few steps; the DIP loss is not a calibrated log-likelihood and
    Adam's step is preconditioned, so there is no exact posterior to aim at, and the paper's SGLD
    numbers were made with this scale. Pruned weights are zeroed again (masks.py), so they stay 0.
    """
    with torch.no_grad():
        for p in kernels:
            p.add_(torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype), alpha=std)
    masked.zero_weights()


def decay_kernels(kernels: list[torch.Tensor], rate: float) -> None:
    """Decoupled weight decay (AdamW's, Loshchilov & Hutter 2019) on the conv kernels: w <- w (1 - rate), rate =
    lr x weight_decay. A conv followed by BatchNorm computes the same function at any scale of its kernel, and
    Adam moves every weight by about lr a step whatever its size, so without decay the kernels grow and each
    step turns them less and less: the fit slows as it goes. Decay holds their size, so the fit reaches its
    peak in fewer iterations (experiments/RESULTS-weight-decay.md). Pruned weights are 0 and stay 0."""
    if kernels:  # (a net without conv kernels: foreach refuses an empty list)
        with torch.no_grad():
            torch._foreach_mul_(kernels, 1 - rate)


def net_input(z: torch.Tensor, precision: str) -> torch.Tensor:
    """The input code as the net gets it. Every net's first ops are convolutions, for each of which bf16 autocast
    would cast z again (and pad it in fp32 first): cast once, the values are the same (tests/test_fit.py, every
    net preset) and two activation-sized copies go; not measurably faster on its own
    (`benchmarks/bench_change.py --change input-cast`)."""
    return z.to(torch.bfloat16) if precision == "bf16" else z


def jitter_std(cfg: FitConfig, it: int) -> float:
    """The input jitter's std at iteration `it`: `reg_noise`, or with `reg_noise_every` the deep decoder's schedule
    (anchors-spec d; their inpainting demo: 0.005 every 500). Their loop multiplies the std by 0.7 before the
    step's draw whenever the iteration is a multiple of the period, so iteration 0 already draws 0.7 x reg_noise."""
    if not cfg.reg_noise_every:
        return cfg.reg_noise
    return cfg.reg_noise * REG_NOISE_DECAY ** (it // cfg.reg_noise_every + 1)


def jittered(z: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """z + N(0, std^2), the noise drawn in z's own layout. Noise drawn NCHW and added to a channels-last z made
    the add a strided pass, 9x slower than the draw's own layout (0.28 against 0.03 ms for 32 x 128 x 128);
    `normal_` straight into a channels-last tensor is slower still. A channels-last z gets the same draw laid out
    channels-last: another realisation of the same i.i.d. noise."""
    if is_channels_last(z):
        n, c, h, w = z.shape
        noise = torch.randn((n, h, w, c), generator=gen, device=z.device).permute(0, 3, 1, 2)
    else:
        noise = torch.randn(z.shape, generator=gen, device=z.device)
    return z + noise * std


class SpikeGuard:
    """The output at a variance minimum and the trailing mean loss there, for when the loss spikes before the
    lagged output is taken.

    The stop reports the EMA output `lag` iterations after the minimum, so that the average is centred on it. A
    loss spike in between (the fit thrown out of its basin for a few dozen iterations, too little for rollback)
    pollutes that average: f16 at 256x256 with weight decay peaked at 30.63 dB, the loss rose 35% 13 iterations
    after the minimum and the lagged output read 29.80. The output at the minimum averages the iterations before
    it, which the spike did not touch. Blind: it reads the loss. On 413 recorded denoising trajectories without
    decay no loss in a lag window rose 1.2x; on noise-free tasks the loss falls towards 0 and jumps in relative
    terms, where it fired on 6 of 14 SR and inpainting runs at a small loss, so only the decayed denoising ticket
    uses it (experiments/RESULTS-stop-spike.md)."""

    WINDOW = 50  # iterations of the trailing mean loss at the minimum

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.output: torch.Tensor | None = None
        self.at, self.ref, self.peak = 0, math.inf, 0.0

    def minimum(self, it: int, output: torch.Tensor, losses: list[float]) -> None:
        """A new variance minimum at `it` with this output (copied) and the losses so far."""
        self.output = output.clone() if self.output is None else self.output.copy_(output)
        recent = losses[-self.WINDOW:]
        self.at, self.ref, self.peak = it, sum(recent) / len(recent), 0.0

    def watch(self, loss: float) -> None:
        """A loss after the minimum."""
        self.peak = max(self.peak, loss)

    def spiked(self) -> bool:
        return self.factor > 0 and self.output is not None and self.peak > self.factor * self.ref

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        vars(self).update(state)
        if self.output is not None:
            self.output = self.output.to(device)


def ema_lag(ema: float) -> int:
    """Iterations an EMA output (decay `ema`; 0 = off) lags the raw outputs the detector watches: the
    reported image is the EMA taken that much after the variance minimum (experiments/RESULTS-es.md)."""
    return round(ema / (1 - ema)) if ema else 0


def observation_loss(model: nn.Module, targets: list[Target], inputs: list[torch.Tensor] | None = None,
                     precision: str = "fp32") -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Sum over targets of MSE(A(crop(model(z))), y), one forward pass per target (own BN stats); also
    the outputs and each target's own loss. A one-channel net's output stands for the three equal channels a
    gray image is fitted as (problem.py), so it is viewed as those: no broadcast, the same loss."""
    total, outs, parts = torch.zeros((), device=targets[0].y.device), [], []
    for t, z in zip(targets, inputs or [t.z for t in targets]):
        with _autocast(precision, z.device):
            out = model(net_input(z, precision))
        out = crop_center(out.float(), t.size)
        if out.shape[1] == 1:
            out = out.expand(-1, 3, -1, -1)
        parts.append(t.op.loss(out, t.y))
        total = total + parts[-1]
        outs.append(out)
    return total, outs, parts


def fit(
    model: nn.Module,
    targets: list[Target],
    cfg: FitConfig,
    *,
    masks: Masks | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    callbacks: Iterable[Callable[[Step], bool | None]] = (),
    keeper: Keeper | None = None,
) -> FitResult:
    """Fit `model(z_i)` to every target at once (the loss sums over targets).

    Each target gets its own forward pass, so train-mode BatchNorm normalises every image by its
    own statistics (pitfalls.md). `penalty` adds a parameter-only term (e.g. OES's KL). A callback
    that returns True ends the run after that iteration (e.g. IMP's early-bird rule). `keeper` saves
    the loop's whole state as it goes and continues a saved run of the same fit (lipcli/resume.py).
    """
    if cfg.iters < 1:
        raise ValueError("iters must be >= 1")
    if not cfg.sgld >= 0:
        raise ValueError("sgld must be >= 0")
    if not 0 <= cfg.weight_decay * cfg.lr < 1:
        raise ValueError("weight_decay x lr must be in [0, 1)")
    lacking = [t.op.name for t in targets if t.op.consistent is None] if cfg.data_consistency else []
    if lacking:
        raise LipError(f"data consistency puts back what the observation holds exactly; the {lacking[0]} operator "
                       f"has no exact step for it")
    device = targets[0].z.device
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.train()
    model.to(memory_format=fmt)
    set_checkpointing(model, bool(cfg.checkpoint))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adam(params, cfg.lr, device)
    masked = MaskedParams(model, masks)
    masked.zero_weights()
    gen = seeds.generator(cfg.seed, device)
    kernels = [p for p in params if p.dim() == 4]  # the conv kernels (SGLD's noise and the decay act on them)
    if cfg.sgld:
        sgld_gen = seeds.generator(cfg.seed + seeds.SGLD, device)
    zs = [t.z.to(memory_format=fmt) for t in targets]
    detectors = [WindowedVariance(cfg.es_window, cfg.es_patience, seed=cfg.seed,
                                  floor=cfg.es_gate * t.noise_floor if cfg.es_gate and t.noise_floor else None,
                                  white=cfg.es_white or None, close=cfg.es_close or None)
                 for t in targets]
    lag = ema_lag(cfg.ema)
    pending: list[int | None] = [None] * len(targets)
    guards = [SpikeGuard(cfg.es_spike) for _ in targets] if cfg.es_spike and lag else []
    avg: list[torch.Tensor | None] = [None] * len(targets)
    raw: list[torch.Tensor | None] = [None] * len(targets)
    shown = avg if cfg.ema else raw  # the output the fit follows (the same lists, filled below)
    views: list[torch.Tensor | None] = [None] * len(targets)  # what it shows, scores and returns (Step.shown)
    results = [TargetResult(final=torch.empty(0), stopped=torch.empty(0), stopped_at=0) for _ in targets]
    callbacks = list(callbacks)
    losses: list[float] = []
    snapshot = Snapshot(model, opt)
    recoveries = failures = 0
    start = time.perf_counter()
    it = 0
    ended = False  # by the stop rule or a callback (the cap is checked as the loop goes)
    # every random stream the loop draws from: a resumed fit continues each where it was
    gens = [gen, *([sgld_gen] if cfg.sgld else []), *(g for t in targets for g in t.op.generators())]
    key = _identity(cfg, model, targets, masks, device) if keeper is not None else None
    saved = keeper.load(key, cfg.iters) if keeper is not None else None
    if saved is not None:  # continue where the saved run was (state() below wrote it); tensors come on the CPU
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])  # moves the moments to their parameters' device
        snapshot.load_state_dict(saved["snapshot"], params)
        for g, state in zip(gens, saved["gens"]):
            g.set_state(state)  # a generator's state is a CPU tensor on every device
        for d, state in zip(detectors, saved["detectors"]):
            d.load_state_dict(state, device)
        raw[:], avg[:] = ([None if x is None else x.to(device) for x in saved[k]] for k in ("raw", "avg"))
        pending[:] = saved["pending"]
        for g, state in zip(guards, saved.get("guards", [])):  # states of older lips hold none
            g.load_state_dict(state, device)
        views[:] = [t.op.consistent(x, t.y) if cfg.data_consistency else x for t, x in zip(targets, shown)]
        results = [TargetResult(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in r.items()})
                   for r in saved["results"]]
        losses, it, recoveries, failures = saved["losses"], saved["it"], saved["recoveries"], saved["failures"]
        ended = saved["ended"]
        start -= saved["seconds"]
        threads = saved.get("threads", torch.get_num_threads())  # states of older lips do not record it
        if device.type == "cpu" and not ended and it < cfg.iters and threads != torch.get_num_threads():
            keeper.notify(f"the saved fit ran on {threads} thread(s), this run has {torch.get_num_threads()}: sums "
                          "round in another order, so the result will match neither count's bit for bit")

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "opt": opt.state_dict(), "snapshot": snapshot.state_dict(params),
                "gens": [g.get_state() for g in gens], "detectors": [d.state_dict() for d in detectors],
                "raw": raw, "avg": avg, "pending": pending, "guards": [g.state_dict() for g in guards],
                "results": [vars(r) for r in results],
                "losses": losses, "it": it, "recoveries": recoveries, "failures": failures, "ended": ended,
                "seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}

    # A tiny observation's loss jumps by more than 5 dB from one step to the next, with or without the input
    # jitter (1e-7-1e-5 late on a 4x4 SR input; from the first steps on 1x1 and 2x2 inputs): no divergence there.
    jump_is_divergence = sum(t.y.numel() for t in targets) >= SMALL
    share = sharing.Share(device.type == "cpu")  # other lip processes running here get their cores
    with keeper.holding() if keeper is not None else nullcontext():
        while it < cfg.iters and not ended:
            share.poll(it)
            opt.zero_grad()  # to None: the next backward writes the gradients afresh
            inputs = [jittered(z, jitter_std(cfg, it), gen) if cfg.reg_noise else z for z in zs]
            total, outs, parts = observation_loss(model, targets, inputs, cfg.precision)
            if penalty is not None:
                total = total + penalty()
            loss = float(total.detach())
            if it == 0 and snapshot.loss == math.inf and math.isfinite(loss):
                snapshot.take(loss)  # the initial weights are the first good state: an early collapse rolls back
            if not math.isfinite(loss) or jump_is_divergence and loss > cfg.jump_factor * snapshot.loss:
                # DIP's backtracking: restore the last good weights; halve the step size on repeats (it stays
                # halved until a rollback after the next snapshot starts again from cfg.lr).
                snapshot.restore()
                recoveries += 1
                failures += 1
                if failures > cfg.max_recoveries:
                    raise DivergenceError(
                        f"the fit diverged {failures} times in a row at iteration {it + 1} and rollback "
                        "could not save it (try a lower --lr or --precision fp32)",
                        _finish(results, views, pending, it, losses, recoveries, start))
                for group in opt.param_groups:  # halve the step on every repeat, cumulatively
                    group["lr"] = cfg.lr * 0.5 ** (failures - 1)
                continue
            total.backward()
            masked.zero_grads()
            if (it + 1) % cfg.checkpoint_every == 0:  # before the step: the weights this loss was measured at
                snapshot.take(loss)
                failures = 0
            opt.step()
            if cfg.weight_decay:  # as the noise below, it follows the step size (also when rollback halved it)
                decay_kernels(kernels, cfg.weight_decay * opt.param_groups[0]["lr"])
            if cfg.sgld:  # the noise follows the step size, also when rollback has halved it
                langevin_step(kernels, cfg.sgld * opt.param_groups[0]["lr"], sgld_gen, masked)
            it += 1
            losses.append(loss)
            metrics: list[float | None] = []
            for k, (t, out, part) in enumerate(zip(targets, outs, parts)):
                out = out.detach()
                raw[k] = out
                if cfg.ema:
                    avg[k] = out.clone() if avg[k] is None else avg[k].lerp_(out, 1 - cfg.ema)
                views[k] = t.op.consistent(shown[k], t.y) if cfg.data_consistency else shown[k]
                residual = t.y - t.op.A(out) if detectors[k].reads_residual else None
                if detectors[k].update(it, out, float(part.detach()) if t.noise_floor else None, residual):
                    pending[k] = it + lag
                    if guards:
                        guards[k].minimum(it, views[k], losses)
                elif guards and pending[k] is not None:
                    guards[k].watch(loss)
                if pending[k] is not None and it >= pending[k]:
                    spiked = bool(guards) and guards[k].spiked()
                    results[k].stopped = guards[k].output.clone() if spiked else views[k].clone()
                    results[k].stopped_at, results[k].auto_stopped = guards[k].at if spiked else it, True
                    pending[k] = None
                value = None
                if t.clean is not None and (it % cfg.metric_every == 0 or it == cfg.iters):
                    value = t.metric(views[k], t.clean)
                    results[k].curve.append((it, value))
                    if results[k].oracle_best is None or value > results[k].oracle_best:
                        results[k].oracle_best, results[k].oracle_best_iter = value, it
                metrics.append(value)
            step = Step(it, cfg.iters, loss, metrics, [r.stopped_at for r in results], raw, views)
            ended = any([cb(step) for cb in callbacks])  # a list: every callback sees every step
            ended |= cfg.early_stop and all(d.should_stop(it) for d in detectors) and all(p is None for p in pending)
            if keeper is not None and (keeper.due() or keeper.final and (ended or it == cfg.iters)):
                keeper.save(key, state())  # between iterations (or at the end): a state to continue from
    result = _finish(results, views, pending, it, losses, recoveries, start)
    result.thread_changes = share.changes
    return result


def _identity(cfg: FitConfig, model: nn.Module, targets: list[Target], masks: Masks | None,
              device: torch.device) -> str:
    """Which fit this is, for resuming it (lipcli/resume.py): every setting but the iteration cap (a run
    may be continued further) and memory recomputation (the same result), the initial weights, masks,
    input codes, observations and operators (and their loss settings), the clean image scored (the oracle
    so far was scored on it) and the device type (a CUDA generator's state is not a CPU one's)."""
    settings = {k: v for k, v in cfg.recorded().items() if k not in ("iters", "checkpoint")}
    settings["device"] = device.type
    settings["targets"] = [(t.op.name, t.size, t.noise_floor, t.clean is not None,
                            *([t.op.loss_settings()] if t.op.loss_settings() else [])) for t in targets]
    tensors = [x for t in targets for x in (t.z, t.y, *t.op.state_dict().values(),
                                            *([] if t.clean is None else [t.clean]))]
    return fingerprint(settings, model, tensors + [masks[n] for n in sorted(masks or {})])


def _finish(results: list[TargetResult], views: list, pending: list[int | None], it: int, losses: list[float],
            recoveries: int, start: float) -> FitResult:
    """Fill in final outputs; a target whose detector never fired is 'stopped' at the last iterate."""
    for k, r in enumerate(results):
        if views[k] is None:
            continue
        r.final = views[k].clone()
        if r.stopped.numel() == 0 or pending[k] is not None:  # no minimum yet, or its lag not reached
            r.stopped, r.stopped_at, r.auto_stopped = r.final, it, False
    return FitResult(results, it, losses, recoveries, time.perf_counter() - start)
