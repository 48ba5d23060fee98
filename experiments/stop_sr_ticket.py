"""The automatic stop on SR x4's default prior, the SR ticket, replayed on recorded fits (issue 17).

Rows: es_dev/run_sr_ticket.sh (the ticket as lip fits it, 128x128 crops, no early stop, 3600 iterations). Rules: the
variance rule exactly as the loop runs it (es_analyze.variance_rule: SR has no noise gate and no spike guard), the
EMA output 99 iterations after the minimum, over window x patience x cap; the shipped one is window 200, patience
300, cap 3000 (the ticket's entry). Chosen on TUNE by issue 17's goals (max(mean / 0.1, p90 / 0.3) dB), then the
smaller mean gap, then fewer iterations; reported on REPORT. Gap = oracle (the best raw or EMA PSNR over the recorded
horizon; it reads the clean image, scoring only) - the reported PSNR. RESULTS-stop-sr-ticket.md has the pass marks.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_sr_ticket.py experiments/es_dev/rows-sr-ticket[ab].jsonl.gz

With `--against ROWS`, another prior's fits of the same crops instead: each replayed with the shipped window and
patience at the caps of ARM_CAPS, paired with the rows of --against at the shipped rule (what lip returns today);
house, where the ticket was searched, shown and never counted (RESULTS-stop-sr-ticket.md, "Four skip filters"):

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_sr_ticket.py experiments/es_dev/rows-sr-ticket-128-sr-s4[ab].jsonl.gz \
        --against experiments/es_dev/rows-sr-ticket-128-ticket[ab].jsonl.gz
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from es_analyze import GOAL_MEAN, GOAL_P90, Outcome, Run, load, variance_rule

WINDOWS, PATIENCES, CAPS = (100, 200), (150, 300, 500), (3000, 3300, 3600)
SHIPPED = (200, 300, 3000)
ARM_CAPS = (1200, 1500, 1800, 2100, 2400, 2700, 3000)
SEARCHED_ON = "house"


def oracle(run: Run) -> tuple[float, int]:
    """(best PSNR of the raw or the EMA output over the recorded horizon, its iteration)."""
    s = run.plain["signals"]
    return max((max(s[k]), int(np.argmax(s[k])) + 1) for k in ("psnr_raw", "psnr_ema"))


def replay(runs: list[Run], window: int, patience: int, cap: int) -> list[Outcome]:
    return [variance_rule("var_raw", window, patience, "ema+lag", cap / r.plain["preset_iters"])(r) for r in runs]


def summary(runs: list[Run], out: list[Outcome]) -> tuple[float, float, float, float]:
    """Mean, p90 and max gap to the oracle (dB), mean iterations used."""
    gap = np.array([oracle(r)[0] - o[1] for r, o in zip(runs, out)])
    return float(gap.mean()), float(np.percentile(gap, 90)), float(gap.max()), float(np.mean([o[0] for o in out]))


def per_iteration(runs: list[Run]) -> float:
    """CPU seconds per iteration over the runs (their rows' seconds / iterations)."""
    return sum(r.plain["seconds"] for r in runs) / sum(r.plain["iters"] for r in runs)


def against(runs: list[Run], base: list[Run]) -> None:
    """The arm at each cap of ARM_CAPS (shipped window and patience) minus the base at the shipped rule, per half."""
    by_image = {r.plain["image"]: r for r in base}
    pairs = sorted(((r, by_image[r.plain["image"]]) for r in runs if r.plain["image"] in by_image),
                   key=lambda p: (p[0].plain["half"] != "tune", p[0].plain["image"]))
    arms, bases = [a for a, _ in pairs], [b for _, b in pairs]
    arm_it, base_it = per_iteration(arms), per_iteration(bases)
    shipped = replay(bases, *SHIPPED)
    at_cap = {c: replay(arms, SHIPPED[0], SHIPPED[1], c) for c in ARM_CAPS}
    print(f"{len(pairs)} crops; CPU per iteration: arm {1000 * arm_it:.1f} ms, base {1000 * base_it:.1f} ms\n")
    print("| crop | half | base at the shipped rule (stop) | " + " | ".join(f"arm {c}" for c in ARM_CAPS) + " |")
    print("|---|---|---|" + "---|" * len(ARM_CAPS))
    for i, a in enumerate(arms):
        cells = " | ".join(f"{at_cap[c][i][1]:.2f}" for c in ARM_CAPS)
        print(f"| {a.plain['image']} | {a.plain['half']} | {shipped[i][1]:.2f} ({shipped[i][0]}) | {cells} |")
    print("\n| half | cap | arm - base, mean ± sd (better) | arm iterations (mean) | CPU per restore, arm / base |")
    print("|---|---|---|---:|---:|")
    for half in ("tune", "report"):
        idx = [i for i, a in enumerate(arms) if a.plain["half"] == half and a.plain["image"] != SEARCHED_ON]
        if not idx:
            continue
        base_cost = base_it * np.mean([shipped[i][0] for i in idx])
        for c in ARM_CAPS:
            d = np.array([at_cap[c][i][1] - shipped[i][1] for i in idx])
            used = np.mean([at_cap[c][i][0] for i in idx])
            print(f"| {half} ({len(idx)}) | {c} | {d.mean():+.2f} ± {d.std(ddof=1) if len(d) > 1 else 0:.2f} "
                  f"({int((d > 0).sum())} of {len(d)}) | {used:.0f} | {arm_it * used / base_cost:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--against", type=Path, nargs="+", help="the base prior's rows of the same crops")
    a = ap.parse_args()
    runs = load(*a.rows)[0]
    if a.against:
        against(runs, load(*a.against)[0])
        return
    halves = {h: sorted((r for r in runs if r.plain["half"] == h), key=lambda r: r.plain["image"])
              for h in ("tune", "report")}
    print(f"runs: {len(halves['tune'])} tune, {len(halves['report'])} report; horizon "
          f"{min(r.plain['iters'] for r in runs)}\n")
    outcomes = {rule: {h: replay(rs, *rule) for h, rs in halves.items()}
                for rule in itertools.product(WINDOWS, PATIENCES, CAPS)}
    results = {rule: {h: summary(halves[h], out) for h, out in by_half.items()} for rule, by_half in outcomes.items()}

    def badness(rule: tuple[int, int, int]) -> tuple[float, float, float]:
        mean, p90, _, used = results[rule]["tune"]
        return max(mean / GOAL_MEAN, p90 / GOAL_P90), mean, used

    print("| rule (window, patience, cap) | TUNE mean / p90 / max gap | its | REPORT mean / p90 / max gap | its |")
    print("|---|---|---:|---|---:|")
    for rule in sorted(results, key=badness):
        cells = [f"{m:.2f} / {p:.2f} / {x:.2f} | {u:.0f}" for m, p, x, u in (results[rule][h] for h in halves)]
        label = f"w{rule[0]} p{rule[1]} cap {rule[2]}" + (" (shipped)" if rule == SHIPPED else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    pick = min(results, key=badness)
    (_, _, _, tu), (rm, rp, _, ru) = results[SHIPPED].values()
    (_, _, _, pu), (qm, qp, _, qu) = results[pick].values()
    passes = pick != SHIPPED and qm <= rm - 0.03 and qp <= rp + 0.02 and pu <= 1.2 * tu and qu <= 1.2 * ru
    print(f"\ntune pick: w{pick[0]} p{pick[1]} cap {pick[2]}: report {qm:.2f} / {qp:.2f} against shipped "
          f"{rm:.2f} / {rp:.2f}; iterations x{pu / tu:.2f} (tune), x{qu / ru:.2f} (report): "
          f"{'passes' if passes else 'does not pass'} the mark")

    print("\n| half | crop | oracle (at) | shipped: reported (at), gap | stop ends at | pick: reported (at), gap |")
    print("|---|---|---|---|---:|---|")
    for h, rs in halves.items():
        for r, s, p in zip(rs, outcomes[SHIPPED][h], outcomes[pick][h]):
            best, at = oracle(r)
            print(f"| {h} | {r.plain['image']} | {best:.2f} ({at}) | {s[1]:.2f} ({s[2]}), {best - s[1]:.2f} | {s[0]} | "
                  f"{p[1]:.2f} ({p[2]}), {best - p[1]:.2f} |")


if __name__ == "__main__":
    main()
