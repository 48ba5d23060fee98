"""Inpainting's returned image against its cap (experiments/RESULTS-inpaint-masks.md, issue 17).

Per row (es_collect.py, no stop, horizon 2250): the PSNR of what lip returns (the EMA output with the
observed pixels put back, `psnr_ema_dc`) at the caps 1875 (today) and 1950 (issue 17's whole 1.3x budget),
its oracle over the horizon (best iteration; reads the clean image, reporting only), and the net's own EMA
PSNR beside it. Then per half and mask type: mean gap at each cap and the change 1875 -> 1950. `--plateau`
adds whether a blind plateau stop could end a fit early: per row, the recorded variance of the EMA output over
its last 200 iterations at iteration 1500 (blind) against what the returned image still gains to 1875.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/inpaint_masks.py \
        experiments/es_dev/rows-tasks-inpaint-masks.jsonl.gz experiments/es_dev/rows-tasks-inpaint-dc.jsonl.gz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from es_analyze import load

CAPS = (1875, 1950)
PLATEAU = 1500  # where a plateau stop would save a fifth of the 1875 iterations


def summary(rows: list[dict]) -> dict[str, float]:
    gaps = {c: np.array([r["oracle"] - r[c] for r in rows]) for c in CAPS}
    change = np.array([r[CAPS[1]] - r[CAPS[0]] for r in rows])
    return {"n": len(rows), **{f"gap {c}": gaps[c].mean() for c in CAPS},
            **{f"p90 {c}": np.percentile(gaps[c], 90) for c in CAPS},
            "change": change.mean(), "worst": change.min(), "up": int((change > 0.005).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--plateau", action="store_true", help="also the plateau table")
    a = ap.parse_args()
    rows = []
    for run in load(*a.rows)[0]:
        r = run.plain
        ret, own = np.array(r["signals"]["psnr_ema_dc"]), np.array(r["signals"]["psnr_ema"])
        if len(ret) < max(CAPS):
            continue
        rows.append({"name": f"{r['image']} {r['size']}", "half": r["half"], "size": r["size"],
                     "mask": "bernoulli" if r["param"] == "bern" else r["param"].removesuffix("_mask.png"),
                     "oracle": ret.max(), "peak": int(ret.argmax()) + 1, "own": own, "ret": ret,
                     "var": r["signals"]["var_ema_200"][PLATEAU - 1],
                     **{c: ret[c - 1] for c in CAPS}})
    print("| crop | half | mask | returned: oracle (iteration) | at 1875 | at 1950 | 1950 - 1875 "
          "| net's own EMA at 1875 / 1950 / 2250 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["mask"] == "bernoulli", r["half"] == "report", r["size"], r["name"])):
        o = r["own"]
        print(f"| {r['name']} | {r['half']} | {r['mask']} | {r['oracle']:.2f} ({r['peak']}) | {r[1875]:.2f} | "
              f"{r[1950]:.2f} | {r[1950] - r[1875]:+.2f} | {o[1874]:.2f} / {o[1949]:.2f} / {o[-1]:.2f} |")
    print("\n| rows | n | gap at 1875: mean / p90 | gap at 1950: mean / p90 | 1950 - 1875: mean (worst) | rows up |")
    print("|---|---|---|---|---|---|")
    for half in ("tune", "report"):
        for kind, sel in (("bernoulli", lambda r: r["mask"] == "bernoulli"), ("text/holes", lambda r: r["mask"] != "bernoulli"),
                          ("all", lambda r: True)):
            group = [r for r in rows if r["half"] == half and sel(r)]
            if group:
                s = summary(group)
                print(f"| {half}, {kind} | {s['n']} | {s['gap 1875']:.2f} / {s['p90 1875']:.2f} | "
                      f"{s['gap 1950']:.2f} / {s['p90 1950']:.2f} | {s['change']:+.3f} ({s['worst']:+.2f}) | "
                      f"{s['up']} of {s['n']} |")
    if a.plateau:
        plateau(rows)


def plateau(rows: list[dict]) -> None:
    """A stop that fires once the output stops moving needs a variance that is low where the returned image has
    stopped gaining and high where it still climbs; sorted by the variance, the two should separate."""
    print(f"\n| crop | half | mask | -log10 var_ema_200 at {PLATEAU} | returned image: {CAPS[0]} - {PLATEAU} dB |")
    print("|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["var"]):
        print(f"| {r['name']} | {r['half']} | {r['mask']} | {-np.log10(r['var']):.2f} | "
              f"{r['ret'][CAPS[0] - 1] - r['ret'][PLATEAU - 1]:+.2f} |")


if __name__ == "__main__":
    main()
