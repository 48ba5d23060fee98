#!/usr/bin/env python
"""Does sparsity pay? Training-step time of a masked DIP net vs its compacted equivalent (issue 7.2).

For each mask, the paper's "dip" SkipNet (2,217,831 params) is masked (pruned weights zeroed) and
compacted with `lipcli.nets.compact.compact` (dead and unread channels removed, constants folded; the
train-exact mode, so the compact net is what one would really fit). One training step = forward at
SIZE x SIZE, MSE to a fixed target, backward, gradient masking (as `lipcli.fit.fit` does), Adam.

Masks, all over the conv weights (the default IMP scope), from the random init (seed 0):
  * magnitude:  global magnitude (lip's own `scores.magnitude` + `masks.top_global`), i.e. the
                first IMP round's criterion. Unstructured: it rarely empties a whole filter.
  * structured: in every conv except the 3-channel head, the lowest-L1 filters are pruned, the same
                fraction per layer, so the pruned fraction of conv weights matches the sparsity.
                Their channels become constants (folded) and the next layer's columns that read
                them stop costing anything, so compute falls faster than the sparsity.

Timing: every repetition runs one step of every (mask, net) pair in turn, so the slow episodes of a
shared machine hit all of them; medians are reported, plus the median of the per-repetition ratio.
A forward FLOP count (torch.utils.flop_counter) and the max |masked - compact| output difference
(train mode, float32) are reported with each row.

Also: one 3x3 128->128 conv (levels.0.down2, at SIZE/2) with a 90%-sparse magnitude mask, run as a
dense conv, as im2col + dense matmul, and as im2col + torch.sparse matmul (COO and CSR weights).

Also, with --imp ARTIFACT: a real IMP search's masks (from `lip prune`), at its theta0.

Usage:  python benchmarks/bench_compact.py [--size 128] [--repeats 7] [--threads 1] [--imp A.safetensors]
                                          [--out benchmarks/RESULTS-compact.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lipcli import artifact, nets
from lipcli.masks import MaskedParams, apply_masks, mask_sparsity, top_global, total_count
from lipcli.nets.compact import compact
from lipcli.prune.scores import ScoreContext, magnitude

HERE = Path(__file__).resolve().parent
SPARSITIES = (0.5, 0.8, 0.9, 0.95)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------------

def magnitude_masks(net: torch.nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    names = nets.conv_weight_names(net)
    scores = magnitude(net, names, ScoreContext())
    alive = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    return top_global(scores, alive, round(total_count(alive) * (1 - sparsity)))


def structured_masks(net: torch.nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    params = dict(net.named_parameters())
    masks = {}
    for n in nets.conv_weight_names(net):
        w = params[n].detach()
        m = torch.ones_like(w, dtype=torch.bool)
        if n != "head.weight":
            l1 = w.abs().flatten(1).sum(1)
            m[torch.argsort(l1)[:round(sparsity * w.shape[0])]] = False
        masks[n] = m
    return masks


# --------------------------------------------------------------------------------------------------
# one training step
# --------------------------------------------------------------------------------------------------

class Runner:
    """A net, its Adam and its gradient masks; `step()` times one training step."""

    def __init__(self, net: torch.nn.Module, masks: dict[str, torch.Tensor], z, y) -> None:
        self.net, self.z, self.y = net.train(), z, y
        self.opt = torch.optim.Adam(net.parameters(), lr=0.01)
        self.masked = MaskedParams(net, masks)
        self.times: list[float] = []

    def step(self, record: bool) -> None:
        t = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(self.net(self.z), self.y)
        loss.backward()
        self.masked.zero_grads()
        self.opt.step()
        if record:
            self.times.append(time.perf_counter() - t)


def fwd_gflops(net: torch.nn.Module, z: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(z)
    return counter.get_total_flops() / 1e9


# --------------------------------------------------------------------------------------------------
# sparse kernels on one layer
# --------------------------------------------------------------------------------------------------

def sparse_layer(size: int, repeats: int) -> list[tuple[str, float, float]]:
    torch.manual_seed(0)
    net = nets.build(nets.preset("dip"))
    conv = net.levels[0].down2.conv
    w = conv.weight.detach().clone()
    keep = w.abs().flatten() >= w.abs().flatten().kthvalue(int(0.9 * w.numel())).values
    w = w * keep.view_as(w)
    b = conv.bias.detach()
    side = size // 2
    x = torch.randn(1, w.shape[1], side, side)
    w2 = w.flatten(1)  # (128, 1152)
    coo, csr = w2.to_sparse().coalesce(), w2.to_sparse_csr()

    def im2col():
        return F.unfold(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3)[0]  # (1152, side*side)

    cols = im2col()
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, b)
    paths = {
        "dense conv2d (masked weight, what the masked net runs)":
            lambda: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, b),
        "im2col + dense matmul": lambda: (w2 @ im2col() + b[:, None]),
        "im2col + torch.sparse.mm (COO weight)": lambda: (torch.sparse.mm(coo, im2col()) + b[:, None]),
        "im2col + CSR weight @ cols": lambda: (csr @ im2col() + b[:, None]),
        "matmul only, CSR (im2col precomputed)": lambda: csr @ cols,
        "matmul only, dense (im2col precomputed)": lambda: w2 @ cols,
    }
    for name, fn in paths.items():  # correctness first
        out = fn()
        if "only" not in name:
            err = (out.view_as(ref) - ref).abs().max().item()
            assert err < 1e-4, (name, err)
    times: dict[str, list[float]] = {n: [] for n in paths}
    for r in range(repeats + 2):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn()
            if r >= 2:
                times[name].append(time.perf_counter() - t)
    base = statistics.median(times[next(iter(paths))])
    return [(n, statistics.median(t) * 1e3, base / statistics.median(t)) for n, t in times.items()]


# --------------------------------------------------------------------------------------------------

def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads; load average {load}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steadier on a shared machine; 0: torch's default)")
    ap.add_argument("--layer-repeats", type=int, default=30)
    ap.add_argument("--imp", type=Path, default=None,
                    help="also time a real IMP artifact (`lip prune`): its theta0 and the rounds "
                         "closest to each sparsity")
    ap.add_argument("--imp-note", default="", help="how the --imp artifact was made (for the report)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-compact.md")
    ap.add_argument("--save-json", type=Path, default=None, help="also save the raw numbers here")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="re-render the report from a previous run's .json (no timing)")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        for k, v in saved["args"].items():
            if k not in ("out", "from_json", "save_json"):
                setattr(args, k, Path(v) if k == "imp" and v else v)
        write(args, saved["rows"], [tuple(x) for x in saved["layer"]],
              dt.datetime.fromisoformat(saved["started"]), saved["machine"], saved["cmd"], saved["machine_end"],
              saved["minutes"])
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    started, machine_before = dt.datetime.now(), machine()
    log(machine_before)

    g = torch.Generator().manual_seed(1)
    z = torch.rand((1, 32, args.size, args.size), generator=g) * 0.1
    y = torch.rand((1, 3, args.size, args.size), generator=g)
    configs = [("dense", 0.0)] + [(k, s) for k in ("magnitude", "structured") for s in args.sparsities]
    art = None
    if args.imp:
        art = artifact.load(args.imp)
        if art.spec != nets.preset("dip"):
            raise SystemExit(f"{args.imp} is not a mask of the dip preset")
        rounds = sorted({art.round_for_sparsity(s) for s in args.sparsities})
        configs += [(f"IMP round {k}", art.sparsity(k)) for k in rounds]
    rows, runners = [], []
    for kind, s in configs:
        torch.manual_seed(0)
        net = nets.build(nets.preset("dip"))
        if kind.startswith("IMP"):
            net.load_state_dict(art.theta0, strict=False)
            masks = art.mask(int(kind.split()[-1]))
        else:
            masks = {} if kind == "dense" else (magnitude_masks if kind == "magnitude"
                                                else structured_masks)(net, s)
        apply_masks(net, masks)
        small = compact(net, masks)
        with torch.no_grad():
            diff = (net.train()(z) - small.train()(z)).abs().max().item()
        r = small.report
        rows.append(dict(kind=kind, target=s, sparsity=mask_sparsity(masks), diff=diff, layers=r["layers"],
                         removed=r["channels_removed"], total=r["channels_total"],
                         p_before=r["params_before"], p_after=r["params_after"],
                         u_before=r["unpruned_before"], u_after=r["unpruned_after"],
                         f_before=fwd_gflops(net, z), f_after=fwd_gflops(small, z)))
        runners.append((Runner(net, masks, z, y), Runner(small, small.masks, z, y)))
        log(f"{kind} {s:.2f}: removed {r['channels_removed']}/{r['channels_total']} channels, "
            f"params {r['params_before']:,} -> {r['params_after']:,}, max diff {diff:.1e}")

    for rep in range(args.warmup + args.repeats):
        for (kind, s), (a, b) in zip(configs, runners):
            a.step(rep >= args.warmup)
            b.step(rep >= args.warmup)
        log(f"repetition {rep + 1}/{args.warmup + args.repeats} done")
    for row, (a, b) in zip(rows, runners):
        row["t_masked"] = statistics.median(a.times)
        row["t_compact"] = statistics.median(b.times)
        row["ratio"] = statistics.median(x / y for x, y in zip(a.times, b.times))

    log("sparse kernels on one layer")
    layer = sparse_layer(args.size, args.layer_repeats)
    cmd = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]))] + sys.argv[1:])
    minutes, machine_end = (dt.datetime.now() - started).total_seconds() / 60, machine()
    if args.save_json:
        args.save_json.write_text(json.dumps({
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "rows": rows, "layer": layer, "started": started.isoformat(), "machine": machine_before,
            "machine_end": machine_end, "cmd": cmd, "minutes": minutes}, indent=1))
    write(args, rows, layer, started, machine_before, cmd, machine_end, minutes)


def write(args, rows, layer, started, machine_before, cmd, machine_end, minutes) -> None:
    lines = [
        "# Compaction: does sparsity pay? (issue 7.2)", "",
        f"Command: `{cmd}`  ",
        f"Run: {started:%Y-%m-%d %H:%M} ({minutes:.1f} min)  ",
        f"Machine at start: {machine_before}  ",
        f"Machine at end: {machine_end}", "",
        f"Net: the paper's `dip` SkipNet (2,217,831 params), random init (seed 0), input {args.size}x"
        f"{args.size}, batch 1, fp32. One training step = forward + MSE + backward + gradient masking + "
        f"Adam. Medians of {args.repeats} interleaved repetitions after {args.warmup} warm-ups; "
        "`ratio` is the median of per-repetition masked/compact ratios. GFLOPs: forward pass "
        "(torch FlopCounterMode; a masked net's zeros still cost). `diff`: max |masked - compact| of "
        "the train-mode output in float32.", "",
        "| mask | sparsity (conv w.) | channels removed | params: masked net -> compact | unpruned "
        "params | fwd GFLOPs | step ms masked | step ms compact | speed-up | ratio | diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['sparsity']:.1%} | {r['removed']}/{r['total']} | "
            f"{r['p_before']:,} -> {r['p_after']:,} | {r['u_before']:,} -> {r['u_after']:,} | "
            f"{r['f_before']:.2f} -> {r['f_after']:.2f} | {r['t_masked'] * 1e3:.0f} | "
            f"{r['t_compact'] * 1e3:.0f} | {r['t_masked'] / r['t_compact']:.2f}x | {r['ratio']:.2f}x | "
            f"{r['diff']:.1e} |")
    mag = [r for r in rows if r["kind"] == "magnitude"]
    st = [r for r in rows if r["kind"] == "structured"]
    imp = [r for r in rows if r["kind"].startswith("IMP")]
    if args.imp:
        meta = artifact.load(args.imp).meta
        search, fitcfg = meta.get("search", {}), meta.get("search", {}).get("fit", {})
        images = ", ".join(f"{i['name']} {i['width']}x{i['height']}" for i in meta.get("images", []))
        lines += ["", (
            f"IMP rows: artifact `{args.imp.name}` ({args.imp_note or 'made with lip prune'}): "
            f"{meta.get('method')} on {images} ({meta.get('task')}), {search.get('rounds')} rounds at "
            f"rate {search.get('rate')}, {fitcfg.get('iters')} Adam iterations per session, "
            f"{fitcfg.get('precision')}, rewind to init; timed at its theta0 with the rounds closest "
            "to the sparsities above. Short sessions: a paper-length search may prune differently.")]
    lines += ["", "Reading:", ""]
    if mag:
        lines.append(
            f"* Unstructured global-magnitude masks removed at most {max(r['removed'] for r in mag)} of "
            f"{mag[0]['total']} channels (up to {max(r['sparsity'] for r in mag):.0%} sparsity); the compact "
            f"net keeps {min(r['f_after'] / r['f_before'] for r in mag):.1%}-"
            f"{max(r['f_after'] / r['f_before'] for r in mag):.1%} of the forward FLOPs, and the step "
            f"ratio is {min(r['ratio'] for r in mag):.2f}-{max(r['ratio'] for r in mag):.2f}x: no gain. "
            "Scattered zeros cost as much as nonzeros in dense conv kernels.")
    if imp:
        parts = "; ".join(f"{r['sparsity']:.0%}: {r['removed']} channels, {r['f_after'] / r['f_before']:.0%} "
                          f"FLOPs, {r['ratio']:.2f}x" for r in imp)
        lines.append(
            "* The real IMP masks empty more channels than magnitude-at-init, mostly at full resolution "
            "(head columns get pruned, so levels.0.up1x1 and then levels.0.up lose channels nobody "
            f"reads): {parts}. Elsewhere at most "
            f"{max(max(t - k for n, (k, t) in r['layers'].items() if not n.startswith('levels.0.')) for r in imp)}"
            " channels of a block go.")
    if st:
        flops = ", ".join(f"{r['f_after'] / r['f_before']:.1%}" for r in st)
        ratios = ", ".join(f"{r['ratio']:.2f}x" for r in st)
        levels = ", ".join(f"{r['sparsity']:.0%}" for r in st)
        lines.append(
            "* Structured (lowest-L1 filter) masks at the same sparsities remove whole channels; forward "
            f"FLOPs fall to {flops} and the step speeds up {ratios} at {levels}. Compute falls roughly "
            "with the square of the kept fraction (a conv loses its dead outputs and the inputs that "
            "read dead channels); time falls less, because BN, pad/upsample/concat, the loss and "
            "Adam's per-tensor work do not shrink as fast. Whether such masks restore as well as IMP's "
            "is a separate question this benchmark does not answer.")
    worst = max(rows, key=lambda r: r["diff"])
    lines.append(
        f"* `diff` (largest: {worst['diff']:.1e}, {worst['kind']} {worst['sparsity']:.0%}): compaction "
        "is exact up to the masked net's own float rounding. (A large value would mean a constant "
        "reaches a train-mode BN through live weights over several layers, where the masked net's "
        "rounding is amplified by gamma/sqrt(eps) per layer, see lipcli/nets/compact.py; the compact net "
        "computes the exact-arithmetic value there.)")
    lines += [
        "", f"## Sparse kernels on one layer (levels.0.down2: 3x3 conv 128->128 at {args.size // 2}x"
        f"{args.size // 2}, 90% magnitude-sparse weight, forward only, median of {args.layer_repeats})", "",
        "| path | ms | speed-up vs dense conv |", "|---|---:|---:|",
    ]
    lines += [f"| {n} | {ms:.2f} | {sp:.2f}x |" for n, ms, sp in layer]
    t = {n: ms for n, ms, _ in layer}
    dense, names = layer[0][1], [n for n, _, _ in layer]
    best = max(layer[1:4], key=lambda r: r[2])
    lines += ["", (
        f"The fastest full replacement, {best[0]}, runs at {best[2]:.2f}x the dense conv. im2col alone "
        f"costs {t[names[1]] - t[names[5]]:.1f} ms (dense conv in total: {dense:.1f} ms), and even with "
        f"im2col precomputed the CSR matmul takes {t[names[4]]:.1f} ms. "
        + ("So torch's CPU sparse kernels beat the dense conv here in the forward pass; a training "
           "step would still need sparse backward kernels (torch has no autograd into CSR values)."
           if best[2] > 1.05 else
           "So torch's CPU sparse kernels do not help at 90% unstructured sparsity on this CPU, even "
           "before the backward pass (which would also need sparse kernels; torch has no autograd into "
           "CSR values). Unstructured sparsity does not pay here; removing whole channels does."))]
    args.out.write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
