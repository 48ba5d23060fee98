"""Residual whiteness as a blind stop signal: replay on recorded trajectories (issue 17).

Why: at sigma 15 the shipped rule (windowed variance of the outputs, noise gate) misses late, flat peaks: the
variance dips 1000-1400 iterations early on some crops, and no rule on the variance or the loss tells those crops
from the ones that peak early (RESULTS-stop-gate.md). The residual y - x holds two things: image the net has not
drawn yet (spatially correlated) and noise (white). Once the net starts drawing the noise, the residual loses the
noise's smooth part and turns high-pass. So its whiteness peaks where the fit has explained the image and not yet
the noise. That needs no noise level, so it is free of the estimate's bias at low noise.

The signal (es_collect.py `whiteness`, recorded per iteration as white_raw / white_ema): W = the sum of the squared
normalised autocorrelations of the residual over lags within 3 pixels. The rule: the trailing mean of W over `k`
iterations; its running minimum; stop once `patience` iterations pass without a new one; report the EMA output
`lag` iterations after the minimum (the EMA trails by ~99, the trailing mean by k/2), cap as shipped. Optionally
only minima after the noise gate opens count (`gate`). Chosen on TUNE, reported on REPORT; never reads the clean
image (the oracle and the gap are for scoring only).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_white.py experiments/es_dev/rows-white-s15-tune*.jsonl.gz
"""
from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from es_analyze import min_with_patience
from stop_gate import K, load_runs, oracle, replay
from stop_jitter import SHIPPED_WINDOW, shipped, shipped_gate


def trailing(x: np.ndarray, k: int) -> np.ndarray:
    """Causal mean over the last k values (inf before k are seen)."""
    out = np.convolve(x, np.ones(k) / k)[: len(x)]
    out[: k - 1] = np.inf
    return out


def replay_white(row: dict, signal: str, k: int, patience: int, lag: int, cap: int,
                 gate: float | str | None = None) -> tuple[int, float]:
    """(iterations used, reported EMA PSNR) of the whiteness rule (module docstring)."""
    s = row["signals"]
    gate = resolve_gate(row, gate)
    w = trailing(np.array(s[signal][:cap], dtype=float), k)
    if gate is not None:
        loss = trailing(np.array(s["loss"][:cap]), K)
        below = np.nonzero(loss <= gate * row["sigma_used"] ** 2)[0]
        w[: int(below[0]) if below.size else len(w)] = np.inf
    at, stop = min_with_patience(list(w), max(patience, lag), cap)
    ema = s["psnr_ema"]
    if at <= 0:
        return cap, ema[cap - 1]
    t = min(max(at + lag, 1), cap)
    return min(max(stop, t), cap), ema[t - 1]


def white_open(row: dict, signal: str, level: float, cap: int) -> int:
    """The first iteration at which the trailing mean (over K) of the residual's lag-1 autocorrelation
    (`signal`: white_raw or white_ema, across and down averaged) is at or under `level`; cap + 1 if never."""
    below = np.nonzero(rho_trailing(row, signal, cap) <= level)[0]
    return int(below[0]) + 1 if below.size else cap + 1


def resolve_gate(row: dict, tau: float | str | None) -> float | None:
    """The noise gate's tau: as given, or for "shipped" the entry's for this run (None: no gate)."""
    return shipped_gate(row) if tau == "shipped" else tau


def resolve_level(row: dict, level: float | str | None) -> float | None:
    """The whiteness level: as given, or for "shipped" the entry's for this run (None: off)."""
    return (shipped("es_white", row) or None) if level == "shipped" else level


def rho_trailing(row: dict, signal: str, cap: int) -> np.ndarray:
    """The trailing mean (over K) of the residual's lag-1 autocorrelation (`signal`: white_raw or white_ema,
    across and down averaged), as lipcli/earlystop.py keeps it."""
    s = row["signals"]
    return trailing((np.array(s[f"{signal}_h"][:cap]) + np.array(s[f"{signal}_v"][:cap])) / 2, K)


def replay_gated(row: dict, signal: str, level: float | str | None, tau: float | str | None,
                 cap: int, guard: float = 0.0, close: float | None = None) -> tuple[int, float]:
    """The shipped rule (patience 150; the window and, if `tau` is "shipped", the noise gate the entry gives the
    run's noise estimate) where, besides, a variance minimum counts only once the residual's lag-1
    autocorrelation has come down to `level` (`white_open`; None: no whiteness gate, the shipped rule before it;
    "shipped": the entry's level for the estimate, `resolve_level`) and, with `close`, only until it has come
    down to `close` after a first minimum (lip's es_close: stop_close.py)."""
    level = resolve_level(row, level)
    first = 0 if level is None else white_open(row, signal, level, cap)
    closing = None if close is None else rho_trailing(row, signal, cap) <= close
    return replay(row, resolve_gate(row, tau), row["sigma_used"], 150, cap, SHIPPED_WINDOW(row), first=first,
                  guard=guard, closing=closing)


