"""Record full dense-DIP trajectories so any early-stopping rule can be replayed offline (issue 17).

Why: lip's stop rule was tuned on two 64x64 crops and fires early on unseen images. Choosing a better
rule needs many trajectories, and re-fitting for every candidate rule is unaffordable on a CPU. So each
(crop, task, noise level, seed) is fitted once, without early stopping, to 1.5x the fast preset's
iterations, and every signal a rule could read is stored per iteration:

- loss; PSNR of the raw and of the EMA (0.99) output vs the clean crop (reporting only; SSIM every 10);
- windowed moving variance of the raw outputs (windows 50/100/200/400) and of the EMA outputs (100/200),
  on the same fixed random subset of at most 65536 values that lipcli/earlystop.py watches;
- two cheap self-referenced signals: mean squared raw-EMA distance and step-to-step change;
- the whiteness of the residual y - A(x), raw and EMA (`whiteness`): a scale-free blind signal, since the
  residual is white noise only once the net has explained the image and before it fits the noise;
- for inpainting, the PSNR as returned (observed pixels put back) and two blind signals of the fill
  (`hole_signals`; they did not see the turn: RESULTS-inpaint-signal.md).

Each crop is fitted twice: `plain` (as lip restore would) and `heldout`, where a seeded random 3% of the
observed pixels is dropped from the loss and their MSE against the *noisy observation* is recorded: a
blind validation signal that never reads the clean image.

One JSONL row per run, appended when the run ends; a re-run skips keys already present, so a killed
run simply reruns. `--part i/n` cuts the priority-ordered job list into n chunks of equal estimated
cost (`--plan n` prints them). Analysis: experiments/es_analyze.py.

    PYTHONPATH=$PWD python experiments/es_collect.py --plan 60
    nohup nice -n 19 env PYTHONPATH=$PWD python experiments/es_collect.py --part 1/60 >> log 2>&1 &
"""
from __future__ import annotations

import argparse
import math
import random
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Only the entry points the package restructuring keeps (operators, nets and CLI modules are moving):
# the collection runs for days while the package changes under it.
from benchmarks.bench_bm3d import hole_box
from lipcli import config, library
from lipcli.earlystop import WindowedVariance
from lipcli.fit import FitConfig, Step, fit, observation_loss
from lipcli.problem import Problem, load_problem
from lipcli.restore import dense_prior, fitted_form, masked_prior

from es_rows import append_row, read_rows

try:
    from lipcli.metrics import ssim
except ImportError:  # SSIM is reporting only; never stop the collection for it
    ssim = None

DATA = Path("/work/shared/data")
OUT = Path(__file__).resolve().parent / "es_dev"
HORIZON = 1.5  # x the preset's iterations, so stops later than today's can be scored
RAW_WINDOWS = (50, 100, 200, 400)
EMA_WINDOWS = (100, 200)
PROBE_SEED = 7  # Probe's jitter draws: a stream apart from the fit's
EMA = 0.99  # recorded for every task (the fast preset reports it for denoising only)
HOLDOUT = 0.03
MAX_VALUES = 65536  # as lipcli/earlystop.py
SSIM_EVERY = 10
WHITE_LAG = 3  # whiteness sums the squared autocorrelations over lags |dy|, |dx| <= 3

# Halves are fixed here: rules are chosen on TUNE and reported on REPORT. The same picture in another
# file (house-gray256, lenna, lena-gray512, baboon, barbara-gray512, man-gray512, peppers-gray256,
# kate-restoration) is left out so no picture sits in both halves. snail has no clean image.
TUNE = ["house", "baboon512", "bird", "butterfly", "coastguard", "comic", "f16", "kodim02", "monarch",
        "pepper", "sf4", "kate", "cameraman-gray256", "boat-gray512", "montage-gray256"]
REPORT = ["astronaut", "baby", "barbara", "bridge", "face", "flowers", "foreman", "head", "lena512", "man",
          "zebra", "library", "vase", "hill-gray512", "couple-gray512"]  # head repeats face: es_rows.SAME_PICTURE
