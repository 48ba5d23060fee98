"""Averaging fits from different seeds: `lip restore --ensemble N` (issue 17).

A DIP output is the clean image plus an error that depends on the net's initial weights, the input
code and its jitter; the errors of independently seeded fits are partly independent, so their mean
is closer to the clean image (the DIP paper reports +0.57 dB from averaging two runs). Each member is
an ordinary restore (lipcli/restore.py, hence the one fitting loop) with seed `seed + k`, auto-stopped
on its own; the written image is the mean of the members' outputs. Member 0 is therefore the single
restore of the same command, and the ensemble of N members is a prefix of the one of N + 1
(experiments/RESULTS-ensemble.md measures the gain against N). A mask's theta0 (`--init artifact`)
is shared by all members: only their input codes and jitter differ then.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

import torch

from .fit import FitConfig, FitResult, Step, TargetResult
from .problem import Problem
from .restore import Prior, restore

# What each member reports; the ensemble's own scores replace these at the top level.
MEMBER_KEYS = ("seed", "iterations", "stopped_at", "psnr_stopped", "ssim_stopped", "psnr_final",
               "oracle_best_psnr", "oracle_best_iter", "recoveries", "seconds")


def members(problem: Problem, prior: Prior, cfg: FitConfig, dev: torch.device, seeds: list[int],
            callbacks: Iterable[Callable[[Step], None]] = (),
            notify: Callable[[str], None] = lambda line: None) -> Iterator[tuple[FitResult, dict[str, Any]]]:
    """Restore once per seed (net init, input code and jitter all follow it), yielding as each ends."""
    for k, seed in enumerate(seeds):
        notify(f"ensemble member {k + 1}/{len(seeds)} (seed {seed})")
        result, report = restore(problem, prior, replace(cfg, seed=seed), dev, seed, callbacks, notify)
        yield result, {**report, "seed": seed}


def average(results: list[FitResult]) -> FitResult:
    """The members' mean outputs (auto-stopped and final) as one fit; counts and time are summed, and
    `stopped_at` is the last member's stop (by then every member had stopped)."""
    outs = [r.targets[0] for r in results]
    mean = TargetResult(final=torch.stack([t.final for t in outs]).mean(0),
                        stopped=torch.stack([t.stopped for t in outs]).mean(0),
                        stopped_at=max(t.stopped_at for t in outs))
    return FitResult([mean], iterations=sum(r.iterations for r in results),
                     losses=[v for r in results for v in r.losses],
                     recoveries=sum(r.recoveries for r in results), seconds=sum(r.seconds for r in results))


def restore_ensemble(problem: Problem, prior: Prior, cfg: FitConfig, dev: torch.device, seed: int, n: int,
                     callbacks: Iterable[Callable[[Step], None]] = (),
                     notify: Callable[[str], None] = lambda line: None) -> tuple[FitResult, dict[str, Any]]:
    """`restore` for N seeded members, averaged. The report is the single restore's, with the scores of
    the averaged outputs, summed iterations and time, and one entry per member under `members`; the
    oracle (a best iterate of one run) exists per member only."""
    fits = list(members(problem, prior, cfg, dev, [seed + k for k in range(n)], callbacks, notify))
    merged = average([result for result, _ in fits])
    tr = merged.targets[0]
    final, stopped = problem.scores(tr.final), problem.scores(tr.stopped)
    report = {
        **fits[0][1], "ensemble": n, "members": [{k: rep[k] for k in MEMBER_KEYS} for _, rep in fits],
        "iterations": merged.iterations, "stopped_at": tr.stopped_at, "recoveries": merged.recoveries,
        "seconds": round(merged.seconds, 3), "psnr_final": final["psnr"], "psnr_stopped": stopped["psnr"],
        "ssim_final": final["ssim"], "ssim_stopped": stopped["ssim"],
        "oracle_best_psnr": None, "oracle_best_iter": None,
    }
    del report["seed"]  # the command's seed is reported beside it; members carry their own
    return merged, report
