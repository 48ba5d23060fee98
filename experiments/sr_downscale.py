"""What the inverse crime was worth: SR x4 simulated with Pillow's Lanczos resize (DIP's protocol, lip's default
since 2026-12-07) against the Lanczos-2 operator lip fits through (`--downscale operator`, what every SR number
before that date used). `lip restore` as a user runs it (fast preset: the SR ticket with its entry's settings),
128x128 centre crops of es_collect's SR pictures, seed 0, one thread. Rows are appended as they finish (resumable).

    python experiments/sr_downscale.py run [--images a,b] [--out ROWS]   # the fits
    python experiments/sr_downscale.py table [--out ROWS]                 # the table of RESULTS-sr-downscale.md
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from es_collect import SR_SUBSET, Job, prepare  # noqa: E402

ROWS = Path(__file__).resolve().parent / "es_dev" / "rows-sr-downscale.jsonl"
DOWNSCALES = ("pillow", "operator")
KEYS = ("metric", "psnr_final", "psnr_stopped", "oracle_best_psnr", "oracle_best_iter", "iterations", "stopped_at",
        "seconds")


def done(rows: Path) -> set[tuple[str, str]]:
    if not rows.exists():
        return set()
    return {(r["image"], r["downscale"]) for r in map(json.loads, rows.read_text().splitlines())}


def run(images: list[str], rows: Path) -> None:
    cache = rows.parent / "crops-sr-downscale"
    for image in images:
        crop, _, _ = prepare(Job(image, 128, 0, "sr", "4", 0), cache)
        for downscale in DOWNSCALES:
            if (image, downscale) in done(rows):
                continue
            out = cache / f"{image}-{downscale}.png"
            cmd = ["lip", "restore", str(crop), "--simulate", "--task", "sr", "--downscale", downscale,
                   "--threads", "1", "--json", "-o", str(out)]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[0]
            rep = json.loads(line)
            row = {"image": image, "downscale": downscale, "command": " ".join([*cmd[:2], "CROP", *cmd[3:-1], "OUT"]),
                   "gray": Image.open(crop).mode == "L", **{k: rep.get(k) for k in KEYS}}
            with rows.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(image, downscale, row["psnr_stopped"], flush=True)


def table(rows: Path) -> None:
    by = {(r["image"], r["downscale"]): r for r in map(json.loads, rows.read_text().splitlines())}
    images = sorted({i for i, _ in by if all((i, d) in by for d in DOWNSCALES)})
    print("| crop | pillow: stopped / final / oracle | operator: stopped / final / oracle "
          "| stopped: operator - pillow |")
    print("|---|---|---|---|")
    gaps = {k: [] for k in ("psnr_stopped", "psnr_final", "oracle_best_psnr")}
    for i in images:
        p, o = by[i, "pillow"], by[i, "operator"]
        cells = [" / ".join(f"{r[k]:.2f}" for k in gaps) for r in (p, o)]
        print(f"| {i} | {cells[0]} | {cells[1]} | {o['psnr_stopped'] - p['psnr_stopped']:+.2f} |")
        for k in gaps:
            gaps[k].append(o[k] - p[k])
    for k, v in gaps.items():
        print(f"{k}: operator - pillow {statistics.mean(v):+.2f} ± {statistics.stdev(v):.2f} dB "
              f"(higher on {sum(g > 0 for g in v)} of {len(v)})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("run", "table"))
    ap.add_argument("--images", default=",".join(sorted(SR_SUBSET)))
    ap.add_argument("--out", type=Path, default=ROWS)
    a = ap.parse_args()
    run(a.images.split(","), a.out) if a.what == "run" else table(a.out)
