"""Does lip's automatic stop land on the peak for inpainting and SR? Replay on recorded trajectories (issue 17).

Rows: `es_collect.py --grid` (no early stop, well past the preset's cap). Rules: lip's windowed-variance
stop as es_analyze.variance_rule replays it (exactly as the loop runs it), over window x patience x cap
(a multiple of the preset's iterations) x reported output. Per task, a rule is chosen on the TUNE half:
the one closest to issue 17's goals (es_analyze.badness: max(mean / 0.1 dB, p90 / 0.3 dB), over budget
when it needs more than 1.3x today's iterations), then the smaller mean gap, then fewer iterations. It is
reported on the REPORT half. Gap = oracle (best PSNR of lip's reported output over the whole recorded
horizon; it reads the clean image) - the PSNR of the output the rule reports.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_tasks.py experiments/es_dev/rows-tasks-*.jsonl.gz
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from es_analyze import Run, badness, evaluate, load, score, variance_rule

WINDOWS = (100, 200)
PATIENCES = (150, 300, 500)
CAPS = (1.0, 1.25, 1.5)
TODAY = "w200 p300 cap 1.0x raw"  # lip's fast preset for inpainting and SR (no EMA)


def rules(outputs: list[str]) -> dict[str, object]:
    return {f"w{w} p{p} cap {c}x {o}": variance_rule("var_raw", w, p, o, cap=c)
            for o in outputs for w in WINDOWS for p in PATIENCES for c in CAPS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--outputs", default="raw,ema+lag",
                    help="reported outputs to try (raw: lip's for these tasks; ema+lag: the EMA 99 its after the minimum)")
    a = ap.parse_args()
    runs: list[Run] = [r for path in a.rows for r in load(path)[0]]
    named = rules(a.outputs.split(","))
    groups: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        groups[r.group].append(r)
    for group, members in sorted(groups.items()):
        today = {r.plain["key"]: named[TODAY](r) for r in members}
        evals = {n: evaluate(members, f, today) for n, f in named.items()}
        half = {h: [r for r in members if r.plain["half"] == h] for h in ("tune", "report")}
        horizon = {r.plain["iters"] / r.plain["preset_iters"] for r in members}
        print(f"\n### {group}: {len(half['tune'])} tune ({', '.join(r.plain['image'] for r in half['tune'])}), "
              f"{len(half['report'])} report ({', '.join(r.plain['image'] for r in half['report'])}); "
              f"horizon {', '.join(f'{x:g}' for x in sorted(horizon))}x the preset's "
              f"{members[0].plain['preset_iters']} iterations\n")

        def rank(name: str) -> tuple[float, float, float]:
            s = score(half["tune"], evals[name])
            return badness(half["tune"], evals[name]), s.mean, s.cost

        order = sorted(named, key=rank)
        print(f"Chosen on tune: `{order[0]}` (today: `{TODAY}`)\n")
        print("| rule | tune mean gap | tune p90 | tune its vs today | report mean gap | report p90 | report max "
              "| report its vs today |")
        print("|---|---|---|---|---|---|---|---|")
        for name in order:
            t, r = score(half["tune"], evals[name]), score(half["report"], evals[name])
            mark = "**" if name in (TODAY, order[0]) else ""
            worst = max((evals[name][x.plain["key"]][0] for x in half["report"]), default=float("nan"))
            cells = [f"{t.mean:.2f} | {t.p90:.2f} | {t.cost:.2f}" if t else "- | - | -",
                     f"{r.mean:.2f} | {r.p90:.2f} | {worst:.2f} | {r.cost:.2f}" if r else "- | - | - | -"]
            print(f"| {mark}{name}{mark} | " + " | ".join(cells) + " |")
        print("\nPer run: oracle dB (peak iteration) and gap dB / reported iteration\n")
        print(f"| image | half | oracle | {TODAY} | {order[0]} |")
        print("|---|---|---|---|---|")
        for r in sorted(members, key=lambda r: (r.plain["half"] == "report", r.plain["image"])):
            best, peak = r.oracle
            cells = []
            for name in (TODAY, order[0]):
                gap, rel = evals[name][r.plain["key"]][:2]
                cells.append(f"{gap:.2f} / {peak + rel}")
            print(f"| {r.plain['image']} | {r.plain['half']} | {best:.2f} ({peak}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
