#!/usr/bin/env python
"""Big images: peak memory and time per iteration of `lipcli.restore.restore` with and without
activation checkpointing (issue 7, goal 5: a 2048x2048 RGB restore within 24 GB).

Each (size, checkpoint) runs in a fresh subprocess that builds a simulated sigma-25 denoising problem
from a smooth synthetic RGB image, then restores it for a few iterations through the real engine
(memory planning, the fit loop with its rollback snapshots, early-stop detector): the child reports
VmHWM (peak RSS), its RSS before the net was built, seconds per iteration and lip's own estimate.
Plain (non-checkpointed) runs are skipped when lip's estimate says they would not fit in the free
memory: an out-of-memory kill of a 24 GB VM is not a measurement.

    python benchmarks/bench_bigimage.py --sizes 512 1024 2048 --iters 3 --out benchmarks/RESULTS-bigimage.md
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import _status_kib  # noqa: E402

from lipcli import config, device as devices, nets  # noqa: E402
from lipcli.fit import FitConfig  # noqa: E402
from lipcli.images import save_image  # noqa: E402
from lipcli.problem import load_problem  # noqa: E402
from lipcli.restore import dense_prior, restore  # noqa: E402


def child(size: int, checkpoint: bool, iters: int, precision: str, folder: Path) -> None:
    """One measurement: print a JSON line."""
    path = folder / f"synthetic{size}.png"
    if not path.exists():
        yy, xx = np.mgrid[0:size, 0:size] / size
        img = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * f * (xx + g * yy)) for f, g in ((3, 1), (5, -1), (2, 2))])
        save_image(path, img.astype(np.float32))
    settings = config.resolve("denoise", "fast", "fast", {"precision": precision})
    problem = load_problem(path, "denoise", settings, simulate=True, seed=0)
    cfg = FitConfig(iters=iters, early_stop=False, precision=precision, channels_last=precision == "bf16",
                    checkpoint=checkpoint)
    base = _status_kib("VmRSS")
    stamps: list[float] = []
    began = time.perf_counter()
    _, report = restore(problem, dense_prior("dip"), cfg, torch.device("cpu"), 0,
                        callbacks=[lambda step: stamps.append(time.perf_counter())])
    steps = np.diff([began] + stamps)
    print(json.dumps({"size": size, "checkpoint": checkpoint, "precision": precision, "base_kib": base,
                      "hwm_kib": _status_kib("VmHWM"), "first_s": float(steps[0]),
                      "median_s": float(np.median(steps[1:] if len(steps) > 1 else steps)),
                      "psnr_final": report["psnr_final"], "checkpoint_used": report["checkpoint"]}))


def run(size: int, checkpoint: bool, iters: int, precision: str, folder: Path) -> dict | None:
    cmd = [sys.executable, __file__, "--_child", str(size), str(int(checkpoint)), str(iters), precision, str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lip-bigimage"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-bigimage.md"))
    ap.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        size, ck, iters, precision, folder = a._child
        return child(int(size), ck == "1", int(iters), precision, Path(folder))
    a.work.mkdir(parents=True, exist_ok=True)
    spec = nets.preset("dip")
    rows = []
    for size in a.sizes:
        for ck in (False, True):
            est = nets.estimate_bytes(spec, size, size, a.precision, ck)
            free = devices.available_memory(torch.device("cpu")) or 0
            if est > devices.MEMORY_SHARE * free:  # what lip restore refuses (restore.plan_memory)
                print(f"{size} checkpoint={ck}: skipped, estimate {est / 2**30:.1f} GiB > "
                      f"{devices.MEMORY_SHARE:.0%} of free "
                      f"{free / 2**30:.1f} GiB", file=sys.stderr)
                rows.append({"size": size, "checkpoint": ck, "estimate": est, "skipped": free})
                continue
            t0 = time.time()
            rec = run(size, ck, a.iters, a.precision, a.work)
            if rec is None:
                continue
            rec["estimate"] = est
            rows.append(rec)
            print(f"{size} checkpoint={ck}: peak {rec['hwm_kib'] / 2**20:.2f} GiB, over baseline "
                  f"{(rec['hwm_kib'] - rec['base_kib']) / 2**20:.2f} GiB, estimate {est / 2**30:.2f} GiB, "
                  f"{rec['median_s']:.2f} s/iter ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    write(rows, a)


def write(rows: list[dict], a: argparse.Namespace) -> None:
    lines = [
        "# Big images: peak memory and speed with activation checkpointing",
        "",
        f"- command: `python benchmarks/bench_bigimage.py --sizes {' '.join(map(str, a.sizes))} --iters {a.iters}"
        f" --precision {a.precision}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or 'CPU'} "
        f"({torch.get_num_threads()} threads), torch {torch.__version__}, RAM "
        f"{(devices.available_memory(torch.device('cpu')) or 0) / 2**30:.1f} GiB free at the end",
        "- each row: a fresh process restores a simulated sigma-25 RGB image of that size with the full DIP "
        "net (2,217,831 params), bf16 autocast + channels_last, through `lipcli.restore.restore`; peak = VmHWM "
        "of that process; 'over baseline' subtracts its RSS before the net was built (torch, the image, "
        "the problem); s/iter = median of the iterations after the first",
        "",
        "| size | checkpointed conv blocks | peak RSS GiB | over baseline GiB | lip estimate GiB | "
        "measured / estimate | s/iter | first iter s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['size']}² | {'yes' if r['checkpoint'] else 'no'} | not run: estimate "
                         f"{r['estimate'] / 2**30:.1f} GiB > 90% of the {r['skipped'] / 2**30:.1f} GiB free | | | | | |")
            continue
        over = (r["hwm_kib"] - r["base_kib"]) * 1024
        lines.append(f"| {r['size']}² | {'yes' if r['checkpoint'] else 'no'} | {r['hwm_kib'] / 2**20:.2f} | "
                     f"{over / 2**30:.2f} | {r['estimate'] / 2**30:.2f} | {over / r['estimate']:.2f} | "
                     f"{r['median_s']:.2f} | {r['first_s']:.2f} |")
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
