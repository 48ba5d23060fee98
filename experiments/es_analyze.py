"""Replay early-stopping rules on the trajectories es_collect.py recorded, and write RESULTS-es-dev.md.

Why offline: every rule below is a function of per-iteration signals that were stored once per run,
so a grid of hundreds of rules costs seconds instead of hundreds of CPU hours. Rules are *chosen*
on the TUNE half of the images and *reported* on the REPORT half, so no number in the report
table was used to pick the rule it describes.

Gap = oracle - PSNR of the output the rule reports. Oracle = best PSNR, anywhere in the recorded
horizon (1.5x the preset's iterations), of the output lip reports today (EMA for denoising, raw
output otherwise) in the *plain* run; held-out rules are scored on the held-out run (that is what a
user of the rule would get) against the same plain oracle, so they pay for the 3% of data they drop.

    PYTHONPATH=$PWD python experiments/es_analyze.py            # reads experiments/es_dev/rows.jsonl.gz
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from es_rows import SAME_PICTURE, read_rows

HERE = Path(__file__).resolve().parent
LAG = 99  # EMA 0.99: its centre of mass is ema/(1-ema) iterations behind (RESULTS-es.md)
GOAL_MEAN, GOAL_P90, COST_CAP = 0.1, 0.3, 1.3  # issue 17's goals and iteration budget

Row = dict
Outcome = tuple[int, float, int, Row]  # (iterations used, PSNR reported, iteration reported, row read)


@dataclass
class Run:
    """A plain run and, when recorded, its held-out twin."""

    plain: Row
    held: Row | None

    @property
    def group(self) -> str:
        r = self.plain
        task = {"denoise": f"denoise s{r['param']}", "sr": f"sr x{r['param']}"}.get(r["task"])
        task = task or ("inpaint bern" if r["param"] == "bern" else "inpaint mask")
        return f"{task} {r['size']}"

    @property
    def task(self) -> str:
        return self.plain["task"]

    def default_series(self, row: Row) -> list[float]:
        s = row["signals"]
        return s["psnr_ema"] if row["preset_ema"] else s["psnr_raw"]

    @property
    def oracle(self) -> tuple[float, int]:
        ser = self.default_series(self.plain)
        i = int(np.argmax(ser))
        return ser[i], i + 1


def load(*paths: Path) -> tuple[list[Run], int, int]:
    """Runs with both variants when the held-out one exists (in any of `paths`: a variant may be recorded
    to a file of its own); also (rows read, error rows). A picture recorded twice under two names
    (es_rows.SAME_PICTURE) counts once."""
    rows, errors = {}, 0
    for r in (r for path in paths for r in read_rows(path)):
        if r.get("image") in SAME_PICTURE:
            continue
        if "error" in r:
            errors += 1
            continue
        rows[r["key"]] = r
    runs = []
    for key, r in rows.items():
        if r["variant"] == "plain":
            runs.append(Run(r, rows.get(key.rsplit("|", 1)[0] + "|heldout")))
    return runs, len(rows), errors


# ---- rules: each maps a row to an Outcome ----

def min_with_patience(signal: list[float | None], patience: int, cap: int,
                      relative: float = 0.0) -> tuple[int, int]:
    """(iteration of the running minimum when patience ran out, stop iteration), as lipcli/earlystop.py:
    a strictly lower value is a new minimum; stop once `patience` iterations pass without one (or, with
    `relative` r > 0, max(patience, r x the minimum's iteration): a candidate rule, not lip's).
    No stop before `cap` -> (minimum so far, cap); no value at all -> (-1, cap)."""
    v = np.array([np.inf if x is None else x for x in signal[:cap]], dtype=float)
    cap = len(v)
    prev = np.concatenate(([np.inf], np.minimum.accumulate(v)[:-1]))
    it = np.arange(1, cap + 1)
    best = np.maximum.accumulate(np.where(v < prev, it, -1))
    fired = np.nonzero((best > 0) & (it - best >= np.maximum(patience, relative * best)))[0]
    if fired.size:
        return int(best[fired[0]]), int(fired[0] + 1)
    return int(best[-1]), cap


def report(row: Row, at: int, stop: int, output: str, cap: int) -> Outcome:
    """Outcome for a minimum at `at` and a patience stop at `stop`, as lip's loop behaves: the output is
    `output` ('raw' or 'ema' at t, 'ema+lag' at t + 99); the run continues until the lagged output
    has been taken; a lagged output beyond the cap, or no minimum at all, -> the last iterate."""
    s = row["signals"]
    lag = LAG if output == "ema+lag" else 0
    cap = min(cap, len(s["loss"]))
    if at <= 0:
        used = t = cap if stop >= cap else stop
    else:
        used = min(max(stop, at + lag), cap)
        t = at + lag if at + lag <= cap else cap
    series = s["psnr_raw"] if output == "raw" else s["psnr_ema"]
    return used, series[t - 1], t, row


def _limit(row: Row, cap: float | None) -> int:
    """The iteration cap: `cap` x the preset's iterations, within the recorded horizon (None: the horizon)."""
    return row["iters"] if cap is None else min(round(cap * row["preset_iters"]), row["iters"])


def variance_rule(signal: str, window: int, patience: int, output: str, cap: float | None = None,
                  on: str = "plain") -> Callable[[Run], Outcome | None]:
    """cap: the iteration cap as a multiple of the preset's iterations (None: the recorded horizon);
    on: "held" replays the rule on the held-out twin (what the variance rule loses to the dropped data)."""
    def rule(run: Run) -> Outcome | None:
        row = run.plain if on == "plain" else run.held
        if row is None:
            return None
        limit = _limit(row, cap)
        at, stop = min_with_patience(row["signals"][f"{signal}_{window}"], patience, limit)
        out = output if output != "default" else ("ema+lag" if row["preset_ema"] else "raw")
        return report(row, at, stop, out, limit)
    return rule


def smooth(values: list[float], k: int) -> list[float | None]:
    """Trailing mean over k iterations (causal: a rule may only look back)."""
    a = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(a, 0, 0.0))
    out: list[float | None] = [None] * min(k - 1, len(a))
    out += list((c[k:] - c[:-k]) / k)
    return out