ORDER = [x for pair in zip(TUNE, REPORT) for x in pair]  # tune and report interleaved, so a cut run has both
SR_SUBSET = {"butterfly", "bird", "monarch", "comic", "house", "baby", "head", "zebra", "foreman", "man"}
BIG_SUBSET = {"house", "kodim02", "monarch", "lena512", "baby", "zebra"}  # 256x256 crops
MASKS = {"kate": "kate_mask.png", "library": "library_mask.png", "vase": "vase_mask.png"}
SEED1_SUBSET = set(TUNE[:6] + REPORT[:6])
SEC_PER_ITER = {64: 0.15, 128: 0.5, 256: 1.8}  # measured on the shared 2-core box, 1 thread, bf16 (rough)


@dataclass(frozen=True)
class Job:
    image: str
    size: int
    crop: int
    task: str  # denoise | inpaint | sr
    param: str  # sigma for denoise, "bern" or mask file for inpaint, scale for sr
    seed: int

    @property
    def half(self) -> str:
        return "tune" if self.image in TUNE else "report"

    def key(self, variant: str) -> str:
        return f"{self.image}|{self.size}|c{self.crop}|{self.task}:{self.param}|s{self.seed}|{variant}"

    def iters(self) -> tuple[int, int]:
        preset = int(config.resolve(self.task, "fast", "fast", {})["iters"])
        return preset, int(round(HORIZON * preset))

    def cost(self) -> float:
        """Estimated seconds for one run (one variant)."""
        return self.iters()[1] * SEC_PER_ITER[self.size]


def _source(image: str) -> Path:
    return DATA / "images" / f"{image}.png"


def _fits(image: str, size: int) -> bool:
    with Image.open(_source(image)) as img:
        return min(img.size) >= size


def jobs() -> list[Job]:
    """Every run, most informative first: tune and report images interleave within each tier."""
    tiers: list[list[tuple[str, int, int, str, str, int]]] = [[] for _ in range(9)]
    for im in ORDER:
        for size in (64, 128, 256):
            if not _fits(im, size):
                continue
            den = [("denoise", s) for s in ("15", "25", "50")]
            if size == 64:
                tiers[0].append((im, 64, 0, "denoise", "25", 0))
                tiers[1] += [(im, 64, 0, t, p, 0) for t, p in (den[0], den[2], ("inpaint", "bern"))]
                tiers[4] += [(im, 64, c, t, p, 0) for c in (1, 2) for t, p in den + [("inpaint", "bern")]]
                if im in SEED1_SUBSET:
                    tiers[7] += [(im, 64, 0, "denoise", "25", 1), (im, 64, 0, "inpaint", "bern", 1)]
            elif size == 128:
                sr = [("sr", "4")] if im in SR_SUBSET else []
                tiers[2] += [(im, 128, 0, t, p, 0) for t, p in [den[1], ("inpaint", "bern")] + sr]
                tiers[5] += [(im, 128, 0, t, p, 0) for t, p in (den[0], den[2])]
                tiers[5] += [(im, 128, 1, t, p, 0) for t, p in [den[1], ("inpaint", "bern")] + sr]
                tiers[8] += [(im, 128, 1, t, p, 0) for t, p in (den[0], den[2])]
                if im in MASKS:
                    tiers[3].append((im, 128, 0, "inpaint", MASKS[im], 0))
            elif im in BIG_SUBSET or im in MASKS:
                sr = [("sr", "4")] if im in SR_SUBSET else []
                main = [den[1], ("inpaint", "bern")] + sr if im in BIG_SUBSET else []
                masks = [("inpaint", MASKS[im])] if im in MASKS else []
                tiers[6] += [(im, 256, 0, t, p, 0) for t, p in main + masks]
                if im in BIG_SUBSET:
                    tiers[8] += [(im, 256, 0, t, p, 0) for t, p in (den[0], den[2])]
    return [Job(*t) for tier in tiers for t in tier]


VARIANTS = ("plain", "heldout")
Run = tuple[Job, str]


def runs(all_jobs: list[Job]) -> list[Run]:
    return [(j, v) for j in all_jobs for v in VARIANTS]


def part(todo: list[Run], i: int, n: int) -> list[Run]:
    """The i-th (1-based) of n contiguous chunks of roughly equal estimated cost (a run is never split,
    so a 256x256 run, ~1 h, is a part of its own)."""
    total, acc, out = sum(j.cost() for j, _ in todo), 0.0, []
    for j, v in todo:
        mid = acc + j.cost() / 2
        if (i - 1) * total / n <= mid < i * total / n:
            out.append((j, v))
        acc += j.cost()
    return out


