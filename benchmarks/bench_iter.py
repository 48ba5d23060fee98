#!/usr/bin/env python
"""Speed, peak memory and output quality of one DIP training iteration: lip's loop vs a plain reference.

The reference is a deliberately plain re-implementation of the DIP "skip" hourglass, written from
anchors-spec a.1 the way the published code structures it (separate ReflectionPad2d + unpadded Conv2d
modules in nested nn.Sequential/Concat containers), trained by a plain loop (fp32, NCHW, batch 1,
Adam lr 0.01, MSE to the noisy image, z + reg-noise jitter, EMA of the output as a fresh tensor).

lip is timed through its real loop, `lipcli.fit.fit`, with a per-iteration callback that records a
timestamp, so set-up (Adam creation, first snapshot) is excluded and everything the loop does per
iteration (early-stopping detector, rollback snapshots every 10 steps, loss sync) is included.

Three phases:
  1. timing: for each size, repetitions are interleaved over the paths (ref, lip-fp32, ..., ref, ...)
     and medians are reported, because these shared VMs have noisy episodes;
  2. quality: N iterations of sigma=25 denoising on 128x128 centre crops of 3 images, every path
     started from the same weights, z, noisy image and jitter sequence; PSNR of the EMA output;
  3. memory: peak RSS (VmHWM) of a fresh subprocess per (path, size), compared with
     `lipcli.nets.estimate_bytes`.

Usage:  python benchmarks/bench_iter.py [--sizes 128 256] [--repeats 5] [--out benchmarks/RESULTS-iter.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lipcli import api, device as devices, nets
from lipcli.fit import FitConfig, Target, fit
from lipcli.metrics import psnr
from lipcli.physics import Denoise
from lipcli.restore import fitted_form

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent.parent / "shared" / "data" / "images"  # /work/shared/data/images
PSNR_IMAGES = ("house.png", "f16.png", "baby.png")
EXPECTED_PARAMS = 2_217_831
SIGMA = 25.0
REG_NOISE = 1 / 30
LR = 0.01

# name -> (precision, channels_last); "ref" is the plain reference loop.
LIP_PATHS = {
    "lip-fp32": ("fp32", False),
    "lip-fp32-cl": ("fp32", True),
    "lip-bf16": ("bf16", False),
    "lip-bf16-cl": ("bf16", True),
}
ALL_PATHS = ("ref", *LIP_PATHS)


def timing_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options of the interleaved per-iteration benchmarks (bench_widths.py, bench_change.py)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    return ap


def emit(text: str, out: Path | None) -> None:
    """A benchmark's results (markdown) on stdout, and in `out` when given."""
    print(text)
    if out:
        out.write_text(text)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Reference DIP skip net, written from anchors-spec a.1
# --------------------------------------------------------------------------------------------------

class Seq(nn.Sequential):
    """nn.Sequential whose `add` names children 1, 2, 3, ... (the published code's numbering)."""

    def add(self, module: nn.Module) -> nn.Module:
        self.add_module(str(len(self) + 1), module)
        return module


