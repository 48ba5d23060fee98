#!/usr/bin/env python
"""K independent DIP fits batched into one process against the same fits as processes (issue 16 item 1,
issue 17 item 2): which gives more fits per minute on this CPU, for the dense net, the default channel
ticket and narrow nets?

Arms (each a fresh worker process of this script, so threads and caches start alike):
  a   one fit, 2 threads: the sequential default (K fits take K times this)
  b   one fit, 1 thread, two such processes at once: what `--jobs auto` does on 2 cores
  cK  K fits batched in one process, 2 threads: the K nets' weights stacked (torch.func.stack_module_state)
      and run through torch.func.vmap + functional_call, which lowers every conv to one grouped conv and
      every BatchNorm to one BN over K x C channels (so each fit keeps its own batch statistics)
  sK  K fits batched as in cK, 1 thread, one process alone (s1: one fit). On a busy machine a 2-thread
      process waits (and spins) at every OpenMP barrier for a thread that is not running, but a 1-thread
      process's CPU time is still its work: s1 against sK says whether batching saves work, and --jobs
      can run such 1-thread batched processes side by side.
  nK  not K fits: one net fed a batch of K codes, 1 thread: the same ops at the best layout, a bound on
      what batching (vmap or hand-built grouped convs) could save.
Throughput gain over a: a = 1, b = 2 t(a) / t(b) (two fits per t(b)), cK = K t(a) / t(cK). CPU efficiency:
CPU seconds per fit-iteration of s1 over the arm's.

Each fit is lip's denoising loop on the bundled 128x128 House crop (member k: rotated k x 90 degrees,
seeded noise sigma 25): input jitter from its own seeded generator, autocast bf16 + channels_last as the
fast preset runs on a bf16 CPU, MSE, backward, pruned gradients zeroed (the ticket's partial filters),
fused Adam lr 0.01, the output EMA and the loss read back every step. Left out, as the same for every arm
per fit: the early-stop detector and the rollback snapshot (lipcli/fit.py). The nets are built as
`lip restore` builds them (lipcli/restore.py): `dip`, `dip-channel-house` at its recommended round,
compacted, and the uniform narrow nets `dip-w32` and `dip-w16`.

Before timing (unless --check-steps 0) it checks that batching changes nothing but rounding: K separate
fits against the same K batched, from the same weights, codes and jitter (`check`).

Usage:  python benchmarks/bench_batched.py [--nets dense,ticket,w32] [--arms a,b,c2,s1,s2] [--iters 30]
                                           [--warmup 5] [--repeats 5] [--raw runs.jsonl]
        python benchmarks/bench_batched.py --check-only
        python benchmarks/bench_batched.py --from-raw runs.jsonl        (re-print the table)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.func import functional_call, stack_module_state, vmap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lipcli import library  # noqa: E402
from lipcli.images import load_image, to_tensor  # noqa: E402
from lipcli.restore import dense_prior, fitted_form, masked_prior  # noqa: E402

SIZE, SIGMA, LR, REG_NOISE, EMA = 128, 25 / 255, 0.01, 1 / 30, 0.99
# w32: RESULTS-jobs.md's "narrow" net (32 channels, 1/16 of the parameters); w16: 16 channels (1/52)
PRIORS = {"dense": "dip", "ticket": "dip-channel-house", "w32": "dip-w32", "w16": "dip-w16"}


def build(net: str, seed: int) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The net `lip restore` fits for this prior (the ticket compacted), and its masks."""
    name = PRIORS[net]
    prior = (masked_prior(library.resolve(Path(name)), None, None, "artifact") if net == "ticket"
             else dense_prior(name))
    model, masks, _ = fitted_form(prior.build(seed), prior, lambda line: None)
    return model, masks or {}