def grid(images: list[str], sizes: list[int], tasks: list[str], seed: int = 0) -> list[Job]:
    """Every image x size x task:param, crop 0, image by image: a set outside the plan (e.g. SR or a mask
    of masks-inpainting on 64x64 crops); images too small for a size are skipped. `seed` draws the noise,
    the net and its input code (another seed: another noisy observation and another fit of the same crop)."""
    return [Job(im, s, 0, *tp.split(":", 1), seed) for im in images for s in sizes if _fits(im, s) for tp in tasks]


def _mask(job: Job) -> Path | None:
    """The mask file of an inpainting job with a mask of masks-inpainting (any param but "bern")."""
    return DATA / "masks-inpainting" / job.param if job.task == "inpaint" and job.param != "bern" else None


def _box(job: Job, width: int, height: int) -> tuple[int, int]:
    """(top, left) of the crop: centred for crop 0, else seeded; for mask jobs the window with the most
    missing pixels, at most 30% (as benchmarks/bench_bm3d.py: the centroid of text spread over the whole
    image can fall where nothing is missing)."""
    s = job.size
    if _mask(job):
        with Image.open(_mask(job)) as m:
            left, top, _, _ = hole_box(np.asarray(m.convert("L")) < 128, s)
        return top, left
    if job.crop == 0:
        cy, cx = height // 2, width // 2
    else:
        rng = random.Random(f"{job.image}-{s}-{job.crop}")
        return rng.randint(0, height - s), rng.randint(0, width - s)
    return min(max(cy - s // 2, 0), height - s), min(max(cx - s // 2, 0), width - s)


def prepare(job: Job, cache: Path) -> tuple[Path, Path | None, tuple[int, int]]:
    """Write the clean crop (and mask crop) as PNGs for load_problem; gray stays gray."""
    cache.mkdir(parents=True, exist_ok=True)
    with Image.open(_source(job.image)) as img:
        img = img.convert("L" if img.mode in ("L", "P", "1") else "RGB")
        top, left = _box(job, *img.size)
        path = cache / f"{job.image}_{job.size}_{top}_{left}.png"
        img.crop((left, top, left + job.size, top + job.size)).save(path)
    mask = None
    if _mask(job):
        mask = cache / f"{job.image}_{job.size}_{top}_{left}_{job.param}"
        with Image.open(_mask(job)) as m:
            m.convert("L").crop((left, top, left + job.size, top + job.size)).save(mask)
    return path, mask, (top, left)


def noise_free(op: Any, x: torch.Tensor) -> torch.Tensor:
    """The operator's noise-free map A(x): `op.A` in lipcli/physics, `op.forward` in the older operators."""
    return op.A(x) if hasattr(op, "A") else op.forward(x)


class HeldOut:
    """The task's operator followed by a mask that drops held-out observation pixels from the loss.

    Duck-typed (the fitting loop only calls `loss`) rather than a subclass, so it does not depend on
    where the operator classes live or which interface they have."""

    def __init__(self, base: Any, keep: torch.Tensor) -> None:
        self.base, self.keep = base, keep
        self.name = f"{base.name}+holdout"

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return noise_free(self.base, x) * self.keep

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.A(x), y)

    def to(self, device: torch.device) -> "HeldOut":
        self.base, self.keep = self.base.to(device), self.keep.to(device)
        return self


def holdout_mask(problem: Problem, seed: int) -> torch.Tensor:
    """(1,1,h,w) in observation space, 1 = used in the loss. Whole pixels (all channels) are held out,
    so a gray image replicated to three channels cannot leak a held-out value through another channel."""
    h, w = problem.y.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((1, 1, h, w), generator=gen) >= HOLDOUT).float()


def whiteness(r: torch.Tensor, lag: int = WHITE_LAG) -> tuple[float, float, float]:
    """(across, down, total) for a residual (..., h, w): its normalised lag-1 autocorrelation across and down,
    and the sum of squared normalised autocorrelations over the lags within `lag` (each pair of opposite lags
    once), channels pooled. White noise gives ~0; a residual that still holds image structure gives > 0;
    a net that has fitted part of the noise leaves a high-passed residual, < 0 at lag 1. Circular (FFT), so
    one wrapped row/column in h (w) enters a lag; negligible at 64 and above."""
    r = r - r.mean(dim=(-2, -1), keepdim=True)
    f = torch.fft.rfft2(r)
    ac = torch.fft.irfft2(f.real.square() + f.imag.square(), s=r.shape[-2:])
    ac = ac.reshape(-1, *r.shape[-2:]).sum(0)
    ac = ac / ac[0, 0]
    idx = torch.arange(-lag, lag + 1)
    near = ac[idx][:, idx]
    return float(ac[0, 1]), float(ac[1, 0]), float((near.square().sum() - 1) / 2)