class Concat(nn.Module):
    """Run every branch on the same input and concatenate along channels (centre-crop if sizes differ)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(str(i), b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.children()]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        cropped = []
        for o in outs:
            top, left = (o.shape[2] - h) // 2, (o.shape[3] - w) // 2
            cropped.append(o[:, :, top:top + h, left:left + w])
        return torch.cat(cropped, dim=1)


def ref_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection pad module ((k-1)/2, zero-width for 1x1) followed by an unpadded conv with bias."""
    return nn.Sequential(nn.ReflectionPad2d((k - 1) // 2), nn.Conv2d(cin, cout, k, stride=stride, padding=0))


def build_reference(spec: dict) -> tuple[nn.Module, list[dict[str, nn.Module]], nn.Conv2d]:
    """The skip hourglass from a lip spec dict (skip kind, stride down, bilinear/nearest up).

    Returns the net, per-level handles to its conv/BN modules (for copying weights into lip's net)
    and the head conv.
    """
    assert spec["kind"] == "skip" and spec["down_mode"] == "stride" and spec["pad"] == "reflection"
    down, up, skip = spec["down"], spec["up"], spec["skip"]
    kd, ku, ks = spec["k_down"], spec["k_up"], spec["k_skip"]
    n = len(down)
    net = Seq()
    cur = net
    depth_in = spec["in_channels"]
    handles: list[dict[str, nn.Module]] = []
    for i in range(n):
        h: dict[str, nn.Module] = {}
        deeper = Seq()
        if skip[i] > 0:
            skip_branch = Seq()
            cur.add(Concat(skip_branch, deeper))
        else:
            cur.add(deeper)
        k_deep = up[i + 1] if i + 1 < n else down[i]
        h["merge_bn"] = cur.add(nn.BatchNorm2d(skip[i] + k_deep))

        if skip[i] > 0:
            h["skip.conv"] = skip_branch.add(ref_conv(depth_in, skip[i], ks))[1]
            h["skip.bn"] = skip_branch.add(nn.BatchNorm2d(skip[i]))
            skip_branch.add(nn.LeakyReLU(0.2))

        h["down.conv"] = deeper.add(ref_conv(depth_in, down[i], kd, stride=2))[1]
        h["down.bn"] = deeper.add(nn.BatchNorm2d(down[i]))
        deeper.add(nn.LeakyReLU(0.2))
        h["down2.conv"] = deeper.add(ref_conv(down[i], down[i], kd))[1]
        h["down2.bn"] = deeper.add(nn.BatchNorm2d(down[i]))
        deeper.add(nn.LeakyReLU(0.2))
        inner = Seq()
        if i + 1 < n:
            deeper.add(inner)
        deeper.add(nn.Upsample(scale_factor=2, mode=spec["up_mode"],
                               **({"align_corners": False} if spec["up_mode"] == "bilinear" else {})))

        h["up.conv"] = cur.add(ref_conv(skip[i] + k_deep, up[i], ku))[1]
        h["up.bn"] = cur.add(nn.BatchNorm2d(up[i]))
        cur.add(nn.LeakyReLU(0.2))
        if spec["need1x1_up"]:
            h["up1x1.conv"] = cur.add(ref_conv(up[i], up[i], 1))[1]
            h["up1x1.bn"] = cur.add(nn.BatchNorm2d(up[i]))
            cur.add(nn.LeakyReLU(0.2))
        handles.append(h)
        depth_in = down[i]
        cur = inner
    head = net.add(ref_conv(up[0], spec["out_channels"], 1))[1]
    net.add(nn.Sigmoid())
    return net, handles, head


def copy_reference_into_lip(handles: list[dict[str, nn.Module]], head: nn.Conv2d, lip_net: nn.Module) -> None:
    """Give lip's net exactly the reference's weights (and BN buffers), module by module."""
    lip_modules = dict(lip_net.named_modules())
    pairs = [(f"levels.{i}.{name}", mod) for i, h in enumerate(handles) for name, mod in h.items()]
    pairs.append(("head", head))
    with torch.no_grad():
        for lip_name, ref_mod in pairs:
            dst = lip_modules[lip_name]
            for key, value in ref_mod.state_dict().items():
                target = dst.state_dict()[key]
                assert target.shape == value.shape, (lip_name, key, target.shape, value.shape)
                target.copy_(value)
    assert len(pairs) == sum(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in lip_net.modules())


def check_reference() -> None:
    spec = nets.preset("dip")
    ref, handles, head = build_reference(spec)
    n_ref, n_lip = nets.count_params(ref), nets.count_params(nets.build(spec))
    assert n_ref == EXPECTED_PARAMS, f"reference net has {n_ref:,} parameters, expected {EXPECTED_PARAMS:,}"
    assert n_lip == EXPECTED_PARAMS, f"lip net has {n_lip:,} parameters, expected {EXPECTED_PARAMS:,}"
    names = dict(ref.named_parameters())
    assert "1.0.1.1.weight" in names and "1.1.1.1.weight" in names  # the z-reading convs (spec a.1)
    # Same weights -> same forward output (train-mode BN), up to float rounding.
    lip = nets.build(spec)
    copy_reference_into_lip(handles, head, lip)
    z = torch.rand(1, 32, 64, 64, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        diff = (ref(z) - lip(z)).abs().max().item()
    assert diff < 1e-4, f"reference and lip nets disagree on the same weights: max |diff| = {diff:.2e}"


class RefLoop:
    """The plain DIP denoising step: jitter z, forward, MSE to the noisy image, backward, Adam, EMA."""

    def __init__(self, net: nn.Module, z: torch.Tensor, y: torch.Tensor, seed: int = 0) -> None:
        self.net, self.z, self.y = net, z, y
        net.train()
        self.opt = torch.optim.Adam(net.parameters(), lr=LR)
        self.gen = torch.Generator(device=z.device).manual_seed(seed)  # the jitter is drawn where z lives
        self.out_avg: torch.Tensor | None = None

    def step(self) -> float:
        self.opt.zero_grad()
        inp = self.z + torch.randn(self.z.shape, generator=self.gen, device=self.z.device) * REG_NOISE
        out = self.net(inp)
        d = out.detach()
        self.out_avg = d if self.out_avg is None else self.out_avg * 0.99 + d * 0.01
        loss = F.mse_loss(out, self.y)
        loss.backward()
        self.opt.step()
        return loss.item()


# --------------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------------

def load_crop(name: str, size: int) -> torch.Tensor:
    """(1,3,size,size) float32 centre crop of a shared test image."""
    from PIL import Image
    path = IMAGES / name
    if not path.is_file():
        sys.exit(f"error: test image {path} is missing (benchmarks read ../shared/data/images); "
                 "run from /work/main with /work/shared present")
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    h, w = a.shape[:2]
    if min(h, w) < size:
        sys.exit(f"error: {path} is {w}x{h}, smaller than the {size}x{size} crop")
    top, left = (h - size) // 2, (w - size) // 2
    crop = a[top:top + size, left:left + size].transpose(2, 0, 1).copy()
    return torch.from_numpy(crop)[None]


def noisy_of(clean: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (clean + torch.randn(clean.shape, generator=gen) * (SIGMA / 255.0)).clamp(0, 1)


def synthetic_problem(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random image + noise, for timing and memory (content does not change the cost)."""
    gen = torch.Generator().manual_seed(seed)
    clean = F.interpolate(torch.rand(1, 3, size // 8, size // 8, generator=gen), size=(size, size),
                          mode="bilinear", align_corners=False)
    return clean, noisy_of(clean, seed + 1)


def make_z(size: int, seed: int) -> torch.Tensor:
    net_stub = nets.build(nets.preset("dip"))
    return nets.make_input(net_stub, size, size, torch.Generator().manual_seed(seed))


def auto_path() -> str:
    """The path `--precision auto` takes on this CPU: bf16 + channels_last with hardware bf16, else fp32."""
    return "lip-bf16-cl" if devices.fast_bf16(torch.device("cpu")) else "lip-fp32"


def default_ticket(seed: int) -> tuple[dict, nn.Module]:
    """(the spec the reference loop mirrors, the net lip fits) for the default denoising prior: the shipped
    channel ticket, compacted as `lip restore` fits it, at seed `seed`'s weights."""
    prior = api.restorer(device="cpu").prior
    net, _, _ = fitted_form(prior.build(seed), prior, lambda line: None)
    return prior.spec, net


def lip_cfg(path: str, iters: int, **kw) -> FitConfig:
    precision, cl = LIP_PATHS[path]
    return FitConfig(iters=iters, lr=LR, reg_noise=REG_NOISE, ema=0.99, early_stop=False,
                     precision=precision, channels_last=cl, **kw)


# --------------------------------------------------------------------------------------------------
# Phase 1: interleaved timing
# --------------------------------------------------------------------------------------------------

def time_ref(net: nn.Module, z: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    """A fresh loop (new Adam) on a warm net: 1 untimed step (creates Adam state), then `steps` timed.

    Returns the duration of each timed iteration (end-to-end, back to back).
    """
    loop = RefLoop(net, z, y)
    loop.step()
    stamps = [time.perf_counter()]
    for _ in range(steps):
        loop.step()
        stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps, stamps[1:])]


def time_lip(path: str, net: nn.Module, z: torch.Tensor, y: torch.Tensor, steps: int,
             seed: int) -> tuple[list[float], int]:
    """One `fit` call of 1 + `steps` iterations; the time from the end of iteration 1 to the end.

    The window holds iterations 2..steps+1, so with steps >= 9 it includes the every-10-iterations
    rollback snapshot at its real frequency; fit's set-up (Adam, first snapshot) is outside it.
    """
    stamps: list[float] = []
    target = Target(z=z, op=Denoise(SIGMA), y=y, size=(y.shape[-2], y.shape[-1]))
    result = fit(net, [target], lip_cfg(path, 1 + steps, seed=seed),
                 callbacks=[lambda step: stamps.append(time.perf_counter())])
    return [b - a for a, b in zip(stamps, stamps[1:])], result.recoveries


def snapshot_ms(spec: dict, z: torch.Tensor, y: torch.Tensor) -> float:
    """Median cost of the rollback snapshot lip's loop takes every `checkpoint_every` iterations."""
    import copy
    net = nets.build(spec)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    F.mse_loss(net(z), y).backward()
    opt.step()  # Adam state exists, as in the loop
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def detector_ms(size: int) -> float:
    """Median cost of one ES-WMV update once its window is full (from iteration `es_window` on).

    The timed windows above are only a few iterations long, so they never reach this; it is a
    per-iteration cost of every longer lip run (early stopping on or off: it is always computed).
    """
    from lipcli.earlystop import WindowedVariance
    cfg = FitConfig()
    det = WindowedVariance(cfg.es_window, cfg.es_patience)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, size, size, generator=gen)
    for i in range(cfg.es_window):
        det.update(i + 1, x)
    ts = []
    for i in range(7):
        t0 = time.perf_counter()
        det.update(cfg.es_window + 1 + i, x)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def phase_timing(sizes: list[int], paths: list[str], repeats: int, warmup: int, steps: int) -> dict:
    out: dict = {}
    for size in sizes:
        torch.manual_seed(0)
        spec = nets.preset("dip")
        z = make_z(size, 0)
        _, y = synthetic_problem(size)
        models = {p: (build_reference(spec)[0] if p == "ref" else nets.build(spec)) for p in paths}
        # Warm-up once per path (oneDNN primitive creation, allocator growth, autocast caches).
        for p in paths:
            if p == "ref":
                time_ref(models[p], z, y, max(1, warmup - 1))
            else:
                time_lip(p, models[p], z, y, max(1, warmup - 1), seed=99)
        times: dict[str, list[float]] = {p: [] for p in paths}  # mean per repeat
        per_iter: dict[str, list[float]] = {p: [] for p in paths}  # every timed iteration
        recoveries = {p: 0 for p in paths}
        loads: list[str] = []
        for r in range(repeats):
            for p in paths:
                if p == "ref":
                    its = time_ref(models[p], z, y, steps)
                else:
                    its, rec = time_lip(p, models[p], z, y, steps, seed=r)
                    recoveries[p] += rec
                times[p].append(sum(its) / len(its))
                per_iter[p].extend(its)
            loads.append(sh("cat /proc/loadavg").split()[0])
            log(f"timing {size}x{size} repeat {r + 1}/{repeats}: "
                + ", ".join(f"{p} {times[p][-1] * 1e3:.0f}" for p in paths) + f" ms/iter; load {loads[-1]}")
        out[size] = {"times": times, "per_iter": per_iter, "recoveries": recoveries, "loads": loads,
                     "snapshot_ms": snapshot_ms(spec, z, y), "detector_ms": detector_ms(size)}
    return out


# --------------------------------------------------------------------------------------------------
# Phase 2: equal-quality check
# --------------------------------------------------------------------------------------------------

def phase_psnr(paths: list[str], iters: int, size: int) -> dict:
    spec = nets.preset("dip")
    res: dict = {p: {} for p in paths}
    for k, name in enumerate(PSNR_IMAGES):
        clean = load_crop(name, size)
        y = noisy_of(clean, seed=100 + k)
        z = make_z(size, seed=200 + k)
        torch.manual_seed(300 + k)
        init = build_reference(spec)[0].state_dict()  # the shared initial weights
        for p in paths:
            # Every path starts from the same weights: a reference net loaded with them, or a lip
            # net they are copied into module by module.
            ref, h2, hd2 = build_reference(spec)
            ref.load_state_dict(init)
            t0 = time.perf_counter()
            if p == "ref":
                loop = RefLoop(ref, z, y, seed=0)
                for _ in range(iters):
                    loop.step()
                value, rec = psnr(loop.out_avg, clean), 0
            else:
                lip = nets.build(spec)
                copy_reference_into_lip(h2, hd2, lip)
                target = Target(z=z.clone(), op=Denoise(SIGMA), y=y, size=(size, size), clean=clean)
                result = fit(lip, [target], lip_cfg(p, iters, seed=0, metric_every=iters))
                value, rec = psnr(result.targets[0].final, clean), result.recoveries
            secs = time.perf_counter() - t0
            res[p][name] = {"psnr": value, "seconds": secs, "recoveries": rec}
            log(f"psnr {name} {p}: {value:.2f} dB after {iters} iters ({secs:.0f} s, {rec} rollbacks)")
        res.setdefault("_noisy", {})[name] = psnr(y, clean)
    return res


# --------------------------------------------------------------------------------------------------
# Phase 3: peak memory in a fresh subprocess per configuration
# --------------------------------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def mem_child(path: str, size: int) -> None:
    """Run 2 training iterations of one configuration and print its memory numbers as JSON."""
    spec = nets.preset("dip")
    z = make_z(size, 0)
    _, y = synthetic_problem(size)
    base = _status_kib("VmRSS")  # torch + lipcli imported, inputs made, no net yet
    torch.manual_seed(0)
    if path == "ref":
        loop = RefLoop(build_reference(spec)[0], z, y)
        loop.step()
        loop.step()
    else:
        # checkpoint_every=1: the second iteration snapshots while the first (full-Adam-state)
        # snapshot is still alive, the loop's worst case, which otherwise needs 11+ iterations.
        target = Target(z=z, op=Denoise(SIGMA), y=y, size=(size, size))
        fit(nets.build(spec), [target], lip_cfg(path, 2, checkpoint_every=1))
    print(json.dumps({"base_kib": base, "hwm_kib": _status_kib("VmHWM"), "rss_kib": _status_kib("VmRSS")}))


def phase_memory(sizes: list[int], paths: list[str], large_paths: list[str], deadline: float) -> dict:
    out: dict = {}
    for size in sizes:
        for p in (paths if size <= 256 else [q for q in paths if q in large_paths]):
            if time.time() > deadline:
                log(f"memory {size}x{size} {p}: skipped (time budget)")
                continue
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_mem-child", p, str(size)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                log(f"memory {size}x{size} {p}: child failed\n{proc.stderr[-2000:]}")
                continue
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            precision = "fp32" if p == "ref" else LIP_PATHS[p][0]
            rec["estimate_bytes"] = nets.estimate_bytes(nets.preset("dip"), size, size, precision)
            rec["seconds"] = time.perf_counter() - t0
            out.setdefault(size, {})[p] = rec
            log(f"memory {size}x{size} {p}: peak {rec['hwm_kib'] / 1024:.0f} MiB, over baseline "
                f"{(rec['hwm_kib'] - rec['base_kib']) / 1024:.0f} MiB, estimate "
                f"{rec['estimate_bytes'] / 2**20:.0f} MiB ({rec['seconds']:.0f} s)")
    return out


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as exc:  # noqa: BLE001 - report context only
        return f"({exc})"


def cpu_model() -> str:
    for line in sh("lscpu").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mib(kib_or_bytes: float, unit: str = "kib") -> str:
    v = kib_or_bytes / 1024 if unit == "kib" else kib_or_bytes / 2**20
    return f"{v:.0f}"


def render(args, timing: dict, quality: dict | None, memory: dict, env: dict) -> str:
    paths = args.paths
    L: list[str] = []
    L.append("# Per-iteration benchmark: lip's DIP loop vs a plain reference\n")
    L.append(f"- command: `{env['command']}`")
    L.append(f"- date: {env['date']} (wall time of this run: {env['wall']:.0f} s)")
    L.append(f"- CPU: {env['cpu']} ({os.cpu_count()} logical CPUs; flags: {env['flags']})")
    L.append(f"- torch {torch.__version__}, {torch.get_num_threads()} threads, python {platform.python_version()}")
    L.append(f"- load (`uptime`) at start: `{env['uptime_start']}`")
    L.append(f"- load (`uptime`) at end: `{env['uptime_end']}`")
    if env.get("others"):
        L.append(f"- other CPU-heavy processes at start (`ps`, %CPU): {env['others']}")
    L.append(f"- net: `lipcli.nets.preset('dip')`, {EXPECTED_PARAMS:,} parameters (asserted for both nets); "
             f"denoising, sigma {SIGMA:g}, reg-noise 1/30, Adam lr {LR}, EMA 0.99, batch 1")
    L.append(f"- timing: per size, {args.warmup} warm-up iterations per path, then {args.repeats} repeats "
             f"interleaved over the paths (order {', '.join(paths)}); in each repeat every path starts a "
             f"fresh loop (new Adam, as each `fit` call does), runs 1 untimed + {args.steps} timed iterations. "
             "lip is timed inside `lipcli.fit.fit` via a per-iteration callback (so the ES-WMV detector "
             "update and loss sync are included; set-up is not). "
             + ("The rollback snapshot every 10 iterations falls in the window. " if args.steps >= 9 else
                "The rollback snapshot lip takes every 10 iterations falls outside this short window; it "
                "was timed separately (" + ", ".join(f"{s}²: {timing[s]['snapshot_ms']:.0f} ms" for s in args.sizes)
                + "), i.e. a tenth of that per iteration. ") +
             "The ES-WMV detector only computes its variance once its window "
             f"({FitConfig().es_window} outputs) is full, which these short windows never reach; one such "
             "update was timed separately (" + ", ".join(f"{s}²: {timing[s].get('detector_ms', float('nan')):.0f} ms"
                                                         for s in args.sizes)
             + ") and is a per-iteration cost of every longer lip run. " +
             "ms/iter = median over repeats; ratio = reference ms / path ms (>1 = faster than the "
             "reference) from the medians; paired = median of the per-repeat ratios (robust to slow episodes); "
             "fastest iter = the quickest single timed iteration of all repeats (contention only ever adds "
             "time, so this is the least-disturbed estimate) and 'ratio of fastest' compares those.")
    L.append("")
    L.append("## Speed, memory and quality\n")
    qsize = args.psnr_size
    L.append(f"| size | path | ms/iter (median) | repeat min–max | fastest iter ms | ratio vs ref | paired ratio "
             f"| ratio of fastest | peak RSS MiB | peak over baseline MiB "
             f"| PSNR @{args.psnr_iters} it, {qsize}² (mean of 3) | ΔPSNR vs ref |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        t = timing[size]["times"]
        ref_med = statistics.median(t["ref"]) if "ref" in t else None
        fast = {p: min(timing[size]["per_iter"][p]) for p in paths}
        for p in paths:
            med = statistics.median(t[p])
            rfast = f"{fast['ref'] / fast[p]:.2f}" if ref_med else "—"
            ratio = f"{ref_med / med:.2f}" if ref_med else "—"
            paired = (f"{statistics.median(r / q for r, q in zip(t['ref'], t[p])):.2f}" if ref_med else "—")
            m = memory.get(size, {}).get(p)
            peak = mib(m["hwm_kib"]) if m else "—"
            over = mib(m["hwm_kib"] - m["base_kib"]) if m else "—"
            q = dq = "—"
            if quality and size == qsize and p in quality:
                vals = [quality[p][n]["psnr"] for n in PSNR_IMAGES]
                q = f"{statistics.mean(vals):.2f}"
                if "ref" in quality:
                    dq = f"{statistics.mean(vals) - statistics.mean(quality['ref'][n]['psnr'] for n in PSNR_IMAGES):+.2f}"
            L.append(f"| {size}² | {p} | {med * 1e3:.0f} | {min(t[p]) * 1e3:.0f}–{max(t[p]) * 1e3:.0f} | "
                     f"{fast[p] * 1e3:.0f} | {ratio} | {paired} | {rfast} | {peak} | {over} | {q} | {dq} |")
    rec = {p: sum(timing[s]["recoveries"].get(p, 0) for s in args.sizes) for p in paths}
    if any(rec.values()):
        L.append(f"\nRollbacks during timing (an iteration that rolled back is a repeated forward): {rec}")
    L.append("\nRaw per-repeat ms/iter (and the 1-minute load average after each repeat):\n")
    for size in args.sizes:
        L.append(f"- {size}² load: " + ", ".join(timing[size]["loads"]))
        for p in paths:
            L.append(f"- {size}² {p}: " + ", ".join(f"{x * 1e3:.0f}" for x in timing[size]["times"][p]))

    if quality:
        L.append(f"\n## Quality: PSNR (dB) of the EMA output after {args.psnr_iters} iterations, "
                 f"{qsize}x{qsize} centre crops, sigma {SIGMA:g}\n")
        L.append("All paths start from the same initial weights (copied from the reference net into "
                 "lip's), the same z, the same noisy image and the same jitter sequence (same generator "
                 "seed); differences are floating-point ones (conv algorithm/layout, bf16), amplified "
                 "by training. PSNR = `lipcli.metrics.psnr` (clamped, data range 1).\n")
        qp = [p for p in paths if p in quality]
        L.append("| image | noisy | " + " | ".join(qp) + " |")
        L.append("|---|---|" + "---|" * len(qp))
        for n in PSNR_IMAGES:
            L.append(f"| {n} | {quality['_noisy'][n]:.2f} | "
                     + " | ".join(f"{quality[p][n]['psnr']:.2f}" for p in qp) + " |")
        L.append("| mean | {:.2f} | ".format(statistics.mean(quality["_noisy"].values()))
                 + " | ".join(f"{statistics.mean(quality[p][n]['psnr'] for n in PSNR_IMAGES):.2f}" for p in qp)
                 + " |")
        L.append("| s per run (not interleaved) | | "
                 + " | ".join(f"{statistics.mean(quality[p][n]['seconds'] for n in PSNR_IMAGES):.0f}" for p in qp)
                 + " |")
        recs = {p: sum(quality[p][n]["recoveries"] for n in PSNR_IMAGES) for p in qp if p != "ref"}
        L.append(f"\nlip rollbacks in these runs: {recs}. The reference has no backtracking.")

    L.append("\n## Memory calibration: measured peak vs `lipcli.nets.estimate_bytes`\n")
    L.append("Each row is a fresh subprocess (`--_mem-child PATH SIZE`) that imports torch+lipcli, makes "
             "z and the target, records VmRSS (baseline), then runs 2 training iterations (lip: "
             "`fit(iters=2, checkpoint_every=1)`, so two full rollback snapshots coexist as in the "
             "loop's worst case) and reads VmHWM. 'over baseline' = VmHWM − baseline, the quantity "
             "`estimate_bytes` is meant to predict (activations + weights + Adam state). "
             "Not counted by a 2-iteration run: the ES-WMV ring buffer, allocated with `torch.empty` "
             "and filled one row per iteration, so it only becomes resident over the first es_window "
             "iterations: es_window x min(3hw, 65536) floats = "
             + ", ".join(f"{s}²: {FitConfig().es_window * min(3 * s * s, 65536) * 4 / 2**20:.0f} MiB"
                         for s in sorted(memory))
             + " more for lip paths in a long run.\n")
    L.append("| size | path | precision | baseline MiB | peak (VmHWM) MiB | over baseline MiB | "
             "estimate MiB | measured / estimate |")
    L.append("|---|---|---|---|---|---|---|---|")
    for size in sorted(memory):
        for p in paths:
            m = memory[size].get(p)
            if not m:
                continue
            over = (m["hwm_kib"] - m["base_kib"]) * 1024
            prec = "fp32" if p == "ref" else LIP_PATHS[p][0]
            L.append(f"| {size}² | {p} | {prec} | {mib(m['base_kib'])} | {mib(m['hwm_kib'])} | "
                     f"{mib(over, 'b')} | {mib(m['estimate_bytes'], 'b')} | {over / m['estimate_bytes']:.2f} |")
    skipped = [(s, p) for s in args.mem_sizes for p in paths
               if p not in memory.get(s, {}) and (s <= 256 or p in args.mem_large_paths)]
    if skipped:
        L.append(f"\nNot measured (time budget or failure): {skipped}")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--paths", nargs="+", default=list(ALL_PATHS), choices=ALL_PATHS)
    ap.add_argument("--psnr-iters", type=int, default=200)
    ap.add_argument("--psnr-size", type=int, default=128)
    ap.add_argument("--psnr-paths", nargs="+", default=None, choices=ALL_PATHS,
                    help="paths for the quality check (default: ref lip-fp32 lip-bf16-cl, the two "
                         "extremes; the layout-only variants cost another ~5 min)")
    ap.add_argument("--no-psnr", action="store_true")
    ap.add_argument("--mem-sizes", type=int, nargs="*", default=[128, 256, 512])
    ap.add_argument("--mem-large-paths", nargs="+", default=["ref", "lip-fp32", "lip-bf16-cl"],
                    choices=ALL_PATHS, help="paths measured at memory sizes above 256")
    ap.add_argument("--budget-min", type=float, default=30.0,
                    help="memory configs starting after this many minutes are skipped")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-iter.md")
    ap.add_argument("--_mem-child", nargs=2, metavar=("PATH", "SIZE"), dest="mem_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mem_child:
        mem_child(args.mem_child[0], int(args.mem_child[1]))
        return
    if "ref" in args.paths:
        args.paths = ["ref"] + [p for p in args.paths if p != "ref"]

    start = time.time()
    env = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:]),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "flags": ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
                           if f in sh("grep -m1 -o -w -E 'avx512f|avx512_bf16|amx_bf16|amx_tile' "
                                      "/proc/cpuinfo | sort -u").split()) or "none of avx512/amx",
        "uptime_start": sh("uptime"),
        "others": sh(f"ps -eo pid,pcpu,etime,args --sort=-pcpu | awk 'NR>1 && $1!={os.getpid()} && $2>20' "
                     "| cut -c1-160 | head -3").replace("\n", "; "),
    }
    log(f"start; load: {env['uptime_start']}")
    check_reference()
    log("reference net checked: 2,217,831 parameters, same output as lip's net on copied weights")

    raw_path = args.out.with_suffix(".json")
    raw: dict = {"env": env, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}

    def save_raw(key: str, value) -> None:
        """Keep each phase's raw numbers on disk as soon as it ends (long runs on shared VMs)."""
        raw[key] = value
        args.out.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(json.dumps(raw, indent=1, default=str))

    timing = phase_timing(args.sizes, args.paths, args.repeats, args.warmup, args.steps)
    save_raw("timing", timing)
    log(f"timing done at {time.time() - start:.0f} s")
    memory = phase_memory(args.mem_sizes, args.paths, args.mem_large_paths, start + 60 * args.budget_min)
    save_raw("memory", memory)
    log(f"memory done at {time.time() - start:.0f} s")
    quality = None
    if not args.no_psnr:
        qpaths = args.psnr_paths or ["ref", "lip-fp32", "lip-bf16-cl"]
        quality = phase_psnr([p for p in ALL_PATHS if p in qpaths], args.psnr_iters, args.psnr_size)
        save_raw("quality", quality)
        log(f"quality done at {time.time() - start:.0f} s")
    env["uptime_end"] = sh("uptime")
    env["wall"] = time.time() - start
    text = render(args, timing, quality, memory, env)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    log(f"wrote {args.out} after {env['wall']:.0f} s")


if __name__ == "__main__":
    main()