def problem(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Member k's input code z and noisy observation y (House rotated k x 90 degrees)."""
    gen = torch.Generator().manual_seed(k)
    clean = torch.rot90(to_tensor(load_image("sample:house")), k, dims=(2, 3))
    y = clean + SIGMA * torch.randn(clean.shape, generator=gen)
    return torch.rand((1, 32, SIZE, SIZE), generator=gen) * 0.1, y


class Fits:
    """Independent fits advanced together, member i with net seed i, problem i and jitter stream 100 + i.
    One member is lip's fit: the plain module. Several are stacked (parameters and buffers) and run
    through vmap: one dispatch per op for all of them."""

    def __init__(self, members: list[int], net: str, bf16: bool = True, shared: bool = False) -> None:
        """`shared`: not K fits but one net fed a batch of the K codes (shared weights, BN statistics over
        the batch): a bound on what any batching could save, as it runs the same ops at the best layout."""
        self.k, self.bf16, self.shared = len(members), bf16, shared
        fmt = torch.channels_last if bf16 else torch.contiguous_format
        models, masks = zip(*(build(net, i) for i in (members[:1] if shared else members)))
        codes, ys = zip(*(problem(i) for i in members))
        self.gens = [torch.Generator().manual_seed(100 + i) for i in members]
        self.z = [z.to(memory_format=fmt) for z in codes]
        self.y = torch.cat(ys)
        for m in models:
            m.train().to(memory_format=fmt)
        if len(models) == 1:
            self.model = models[0]
            weights, self.buffers = dict(self.model.named_parameters()), dict(self.model.named_buffers())
            mask = {n: m[None] for n, m in masks[0].items()}
        else:
            weights, self.buffers = stack_module_state(list(models))
            mask = {n: torch.stack([ms[n] for ms in masks]) for n in masks[0]}
            base = copy.deepcopy(models[0]).to("meta")
            self.batched = vmap(lambda p, b, z: functional_call(base, (p, b), (z,)))
            self.weights = weights
        self.pairs = [(weights[n], m.view_as(weights[n]).to(weights[n].dtype)) for n, m in mask.items()]
        with torch.no_grad():
            for p, m in self.pairs:
                p.mul_(m)
        self.opt = torch.optim.Adam(list(weights.values()), lr=LR, fused=True)
        self.avg: torch.Tensor | None = None
        self.last = torch.empty(0)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The K outputs, (K, C, H, W) in float32."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if len(inputs) == 1 or self.shared:
                return self.model(torch.cat(inputs)).float()
            out = self.batched(self.weights, self.buffers, torch.stack(inputs))  # (K, 1, C, H, W)
            return out.float().flatten(0, 1)

    def backward(self) -> float:
        """Jitter the codes, forward, each fit's MSE (their sum keeps them apart), backward; the loss."""
        self.opt.zero_grad(set_to_none=True)
        inputs = [z + torch.randn(z.shape, generator=g) * REG_NOISE for z, g in zip(self.z, self.gens)]
        out = self.forward(inputs)
        loss = (out - self.y).pow(2).flatten(1).mean(1).sum()
        value = float(loss.detach())
        loss.backward()
        self.last = out.detach()
        return value

    def step(self) -> float:
        value = self.backward()
        live = [(p.grad, m) for p, m in self.pairs if p.grad is not None]
        if live:
            torch._foreach_mul_([g for g, _ in live], [m for _, m in live])
        self.opt.step()
        self.avg = self.last.clone() if self.avg is None else self.avg.lerp_(self.last, 1 - EMA)
        return value

    def member(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's parameters, gradients and buffers by name (gradients as `<name>.grad`)."""
        own = (lambda t: t) if self.k == 1 else (lambda t: t[i])
        weights = dict(self.model.named_parameters()) if self.k == 1 else self.weights
        return {**{n: own(t.detach()) for n, t in {**weights, **self.buffers}.items()},
                **{f"{n}.grad": own(t.grad) for n, t in weights.items() if t.grad is not None}}


def check(net: str, k: int, steps: int) -> dict[str, object]:
    """K separate fits against the same K batched (same weights, codes and jitter), fp32.

    Step 1 must agree to rounding: outputs, gradients (largest difference / largest gradient) and BN
    running statistics (each member's own). Later steps cannot: a DIP fit turns round-off into visible
    changes within a step or two (Adam's first steps move every weight by about lr whatever its gradient's
    size), so they are shown beside a control that differs in rounding only: a separate fit run in
    channels_last against the same fit contiguous. The step-1 gradients of member 0 are also compared with
    a float64 run of it. Last, step 1 under bf16 autocast + channels_last."""
    alone = [Fits([i], net, False) for i in range(k)]
    batch = Fits(list(range(k)), net, False)
    control = Fits([0], net, False)
    control.model.to(memory_format=torch.channels_last)
    control.z = [z.to(memory_format=torch.channels_last) for z in control.z]
    exact = Fits([0], net, False)  # member 0 in float64: which of the two is off
    exact.model.double()
    exact.z, exact.y, exact.buffers = [z.double() for z in exact.z], exact.y.double(), {}
    for f in (*alone, batch, control, exact):
        f.step()  # the gradients stay for the comparison
    ref, got = [f.member(0) for f in alone], [batch.member(i) for i in range(k)]
    truth = exact.member(0)
    grads = [n for n in ref[0] if n.endswith(".grad")]
    stats = [n for n in ref[0] if n.endswith(("running_mean", "running_var"))]
    scale = max(r[n].abs().max().item() for r in ref for n in grads)
    res: dict[str, object] = {
        "net": net, "k": k,
        "step1_output_diff": max((batch.last[i] - f.last[0]).abs().max().item() for i, f in enumerate(alone)),
        "step1_grad_diff_rel": max((g[n] - r[n]).abs().max().item() for r, g in zip(ref, got) for n in grads) / scale,
        "step1_bn_stats_diff": max((g[n] - r[n]).abs().max().item() for r, g in zip(ref, got) for n in stats),
        "members_differ": (batch.last[0] - batch.last[1]).abs().max().item()}
    for name, g in (("separate", ref[0]), ("batched", got[0])):
        res[f"step1_grad_err_vs_fp64_{name}"] = max(
            (g[n].double() - truth[n]).abs().max().item() for n in grads) / scale
    drift, ctrl = [], []
    for _ in range(steps - 1):
        for f in (*alone, batch, control):
            f.step()
        drift.append(max((batch.last[i] - f.last[0]).abs().max().item() for i, f in enumerate(alone)))
        ctrl.append((control.last - alone[0].last).abs().max().item())
    res["batched_drift_after_updates"], res["control_drift_after_updates"] = drift, ctrl
    alone16, batch16 = [Fits([i], net, True) for i in range(k)], Fits(list(range(k)), net, True)
    for f in (*alone16, batch16):
        f.backward()
    res["bf16_step1_output_diff"] = max((batch16.last[i] - f.last[0]).abs().max().item()
                                        for i, f in enumerate(alone16))
    return {n: float(f"{v:.1e}") if isinstance(v, float) else [float(f"{x:.1e}") for x in v]
            if isinstance(v, list) else v for n, v in res.items()}


# --------------------------------------------------------------------------------------------------
# timing: one worker process per fit process of an arm
# --------------------------------------------------------------------------------------------------

ARMS = {"a": "one fit, 2 threads (sequential default)", "b": "two 1-thread processes at once (--jobs)"}


def describe(arm: str) -> str:
    k, threads = arm[1:], 2 if arm[0] == "c" else 1
    if arm[0] == "n":
        return f"bound: one net, a batch of {k} codes (shared weights), 1 thread"
    return f"one fit, {threads} thread alone" if k == "1" else f"{k} fits batched, {threads} thread{'s' * (threads > 1)}"


def worker(net: str, k: int, threads: int, iters: int, warmup: int, shared: bool) -> None:
    """Warm up, say so, wait for the go line (so that the processes of an arm time the same span), time."""
    torch.set_num_threads(threads)
    fits = Fits(list(range(k)), net, shared=shared)
    for _ in range(warmup):
        fits.step()
    print("ready", flush=True)
    sys.stdin.readline()
    times, cpu = [], time.process_time()
    for _ in range(iters):
        t = time.perf_counter()
        fits.step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"iter_s": statistics.median(times), "cpu_s": time.process_time() - cpu,
                      "mean_s": sum(times) / iters}), flush=True)