def _opens(row: dict, signal: str, level: float | None, cap: int) -> str:
    """Where the whiteness gate opens on this run, for a per-crop line."""
    return "- (off)" if level is None else str(white_open(row, signal, level, cap))


def _list(text: str, kind: type) -> list:
    return [None if x == "none" else x if x == "shipped" else kind(x) for x in text.split(",")]


Candidate = tuple[tuple, Callable[[dict], tuple[int, float]], Callable[[dict], str]]


def candidates(a: argparse.Namespace) -> tuple[str, list[Candidate]]:
    """The table's header and, per rule, its cells, its replay and what a per-crop line adds."""
    signals, gates = a.signals.split(","), _list(a.gates, float)
    if a.levels:
        return "| signal | level | gate |", [
            ((sig, level, gate or "-"),
             lambda r, s=sig, lv=level, g=gate: replay_gated(r, s, lv, g, min(a.cap, r["iters"])),
             lambda r, s=sig, lv=level: f"; opens {_opens(r, s, resolve_level(r, lv), a.cap)}")
            for sig, level, gate in itertools.product(signals, _list(a.levels, float), gates)]
    grid = itertools.product(signals, _list(a.ks, int), _list(a.patiences, int), _list(a.lags, int), gates)
    return "| signal | k | patience | lag | gate |", [
        ((sig, k, p, lag, gate or "-"),
         lambda r, s=sig, k=k, p=p, lag=lag, g=gate: replay_white(r, s, k, p, lag, min(a.cap, r["iters"]), g),
         lambda r: "") for sig, k, p, lag, gate in grid]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--signals", default="white_raw,white_ema")
    ap.add_argument("--ks", default="50,100,200")
    ap.add_argument("--patiences", default="150,300,500")
    ap.add_argument("--lags", default="0,50,99")
    ap.add_argument("--gates", default="none,shipped", help="comma list: the noise gate's tau, none = no gate, "
                    "shipped = the entry's gate for the run's noise estimate")
    ap.add_argument("--cap", type=int, default=3000)
    ap.add_argument("--levels", help="comma list: instead of the minimum rule, the shipped rule with a whiteness "
                    "gate at these lag-1 autocorrelations, none = off, shipped = the entry's level for the run's "
                    "noise estimate (replay_gated; --signals, --gates apply)")
    ap.add_argument("--per-crop", action="store_true", help="also one line per run for the first rule")
    ap.add_argument("--seed", type=int, help="only this seed's runs")
    a = ap.parse_args()
    runs = [r for r in load_runs(a.rows) if a.seed is None or r["seed"] == a.seed]
    header, rules = candidates(a)
    for half in sorted({r["half"] for r in runs}):
        rows = [r for r in runs if r["half"] == half]
        best = np.array([oracle(r) for r in rows])
        base = np.array([replay_gated(r, "", None, "shipped", min(a.cap, r["iters"])) for r in rows]).T
        print(f"\n{half}: {len(rows)} runs ({', '.join(sorted(r['image'] + '/s' + str(r['seed']) for r in rows))})")
        print(f"base: no whiteness gate (patience 150, the entry's window and gate for the estimate): "
              f"gap {np.mean(best - base[1]):.3f} / "
              f"p90 {np.percentile(best - base[1], 90):.2f} / max {np.max(best - base[1]):.2f}, "
              f"{base[0].mean():.0f} it\n")
        print(f"{header} mean gap | p90 | max | iterations | vs base |")
        print("|---" * (header.count("|") + 4) + "|")
        for n, (cells, rule, extra) in enumerate(rules):
            used, psnr = np.array([rule(r) for r in rows]).T
            gap = best - psnr
            print("| " + " | ".join(map(str, cells)) + f" | {gap.mean():.3f} | {np.percentile(gap, 90):.2f} "
                  f"| {gap.max():.2f} | {used.mean():.0f} | {used.mean() / base[0].mean():.2f} |")
            for r, g, u, g0, u0 in zip(rows, gap, used, best - base[1], base[0]) if a.per_crop and not n else ():
                peak = int(np.argmax(r["signals"]["psnr_ema"])) + 1
                print(f"    {r['image']:>18} s{r['seed']} peak {peak:4d}: rule {g:.2f} dB at {u:.0f} it; "
                      f"base {g0:.2f} dB at {u0:.0f} it{extra(r)}")


if __name__ == "__main__":
    main()
