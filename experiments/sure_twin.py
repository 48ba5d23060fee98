"""Can a twin fit tell when to stop? Monte-Carlo SURE along the DIP trajectory (issue 17).

The variance rule misses the peak when the windowed variance dips before it (RESULTS-stop-gate.md). SURE
(Stein's unbiased risk estimate) estimates the MSE against the *clean* image from the noisy one alone:

    SURE(h) = ||h(y) - y||^2 / N - sigma^2 + 2 sigma^2 div_y h(y) / N,

and the divergence of the whole fit (init, jitter and Adam steps held fixed) can be measured by Monte Carlo
(Ramani, Blu & Unser 2008): fit a twin to y + eps b, b ~ N(0, I), from the same weights and the same jitter,
and take b . (h(y + eps b) - h(y)) / eps. The argmin over iterations of SURE is then a blind stop. This
script records both trajectories (EMA and raw outputs every `--every` iterations) of the shipped ticket
under the fast preset's settings on es_dev crops, replays the shipped rule online on the same fit, and
writes one JSONL row per run: the true MSE, residual and twin divergence per recorded iterate, SURE with
the simulated sigma and the blind estimate (sure_report.py recomputes SURE with it), and the shipped rule's
stop. The clean image only scores. Results: experiments/RESULTS-sure.md.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/sure_twin.py --images house,bird --eps 0.5 \
        --out experiments/sure/rows-s25.jsonl.gz
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lipcli.fit import Step, ema_lag, fit
from lipcli.noise_estimate import estimate_sigma

from es_collect import Job, StopReplay, _bf16, setup, shipped_detector
from es_rows import append_row, read_rows


def trajectory(job: Job, y_shift: torch.Tensor | None, iters: int, every: int, precision: str,
               cache: Path, ticket: str) -> tuple[torch.Tensor, torch.Tensor, Any, list[float], dict[str, Any]]:
    """Fit the ticket to the job's observation (+ y_shift) to `iters`; the EMA and raw outputs every `every`
    iterations, stacked, the problem, the losses and where the shipped rule (the preset's window, patience
    and noise gate, replayed online as the loop runs it) stopped, with its PSNR; no "ended": the rule had not
    ended by `iters`."""
    s = setup(job, cache, iters, ticket=ticket, precision=precision)
    problem, cfg, target = s.problem, s.cfg, s.target
    if y_shift is not None:
        target = replace(target, y=target.y + y_shift)
    emas: list[torch.Tensor] = []
    raws: list[torch.Tensor] = []
    # the shipped rule, as the loop runs it online (with early_stop=False the loop itself would go on
    # updating its stop after the patience ran out)
    detector = shipped_detector(s, job.seed)
    replay = StopReplay(ema_lag(cfg.ema))

    def keep(step: Step) -> None:
        if step.iteration % every == 0:
            emas.append(step.shown[0].detach().float().clone())
            raws.append(step.raw[0].detach().float().clone())
        replay.step(step.iteration, detector.update(step.iteration, step.raw[0], step.loss),
                    detector.should_stop(step.iteration), lambda: problem.metric(step.shown[0], problem.clean))

    result = fit(s.model, [target], cfg, masks=s.masks, callbacks=[keep])
    shipped = replay.out
    shipped["final_psnr"] = problem.metric(result.targets[0].final, problem.clean)  # what the cap returns
    return torch.stack(emas), torch.stack(raws), problem, result.losses, shipped


def curves(h: torch.Tensor, h_twin: torch.Tensor, y: torch.Tensor, clean: torch.Tensor, b: torch.Tensor,
           eps: float, sigma: float) -> dict[str, list[float]]:
    """Per recorded iterate: true MSE, residual, divergence / N and SURE (sigma given)."""
    n = y.numel()
    mse = (h - clean).square().flatten(1).mean(1)
    res = (h - y).square().flatten(1).mean(1)
    div = ((h_twin - h) * b).flatten(1).sum(1) / (eps * n)
    return {"mse": mse.tolist(), "res": res.tolist(), "div": div.tolist(),
            "sure": (res - sigma ** 2 + 2 * sigma ** 2 * div).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--sigma", default="25")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--eps", default="0.5", help="comma list: the twin's shift, in units of sigma")
    ap.add_argument("--iters", type=int, default=2400)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--ticket", default="dip-channel-house")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    precision = ("bf16" if _bf16() else "fp32") if a.precision == "auto" else a.precision
    done = {r["key"] for r in read_rows(a.out)} if a.out.exists() else set()
    cache = a.out.parent / "crops"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    epss = [float(e) for e in a.eps.split(",")]
    for image in a.images.split(","):
        job = Job(image, a.size, 0, "denoise", a.sigma, a.seed)
        keys = {e: f"{job.key('sure')}|eps{e}|{precision}|{a.iters}" for e in epss}
        if all(k in done for k in keys.values()):
            continue
        start = time.perf_counter()
        h, r, problem, losses, shipped = trajectory(job, None, a.iters, a.every, precision, cache, a.ticket)
        seconds = time.perf_counter() - start
        y, clean = problem.y, problem.clean
        sigma = float(a.sigma) / 255
        sigma_hat = float(estimate_sigma(y))
        # A gray picture is fitted as three equal channels carrying the same noise: SURE is then about the
        # one gray plane (its noise is not independent across the copies), so shift all copies alike and
        # score the channel mean.
        gray = bool((y == y[:, :1]).all())
        if gray:
            y, clean, h, r = (v.mean(-3, keepdim=True) for v in (y, clean, h, r))
        for e in epss:
            if keys[e] in done:
                continue
            b = torch.randn(y.shape, generator=torch.Generator().manual_seed(1000 + a.seed))
            shift = e * sigma * b
            h2, r2, _, _, _ = trajectory(job, shift, a.iters, a.every, precision, cache, a.ticket)
            if gray:
                h2, r2 = h2.mean(-3, keepdim=True), r2.mean(-3, keepdim=True)
            row = {"key": keys[e], "image": image, "sigma": a.sigma, "size": a.size, "seed": a.seed, "eps": e,
                   "precision": precision, "gray": gray, "every": a.every, "iters": a.iters, "sigma_hat": sigma_hat,
                   "seconds_one_fit": round(seconds, 1), "shipped": shipped, "losses": losses[a.every - 1::a.every],
                   "ema": curves(h, h2, y, clean, b, e * sigma, sigma),
                   "raw": curves(r, r2, y, clean, b, e * sigma, sigma),
                   "twin_gap": (h2 - h).square().flatten(1).mean(1).sqrt().tolist()}
            append_row(a.out, row)
            print(f"{time.strftime('%H:%M:%S')} {keys[e]} done", flush=True)


if __name__ == "__main__":
    main()