_CROSS = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def _neighbours(v: torch.Tensor) -> torch.Tensor:
    """Per channel, the sum of each value's 4 neighbours (zero outside the image); v is (C, H, W)."""
    c = v.shape[0]
    return F.conv2d(v[None], _CROSS.expand(c, 1, 3, 3).to(v), padding=1, groups=c)[0]


def hole_signals(v: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Two blind signals of how well the holes are filled, from the net's output v, the mask and the
    observation only (never the clean image):

    - nbr: at observed values with a hole among their 4 neighbours, the mean squared difference between the
      observed value and the mean of the net's values in those holes. The net fits the observed values
      themselves; its hole values are free, so how well they predict their observed neighbours tracks
      their own error (plus the picture's own local variation, which does not change during the fit).
    - rough: on what lip returns (observed values put back), log of the mean squared discrete Laplacian at
      hole values over that at observed ones. A random mask makes holes and observed values alike in a
      natural picture, so a fill rougher (or smoother) than the observed values drifts from 0."""
    v, y = v.reshape(v.shape[-3:]), y.reshape(y.shape[-3:])  # one image, batch dimension or not
    m = mask.expand_as(v).float()
    holes = 1 - m
    count = _neighbours(holes)
    near = (m > 0) & (count > 0)
    pred = _neighbours(v * holes) / count.clamp(min=1)
    nbr = float((y - pred)[near].square().mean())
    z = m * y + holes * v
    lap = z - _neighbours(z) / _neighbours(torch.ones_like(z))
    rough = math.log(float(lap[holes > 0].square().mean()) / max(float(lap[m > 0].square().mean()), 1e-20))
    return nbr, rough


class Recorder:
    """Step callback computing every per-iteration signal; keeps ring buffers of the last outputs."""

    def __init__(self, problem: Problem, seed: int, held: torch.Tensor | None) -> None:
        self.problem, self.held = problem, held
        self.clean = problem.clean
        n = problem.clean.numel()
        gen = torch.Generator().manual_seed(seed)  # the subset lipcli/earlystop.py picks for this seed
        self.index = torch.randperm(n, generator=gen)[:MAX_VALUES] if n > MAX_VALUES else None
        self.raw_ring = _Ring(max(RAW_WINDOWS), RAW_WINDOWS)
        self.ema_ring = _Ring(max(EMA_WINDOWS), EMA_WINDOWS)
        self.ema: torch.Tensor | None = None
        self.prev: torch.Tensor | None = None
        # What an inpainting restore returns: the observed pixels as given, the net's only in the holes (its
        # PSNR measures the holes; the net's own output also scores how well it redraws the observed pixels).
        self.dc = problem.op.name == "inpaint"
        self.sig: dict[str, list[float | None]] = {k: [] for k in self.names()}
        if held is not None:  # observed AND held out: where the validation MSE is measured
            obs = noise_free(problem.op, torch.ones_like(problem.clean)) != 0  # all True unless inpainting
            self.val = obs & (held == 0)

    def names(self) -> list[str]:
        out = ["loss", "psnr_raw", "psnr_ema", "d_raw_ema", "d_step"]
        out += [f"var_raw_{w}" for w in RAW_WINDOWS] + [f"var_ema_{w}" for w in EMA_WINDOWS]
        out += ["ssim_raw", "ssim_ema"] + (["heldout_mse"] if self.held is not None else [])
        out += [f"white_{o}{d}" for o in ("raw", "ema") for d in ("_h", "_v", "")]
        return out + (["psnr_raw_dc", "psnr_ema_dc"] + [f"{k}_{o}" for k in ("nbr", "rough") for o in ("raw", "ema")]
                       if self.dc else [])

    def __call__(self, step: Step) -> None:
        x = step.raw[0].detach().float()
        self.ema = x.clone() if self.ema is None else self.ema.lerp_(x, 1 - EMA)
        s, metric = self.sig, self.problem.metric
        s["loss"].append(step.loss)
        s["psnr_raw"].append(metric(x, self.clean))
        s["psnr_ema"].append(metric(self.ema, self.clean))
        s["d_raw_ema"].append(float((x - self.ema).square().mean()))
        s["d_step"].append(float((x - self.prev).square().mean()) if self.prev is not None else None)
        self.prev = x.clone()
        for name, ring, v in (("var_raw", self.raw_ring, x), ("var_ema", self.ema_ring, self.ema)):
            flat = v.reshape(-1)
            for w, var in ring.push(flat if self.index is None else flat[self.index]).items():
                s[f"{name}_{w}"].append(var)
        if step.iteration % SSIM_EVERY == 0 and ssim is not None:
            s["ssim_raw"].append(ssim(x, self.clean))
            s["ssim_ema"].append(ssim(self.ema, self.clean))
        if self.dc:
            s["psnr_raw_dc"].append(metric(self.problem.op.consistent(x, self.problem.y), self.clean))
            s["psnr_ema_dc"].append(metric(self.problem.op.consistent(self.ema, self.problem.y), self.clean))
            for o, v in (("raw", x), ("ema", self.ema)):
                nbr, rough = hole_signals(v, self.problem.op.mask, self.problem.y)
                s[f"nbr_{o}"].append(nbr)
                s[f"rough_{o}"].append(rough)
        for o, v in (("raw", x), ("ema", self.ema)):
            for d, val in zip(("_h", "_v", ""), whiteness(self.problem.y - noise_free(self.problem.op, v))):
                s[f"white_{o}{d}"].append(val)
        if self.held is not None:
            err = (noise_free(self.problem.op, x) - self.problem.y).square()
            s["heldout_mse"].append(float(err[self.val.expand_as(err)].mean()))


class _Ring:
    """Last W vectors (float32) with float64 running sums per window w <= W: VAR_w = mean||x||^2 - ||mean x||^2,
    per value, as lipcli/earlystop.py computes it; None until w outputs have been seen."""

    def __init__(self, size: int, windows: tuple[int, ...]) -> None:
        self.size, self.windows, self.count = size, windows, 0
        self.buf: torch.Tensor | None = None

    def push(self, v: torch.Tensor) -> dict[int, float | None]:
        if self.buf is None:
            self.buf = torch.zeros((self.size, v.numel()))
            self.norms = torch.zeros(self.size, dtype=torch.float64)
            self.totals = {w: torch.zeros(v.numel(), dtype=torch.float64) for w in self.windows}
        v64 = v.double()
        for w in self.windows:  # drop the output that leaves window w (before the slot is overwritten)
            if self.count >= w:
                self.totals[w] -= self.buf[(self.count - w) % self.size]
            self.totals[w] += v64
        slot = self.count % self.size
        self.buf[slot], self.norms[slot] = v, float(v64.square().sum())
        self.count += 1
        out: dict[int, float | None] = {}
        for w in self.windows:
            if self.count < w:
                out[w] = None
                continue
            idx = torch.arange(self.count - w, self.count) % self.size
            mean_sq = float(self.norms[idx].sum()) / w
            out[w] = max(0.0, mean_sq - float((self.totals[w] / w).square().sum())) / v.numel()
        return out


def _bf16() -> bool:
    """As lip's 'auto' precision: bf16 only where the CPU has it in hardware."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def _lip_commit() -> str:
    """The lip commit the worktree is at, so rows from before and after a rebase can be told apart."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _round(values: list[float | None], sig: int = 5) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else float(f"{v:.{sig}g}") for v in values]


@dataclass
class Setup:
    """One recorded fit, built as `lip restore` builds it; `target` has no clean image (the loop never
    sees it; a recorder scores against `problem.clean`)."""
    problem: Problem
    settings: dict[str, Any]
    cfg: FitConfig
    model: torch.nn.Module
    masks: Any
    target: Any
    box: tuple[int, int]
    net: str


def setup(job: Job, cache: Path, iters: int, net: str | None = None, ticket: str | None = None,
          lr: float | None = None, precision: str | None = None, weight_decay: float | None = None,
          reg_noise: float | None = None) -> Setup:
    """The fast preset's fit of `job` to `iters`, no early stop (rules are replayed offline). `net`: a net
    preset other than the preset's (e.g. dip-w32); `ticket`: a ticket (library name or file), fitted
    compacted as `lip restore` fits it, with its library entry's own settings (its schedules read at the
    blind noise estimate, as `api.Restorer.config` does, and kept in `Setup.settings` as numbers); `lr`:
    another step size; `precision`: default bf16 where it runs; `weight_decay`: another kernel decay than the
    settings' (the ticket's entry decays at some noise levels; the fast preset does not); `reg_noise`: another
    input jitter."""
    name, _, round_ = (ticket or "").partition(":r")  # FILE:rN fits round N, not the recommended one
    under = library.fast_settings(name, "fast", job.task) if ticket else {}
    settings = config.resolve(job.task, "fast", "fast", {}, under)
    if lr is not None:
        settings["lr"] = lr
    if reg_noise is not None:
        settings["reg_noise"] = reg_noise
    if job.task == "denoise":
        settings["sigma"] = float(job.param)
    elif job.task == "sr":  # inpainting keeps the preset's keep=0.5 (Bernoulli jobs)
        # Every SR row here was made with the observation A(x), before lip's --simulate took Pillow's resize
        # (RESULTS-sr-downscale.md): kept so, so that the rows stay reproducible.
        settings.update(scale=int(job.param), downscale="operator")
    path, mask, box = prepare(job, cache)
    problem = load_problem(path, job.task, settings, simulate=True, seed=job.seed, inpaint_mask=mask)
    precision = precision or ("bf16" if _bf16() else "fp32")
    settings.update(config.at_levels(settings, problem.noise_sigma()))
    cfg = FitConfig(iters=iters, lr=float(settings["lr"]), reg_noise=settings["reg_noise"], ema=float(settings["ema"]),
                    early_stop=False, es_window=settings["es_window"], es_patience=int(settings["es_patience"]),
                    precision=precision, channels_last=precision == "bf16", seed=job.seed, es_gate=0.0,
                    weight_decay=float(settings["weight_decay"] if weight_decay is None else weight_decay))
    prior = (masked_prior(name, int(round_) if round_ else None, None, "artifact") if ticket
             else dense_prior(net or settings["net"]))
    built = prior.build(job.seed)  # as lipcli.restore.restore: net, then input code, from the run's seed
    target = problem.target(built, torch.Generator().manual_seed(job.seed), torch.device("cpu"))
    model, masks, _ = fitted_form(built, prior, lambda line: None)
    return Setup(problem, settings, cfg, model, masks, replace(target, clean=None), box,
                 f"ticket:{ticket}" if ticket else net or settings["net"])


def shipped_detector(s: Setup, seed: int) -> WindowedVariance:
    """The preset's detector (window, patience, noise gate) for a fit whose own loop runs ungated
    (`setup` turns the gate off so that rules can be replayed): what `lip restore` would stop with."""
    gate, floor = s.settings["es_gate"], s.target.noise_floor
    return WindowedVariance(s.cfg.es_window, s.cfg.es_patience, seed=seed,
                            floor=gate * floor if gate and floor else None)


class StopReplay:
    """lip's stop replayed online for one reported output, in a fit that itself runs on (early_stop off):
    the output is reported `lag` iterations after the detector's latest variance minimum, and the rule ends
    once the patience has run out with nothing pending, as lipcli/fit.py does. `out` holds stopped_at and
    psnr of the report, and ended (absent: the rule had not ended). Replays with other lags can share one
    detector."""

    def __init__(self, lag: int) -> None:
        self.lag, self.pending, self.out = lag, None, {}

    def step(self, it: int, new_min: bool, done: bool, psnr: Callable[[], float]) -> None:
        """`new_min`, `done`: the detector's update and should_stop at iteration `it`."""
        if "ended" in self.out:
            return
        if new_min:
            self.pending = it + self.lag
        if self.pending is not None and it >= self.pending:
            self.out.update(stopped_at=it, psnr=psnr())
            self.pending = None
        if done and self.pending is None:
            self.out["ended"] = it


