"""Does lip's automatic stop land on the peak for inpainting and SR? Replay on recorded trajectories (issue 17).

Rows: `es_collect.py --grid` (no early stop, well past the preset's cap). Rules: lip's windowed-variance
stop as es_analyze.variance_rule replays it (exactly as the loop runs it), over window x patience x cap
(a multiple of the preset's iterations) x reported output. Per task, a rule is chosen on the TUNE half:
the one closest to issue 17's goals (es_analyze.badness: max(mean / 0.1 dB, p90 / 0.3 dB), over budget
when it needs more than 1.3x today's iterations), then the smaller mean gap, then fewer iterations. It is
reported on the REPORT half. Gap = oracle - the PSNR of the output the rule reports. Oracle (it reads the
clean image): the best PSNR over the whole recorded horizon of the raw output (what lip reports for these
tasks) or of the EMA output, whichever is higher, so rules reporting either output face the same bar
(`--oracle lip`: the raw output's only, as lip's own oracle line).

Every row is replayed on the pre-study footing: caps are multiples of the fast preset's iterations
before this study (inpainting 1500, SR 1200), "today" is that preset's stop (raw output), and the oracle
looks over the same horizon, 1.5x those iterations, whatever preset the row was recorded under (rows
recorded since the change carry inpainting's 1875 iterations and EMA 0.99).

Held-out rules (a group whose every crop has a `heldout` twin, recorded by es_collect.py with a seeded 3% of
the pixels kept out of the loss; the twin may sit in a rows file of its own): the held-out MSE's minimum
with patience (`heldout`, es_analyze.heldout_rule) and the variance rule behind a held-out gate (`gated`,
es_analyze.gated_variance_rule). They read the held-out run and are charged against the PLAIN run's
oracle, so they pay for the data they drop.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_tasks.py experiments/es_dev/rows-tasks-*.jsonl.gz
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from es_analyze import (COST_CAP, Evaluated, Outcome, Row, Run, badness, evaluate, gated_variance_rule, heldout_rule,
                        load, report, score, variance_rule)

WINDOWS = (100, 200)
PATIENCES = (150, 300, 500)
CAPS = (1.0, 1.25, 1.5)
# Held-out rules (groups whose runs have a `heldout` twin): smoothing k x patience, and the variance gate.
HELD_K = (1, 25, 100, 200)
HELD_PATIENCES = (100, 200, 300, 500)
HELD_CAPS = (1.0, 1.25, 1.3)
GATE_K = (25, 100)
GATE_PATIENCES = (100, 300)
SHOWN = 40  # rules per table when there are more: the best on tune, plus today's, the shipped one, references
# The fast preset for inpainting and SR before this study (commit 5c9ec99 changed it): the base of every cap.
PRE_STUDY_ITERS = {"inpaint": 1500, "sr": 1200}
HORIZON = 1.5  # x PRE_STUDY_ITERS: es_collect's horizon under that preset, so every row has it
TODAY = "w200 p300 cap 1.0x raw"  # the pre-study preset's stop
SHIPPED = "w200 p300 cap 1.25x ema+lag"  # the fast preset since (lipcli/physics: fast_iters, fast_ema)


def no_stop(cap: float, on: str = "plain") -> Callable[[Run], Outcome]:
    """A reference, not a candidate: the EMA output at the cap, the stop switched off (on the plain run, or
    on the held-out twin: what dropping the held-out pixels costs, whatever the stop)."""
    def rule(run: Run) -> Outcome:
        row = run.plain if on == "plain" else run.held
        limit = round(cap * row["preset_iters"])
        return report(row, -1, limit, "ema", limit)
    return rule


def pre_study(row: Row) -> Row:
    """The row as the pre-study preset would have recorded it: es_analyze takes the caps, today's output
    and the oracle's output from preset_iters and preset_ema, and the oracle's horizon from the signals."""
    base = PRE_STUDY_ITERS[row["task"]]
    horizon = round(HORIZON * base)
    if row["iters"] < horizon:
        raise SystemExit(f"{row['key']}: {row['iters']} iterations recorded, the replay needs {horizon}")
    every = row["ssim_every"]
    signals = {k: v[: horizon // every if k.startswith("ssim") else horizon] for k, v in row["signals"].items()}
    return {**row, "preset_iters": base, "preset_ema": 0.0, "iters": horizon, "signals": signals}


def as_returned(row: Row) -> Row:
    """The row scored on what an inpainting restore returns, the observed pixels put back (es_collect's
    psnr_*_dc): the net's own output also scores how well it redraws pixels the user already has."""
    s = dict(row["signals"])
    if "psnr_ema_dc" not in s:
        raise SystemExit(f"{row['key']}: no data-consistent PSNR recorded (inpainting rows since this option)")
    s["psnr_raw"], s["psnr_ema"] = s.pop("psnr_raw_dc"), s.pop("psnr_ema_dc")
    return {**row, "signals": s}


