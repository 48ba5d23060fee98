#!/usr/bin/env python
"""GPU check (issue 12.7): per-iteration time and peak memory of the plain reference loop vs lip's fit(),
dense and a compacted channel ticket, in fp32, TF32 and bf16 autocast, printed as ONE markdown table.

NEVER RUN ON A GPU: written on a machine without CUDA; the CUDA parts were checked by reading (and against
torch's source for device-index handling). What did run, on CPU (`--device cpu --sizes 64 --steps 2`, and the
smoke test in tests/test_cuda.py): every path, the channel ticket and its compaction, lip's config, the
timing, the ratios and the table; so did bench_iter's RefLoop with the device-aware jitter. What did not: the
CUDA-only calls (CUDA events in `Clock`, `torch.cuda.{set_device,synchronize,reset_peak_memory_stats,
memory_allocated,max_memory_allocated,empty_cache,get_device_capability,get_device_name}`), the TF32 switches
(no-ops on CPU) and every GPU kernel. Time, by FLOPs: a dense iteration is 467 GFLOP at 512² (7.3 at 64²,
measured by FlopCounterMode), ~0.05-0.3 s on A100- to T4-class GPUs, so 14 paths x 25 iterations should
take 1-2 minutes; `--budget` skips the paths that would start late. `bash benchmarks/gpu_check.sh` runs this
after `pytest -m cuda`.

Paths (per size; the reference first, each ratio = reference median / path median, > 1 = faster):
  ref          bench_iter.build_reference + RefLoop (fp32, NCHW, plain Adam, loss.item() every step), TF32 off
  lip-*        lip's own loop (lipcli.fit.fit) on the dense preset, its FitConfig made by lipcli.config as
               `lip restore --precision P` would (denoising, paper settings, early stopping off so it never
               ends early; its detector and rollback snapshots still run)
  ticket-*     the same loop on a channel ticket compacted by lipcli.nets.compact: the top 1/4 of every conv's
               filters (head excluded) by the `l1` channel score at init: ~1/15 of the conv FLOPs (it keeps
               trainable the weights that read removed constant channels, as `lip restore` fits a ticket)
  *-fp32       TF32 off for convs and matmuls (exact fp32)
  *-tf32       torch.backends.cudnn.allow_tf32 and cuda.matmul.allow_tf32 on (torch's default has cuDNN's
               TF32 on, so an unconfigured `lip restore --precision fp32` on an Ampere+ GPU runs like this row)
  *-bf16       bf16 autocast (lip's `--precision bf16`; `auto` picks it on GPUs with bf16), skipped without bf16

Timing: each path runs `--warmup` + `--steps` iterations of a fresh loop; ms/iter is the median of the last
`--steps` iteration times, stamped at every iteration end (CUDA events recorded on the stream, so no sync
is added; perf_counter on CPU). cudnn.benchmark stays off, as lip leaves it. Peak MiB = max_memory_allocated
during the path minus what was allocated before it (z and the image); estimate = lipcli.nets.estimate_bytes
(dense net only). The ES-WMV variance is not computed before its 200-output window fills, so runs this short
leave out its per-iteration cost (small: O(65536) values).

Usage:  python benchmarks/gpu_check.py [--device cuda] [--sizes 256 512] [--warmup 5] [--steps 20] [--budget 240]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from contextlib import contextmanager

import torch

from bench_iter import RefLoop, build_reference, synthetic_problem
from lipcli import config, device as devices, nets
from lipcli.fit import Target, fit
from lipcli.masks import apply_masks, channels_alive, expand_channels, top_per_layer
from lipcli.nets.compact import compact
from lipcli.physics import Denoise
from lipcli.prune.channel_scores import CHANNEL_SCORES
from lipcli.prune.scores import ScoreContext
from lipcli.prune.search import prunable_names

SIGMA = 25.0
TICKET_KEEP = 0.25  # fraction of each conv's filters the ticket keeps
# name -> (net, precision, TF32 on)
PATHS = {
    "ref": ("reference", "fp32", False),
    **{f"{net}-{label}": (net, "bf16" if label == "bf16" else "fp32", label == "tf32")
       for net in ("lip", "ticket") for label in ("fp32", "tf32", "bf16")},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def tf32(on: bool):
    """TF32 for cuDNN convs and cuBLAS matmuls inside the block (no effect on CPU)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class Clock:
    """Iteration-end stamps: CUDA events on a GPU (timestamped by the stream, no host sync added),
    perf_counter on a CPU (where every op has finished when it returns)."""

    def __init__(self, dev: torch.device) -> None:
        self.stream = torch.cuda.current_stream(dev) if dev.type == "cuda" else None
        self.marks: list = []

    def mark(self, *_: object) -> None:
        if self.stream is None:
            self.marks.append(time.perf_counter())
            return
        event = torch.cuda.Event(enable_timing=True)
        event.record(self.stream)
        self.marks.append(event)

    def ms(self, skip: int) -> list[float]:
        """Durations of the iterations after the first `skip` (skip >= 1: the first has no start mark)."""
        pairs = list(zip(self.marks, self.marks[1:]))[skip - 1:]
        if self.stream is None:
            return [(b - a) * 1e3 for a, b in pairs]
        self.stream.synchronize()
        return [a.elapsed_time(b) for a, b in pairs]