class Decay:
    """Experiment only, not in lip: Adam's step decayed linearly to 0 over the last `frac` of the fit
    (warmup-stable-decay's decay phase), for tasks that run to a known cap. `install` makes the optimizer
    fit() builds next one that the callback can reach."""

    def __init__(self, frac: float, cfg: FitConfig) -> None:
        self.frac, self.cfg, self.opts = frac, cfg, []

    @contextmanager
    def install(self) -> Iterator[None]:
        adam, opts = torch.optim.Adam, self.opts

        class Caught(adam):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                opts.append(self)

        torch.optim.Adam = Caught
        try:
            yield
        finally:
            torch.optim.Adam = adam

    def __call__(self, step: Step) -> None:
        left = (self.cfg.iters - step.iteration) / (self.frac * self.cfg.iters)
        for group in self.opts[-1].param_groups:  # the step size of the next iteration
            group["lr"] = self.cfg.lr * min(1.0, left)


class Probe:
    """Experiment only: every `every` iterations, the PSNR of the net's output at the current weights without
    the input jitter, and averaged over 1, 4, 16, ... `k` jitter draws: an average over the jitter alone, where
    the EMA averages over the jitter and the last ~100 iterations' weights. Forward passes only, on a
    generator of its own, so the fit itself is unchanged."""

    def __init__(self, s: Setup, k: int, every: int = 75) -> None:
        self.s, self.every = s, every
        self.ks = [4 ** i for i in range(int(math.log(k, 4)) + 1)]
        self.gen = torch.Generator().manual_seed(PROBE_SEED)
        self.sig: dict[str, list[float]] = {"it": [], "nojit": [], **{f"jit{k}": [] for k in self.ks}}

    def _out(self, z: torch.Tensor) -> torch.Tensor:
        return observation_loss(self.s.model, [self.s.target], [z], self.s.cfg.precision)[1][0]

    @torch.no_grad()
    def __call__(self, step: Step) -> None:
        if step.iteration % self.every:
            return
        z, problem, sigma = self.s.target.z, self.s.problem, self.s.cfg.reg_noise
        self.sig["it"].append(step.iteration)
        self.sig["nojit"].append(problem.metric(self._out(z), problem.clean))
        total = torch.zeros_like(problem.clean)
        for n in range(1, self.ks[-1] + 1):
            total += self._out(z + torch.randn(z.shape, generator=self.gen) * sigma)
            if n in self.ks:
                self.sig[f"jit{n}"].append(problem.metric(total / n, problem.clean))


