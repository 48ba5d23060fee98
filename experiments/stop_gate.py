"""Does a noise-level gate fix the early stops on textured images? Replay on recorded trajectories (issue 17).

Observation (ticket and dense trajectories, es_collect.py): where lip's stop fires far too early (barbara,
baboon: 1-4 dB under the oracle), the windowed-variance minimum comes while the fit's loss is still above
the noise level: the net has not yet explained the image, it is only between two phases of learning it.
At the PSNR peak the loss is at or below sigma^2 (a fit that goes on fits the noise), the discrepancy
principle of regularisation theory. The gate: a variance minimum counts only once the loss, averaged
over the last `k` iterations, has fallen to tau * sigma_hat^2, sigma_hat estimated blind from the noisy
observation (lipcli/noise_estimate.py), never from the clean image. Tasks without a noise level keep
today's rule.

The gate is replayed exactly as the loop would run it: `var_raw_200` minima before the gate opens are
ignored, patience counts from the best minimum after it. Chosen on the TUNE half, reported on REPORT.

    PYTHONPATH=$PWD python experiments/stop_gate.py experiments/es_dev/rows-ticket*.jsonl.gz
    PYTHONPATH=$PWD python experiments/stop_gate.py experiments/es_dev/rows-dense-*.jsonl.gz --patiences 150,300 --caps 1800
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from es_analyze import LAG, load, min_with_patience
from es_collect import Job, prepare
from lipcli import config
from lipcli.fit import SpikeGuard
from lipcli.problem import load_problem

HERE = Path(__file__).resolve().parent
TAUS = "none,0.95,1.0,1.05,1.1"  # none: no gate (the rule before the gate)
PATIENCES = "150,300"
CAPS = "1200,1500,1800"
K = 50


def sigma_hat(row: dict, cache: dict[str, float]) -> float:
    """The blind noise estimate of the run's own noisy observation (0-1 units), cached by run key."""
    if row["key"] not in cache:
        job = Job(row["image"], row["size"], row["crop"], row["task"], row["param"], row["seed"])
        settings = {**config.resolve(job.task, "fast", "fast", {}), "sigma": float(job.param)}
        path, _, _ = prepare(job, HERE / "es_dev" / "crops")
        problem = load_problem(path, job.task, settings, simulate=True, seed=job.seed)
        cache[row["key"]] = problem.noise_sigma() / 255
    return cache[row["key"]]


def replay(row: dict, tau: float | None, sigma: float, patience: int, cap: int,
           window: int = 200, lag_factor: float = 1.0, relative: float = 0.0, lag: int = LAG,
           first: int = 0, guard: float = 0.0, closing: np.ndarray | None = None) -> tuple[int, float]:
    """(iterations used, reported EMA PSNR) of the gated rule on the raw outputs' variance over `window`
    iterations (recorded: 50, 100, 200 (the shipped window), 400). The EMA output is reported at the minimum
    plus `lag` (shipped: LAG, the EMA's own lag), or (`lag_factor` c > 1) at c x the minimum's iteration when
    that is later. `relative`: see es_analyze.min_with_patience. `first`: the minima of iterations before it do
    not count (a candidate, not in lip: RESULTS-stop-gate.md; iteration i is index i - 1). `guard` g > 0: when a
    loss between the minimum and the lagged output exceeds g x the trailing mean loss at the minimum, the EMA
    output at the minimum is reported instead (RESULTS-stop-spike.md). `closing`: per iteration, whether the
    close condition holds (lip's es_close: the residual's trailing lag-1 autocorrelation at or under its level);
    once a minimum has counted, the minima of the first iteration where it holds and after do not count."""
    s = row["signals"]
    var = [np.inf if x is None else x for x in s[f"var_raw_{window}"][:cap]]
    start = 0
    if tau is not None:
        loss = np.convolve(np.array(s["loss"][:cap]), np.ones(K) / K)[: len(var)]  # trailing mean (causal)
        loss[: K - 1] = np.inf
        below = np.nonzero(loss <= tau * sigma ** 2)[0]
        start = int(below[0]) if below.size else len(var)
    start = max(start, first - 1)
    gated = [np.inf] * start + var[start:]
    counted = np.nonzero(np.isfinite(gated))[0]
    if closing is not None and counted.size:
        shut = np.nonzero(closing[: len(gated)])[0]
        shut = shut[shut > counted[0]]
        if shut.size:
            gated[int(shut[0]):] = [np.inf] * (len(gated) - int(shut[0]))
    # The loop ends only once the lagged output of the minimum is taken, and a new minimum before then
    # delays it (lipcli/fit.py): a patience under the lag acts as the lag.
    at, stop = min_with_patience(gated, max(patience, LAG), cap, relative)
    ema = s["psnr_ema"]
    if at <= 0:
        return cap, ema[cap - 1]
    t = min(max(at + lag, int(lag_factor * at)), cap)
    used = min(max(stop, t), cap)
    if guard and spiked(s["loss"], at, t, guard):
        t = at
    return used, ema[t - 1]