def run_arm(net: str, arm: str, args: argparse.Namespace) -> dict:
    """One run of an arm: its processes started together; per-iteration time, CPU and fit throughput."""
    k, threads, procs = {"a": (1, 2, 1), "b": (1, 1, 2)}.get(arm) or (int(arm[1:]), 2 if arm[0] == "c" else 1, 1)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--worker", net, str(k), str(threads), "--iters", str(args.iters),
           "--warmup", str(args.warmup), *(["--shared"] if arm[0] == "n" else [])]
    load = os.getloadavg()[0]
    running = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(procs)]
    for p in running:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"worker {net} {arm} failed (exit {p.wait()})")
    for p in running:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.communicate()[0]) for p in running]
    return {"net": net, "arm": arm, "k": k, "threads": threads, "procs": procs,
            "iter_s": [round(o["iter_s"], 5) for o in outs],
            "fits_per_s": sum(k / o["iter_s"] for o in outs),
            "cpu_per_fit_iter": sum(o["cpu_s"] for o in outs) / (args.iters * k * procs),
            "load_before": load, "load_after": os.getloadavg()[0]}


def _ratio(runs: list[dict], arm: str, base: str, key: str, invert: bool = False) -> list[float]:
    """Per repeat: the arm's `key` over the same repeat's `base` arm's (or base over arm)."""
    ref = {r["rep"]: r[key] for r in runs if r["arm"] == base}
    return [(ref[r["rep"]] / r[key]) if invert else (r[key] / ref[r["rep"]])
            for r in runs if r["arm"] == arm and r["rep"] in ref]


