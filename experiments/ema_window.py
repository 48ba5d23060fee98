"""How long should the output average be? The EMA's decay under the shipped stop (issue 17, item 2).

lip reports the EMA of the raw outputs (decay 0.99, the DIP paper's), taken `lag = ema / (1 - ema)`
iterations after the variance minimum, so that it is centred on the minimum. A longer average takes more
iterates around the peak (less noise, more lag and more iterations); a shorter one the reverse. The decay
was never varied. This script fits the default denoising prior once per crop and runs, on the same fit,
the shipped rule (the preset's window, patience and noise gate, as the loop runs it) once per decay: each
has its own lag, so its own reported iterate and its own end. One row per crop: per decay, where it
reported and ended, the PSNR it reports, and its best PSNR over the fit. The clean image only scores.
`--report` prints per half and decay the gap to the oracle (the best PSNR of any decay's average over the
fit), the paired difference from 0.99 and the iterations each rule runs.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/ema_window.py --images house,bird \
        --out experiments/ema_window/rows-s25.jsonl.gz
    PYTHONPATH=$PWD:$PWD/experiments python experiments/ema_window.py --report experiments/ema_window/rows-s25.jsonl.gz
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipcli.fit import Step, ema_lag, fit

from es_collect import TUNE, Job, StopReplay, setup, shipped_detector
from es_rows import append_row, read_rows

DECAYS = (0.98, 0.99, 0.995)


class Averages:
    """Step callback: one EMA per decay, each with the shipped rule replayed online at its own lag."""

    def __init__(self, job: Job, s: Any, decays: tuple[float, ...]) -> None:
        self.problem = s.problem
        self.detector = shipped_detector(s, job.seed)
        self.decays = decays
        self.ema: dict[float, torch.Tensor] = {}
        self.replays = {d: StopReplay(ema_lag(d)) for d in decays}
        self.seen: dict[float, dict[str, Any]] = {d: {"best": -1.0} for d in decays}

    def __call__(self, step: Step) -> None:
        x = step.raw[0].detach().float()
        new_min = self.detector.update(step.iteration, step.raw[0], step.loss)
        done = self.detector.should_stop(step.iteration)
        for d in self.decays:
            e = self.ema[d] = x.clone() if d not in self.ema else self.ema[d].lerp_(x, 1 - d)
            value = self.problem.metric(e, self.problem.clean)
            seen = self.seen[d]
            if value > seen["best"]:
                seen.update(best=value, best_at=step.iteration)
            seen["final"] = value  # what the cap returns when the rule never reported
            self.replays[d].step(step.iteration, new_min, done, lambda: value)

    def out(self, d: float) -> dict[str, Any]:
        """Per decay: the best PSNR of its average and where, its PSNR at the cap, and its replay's report."""
        return {**self.seen[d], **self.replays[d].out}


def report(paths: list[Path]) -> None:
    rows = [r for p in paths for r in read_rows(p)]
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    print("| crop | half | oracle | " + " | ".join(f"{d}: PSNR (reported at / ended)" for d in map(str, DECAYS)) + " |")
    print("|---|---|---|" + "---|" * len(DECAYS))
    for r in sorted(rows, key=lambda r: (r["half"], r["image"])):
        out = r["decays"]
        oracle = max(o["best"] for o in out.values())
        line = []
        for d in map(str, DECAYS):
            o = out[d]
            got = o.get("psnr", o["final"])
            c = cells[(r["half"], d)]
            c["gap"].append(oracle - got)
            c["vs"].append(got - out["0.99"].get("psnr", out["0.99"]["final"]))
            c["iters"].append(o.get("ended", r["iters"]))
            c["psnr"].append(got)
            line.append(f"{got:.2f} ({o.get('stopped_at', '-')} / {o.get('ended', r['iters'])})")
        print(f"| {r['image']} | {r['half']} | {oracle:.2f} | " + " | ".join(line) + " |")
    print("\n| half | decay | crops | mean PSNR | gap to oracle: mean / p90 / max | vs 0.99 (paired mean, better) | "
          "iterations (mean) |")
    print("|---|---|---|---|---|---|---|")
    for (half, d), c in sorted(cells.items()):
        g = c["gap"]
        print(f"| {half} | {d} | {len(g)} | {np.mean(c['psnr']):.2f} | {np.mean(g):.2f} / {np.percentile(g, 90):.2f} / "
              f"{max(g):.2f} | {np.mean(c['vs']):+.2f} ({sum(v > 0 for v in c['vs'])}) | {np.mean(c['iters']):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=",".join(TUNE))
    ap.add_argument("--sigma", default="25")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=3000, help="the default ticket's cap")
    ap.add_argument("--ticket", default="dip-channel-house")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, nargs="+", help="print the tables of these rows files and exit")
    a = ap.parse_args()
    if a.report:
        return report(a.report)
    if a.out is None:
        ap.error("--out is required to fit")
    torch.set_num_threads(a.threads)
    done = {r["key"] for r in read_rows(a.out)} if a.out.exists() else set()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for image in a.images.split(","):
        job = Job(image, a.size, 0, "denoise", a.sigma, a.seed)
        key = f"{job.key('ema')}|{a.iters}"
        if key in done:
            continue
        start = time.perf_counter()
        s = setup(job, a.out.parent / "crops", a.iters, ticket=a.ticket)
        avg = Averages(job, s, DECAYS)
        fit(s.model, [s.target], s.cfg, masks=s.masks, callbacks=[avg])
        append_row(a.out, {"key": key, "image": image, "half": job.half, "sigma": a.sigma, "size": a.size,
                           "seed": a.seed, "iters": a.iters, "ticket": a.ticket, "precision": s.cfg.precision,
                           "seconds": round(time.perf_counter() - start, 1),
                           "decays": {str(d): avg.out(d) for d in DECAYS}})
        print(f"{time.strftime('%H:%M:%S')} {key} done", flush=True)


if __name__ == "__main__":
    main()