def spiked(losses: list[float], at: int, t: int, guard: float) -> bool:
    """Whether lip's guard (fit.SpikeGuard, fed as the loop feeds it) fires on a minimum at iteration `at` whose
    lagged output is taken at `t`."""
    watcher = SpikeGuard(guard)
    watcher.minimum(at, torch.zeros(()), losses[:at])
    for loss in losses[at:t]:
        watcher.watch(loss)
    return watcher.spiked()


def pre_study_iterations(row: dict) -> int:
    """Iterations the rule before the gate (no gate, patience 300, cap 1200) uses on this run: the yardstick of
    issue 17's 1.3x budget."""
    return replay(row, None, 0, 300, min(1200, row["iters"]))[0]


def _grid(text: str, kind: type) -> tuple:
    """A comma list of numbers; "none" stands for None (no gate)."""
    return tuple(None if x == "none" else kind(x) for x in text.split(","))


def load_runs(paths: list[Path], sigma: str = "estimated") -> list[dict]:
    """The plain denoising runs of every file, each with its noise level for the gate (`sigma_used`):
    the blind estimate (cached in es_dev/sigma_hat.json) or, to compare, the simulated one."""
    cache_path = HERE / "es_dev" / "sigma_hat.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    runs = [r.plain for path in paths for r in load(path)[0] if r.plain["task"] == "denoise"]
    for r in runs:
        r["sigma_used"] = sigma_hat(r, cache) if sigma == "estimated" else float(r["param"]) / 255
    cache_path.write_text(json.dumps(cache, indent=0, sort_keys=True))
    return runs


def oracle(row: dict) -> float:
    """Best EMA PSNR over the whole recorded horizon: reads the clean image (oracle, reporting only)."""
    return max(row["signals"]["psnr_ema"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--sigma", choices=("estimated", "true"), default="estimated")
    ap.add_argument("--pool-sigmas", action="store_true", help="one table per half over every noise level")
    ap.add_argument("--taus", default=TAUS, help="comma list of gate taus, none = no gate")
    ap.add_argument("--patiences", default=PATIENCES, help="comma list")
    ap.add_argument("--caps", default=CAPS, help="comma list")
    ap.add_argument("--windows", default="200", help="comma list of variance windows (50, 100, 200, 400)")
    ap.add_argument("--lag-factors", default="1", help="comma list: report at max(min + LAG, c x min)")
    ap.add_argument("--starts", default="0", help="comma list: the minima of iterations before it do not count")
    ap.add_argument("--seed", type=int, help="only this seed's runs (e.g. 2: a fresh test)")
    a = ap.parse_args()
    taus, patiences, caps = _grid(a.taus, float), _grid(a.patiences, int), _grid(a.caps, int)
    windows, factors, starts = _grid(a.windows, int), _grid(a.lag_factors, float), _grid(a.starts, int)
    runs = [r for r in load_runs(a.rows, a.sigma) if a.seed is None or r["seed"] == a.seed]

    def group(r: dict) -> tuple:
        return r["half"], r.get("net", "dip"), r["size"], "all" if a.pool_sigmas else r["param"]

    for half, net, size, sigma in sorted({group(r) for r in runs}, key=str):
        rows = [r for r in runs if group(r) == (half, net, size, sigma)]
        names = ", ".join(sorted(r["image"] for r in rows))
        horizon = min(r["iters"] for r in rows)
        print(f"\n{half} half, {net}, {size}x{size}, sigma {sigma}: {len(rows)} runs ({names}); "
              f"oracle over {horizon}+ iterations: mean {np.mean([oracle(r) for r in rows]):.2f} dB\n")
        print("| window | gate tau | patience | cap | lag factor | start | mean gap dB | p90 gap | max gap "
              "| mean reported dB | iterations | vs today |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        today = np.array([pre_study_iterations(r) for r in rows])
        for w, tau, p, c, f, first in itertools.product(windows, taus, patiences, caps, factors, starts):
            got = [replay(r, tau, r["sigma_used"], p, min(c, r["iters"]), w, f, first=first) for r in rows]
            used, psnr = np.array(got).T
            gap = np.array([oracle(r) for r in rows]) - psnr
            print(f"| {w} | {tau or '-'} | {p} | {c} | {f:g} | {first} | {gap.mean():.2f} | "
                  f"{np.percentile(gap, 90):.2f} | {gap.max():.2f} | {psnr.mean():.2f} | {used.mean():.0f} | "
                  f"{used.mean() / today.mean():.2f} |")


if __name__ == "__main__":
    main()