def table(runs: list[dict]) -> str:
    """Medians over repeats (min-max); ratios are taken within each repeat. Throughput gain: fits per
    second over arm a's. CPU efficiency: CPU seconds per fit-iteration of s1 (one fit, 1 thread) over
    the arm's, so above 1 = batching does the same fits with less CPU work."""
    def cell(xs: list[float], fmt: str = "{:.2f}x") -> str:
        return f"**{fmt.format(statistics.median(xs))}** ({fmt.format(min(xs))}-{fmt.format(max(xs))})" if xs else ""

    lines = ["| net | arm | s per iteration | fit-iterations/s | CPU s per fit-iteration | throughput gain "
             "vs a | CPU efficiency vs s1 | repeats |", "|---|---|---|---|---|---|---|---|"]
    for net in dict.fromkeys(r["net"] for r in runs):
        mine = [r for r in runs if r["net"] == net]
        for arm in dict.fromkeys(r["arm"] for r in mine):
            rs = [r for r in mine if r["arm"] == arm]
            it = [statistics.mean(r["iter_s"]) * 1e3 for r in rs]
            lines.append(
                f"| {net} | {arm}: {ARMS.get(arm) or describe(arm)} | {statistics.median(it):.0f} ms "
                f"({min(it):.0f}-{max(it):.0f}) | {statistics.median(r['fits_per_s'] for r in rs):.2f} | "
                f"{statistics.median(r['cpu_per_fit_iter'] for r in rs):.3f} | "
                f"{cell(_ratio(mine, arm, 'a', 'fits_per_s'))} | "
                f"{cell(_ratio(mine, arm, 's1', 'cpu_per_fit_iter', invert=True))} | {len(rs)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default="dense,ticket,w32")
    ap.add_argument("--arms", default="a,b,c2,s1,s2",
                    help="a: one fit 2 threads; b: two 1-thread fits at once; cK: K fits batched, 2 threads; "
                         "sK: K fits batched (s1: one fit), 1 thread, alone; nK: the bound (Fits, shared)")
    ap.add_argument("--iters", type=int, default=30, help="timed iterations per run")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--check-steps", type=int, default=4, help="steps of the correctness check (0: none)")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--raw", type=Path, help="append every run (and check) here as a JSON line")
    ap.add_argument("--from-raw", type=Path, help="print the table of a --raw file and stop")
    ap.add_argument("--worker", nargs=3, metavar=("NET", "K", "THREADS"), help=argparse.SUPPRESS)
    ap.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        net, k, threads = args.worker
        return worker(net, int(k), int(threads), args.iters, args.warmup, args.shared)
    if args.from_raw:
        print(table([r for r in map(json.loads, args.from_raw.read_text().splitlines()) if "arm" in r]))
        return
    nets_, arms = args.nets.split(","), args.arms.split(",")

    def keep(row: dict) -> None:
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.raw:
            with args.raw.open("a") as f:
                f.write(json.dumps(row) + "\n")

    torch.set_num_threads(2)
    if args.check_steps:
        for net in nets_:
            keep(check(net, max(int(a[1:]) for a in arms if a[0] in "cs"), args.check_steps))
    if args.check_only:
        return
    runs = []
    for net in nets_:
        for rep in range(args.repeats):
            for arm in arms:  # interleaved: a b c a b c ...
                runs.append({**run_arm(net, arm, args), "rep": rep, "time": time.strftime("%H:%M:%S")})
                keep(runs[-1])
    print(table(runs))
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"CPU time of this benchmark, all processes: {cpu / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
