"""Averaging fits from different seeds: `lip restore --ensemble N` (issue 17).

A DIP output is the clean image plus an error that depends on the net's initial weights, the input
code and its jitter; the errors of independently seeded fits are partly independent, so their mean
is closer to the clean image (the DIP paper reports +0.57 dB from averaging two runs). Each member is
an ordinary restore (lipcli/restore.py, hence the one fitting loop) with seed `seed + k`, auto-stopped
on its own; the written image is the mean of the members' outputs. Member 0 is therefore the single
restore of the same command, and the ensemble of N members is a prefix of the one of N + 1
(experiments/RESULTS-ensemble.md measures the gain against N). A mask's theta0 (`--init artifact`)
is shared by all members: only their input codes and jitter differ then.

On a CPU the CLI fits the members of one image at once, in worker processes with the cores divided
(lipcli/jobs.py): each worker fits its share of the seeds exactly as `members` does here and leaves each
member in a file (`save_member`), which the parent reads back in seed order and averages as the
sequential ensemble does, so both give the same image at the same thread count.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .files import atomic_path
from .fit import FitConfig, FitResult, Step, TargetResult
from .problem import Problem
from .restore import Prior, restore
from .resume import Keeper, fit_state, member_file

# What each member reports; the ensemble's own scores replace these at the top level.
MEMBER_KEYS = ("seed", "iterations", "stopped_at", "auto_stopped", "psnr_stopped", "ssim_stopped", "psnr_final",
               "oracle_best_psnr", "oracle_best_iter", "recoveries", "seconds", "threads")
# Fits the members elsewhere (the CLI's worker processes) and returns them in seed order; the folder is
# where their states are kept (None: nowhere).
Elsewhere = Callable[[Problem, list[int], Path | None], Iterable[tuple[FitResult, dict[str, Any]]]]


def members(problem: Problem, prior: Prior, cfg: FitConfig, dev: torch.device, seeds: list[int],
            callbacks: Iterable[Callable[[Step], None]] = (),
            notify: Callable[[str], None] = lambda line: None,
            states: Path | None = None, every: float | None = None) -> Iterator[tuple[FitResult, dict[str, Any]]]:
    """Restore once per seed (net init, input code and jitter all follow it), yielding as each ends. With a
    `states` folder each fit keeps its state there (lipcli/resume.py), saved every `every` seconds and once
    it has ended, so that a member already fitted is not fitted again."""
    for k, seed in enumerate(seeds):
        notify(f"ensemble member {k + 1}/{len(seeds)} (seed {seed})")
        keeper = None if states is None else Keeper(fit_state(states, seed), every, notify, final=True)
        named = [lambda step, cb=cb, seed=seed: cb(replace(step, member=seed)) for cb in callbacks]
        result, report = restore(problem, prior, replace(cfg, seed=seed), dev, seed, named, notify, keeper)
        yield result, {**report, "seed": seed, "threads": torch.get_num_threads()}


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
                     notify: Callable[[str], None] = lambda line: None,
                     elsewhere: Elsewhere | None = None, states: Path | None = None,
                     every: float | None = None) -> tuple[FitResult, dict[str, Any]]:
    """`restore` for N seeded members, averaged. The report is the single restore's, with the scores of
    the averaged outputs, summed iterations and time, and one entry per member under `members`; the
    oracle (a best iterate of one run) exists per member only. The members are fitted here one after the
    other, or by `elsewhere` (then `callbacks` and `notify` see nothing of them); `states`, `every`: as
    `members` keeps them."""
    seeds = [seed + k for k in range(n)]
    fits = list(elsewhere(problem, seeds, states) if elsewhere is not None
                else members(problem, prior, cfg, dev, seeds, callbacks, notify, states, every))
    merged = average([result for result, _ in fits])
    tr = merged.targets[0]
    final, stopped = problem.scores(tr.final), problem.scores(tr.stopped)
    report = {
        **fits[0][1], "ensemble": n, "members": [{k: rep.get(k) for k in MEMBER_KEYS} for _, rep in fits],
        "iterations": merged.iterations, "stopped_at": tr.stopped_at,
        "auto_stopped": all(rep.get("auto_stopped") for _, rep in fits), "recoveries": merged.recoveries,
        "seconds": round(merged.seconds, 3), "psnr_final": final["psnr"], "psnr_stopped": stopped["psnr"],
        "ssim_final": final["ssim"], "ssim_stopped": stopped["ssim"],
        "oracle_best_psnr": None, "oracle_best_iter": None,
    }
    del report["seed"], report["threads"]  # the command's are reported beside them; members carry their own
    return merged, report


def fit_share(problem: Problem, prior: Prior, cfg: FitConfig, dev: torch.device, seed: int, n: int,
              share: tuple[int, int], folder: Path, callbacks: Iterable[Callable[[Step], None]] = (),
              notify: Callable[[str], None] = lambda line: None, every: float | None = None) -> None:
    """Fit members j, j+m, ... of the N-member ensemble (`share` j/m) and leave each in `folder`, where
    their states are kept too (`members`)."""
    j, m = share
    seeds = [seed + k for k in range(j, n, m)]
    for result, report in members(problem, prior, cfg, dev, seeds, callbacks, notify, folder, every):
        save_member(member_file(folder, report["seed"] - seed), result, report)


def save_member(path: Path, result: FitResult, report: dict[str, Any]) -> None:
    """One member as the parent averages it: its outputs bit for bit (safetensors), counts and report
    (one JSON metadata key). Written atomically: a stopped worker leaves no partial member."""
    tr = result.targets[0]
    meta = {"report": report, "stopped_at": tr.stopped_at, "iterations": result.iterations,
            "recoveries": result.recoveries, "seconds": result.seconds}
    tensors = {"final": tr.final.contiguous(),  # the two may be one tensor, or a view of a padded output
               "stopped": tr.stopped.clone(memory_format=torch.contiguous_format),
               "losses": torch.tensor(result.losses, dtype=torch.float64)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"lip": json.dumps(meta)})


def load_member(path: Path) -> tuple[FitResult, dict[str, Any]]:
    """A member `save_member` wrote, as `members` yields it."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["lip"])
        target = TargetResult(final=f.get_tensor("final"), stopped=f.get_tensor("stopped"),
                              stopped_at=meta["stopped_at"])
        losses = f.get_tensor("losses").tolist()
    return FitResult([target], iterations=meta["iterations"], losses=losses,
                     recoveries=meta["recoveries"], seconds=meta["seconds"]), meta["report"]
