#!/usr/bin/env python
"""Batch throughput of `lip restore` on one machine: eight images one after the other (`--jobs 1`, every core
for each) against `--jobs auto` (several restores at once, the cores divided), for the dense DIP net (`--dense`),
the default prior (the shipped channel ticket) and a 1/16-parameter net (issue 16, item 4; goal: >= 1.3x images per minute for the dense net, >= 1.6x for the
narrow one, at the same PSNR).

Inputs: the bundled 128x128 House crop in its eight orientations (rotations and mirror images), so any
clone can run this, each degraded with seeded Gaussian noise (sigma 25); or `--images A.png B.png ...`.
Every run is one whole `lip restore IMAGES ... --iters N --no-early-stop --json` process of this checkout
(start-up, image loading and writing included: what a user waits for). The two arms are interleaved,
sequential then jobs, repeated (A B A B ...), so a shared machine's slow spells hit both; the ratio is taken
within each pair and its median reported. The load average before and after each run is recorded: other
work on the machine lowers both arms, but the jobs arm more (it counts on the cores it divides being free).

Usage:  python benchmarks/bench_jobs.py [--iters 150] [--repeats 2] [--nets dense,ticket,narrow]
                                        [--raw runs.jsonl] [--out benchmarks/RESULTS-jobs.md]
Prints a markdown table (and writes it to --out); --raw keeps every run as a JSON line as it finishes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from lipcli import device as devices
from lipcli.images import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import emit, log  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NARROW_YAML = "net: {preset: dip, down: [32, 32, 32, 32, 32], up: [32, 32, 32, 32, 32]}\n"  # 152,199 params
NETS = {"dense": ["--dense"], "ticket": [], "narrow": ["--config", "narrow.yaml"]}  # ticket: the default prior
ARMS = {"sequential": ["--jobs", "1"], "jobs": ["--jobs", "auto"]}
ORIENTATIONS = [None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
                Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.TRANSPOSE,
                Image.Transpose.TRANSVERSE]


def make_inputs(folder: Path) -> list[Path]:
    """The bundled House crop in its eight orientations."""
    paths = []
    with Image.open(resolve("sample:house")) as house:
        for i, how in enumerate(ORIENTATIONS):
            path = folder / f"house{i}.png"
            (house.copy() if how is None else house.transpose(how)).save(path)
            paths.append(path)
    return paths


def restore(images: list[Path], net: str, arm: str, iters: int, folder: Path) -> dict:
    """One whole `lip restore` run over every image; its wall time, load and reports."""
    out = Path(tempfile.mkdtemp(prefix=f"{net}-{arm}-", dir=folder))
    args = ["restore", *[p.name if p.parent == folder else str(p) for p in images], "--simulate", "--sigma", "25",
            "--iters", str(iters), "--no-early-stop", "--seed", "0", "--json", "-o", "OUT/", *NETS[net], *ARMS[arm]]
    load = os.getloadavg()[0]
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lipcli", *[f"{out}/" if x == "OUT/" else x for x in args]],
                          cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.monotonic() - start
    if done.returncode:
        raise SystemExit(f"lip {shlex.join(args)} failed:\n{done.stderr}")
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    return {"net": net, "arm": arm, "iters": iters, "wall": round(wall, 2), "load_before": load, "load_after": os.getloadavg()[0],
            "threads": sorted({r["threads"] for r in reports}), "images": len(reports),
            "psnr": [r["psnr_final"] for r in reports], "fit_seconds": [r["seconds"] for r in reports],
            "jobs_line": next((line for line in done.stderr.splitlines() if " at once (" in line), ""),
            "command": "lip " + shlex.join(args)}


def table(runs: list[dict]) -> str:
    lines = ["| net | how | runs | wall s (median) | images/min | throughput vs one after the other "
             "(median of pairs) | threads per restore | mean PSNR dB | load avg (min-max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for net in dict.fromkeys(r["net"] for r in runs):
        mine = {arm: [r for r in runs if r["net"] == net and r["arm"] == arm] for arm in ARMS}
        pairs = list(zip(mine["sequential"], mine["jobs"]))
        for arm, rows in mine.items():
            if not rows:
                continue
            wall = statistics.median(r["wall"] for r in rows)
            ratio = "1" if arm == "sequential" else \
                f"{statistics.median(s['wall'] / j['wall'] for s, j in pairs):.2f}x" if pairs else "-"
            if arm == "jobs" and pairs:
                ratio += " (" + ", ".join(f"{s['wall'] / j['wall']:.2f}" for s, j in pairs) + ")"
            loads = [x for r in rows for x in (r["load_before"], r["load_after"])]
            lines.append(f"| {net} | {'--jobs 1' if arm == 'sequential' else '--jobs auto'} | {len(rows)} | "
                         f"{wall:.1f} | {rows[0]['images'] * 60 / wall:.1f} | {ratio} | "
                         f"{','.join(map(str, rows[0]['threads']))} | "
                         f"{statistics.mean(statistics.mean(r['psnr']) for r in rows):.2f} | "
                         f"{min(loads):.1f}-{max(loads):.1f} |")
        if pairs:
            gap = max(abs(a - b) for s, j in pairs for a, b in zip(s["psnr"], j["psnr"]))
            lines.append(f"| {net} | largest PSNR difference of one image between the arms | | | | | | "
                         f"{gap:.3f} | |")
    return "\n".join(lines)


def report(runs: list[dict]) -> str:
    """The table, what was run and on what."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return (f"{runs[0]['images']} images of 128x128 (sigma 25), {runs[0]['iters']} iterations each, no early stop; "
            f"{dt.date.today()}, {cpu}, {devices.usable_cores()} usable cores, Python {platform.python_version()}.\n"
            f"Load average before/after each run in the table (the machine's other work).\n\n{table(runs)}\n\n"
            + "\n".join(f"- `{c}`" + (f" ({r['jobs_line']})" if r["jobs_line"] else "")
                         for c, r in {r["command"]: r for r in runs}.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2, help="pairs (sequential, jobs) per net")
    parser.add_argument("--nets", default="dense,ticket,narrow")
    parser.add_argument("--images", type=Path, nargs="*", help="instead of the eight House orientations")
    parser.add_argument("--raw", type=Path, help="append every run here as one JSON line")
    parser.add_argument("--out", type=Path, help="write the markdown here too")
    parser.add_argument("--from-raw", type=Path, help="only print the table of the runs recorded in this --raw file")
    a = parser.parse_args()
    if a.from_raw:
        runs = [json.loads(line) for line in a.from_raw.read_text().splitlines()]
        print(report(runs))
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        folder = Path(tmp)
        (folder / "narrow.yaml").write_text(NARROW_YAML)
        images = [p.resolve() for p in a.images] if a.images else make_inputs(folder)
        for rep in range(a.repeats):  # every prefix of the runs has whole pairs of every net
            for net in a.nets.split(","):
                for arm in ARMS:
                    run = restore(images, net, arm, a.iters, folder)
                    log(f"{net} {arm} #{rep + 1}: {run['wall']:.1f}s, threads {run['threads']}, load "
                        f"{run['load_before']:.1f}->{run['load_after']:.1f}, mean PSNR {statistics.mean(run['psnr']):.2f}")
                    runs.append(run)
                    if a.raw:
                        with open(a.raw, "a") as f:
                            f.write(json.dumps(run) + "\n")
    emit(report(runs) + "\n", a.out)


if __name__ == "__main__":
    main()
