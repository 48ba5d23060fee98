"""The table of experiments/RESULTS-mri.md's headroom section from experiments/mri/headroom/rows.jsonl.

Per scan (image, mask, acceleration, seed): headroom 1 against 1.5, auto-stopped and oracle PSNR / SSIM; the share
of the clean image's pixels above what headroom 1 lets the net reach (the zero-filled peak: the operator's scale
at headroom 1, in the clean PNG's units since --simulate scores in them); and, blind, the share of headroom 1's
output at >= 97% of the net's top (what `lip restore` reports as at_ceiling; read from the written 8-bit PNG, which
is clipped at the clean image's white: that hides only values above 1 / scale, where the zero-filled peak is
above the true one and nothing is capped). Run from the repository root: python experiments/mri/headroom_table.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
DATA = Path(__file__).parents[2] / "lipcli" / "data"


def main() -> None:
    rows = [json.loads(line) for line in (HERE / "headroom" / "rows.jsonl").read_text().splitlines()]
    scans: dict[tuple, dict[float, dict]] = {}
    for r in rows:
        mask = re.match(r"([\w-]+)\(acceleration=([\d.]+).*seed=(\d+)", r["operator"]["mask"]).groups()
        name = r["input"].removeprefix("sample:")
        scans.setdefault((name, *mask), {})[r["operator"].get("headroom", 1.0)] = r
    print("| image | mask | seed | clean pixels above the zero-filled peak | headroom 1 output at its ceiling "
          "(blind) | zero-filled | headroom 1: auto-stopped (oracle) | headroom 1.5: auto-stopped (oracle) | "
          "gain auto-stopped |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    capped = []
    for (name, kind, acc, seed), by in sorted(scans.items()):
        if set(by) != {1.0, 1.5}:
            continue
        a, b = by[1.0], by[1.5]
        clean = np.asarray(Image.open(DATA / f"{name}.png"), dtype=np.float64) / 255
        above = float((clean > a["operator"]["scale"]).mean()) * 100
        gain = b["psnr_stopped"] - a["psnr_stopped"]
        shown = np.asarray(Image.open(HERE / "headroom" / f"h1_{name}_{kind}_{acc}x_s{seed}.png"), dtype=np.float64)
        ceiling = float((shown / 255 / a["operator"]["scale"] >= 0.97).mean()) * 100
        capped.append((ceiling >= 1, gain))
        print(f"| {name} | {kind} {float(acc):g}x | {seed} | {above:.2f}% | {ceiling:.2f}% | "
              f"{a['baseline']['psnr']:.2f} | "
              f"{a['psnr_stopped']:.2f} / {a['ssim_stopped']:.3f} ({a['oracle_best_psnr']:.2f}) | "
              f"{b['psnr_stopped']:.2f} / {b['ssim_stopped']:.3f} ({b['oracle_best_psnr']:.2f}) | {gain:+.2f} |")
    for flag, what in ((True, "at the ceiling (>= 1%)"), (False, "not at the ceiling")):
        g = [gain for c, gain in capped if c == flag]
        if g:
            print(f"\n{len(g)} scans {what}: headroom 1.5 - 1 = {np.mean(g):+.2f} dB mean, "
                  f"{min(g):+.2f} to {max(g):+.2f}")


if __name__ == "__main__":
    main()