def channel_ticket(net: nets.Net, keep: float) -> dict[str, torch.Tensor]:
    """Element masks keeping the top `keep` of every conv's filters (at least one) by the `l1` channel score."""
    names = prunable_names(net, "conv", keep_input_dense=False, granularity="channel")
    scores = CHANNEL_SCORES.get("l1")(net, names, ScoreContext())
    params = dict(net.named_parameters())
    alive = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in names}
    counts = {n: max(1, round(keep * s.numel())) for n, s in scores.items()}
    return expand_channels(top_per_layer(scores, channels_alive(alive), counts), alive)


def run_path(path: str, spec: dict, z: torch.Tensor, y: torch.Tensor, dev: torch.device, warmup: int,
             steps: int) -> dict:
    """One fresh loop of `warmup + steps` iterations: its iteration times, peak memory and size."""
    kind, precision, tf32_on = PATHS[path]
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    torch.manual_seed(0)
    clock = Clock(dev)
    with tf32(tf32_on):
        if kind == "reference":
            model = build_reference(spec)[0].to(dev)
            loop = RefLoop(model, z, y)
            for _ in range(warmup + steps):
                loop.step()
                clock.mark()
        else:
            model, masks = nets.build(spec), None
            if kind == "ticket":
                masks = channel_ticket(model, TICKET_KEEP)
                apply_masks(model, masks)
                model = compact(model, masks)
                masks = model.masks  # partially pruned kept filters (none here: whole filters go)
            model = model.to(dev)
            flags = {"iters": warmup + steps, "precision": precision}
            cfg = config.fit_config(config.resolve_settings("denoise", "paper", dev, flags), early_stop=False,
                                    dev=dev, seed=0)
            target = Target(z=z, op=Denoise(SIGMA).to(dev), y=y, size=tuple(y.shape[-2:]))
            fit(model, [target], cfg, masks=masks, callbacks=[clock.mark])
        times = clock.ms(warmup)
    peak = torch.cuda.max_memory_allocated(dev) - base if cuda else None
    return {"ms": statistics.median(times), "peak": peak, "params": nets.count_params(model),
            "gflop": nets.iteration_gflop(model, z)}


def table(rows: list[dict], spec: dict) -> str:
    lines = ["| size | path | params | GFLOP/iter | ms/iter (median) | vs ref | peak MiB | estimate MiB |",
             "|---|---|---|---|---|---|---|---|"]
    ref_ms: dict[int, float] = {}
    for r in rows:
        size, path = r["size"], r["path"]
        if "skipped" in r:
            lines.append(f"| {size}² | {path} | | | {r['skipped']} | | | |")
            continue
        if path == "ref":
            ref_ms[size] = r["ms"]
        ratio = f"{ref_ms[size] / r['ms']:.2f}x" if size in ref_ms else "—"
        peak = f"{r['peak'] / 2**20:.0f}" if r["peak"] is not None else "—"
        kind, precision, _ = PATHS[path]
        est = (f"{nets.estimate_bytes(spec, size, size, precision) / 2**20:.0f}" if kind != "ticket" else "—")
        lines.append(f"| {size}² | {path} | {r['params']:,} | {r['gflop']:.3g} | {r['ms']:.1f} | {ratio} | {peak} "
                     f"| {est} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (cpu: to check this script)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations per path (at least 1)")
    ap.add_argument("--steps", type=int, default=20, help="timed iterations per path")
    ap.add_argument("--net", default="dip", help="a strided skip-net preset (what the reference builds)",
                    choices=[n for n, s in nets.PRESETS.items() if s["kind"] == "skip" and s["down_mode"] == "stride"])
    ap.add_argument("--budget", type=float, default=240, help="seconds; later paths are skipped, not run")
    args = ap.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        ap.error("--warmup and --steps must be at least 1")
    dev = devices.resolve(args.device)
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)  # events, streams and memory counters of that GPU ("cuda": the current one)
    spec = nets.preset(args.net)
    probe = nets.build(spec)
    for size in args.sizes:
        if nets.padded_size(probe, size, size) != (size, size):  # the reference loop does not pad or crop
            ap.error(f"--sizes {size}: {args.net} needs a multiple of {probe.multiple}, at least {probe.min_side}")
    bf16 = dev.type != "cuda" or devices.fast_bf16(dev)  # hardware bf16 (Ampere+), as lip's auto precision
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"GPU check on {name} ({dev}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}; net {args.net}; {args.warmup} warm-up + {args.steps} "
          f"timed iterations per path (median); ratio = reference ms / path ms\n")
    start = time.monotonic()
    rows: list[dict] = []
    for size in args.sizes:
        _, noisy = synthetic_problem(size)
        z = nets.make_input(probe, size, size, torch.Generator().manual_seed(0)).to(dev)
        y = noisy.to(dev)
        for path in PATHS:
            if PATHS[path][1] == "bf16" and not bf16:
                rows.append({"size": size, "path": path, "skipped": "no bf16 on this GPU"})
            elif time.monotonic() - start > args.budget:
                rows.append({"size": size, "path": path, "skipped": "skipped (time budget)"})
            else:
                try:
                    rows.append({"size": size, "path": path, **run_path(path, spec, z, y, dev, args.warmup,
                                                                        args.steps)})
                    log(f"{size}² {path}: {rows[-1]['ms']:.1f} ms/iter")
                except (RuntimeError, torch.OutOfMemoryError) as e:  # one failing path (OOM, a cuDNN error) is a row
                    rows.append({"size": size, "path": path, "skipped": f"failed: {str(e).splitlines()[0][:60]}"})
                    log(f"{size}² {path}: {rows[-1]['skipped']}")
            if dev.type == "cuda":  # the next path's peak starts from a clean device
                gc.collect()
                torch.cuda.empty_cache()
    print(table(rows, spec))
    log(f"done in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
