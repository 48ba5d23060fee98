"""Can noise-free inpainting get nearer its peak within the cap? Step size, step decay, jitter averaging (issue 17).

Inpainting runs to its cap with no automatic stop (RESULTS-stop-tasks.md): its fits are still climbing at
1875 iterations, and that, not the stop, keeps it over issue 17's goal. Rows: es_collect.py --grid on the
14 inpainting crops, one rows file per arm (`--lr`, `--lr-decay`), all fitted at one commit; rows with
`--probe` also hold the output without input jitter and averaged over 1-64 jitter draws at the current
weights, every 75 iterations. Each (arm, output) is scored at the cap against:
- its own fit's oracle: the best raw or EMA PSNR of that fit over its recorded iterations;
- the joint oracle: the best PSNR of any output of any arm on that crop (one bar for everything).
and against today's output (constant 0.01, the EMA at 1875), paired, on the crops the arm has. The clean
image is read for scoring only. Choose on tune, report on report (RESULTS-inpaint-lr.md).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/inpaint_lr.py experiments/inpaint_lr/rows-*.jsonl.gz
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from es_rows import read_rows

CAPS = (1200, 1500, 1875, 1950)  # 1950 = 1.3x the pre-study 1500: issue 17's budget
Arm = tuple[float, float]  # (lr, lr_decay)
TODAY: Arm = (0.01, 0.0)  # the fast preset: constant 0.01, the EMA output at the 1875 cap


def name(arm: Arm) -> str:
    return f"lr {arm[0]}" + (f", decay last {arm[1]:.0%}" if arm[1] else "")


def outputs(row: dict) -> dict[str, dict[int, float]]:
    """PSNR by iteration of every output the row records: raw, ema and, with a probe, nojit / jitK."""
    s = row["signals"]
    out = {k: {i + 1: v for i, v in enumerate(s[f"psnr_{k}"]) if v is not None} for k in ("raw", "ema")}
    probe = row.get("probe")
    if probe:
        its = [int(i) for i in probe["it"]]
        out.update({k: dict(zip(its, v)) for k, v in probe.items() if k != "it"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", type=Path)
    ap.add_argument("--horizon", type=int, default=2250, help="iterations a constant-step row is cut to")
    a = ap.parse_args()
    fits: dict[tuple[Arm, str], dict] = {}
    for path in a.rows:
        for r in read_rows(path):
            decay = r.get("lr_decay", 0.0)
            if "error" in r or r["task"] != "inpaint" or (not decay and r["iters"] < a.horizon):
                continue
            r["outputs"] = {k: {i: v for i, v in o.items() if i <= a.horizon} for k, o in outputs(r).items()}
            key = ((r["lr"], decay), r["image"])
            if key not in fits or "probe" in r:  # the same fit with probes: it has more outputs
                fits[key] = r
    arms = sorted({arm for arm, _ in fits})
    images = sorted({im for _, im in fits})
    own = {k: max(max(r["outputs"][o].values()) for o in ("raw", "ema")) for k, r in fits.items()}
    joint = {im: max(max(o.values()) for (_, i), r in fits.items() if i == im for o in r["outputs"].values())
             for im in images}
    print("EMA PSNR at 1875 iterations (own oracle, iteration of the EMA's best); '-': not run\n")
    print("| crop | half | joint oracle | " + " | ".join(name(arm) for arm in arms) + " |")
    print("|---|---|---|" + "---|" * len(arms))
    for im in images:
        cells = []
        for arm in arms:
            r = fits.get((arm, im))
            if r is None:
                cells.append("-")
                continue
            ema = r["outputs"]["ema"]
            cells.append(f"{ema[1875]:.2f} ({own[(arm, im)]:.2f}, {max(ema, key=ema.get)})")
        half = next(r["half"] for (_, i), r in fits.items() if i == im)
        print(f"| {im} | {half} | {joint[im]:.2f} | " + " | ".join(cells) + " |")
    # each (arm, output, cap) against today's (constant 0.01, EMA at 1875) on the crops that arm has
    table: dict[tuple[str, Arm, str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (arm, im), r in fits.items():
        today = fits.get((TODAY, im))
        for out, by_it in r["outputs"].items():
            if out == "raw" or today is None:  # raw: never what lip returns for inpainting; in the oracles only
                continue
            for cap in (CAPS if not arm[1] else (r["iters"],)):
                if cap not in by_it:
                    continue
                cell = table[(r["half"], arm, out, cap)]
                cell["psnr"].append(by_it[cap])
                cell["vs"].append(by_it[cap] - today["outputs"]["ema"][1875])
                cell["own"].append(own[(arm, im)] - by_it[cap])
                cell["joint"].append(joint[im] - by_it[cap])
    print("\n| half | arm | output | cap | crops | mean PSNR at cap | vs today (paired mean, better) | "
          "gap to own oracle: mean / p90 / max | gap to joint oracle: mean / p90 / max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (half, arm, out, cap), c in sorted(table.items()):
        def stats(v: list[float]) -> str:
            return f"{np.mean(v):.2f} / {np.percentile(v, 90):.2f} / {max(v):.2f}"
        better = sum(v > 0 for v in c["vs"])
        print(f"| {half} | {name(arm)} | {out} | {cap} | {len(c['psnr'])} | {np.mean(c['psnr']):.2f} | "
              f"{np.mean(c['vs']):+.2f} ({better}) | {stats(c['own'])} | {stats(c['joint'])} |")

if __name__ == "__main__":
    main()