def heldout_rule(k: int, patience: int, output: str, cap: float | None = None) -> Callable[[Run], Outcome | None]:
    """Minimum of the k-smoothed held-out MSE, with patience; the reported iterate is the centre of
    the smoothing window (a trailing mean's minimum lags it by (k-1)/2). cap: as variance_rule's."""
    def rule(run: Run) -> Outcome | None:
        if run.held is None:
            return None
        row = run.held
        limit = _limit(row, cap)
        at, stop = min_with_patience(smooth(row["signals"]["heldout_mse"], k), patience, limit)
        return report(row, max(1, at - (k - 1) // 2) if at > 0 else at, stop, output, limit)
    return rule


def gated_variance_rule(window: int, patience: int, k: int, gate_patience: int, output: str,
                        cap: float | None = None) -> Callable[[Run], Outcome | None]:
    """The variance rule on the held-out run, behind a held-out gate: a variance minimum counts only once
    the k-smoothed held-out MSE has gone `gate_patience` iterations without a new minimum (it has stopped
    falling: the fit no longer gains on unseen pixels). The gate opens for good, as lip's noise gate."""
    def rule(run: Run) -> Outcome | None:
        if run.held is None:
            return None
        row, limit = run.held, _limit(run.held, cap)
        s = row["signals"]
        _, opened = min_with_patience(smooth(s["heldout_mse"], k), gate_patience, limit)
        var = [None if i < opened else v for i, v in enumerate(s[f"var_raw_{window}"][:limit], 1)]
        at, stop = min_with_patience(var, patience, limit)
        return report(row, at, stop, output, limit)
    return rule


def combined_rule(window: int, patience: int, k: int, hpatience: int, output: str
                  ) -> Callable[[Run], Outcome | None]:
    """Both detectors on the held-out run; stop when both have stopped, report the iterate midway
    between the variance minimum and the held-out minimum (each signal's error partly cancels)."""
    def rule(run: Run) -> Outcome | None:
        if run.held is None:
            return None
        s = run.held["signals"]
        v_at, v_stop = min_with_patience(s[f"var_raw_{window}"], patience, run.held["iters"])
        h_at, h_stop = min_with_patience(smooth(s["heldout_mse"], k), hpatience, run.held["iters"])
        at = (v_at + h_at - (k - 1) // 2) // 2 if v_at > 0 and h_at > 0 else -1
        return report(run.held, at, max(v_stop, h_stop), output, run.held["iters"])
    return rule


def self_rule(k: int, patience: int, output: str) -> Callable[[Run], Outcome | None]:
    """Self-referenced: minimum of the k-smoothed step-to-step change ||x_t - x_(t-1)||^2, reported at
    the centre of the smoothing window (the output moves least where it has fitted content, not noise)."""
    def rule(run: Run) -> Outcome | None:
        row = run.plain
        d = row["signals"]["d_step"]
        d = [d[1] if x is None else x for x in d]
        at, stop = min_with_patience(smooth(d, k), patience, row["iters"])
        return report(row, max(1, at - (k - 1) // 2) if at > 0 else at, stop, output, row["iters"])
    return rule


def fixed_rule(which: str) -> Callable[[Run], Outcome | None]:
    """No early stop: lip's output after the preset's iterations, or after the 1.5x horizon."""
    def rule(run: Run) -> Outcome | None:
        row = run.plain
        t = row["preset_iters"] if which == "preset" else row["iters"]
        return report(row, -1, t, "ema+lag" if row["preset_ema"] else "raw", t)
    return rule


def rules() -> dict[str, tuple[str, Callable[[Run], Outcome | None]]]:
    """name -> (family, rule). 'today' is lip's fast preset exactly (capped at the preset's iterations)."""
    out = {"today": ("today", variance_rule("var_raw", 200, 300, "default", cap=1.0)),
           "no stop, preset iterations": ("fixed", fixed_rule("preset")),
           "no stop, 1.5x iterations": ("fixed", fixed_rule("horizon"))}
    for k in (25, 100):
        for p in (200, 400):
            for o in ("raw", "ema+lag"):
                out[f"self dstep k{k} p{p} {o}"] = ("self", self_rule(k, p, o))
    for w in (50, 100, 200, 400):
        for p in (100, 200, 300, 500, 800):
            for o in ("default", "raw", "ema", "ema+lag"):
                out[f"var raw w{w} p{p} {o}"] = ("variance", variance_rule("var_raw", w, p, o))
    for w in (100, 200):
        for p in (300, 500):
            out[f"var ema w{w} p{p} ema"] = ("variance", variance_rule("var_ema", w, p, "ema"))
    for k in (1, 25, 50, 100, 200):
        for p in (100, 200, 300, 500):
            for o in ("raw", "ema+lag"):
                out[f"heldout k{k} p{p} {o}"] = ("heldout", heldout_rule(k, p, o))
    for w in (100, 200):
        for k in (50, 100):
            for p in (300, 500):
                out[f"combo w{w} k{k} p{p} ema+lag"] = ("combo", combined_rule(w, p, k, p, "ema+lag"))
    return out


# ---- scoring ----

Evaluated = dict[str, tuple[float, int, float, float]]  # run key -> (gap dB, reported it - peak it,
#                                                                   its / today's, gap vs own run's oracle)


def evaluate(runs: list[Run], rule: Callable[[Run], Outcome | None], today: dict[str, Outcome]) -> Evaluated:
    out = {}
    for run in runs:
        o = rule(run)
        if o is not None:
            best, peak = run.oracle
            own = best if o[3] is run.plain else max(run.default_series(o[3]))
            out[run.plain["key"]] = (best - o[1], o[2] - peak, o[0] / today[run.plain["key"]][0], own - o[1])
    return out


@dataclass
class Score:
    n: int
    mean: float
    p90: float
    stop_vs_peak: float  # median (reported iteration - oracle peak iteration)
    cost: float  # mean iterations used / today's
    own: float  # mean gap vs the oracle of the run the rule read (differs for held-out rules only)


def score(runs: list[Run], ev: Evaluated) -> Score | None:
    got = [ev[r.plain["key"]] for r in runs if r.plain["key"] in ev]
    if not got:
        return None
    gaps, rel, cost, own = (np.array(x, dtype=float) for x in zip(*got))
    return Score(len(got), float(gaps.mean()), float(np.percentile(gaps, 90)), float(np.median(rel)),
                 float(cost.mean()), float(own.mean()))


def badness(runs: list[Run], ev: Evaluated) -> float:
    """How far the worst task is from issue 17's goals (<= 1 meets them); inf over the iteration
    budget or when the rule cannot score every run (a held-out rule without held-out twins)."""
    total = score(runs, ev)
    if total is None or total.n < len(runs) or total.cost > COST_CAP:
        return float("inf")
    worst = -float("inf")
    for task in {r.task for r in runs}:
        s = score([r for r in runs if r.task == task], ev)
        worst = max(worst, s.mean / GOAL_MEAN, s.p90 / GOAL_P90)
    return worst


def table(runs: list[Run], named: dict[str, Evaluated]) -> list[str]:
    lines = ["| rule | group | n | mean gap dB | p90 gap dB | median reported it - peak it | its vs today "
             "| mean gap vs own run's oracle |", "|---|---|---|---|---|---|---|---|"]
    groups = defaultdict(list)
    for r in runs:
        groups[r.group].append(r)
    for name, ev in named.items():
        for g in sorted(groups) + ["all"]:
            s = score(groups[g] if g != "all" else runs, ev)
            if s is not None:
                lines.append(f"| {name} | {g} | {s.n} | {s.mean:.2f} | {s.p90:.2f} | {s.stop_vs_peak:+.0f} | "
                             f"{s.cost:.2f} | {s.own:.2f} |")
    return lines


def consistency(runs: list[Run]) -> str:
    """Does replaying lip's detector on the recorded window-200 variance land where lip's own did?"""
    agree = checked = 0
    for r in runs:
        row = r.plain
        at, _ = min_with_patience(row["signals"]["var_raw_200"], 10 ** 9, row["iters"])
        lag = LAG if row["preset_ema"] else 0
        if row.get("fit_stopped_at") and at > 0 and at + lag <= row["iters"]:
            checked += 1
            agree += row["fit_stopped_at"] == at + lag
    return f"{agree} of {checked} plain runs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, default=HERE / "es_dev" / "rows.jsonl.gz")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-es-dev.md")
    ap.add_argument("--notes", type=Path, default=HERE / "es_dev" / "notes.md",
                    help="hand-written reading, included verbatim if it exists")
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from es_collect import jobs, runs as planned_runs  # the plan, for the coverage count

    runs, n_rows, n_err = load(a.rows)
    all_rules = rules()
    today = {r.plain["key"]: all_rules["today"][1](r) for r in runs}
    tune = [r for r in runs if r.plain["half"] == "tune"]
    rep = [r for r in runs if r.plain["half"] == "report"]
    evals = {n: evaluate(runs, f, today) for n, (_, f) in all_rules.items()}
    # Every family is chosen on the same tune runs: those whose held-out twin exists (if any do).
    pick_on = [r for r in tune if r.held is not None] or tune

    def rank(name: str) -> tuple[float, float, float]:
        s = score(pick_on, evals[name])
        return (badness(pick_on, evals[name]), s.mean, s.cost) if s else (float("inf"),) * 3

    ranks = {n: rank(n) for n in evals}
    picks: dict[str, str] = {}
    for family in ("variance", "heldout", "combo", "self"):
        names = [n for n, (fam, _) in all_rules.items() if fam == family and ranks[n][0] < float("inf")]
        if names:
            picks[family] = min(names, key=ranks.__getitem__)
    chosen = {n: evals[n] for n in ("today", "no stop, preset iterations")}
    chosen.update({picks[f]: evals[picks[f]] for f in picks})
    planned = len(planned_runs(jobs()))
    done_tiers = sorted({r.group for r in runs})
    lines = [
        "# Early stopping on a development set (issue 17): PARTIAL, collection still running", "",
        f"**Coverage: {n_rows} of {planned} planned runs recorded ({100 * n_rows / planned:.1f}%)"
        f"{f', {n_err} failed' if n_err else ''}; {len(runs)} plain runs, "
        f"{sum(r.held is not None for r in runs)} with their held-out twin; "
        f"{len(tune)} tune / {len(rep)} report; groups so far: {', '.join(done_tiers) or 'none'}.** "
        "Numbers below are preliminary: they describe only the runs listed, and small n means a mean "
        "or a 90th percentile can move by tenths of a dB as rows arrive.", "",
        "Commands (from the worktree root):", "",
        "    nohup nice -n 19 sh experiments/es_dev/run_all.sh >> experiments/es_dev/log 2>&1 &  # collect (resumable)",
        "    PYTHONPATH=$PWD python experiments/es_analyze.py   # this file", "",
        "Setup: dense DIP, lip's fast preset (denoise 1200 its, EMA 0.99; inpaint 1500, SR 1200, no EMA; "
        "bf16 autocast, 1 thread), fitted without early stopping to 1.5x those iterations; the plan and "
        "the tune/report halves are in experiments/es_collect.py. Gap = oracle - reported PSNR "
        "(oracle: best of lip's reported output over the whole 1.5x horizon of the plain run). "
        "'its vs today' = mean over runs of iterations the rule needs / iterations today's rule needs "
        "(today's stops at the preset's iterations at the latest; others may run to the horizon). "
        f"Replay check: lip's own detector (window 200) and its replay on the recorded variance "
        f"agree on {consistency(runs)}.", "",
        "Chosen on the tune half (per family, the rule whose worst task is closest to issue 17's goals "
        f"mean <= {GOAL_MEAN} dB, p90 <= {GOAL_P90} dB, within {COST_CAP}x today's iterations): "
        + (", ".join(f"{f}: `{n}`" for f, n in picks.items()) or "none yet") + ".", "",
        "## Report half (rules chosen on the tune half)", "", *table(rep, chosen), "",
        "## Tune half (where the choice was made)", "", *table(tune, chosen), "",
    ]
    if len(runs) <= 80:  # while the set is small, every run is worth seeing
        names = list(chosen)
        lines += ["## Per run (gap dB / reported iteration)", "",
                  "| run | half | oracle dB (peak it) | held-out run's oracle | " + " | ".join(names) + " |",
                  "|---" * (4 + len(names)) + "|"]
        for r in sorted(runs, key=lambda r: (r.plain["half"], r.plain["key"])):
            best, peak = r.oracle
            cells = []
            for n in names:
                got = chosen[n].get(r.plain["key"])
                cells.append("-" if got is None else f"{got[0]:.2f} / {peak + got[1]}")
            held = "-" if r.held is None else "{:.2f}".format(max(r.default_series(r.held)))
            lines.append(f"| {r.plain['key'].rsplit('|', 1)[0].replace('|', ' ')} | {r.plain['half']} | "
                         f"{best:.2f} ({peak}) | {held} | " + " | ".join(cells) + " |")
        lines.append("")
    if a.notes.exists():
        lines += ["## Reading", "", a.notes.read_text().strip(), ""]
    lines += ["## Top 15 rules on the tune runs used for the choice (all families)", "",
              "| rule | badness (<=1 meets goals) | n | mean gap | p90 gap | its vs today |", "|---|---|---|---|---|---|"]
    for n in sorted(evals, key=ranks.__getitem__)[:15]:
        sc = score(pick_on, evals[n])
        if sc is not None:
            lines.append(f"| {n} | {ranks[n][0]:.2f} | {sc.n} | {sc.mean:.2f} | {sc.p90:.2f} | {sc.cost:.2f} |")
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