def run(job: Job, variant: str, cache: Path, horizon: int | None = None, net: str | None = None,
        ticket: str | None = None, lr: float | None = None, lr_decay: float = 0.0, probe: int = 0,
        weight_decay: float | None = None, reg_noise: float | None = None) -> dict[str, Any]:
    """One fit of `job` (`setup`) to a fixed horizon (default 1.5x the preset's iterations); its JSONL row.
    `lr_decay`: the last fraction of the fit over which the step decays to 0 (`Decay`; 0 = constant);
    `probe`: record `Probe`'s outputs, averaging up to this many jitter draws (0 = off)."""
    preset_iters, full = job.iters()
    s = setup(job, cache, horizon or full, net, ticket, lr, weight_decay=weight_decay, reg_noise=reg_noise)
    problem, cfg, target = s.problem, s.cfg, s.target
    held = holdout_mask(problem, zlib.crc32(job.key("").encode())) if variant == "heldout" else None
    if held is not None:
        target = replace(target, op=HeldOut(problem.op, held), y=problem.y * held)
    rec = Recorder(problem, job.seed, held)
    last: list[Step] = []  # the final Step: lip's own detector's stop point, to check the replay against
    start = time.perf_counter()
    decay = Decay(lr_decay, cfg) if lr_decay else None
    probing = Probe(s, probe) if probe else None
    extra = [c for c in (decay, probing) if c is not None]
    with decay.install() if decay else nullcontext():
        result = fit(s.model, [target], cfg, masks=s.masks, callbacks=[rec, lambda step: _keep(last, step), *extra])
    row = {"key": job.key(variant), "net": s.net, "lr": cfg.lr, "reg_noise": cfg.reg_noise,
           **({"lr_decay": lr_decay} if decay else {}),
           **({"weight_decay": cfg.weight_decay} if cfg.weight_decay else {}),
           **({"probe": {k: _round(v) for k, v in probing.sig.items()}} if probing else {}),
           "image": job.image, "half": job.half,
           "size": job.size, "crop": job.crop,
           "box": list(s.box), "task": job.task, "param": job.param, "seed": job.seed, "variant": variant,
           "holdout": HOLDOUT if held is not None else 0.0, "preset_iters": preset_iters, "iters": cfg.iters,
           "preset_ema": cfg.ema, "es_window": cfg.es_window, "es_patience": cfg.es_patience,
           "precision": cfg.precision, "metric": problem.metric_name, "lip_commit": _lip_commit(), "recoveries": result.recoveries,
           "fit_stopped_at": last[-1].stopped_at[0] if last else None,
           "seconds": round(time.perf_counter() - start, 1), "ssim_every": SSIM_EVERY,
           "signals": {k: _round(v) for k, v in rec.sig.items()}}
    return row