def rules(outputs: list[str], held: bool) -> dict[str, object]:
    """Variance rules on the plain run; with `held`, also the held-out rules on the held-out twin: the
    held-out MSE's minimum with patience (`heldout`), and the variance rule behind a held-out gate (`gated`)."""
    out = {f"w{w} p{p} cap {c}x {o}": variance_rule("var_raw", w, p, o, cap=c)
           for o in outputs for w in WINDOWS for p in PATIENCES for c in CAPS}
    if held:
        out |= {f"heldout k{k} p{p} cap {c}x {o}": heldout_rule(k, p, o, cap=c)
                for o in outputs for k in HELD_K for p in HELD_PATIENCES for c in HELD_CAPS}
        out |= {f"gated w{w} p300 gate k{k} p{g} cap {c}x {o}": gated_variance_rule(w, 300, k, g, o, cap=c)
                for o in outputs for w in WINDOWS for k in GATE_K for g in GATE_PATIENCES for c in HELD_CAPS[1:]}
    return out


def family(name: str) -> str:
    return name.split()[0] if name.split()[0] in ("heldout", "gated") else "variance"


def against_best_output(runs: list[Run], ev: Evaluated) -> Evaluated:
    """Gaps against the best of the raw and the EMA output instead of lip's reported output only."""
    extra = {r.plain["key"]: max(0.0, max(r.plain["signals"]["psnr_ema"]) - r.oracle[0]) for r in runs}
    return {k: (v[0] + extra[k], *v[1:]) for k, v in ev.items()}


def _paired(names: list[str], evals: dict[str, Evaluated], half: dict[str, list[Run]],
            today: dict[str, Outcome]) -> list[str]:
    """Crop by crop, how each rule compares with the shipped one on each half (gap differences) and
    what it costs: a margin on tune that report does not repeat is no reason to change the preset."""
    lines = []
    for name in dict.fromkeys(names):
        if name == SHIPPED:
            lines.append(f"`{name}` is the shipped rule.")
            continue
        parts = []
        for h, members in half.items():
            keys = [r.plain["key"] for r in members]
            d = np.array([evals[name][k][0] - evals[SHIPPED][k][0] for k in keys])
            if d.size:
                its = [(np.mean([evals[n][k][2] * today[k][0] for k in keys]), score(members, evals[n]).cost)
                       for n in (name, SHIPPED)]
                parts.append(f"{h}: {d.mean():+.2f} dB mean, lower gap on {int((d < -0.005).sum())} of {d.size} "
                             f"crops, higher on {int((d > 0.005).sum())}, mean {its[0][0]:.0f} iterations "
                             f"({its[0][1]:.2f}x today's) vs {its[1][0]:.0f} ({its[1][1]:.2f}x)")
        lines.append(f"`{name}` minus shipped: " + "; ".join(parts) + ".")
    return lines


