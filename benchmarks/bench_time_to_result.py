#!/usr/bin/env python
"""Time to a restored image (issue 7, goal 3): the plain reference loop's 3000 iterations vs `lip restore`
with automatic early stopping, dense and with a mask, on the same noisy images.

The reference (benchmarks/bench_iter.py: DIP skip net, fp32, NCHW, separate pad + conv, Adam, EMA
output) runs the paper's 3000 iterations and returns its last EMA output, which is what the published
recipe returns. lip runs through the real CLI (`lip restore NOISY --clean CLEAN --json`, its default settings on
this machine: fast preset, bf16 + channels_last, auto-stop); wall time is the whole command (start-up,
image I/O, fitting). PSNRs: the reference's final output; lip's written (auto-stopped) output.
Timings are single runs, one after the other on a shared machine: see the load column.

    python benchmarks/bench_time_to_result.py --images house.png f16.png --size 128 \\
        --mask masks/house64-imp.safetensors --out benchmarks/RESULTS-time-to-result.md
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import RefLoop, build_reference, load_crop, make_z, noisy_of  # noqa: E402

from lipcli import nets  # noqa: E402
from lipcli.images import load_image, save_image  # noqa: E402
from lipcli.metrics import psnr  # noqa: E402


def load() -> str:
    return os.getloadavg()[0].__format__(".1f")


def reference(noisy: torch.Tensor, clean: torch.Tensor, iters: int, seed: int) -> dict:
    torch.manual_seed(seed)
    net, *_ = build_reference(nets.preset("dip"))
    loop = RefLoop(net, make_z(clean.shape[-1], seed), noisy, seed)
    began, l0 = time.perf_counter(), load()
    for _ in range(iters):
        loop.step()
    return {"seconds": time.perf_counter() - began, "iterations": iters, "psnr": psnr(loop.out_avg, clean),
            "load": f"{l0}-{load()}"}


def lip(noisy_path: Path, clean_path: Path, mask: Path | None, out: Path) -> dict:
    cmd = ["lip", "restore", str(noisy_path), "--clean", str(clean_path), "--json", "-o", str(out)]
    cmd += ["--mask", str(mask)] if mask else []
    began, l0 = time.perf_counter(), load()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rep = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": time.perf_counter() - began, "iterations": rep["iterations"], "psnr": rep["psnr_stopped"],
            "stopped_at": rep["stopped_at"], "oracle": rep["oracle_best_psnr"], "final": rep["psnr_final"],
            "load": f"{l0}-{load()}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", nargs="+", default=["house.png", "f16.png"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--ref-iters", type=int, default=3000)
    ap.add_argument("--mask", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lip-ttr"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-time-to-result.md"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.images:
        clean = load_crop(name, a.size)
        stem = a.work / f"{Path(name).stem}{a.size}"
        save_image(stem.with_suffix(".png"), clean[0].numpy())
        noisy_path = stem.with_name(stem.name + "-noisy.png")
        save_image(noisy_path, noisy_of(clean, 0)[0].numpy())  # 8-bit, as a user's file
        noisy = torch.from_numpy(load_image(noisy_path).pixels)[None]
        runs = {"lip dense": lip(noisy_path, stem.with_suffix(".png"), None, a.work / "dense.png")}
        if a.mask:
            runs[f"lip --mask {a.mask.name}"] = lip(noisy_path, stem.with_suffix(".png"), a.mask, a.work / "masked.png")
        runs["reference"] = reference(noisy, clean, a.ref_iters, 0)
        for what, r in runs.items():
            print(f"{name} {what}: {r}", file=sys.stderr, flush=True)
            rows.append({"image": name, "what": what, **r})
    write(rows, a)


def write(rows: list[dict], a: argparse.Namespace) -> None:
    lines = ["# Time to result: reference 3000 iterations vs lip restore with automatic early stopping", "",
             f"- command: `python benchmarks/bench_time_to_result.py --images {' '.join(a.images)} --size {a.size}"
             + (f" --mask {a.mask}" if a.mask else "") + "`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2-core AMD EPYC (avx512_bf16), "
             f"torch {torch.__version__}; {a.size}x{a.size} centre crops, sigma 25 noise (seed 0) saved as an 8-bit "
             "PNG that both fit",
             "- reference: plain loop (fp32, NCHW, pad + conv, batch 1, Adam lr 0.01, EMA 0.99), 3000 iterations, "
             "last EMA output. lip: `lip restore NOISY --clean CLEAN` with its defaults (fast preset: "
             "bf16 + channels_last, at most 1200 iterations, auto-stop; the run continues for the patience "
             "after the stop point, so 'iterations' counts what was computed)", "",
             "| image | run | wall s | iterations run | PSNR of the returned image | speed-up vs reference | "
             "ΔPSNR vs reference | load (1-min avg, start-end) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = next(x for x in rows if x["image"] == r["image"] and x["what"] == "reference")
        lines.append(f"| {r['image']} | {r['what']} | {r['seconds']:.0f} | {r['iterations']} | {r['psnr']:.2f} | "
                     f"{ref['seconds'] / r['seconds']:.1f}x | {r['psnr'] - ref['psnr']:+.2f} | {r['load']} |")
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