def _keep(last: list[Step], step: Step) -> None:
    last[:] = [step]


def done_keys(path: Path) -> set[str]:
    return {r["key"] for r in read_rows(path) if "key" in r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="1/1", help="i/n: run the i-th of n equal-cost chunks")
    ap.add_argument("--plan", type=int, help="print the estimated minutes of each of N parts and exit")
    ap.add_argument("--out", type=Path, default=OUT / "rows.jsonl.gz")
    ap.add_argument("--images", help="comma list: only these images (testing)")
    ap.add_argument("--sizes", help="comma list: only these sizes (testing)")
    ap.add_argument("--iters", type=int, help="the horizon in iterations (default: 1.5x the preset's); short for testing")
    ap.add_argument("--limit", type=int, help="at most this many jobs (testing)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--net", help="net preset to fit (default: the fast preset's); use its own --out file")
    ap.add_argument("--mask", help="a ticket to fit instead (library name or file; FILE:rN for its round N); use "
                    "its own --out file")
    ap.add_argument("--lr", type=float, help="another learning rate; use its own --out file")
    ap.add_argument("--reg-noise", type=float, help="another input jitter; use its own --out file")
    ap.add_argument("--lr-decay", type=float, default=0.0, help="decay the step linearly to 0 over this last "
                    "fraction of --iters (experiment only); use its own --out file")
    ap.add_argument("--weight-decay", type=float, help="another kernel decay (lip's --weight-decay) than the "
                    "settings' (default: the preset's or the ticket entry's); use its own --out file")
    ap.add_argument("--probe", type=int, default=0, help="record the output without jitter and averaged over up "
                    "to this many jitter draws every 75 iterations (experiment only; Probe)")
    ap.add_argument("--tasks", help="comma list of task:param (e.g. denoise:25): only these")
    ap.add_argument("--variants", default="plain,heldout", help="which variants to run")
    ap.add_argument("--grid", action="store_true", help="instead of the plan: every --images (default: tune and "
                    "report interleaved) x --sizes (default 64) x --tasks, crop 0, --seed; use its own --out file")
    ap.add_argument("--seed", type=int, default=0, help="--grid: the runs' seed (noise, net, input code)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.grid:
        if not a.tasks:
            ap.error("--grid needs --tasks")
        images = a.images.split(",") if a.images else ORDER
        sizes = [int(x) for x in (a.sizes or "64").split(",")]
        everything = runs(grid(images, sizes, a.tasks.split(","), a.seed))
    else:
        everything = runs(jobs())
    if a.plan:
        for i in range(1, a.plan + 1):
            p = part(everything, i, a.plan)
            print(f"part {i}/{a.plan}: {len(p)} runs, ~{sum(j.cost() for j, _ in p) / 60:.0f} min")
        print(f"total {len(everything)} runs, ~{sum(j.cost() for j, _ in everything) / 3600:.1f} h")
        return
    i, n = map(int, a.part.split("/"))
    todo = part(everything, i, n)
    if a.images:
        todo = [(j, v) for j, v in todo if j.image in a.images.split(",")]
    if a.sizes:
        todo = [(j, v) for j, v in todo if str(j.size) in a.sizes.split(",")]
    if a.tasks:
        todo = [(j, v) for j, v in todo if f"{j.task}:{j.param}" in a.tasks.split(",")]
    todo = [(j, v) for j, v in todo if v in a.variants.split(",")]
    todo = todo[: a.limit] if a.limit else todo
    a.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(a.out)
    cache = a.out.parent / "crops"
    for job, variant in todo:
        if job.key(variant) in done:
            continue
        print(f"{time.strftime('%H:%M:%S')} {job.key(variant)} ...", flush=True)
        try:
            row = run(job, variant, cache, a.iters, a.net, a.mask, a.lr, a.lr_decay, a.probe, a.weight_decay,
                      a.reg_noise)
        except Exception as exc:  # a diverged run is recorded, not retried forever
            row = {"key": job.key(variant), "error": f"{type(exc).__name__}: {exc}"}
        append_row(a.out, row)
        print(f"  {row.get('seconds', '-')} s", flush=True)


if __name__ == "__main__":
    main()