def data_cost(members: list[Run]) -> str:
    """What the held-out run loses by fitting fewer pixels: its own oracle minus the plain run's (both the
    better of raw and EMA over the horizon), crop by crop; fit-to-fit noise is in it too."""
    d = np.array([max(max(r.held["signals"][s]) for s in ("psnr_raw", "psnr_ema"))
                  - max(max(r.plain["signals"][s]) for s in ("psnr_raw", "psnr_ema")) for r in members])
    return (f"Held-out run's own oracle minus the plain run's: {d.mean():+.2f} dB mean, "
            f"{d.min():+.2f} to {d.max():+.2f} ({int((d < 0).sum())} of {d.size} crops lower).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+", help="rows files; a held-out twin may sit in a file of its own")
    ap.add_argument("--outputs", default="raw,ema+lag",
                    help="reported outputs to try (raw: lip's for these tasks; ema+lag: the EMA 99 its after the minimum)")
    ap.add_argument("--oracle", choices=("best", "lip"), default="best")
    ap.add_argument("--show", action="append", default=[], help="a rule (or reference) to add to the per-run table")
    ap.add_argument("--consistent", action="store_true", help="score inpainting's returned output (observed "
                    "pixels put back) instead of the net's own")
    ap.add_argument("--paired", action="store_true", help="only the crops that have a held-out twin (while a "
                    "collection runs: held-out rules are scored where every crop of a group has one)")
    a = ap.parse_args()
    scored = as_returned if a.consistent else (lambda row: row)
    runs = [Run(pre_study(scored(r.plain)), r.held and pre_study(scored(r.held))) for r in load(*a.rows)[0]
            if r.held or not a.paired]
    groups: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        groups[r.group].append(r)
    for group, members in sorted(groups.items()):
        held = all(r.held is not None for r in members)
        named = rules(a.outputs.split(","), held)
        references = {f"no stop, cap {c}x, ema": no_stop(c) for c in (1.25, COST_CAP)}
        if held:
            references[f"no stop, cap {COST_CAP}x, ema, on the held-out run"] = no_stop(COST_CAP, "held")
            references[f"{SHIPPED}, on the held-out run"] = variance_rule("var_raw", 200, 300, "ema+lag", 1.25, "held")
        today = {r.plain["key"]: named[TODAY](r) for r in members}
        evals = {n: evaluate(members, f, today) for n, f in {**named, **references}.items()}
        if a.oracle == "best":
            evals = {n: against_best_output(members, ev) for n, ev in evals.items()}
        half = {h: [r for r in members if r.plain["half"] == h] for h in ("tune", "report")}
        if not half["tune"]:
            print(f"\n### {group}: no tune rows (yet), nothing to choose on")
            continue
        horizon = {r.plain["iters"] / r.plain["preset_iters"] for r in members}
        print(f"\n### {group}: {len(half['tune'])} tune ({', '.join(r.plain['image'] for r in half['tune'])}), "
              f"{len(half['report'])} report ({', '.join(r.plain['image'] for r in half['report'])}); "
              f"horizon {', '.join(f'{x:g}' for x in sorted(horizon))}x the pre-study preset's "
              f"{members[0].plain['preset_iters']} iterations"
              + (f"; held-out twins ({members[0].held['holdout']:.0%} of the pixels)" if held else "") + "\n")

        def rank(name: str) -> tuple[float, float, float]:
            s = score(half["tune"], evals[name])
            return badness(half["tune"], evals[name]), s.mean, s.cost

        order = sorted(named, key=rank)
        best = {f: next(n for n in order if family(n) == f) for f in dict.fromkeys(map(family, order))}
        print(f"Chosen on tune: `{order[0]}` (today: `{TODAY}`; shipped: `{SHIPPED}`"
              + "".join(f"; best {f} rule: `{n}`" for f, n in best.items() if n != order[0]) + ")\n")
        print("\n".join(_paired([order[0], *best.values()], evals, half, today)) + "\n")
        if held:
            print(data_cost(members) + "\n")
        print("| rule | tune: goal ratio (<= 1 meets) | tune mean gap | tune p90 | tune its vs today | report mean gap "
              "| report p90 | report max | report its vs today |")
        print("|---|---|---|---|---|---|---|---|---|")
        marked = {TODAY, SHIPPED, order[0], *best.values()}
        shown = order if len(order) <= SHOWN else [n for i, n in enumerate(order) if i < SHOWN or n in marked]
        for name in shown + list(references):
            t, r = score(half["tune"], evals[name]), score(half["report"], evals[name])
            ratio = rank(name)[0]
            mark = "**" if name in marked else ""
            worst = max((evals[name][x.plain["key"]][0] for x in half["report"]), default=float("nan"))
            cells = [f"{t.mean:.2f} | {t.p90:.2f} | {t.cost:.2f}" if t else "- | - | -",
                     f"{r.mean:.2f} | {r.p90:.2f} | {worst:.2f} | {r.cost:.2f}" if r else "- | - | - | -"]
            verdict = f"{ratio:.1f}" if ratio < float("inf") else f"over {COST_CAP}x its"
            verdict = verdict if name in named else f"reference ({verdict})"
            print(f"| {mark}{name}{mark} | {verdict} | " + " | ".join(cells) + " |")
        if len(shown) < len(order):
            print(f"\n({len(order) - len(shown)} more rules, all further from the goals on tune, not shown.)")
        print("\nPer run: oracles dB (peak iteration); gap dB / reported iteration (the gap against the oracle chosen above)\n")
        cols = list(dict.fromkeys((TODAY, SHIPPED, order[0], *best.values(), *(n for n in a.show if n in evals))))
        print(f"| image | half | raw oracle | EMA oracle | {'held-out run oracle | ' if held else ''}{' | '.join(cols)} |")
        print("|---" * (4 + held + len(cols)) + "|")
        for r in sorted(members, key=lambda r: (r.plain["half"] == "report", r.plain["image"])):
            top, peak = r.oracle
            ema = r.plain["signals"]["psnr_ema"]
            own = f"{max(max(r.held['signals'][s]) for s in ('psnr_raw', 'psnr_ema')):.2f} | " if held else ""
            cells = []
            for name in cols:
                gap, rel = evals[name][r.plain["key"]][:2]
                cells.append(f"{gap:.2f} / {peak + rel}")
            print(f"| {r.plain['image']} | {r.plain['half']} | {top:.2f} ({peak}) | "
                  f"{max(ema):.2f} ({int(np.argmax(ema)) + 1}) | {own}" + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
