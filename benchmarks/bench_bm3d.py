"""lip beside the classical method a user would otherwise pick, on the same 8-bit inputs (issue 17).

- Denoising, sigma 15/25/50: BM3D told the true sigma, and BM3D told the sigma lip estimates from the
  noisy image (lipcli/noise_estimate.py), so the comparison is fair both ways.
- Inpainting (the DIP masks kate/library/vase; the crop with the most missing pixels, at most 30%):
  skimage's biharmonic.
- Super-resolution x4 (the low-resolution PNG made by Pillow's Lanczos resize, as DIP's protocol and
  `lip restore --simulate` make it; rows before 2026-12-07 used lip's own Lanczos-2 operator, which favoured
  lip: RESULTS-bm3d.md): Pillow's bicubic and Lanczos upscaling.

lip is `restore` with the preset `lip restore` picks on this machine (fast on a CPU), auto-stopped, seed
0; with `--members N` the denoising cells at sigma 25 also fit seeds 1..N-1 (lipcli/ensemble.py) and
record the average of the first n members for every n <= N: `lip restore --ensemble n`
(experiments/RESULTS-ensemble.md). Every method reads the same 8-bit PNG written once per cell. Rows go to
OUT/rows.jsonl as each cell ends; a re-run skips finished cells. `--report` prints the tables.

Benchmark-only dependencies: `pip install bm3d scikit-image`. Usage (from the repository root):

    nohup nice -n 10 env PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_bm3d.py --out bench-out \
        --members 4 >> bench-out.log 2>&1 &
    PYTHONPATH=$PWD python benchmarks/bench_bm3d.py --out bench-out --report

The rows behind benchmarks/RESULTS-bm3d.md are kept in benchmarks/results-bm3d/ (the 128x128 ones were
added with `--side 128 --only 'denoise|bridge|128|s25'`, then foreman).
"""
from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from lipcli import config
from lipcli.ensemble import average, members
from lipcli.images import load_image
from lipcli.metrics import ssim
from lipcli.noise_estimate import estimate_sigma
from lipcli.physics.superres import SuperResolution
from lipcli.problem import Problem, load_problem
from lipcli.restore import dense_prior

DATA = Path("/work/shared/data")
CPU = torch.device("cpu")
# Held out from the early-stop tuning (experiments/es_collect.py, REPORT half).
DENOISE = ["barbara", "bridge", "flowers", "foreman"]
INPAINT = ["kate", "library", "vase"]
SR = ["baby", "zebra", "man"]
SIGMAS = (25, 15, 50)  # 25 first: its cells carry the ensemble members
FLAGS: dict[str, Any] = {}  # lip settings over the preset's (--iters, for a quick check of the script)


def crop_box(size: tuple[int, int], side: int) -> tuple[int, ...]:
    """(left, top, right, bottom) of the centred side x side crop."""
    w, h = size
    top, left = (h - side) // 2, (w - side) // 2
    return left, top, left + side, top + side


def hole_box(missing: np.ndarray, side: int, cap: float = 0.3, step: int = 8) -> tuple[int, ...]:
    """The crop (on a grid of `step`) with the most missing pixels, at most `cap` of it: text and holes
    are spread unevenly, and a crop inside a hole would have nothing to inpaint from."""
    sums = np.pad(missing.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    frac = (sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]) / side ** 2
    frac = np.where(frac <= cap, frac, -1)[::step, ::step]
    top, left = (int(i) * step for i in np.unravel_index(frac.argmax(), frac.shape))
    return left, top, left + side, top + side


def save_8bit(path: Path, x: np.ndarray) -> Path:
    """(C,H,W) floats in [0,1] as an 8-bit PNG, gray or RGB as C says."""
    a = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)).save(path)
    return path


def pixels_of(img: Image.Image) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64) / 255
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def pixels(path: Path) -> np.ndarray:
    return load_image(path).pixels.astype(np.float64)


def scores(problem: Problem, x: np.ndarray | torch.Tensor) -> dict[str, float]:
    """The problem's metric and SSIM against its clean image, for a (C,H,W) array or a (1,3,H,W) output."""
    t = torch.as_tensor(x).float().reshape(1, -1, *x.shape[-2:])
    t = t.expand(1, 3, *t.shape[-2:]) if t.shape[1] == 1 else t
    clean = problem.clean
    return {"psnr": problem.metric(t, clean), "ssim": ssim(t, clean)}


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
    """The result and its wall and CPU seconds (CPU time: the machine is shared, wall time is noisy)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def lip_fits(problem: Problem, settings: dict[str, Any], n: int) -> dict[str, Any]:
    """Seeds 0..n-1, each auto-stopped; the scores of every prefix average (`--ensemble k`, k <= n)."""
    cfg = config.fit_config(settings, True, CPU, 0)
    fits, cpu = [], time.process_time()
    for result, rep in members(problem, dense_prior(settings["net"]), cfg, CPU, list(range(n))):
        fits.append((result, {**rep, "cpu": time.process_time() - cpu}))
        cpu = time.process_time()
    keep = ("stopped_at", "iterations", "psnr_stopped", "ssim_stopped", "oracle_best_psnr", "oracle_best_iter",
            "seconds", "cpu")
    ensemble = [{"n": k, **scores(problem, average([r for r, _ in fits[:k]]).targets[0].stopped)}
                for k in range(1, n + 1)]
    return {"preset": settings["preset"], "precision": cfg.precision,
            "members": [{key: rep[key] for key in keep} for _, rep in fits], "ensemble": ensemble}


def bm3d_cell(noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, dict[str, float]]:
    import bm3d  # benchmark-only dependency

    if noisy.shape[0] == 1:
        return timed(lambda: bm3d.bm3d(noisy[0], sigma / 255)[None].clip(0, 1))
    return timed(lambda: bm3d.bm3d_rgb(noisy.transpose(1, 2, 0), sigma / 255).transpose(2, 0, 1).clip(0, 1))


def denoise_cell(name: str, sigma: int, side: int, n: int, work: Path) -> dict[str, Any]:
    with Image.open(DATA / "images" / f"{name}.png") as img:
        img = img.convert("L" if img.mode in ("L", "P") else "RGB")
        clean = save_8bit(work / f"{name}_{side}.png", pixels_of(img.crop(crop_box(img.size, side))))
    rng = np.random.default_rng(zlib.crc32(f"{name}-{sigma}".encode()))
    x = pixels(clean)
    noisy = save_8bit(work / f"{name}_{side}_s{sigma}.png", x + rng.normal(0, sigma / 255, x.shape))
    settings = config.resolve_settings("denoise", None, CPU, {"sigma": float(sigma), **FLAGS})
    problem = load_problem(noisy, "denoise", settings, simulate=False, seed=0, clean=clean)
    y = pixels(noisy)
    est = estimate_sigma(torch.from_numpy(y))
    row: dict[str, Any] = {"sigma_estimated": est, "noisy": scores(problem, y)}
    for key, s in (("bm3d_true", sigma), ("bm3d_est", est)):
        out, seconds = bm3d_cell(y, s)
        row[key] = {**scores(problem, out), **seconds}
    row["lip"] = lip_fits(problem, settings, n)
    return row


def inpaint_files(name: str, side: int, work: Path,
                  mask_name: str | None = None) -> tuple[Path, Path, Path, np.ndarray]:
    """The clean crop, its mask and the observed image as 8-bit PNGs in `work` (the crop with the most missing
    pixels of the DIP mask, hole_box), and the mask's keep array. `mask_name`: another image's mask of the same
    size (the image-free scribble-text mask on any 512x512 photograph)."""
    with Image.open(DATA / "masks-inpainting" / f"{mask_name or name}_mask.png") as m:
        keep_full = np.asarray(m.convert("L")) >= 128
    box = hole_box(~keep_full, side)
    with Image.open(DATA / "images" / f"{name}.png") as img:
        x = pixels_of(img.convert("RGB").crop(box))
    keep = keep_full[box[1]:box[3], box[0]:box[2]]
    clean = save_8bit(work / f"{name}_{side}.png", x)
    mask = save_8bit(work / f"{name}_{side}_mask.png", keep[None].astype(float))
    observed = save_8bit(work / f"{name}_{side}_observed.png", pixels(clean) * keep)
    return clean, mask, observed, keep


def inpaint_cell(name: str, side: int, work: Path) -> dict[str, Any]:
    from skimage.restoration import inpaint_biharmonic  # benchmark-only dependency

    clean, mask, observed, keep = inpaint_files(name, side, work)
    settings = config.resolve_settings("inpaint", None, CPU, FLAGS)
    problem = load_problem(observed, "inpaint", settings, simulate=False, seed=0, inpaint_mask=mask, clean=clean)
    y = pixels(observed)
    out, seconds = timed(lambda: inpaint_biharmonic(y.transpose(1, 2, 0), ~keep, channel_axis=-1)
                         .transpose(2, 0, 1))
    return {"observed_fraction": float(keep.mean()), "observed": scores(problem, y),
            "biharmonic": {**scores(problem, out), **seconds}, "lip": lip_fits(problem, settings, 1)}


def sr_cell(name: str, side: int, work: Path) -> dict[str, Any]:
    with Image.open(DATA / "images" / f"{name}.png") as img:
        img = img.convert("RGB")
        clean = save_8bit(work / f"{name}_{side}.png", pixels_of(img.crop(crop_box(img.size, side))))
    settings = config.resolve_settings("sr", None, CPU, FLAGS)
    op = SuperResolution(int(settings["scale"]))
    low = op(torch.from_numpy(pixels(clean)).float()[None], torch.Generator())[0].numpy()  # Pillow's resize
    small = save_8bit(work / f"{name}_{side}_x{op.factor}.png", low)
    problem = load_problem(small, "sr", settings, simulate=False, seed=0, clean=clean)
    row: dict[str, Any] = {}
    for key, method in (("bicubic", Image.BICUBIC), ("lanczos", Image.LANCZOS)):
        with Image.open(small) as im:
            out, seconds = timed(lambda: pixels_of(im.resize((side, side), method)))
        row[key] = {**scores(problem, out), **seconds}
    row["lip"] = lip_fits(problem, settings, 1)
    return row


def cells(side: int, n: int, work: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every cell by key, in run order: denoising at sigma 25 (with the members) first."""
    out: dict[str, Callable[[], dict[str, Any]]] = {}
    for sigma in SIGMAS:
        for name in DENOISE:
            k = n if sigma == 25 else 1
            out[f"denoise|{name}|{side}|s{sigma}"] = lambda name=name, sigma=sigma, k=k: denoise_cell(
                name, sigma, side, k, work)
    for name in INPAINT:
        out[f"inpaint|{name}|{side}"] = lambda name=name: inpaint_cell(name, side, work)
    for name in SR:
        out[f"sr4|{name}|{side}"] = lambda name=name: sr_cell(name, side, work)
    return out


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    return {row["key"]: row for row in map(json.loads, path.read_text().splitlines()) if row}


def run(out: Path, side: int, n: int, only: str) -> None:
    work = out / "inputs"
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # one core for every method: their times compare directly
    rows_path = out / "rows.jsonl"
    done = read_rows(rows_path)
    for key, cell in cells(side, n, work).items():
        if key in done or only not in key:
            continue
        start = time.perf_counter()
        row = {"key": key, **cell(), "wall": time.perf_counter() - start}
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{key}: {time.perf_counter() - start:.0f}s", flush=True)


def _m(rows: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> float:
    return float(np.mean([get(r) for r in rows]))


def _side(row: dict[str, Any]) -> int:
    return int(row["key"].split("|")[2])


def _label(row: dict[str, Any]) -> str:
    """A cell's key in a table cell (its '|' would split the cell)."""
    return row["key"].replace("|", " ")


def _first(row: dict[str, Any]) -> dict[str, Any]:
    """lip's single restore (seed 0) of a cell."""
    return row["lip"]["members"][0]


def _denoise_tables(den: list[dict[str, Any]]) -> None:
    print("## Denoising (mean over crops; PSNR dB / SSIM; CPU seconds, one thread)\n")
    print("| crop side | sigma | crops | sigma estimated | noisy | BM3D, true sigma | BM3D, estimated sigma "
          "| lip auto-stopped | lip oracle | BM3D CPU s | lip CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for side in sorted({_side(r) for r in den}):
        for sigma in sorted(SIGMAS):
            rs = [r for r in den if _side(r) == side and r["key"].endswith(f"|s{sigma}")]
            if not rs:
                continue
            pairs = " ".join(f"| {_m(rs, lambda r: r[k]['psnr']):.2f} / {_m(rs, lambda r: r[k]['ssim']):.3f}"
                             for k in ("bm3d_true", "bm3d_est"))
            print(f"| {side} | {sigma} | {len(rs)} | {_m(rs, lambda r: r['sigma_estimated']):.1f} "
                  f"| {_m(rs, lambda r: r['noisy']['psnr']):.2f} {pairs} "
                  f"| {_m(rs, lambda r: _first(r)['psnr_stopped']):.2f} / {_m(rs, lambda r: _first(r)['ssim_stopped']):.3f}"
                  f" | {_m(rs, lambda r: _first(r)['oracle_best_psnr']):.2f}"
                  f" | {_m(rs, lambda r: r['bm3d_true']['cpu']):.2f} | {_m(rs, lambda r: _first(r)['cpu']):.0f} |")
    print("\nPer crop: PSNR of BM3D (true sigma), BM3D (estimated sigma), lip auto-stopped (reported "
          "iteration), lip oracle (peak iteration)\n")
    print("| crop | sigma | estimated | BM3D true | BM3D est | lip | lip oracle |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(den, key=lambda r: r["key"]):
        _, name, side, s = r["key"].split("|")
        m = _first(r)
        print(f"| {name} {side} | {s[1:]} | {r['sigma_estimated']:.1f} | {r['bm3d_true']['psnr']:.2f} | "
              f"{r['bm3d_est']['psnr']:.2f} | {m['psnr_stopped']:.2f} ({m['stopped_at']}) | "
              f"{m['oracle_best_psnr']:.2f} ({m['oracle_best_iter']}) |")


def _ensemble_tables(ens: list[dict[str, Any]]) -> None:
    print("\n## Ensemble (`--ensemble N`): average of the auto-stopped outputs of seeds 0..N-1\n")
    print("| crop side | N | crops | PSNR dB | gain vs N=1 | SSIM | CPU seconds (sum of members) |")
    print("|---|---|---|---|---|---|---|")
    for side in sorted({_side(r) for r in ens}):
        rs = [r for r in ens if _side(r) == side]
        for k in range(min(len(r["lip"]["ensemble"]) for r in rs)):
            gain = _m(rs, lambda r: r["lip"]["ensemble"][k]["psnr"] - r["lip"]["ensemble"][0]["psnr"])
            print(f"| {side} | {k + 1} | {len(rs)} | {_m(rs, lambda r: r['lip']['ensemble'][k]['psnr']):.2f} | "
                  f"{gain:+.2f} | {_m(rs, lambda r: r['lip']['ensemble'][k]['ssim']):.3f} | "
                  f"{_m(rs, lambda r: sum(m['cpu'] for m in r['lip']['members'][:k + 1])):.0f} |")
    print("\n| crop | members: auto-stopped PSNR (reported iteration) / oracle | ensemble N=1.. PSNR | BM3D true |")
    print("|---|---|---|---|")
    for r in ens:
        ms = ", ".join(f"{m['psnr_stopped']:.2f} ({m['stopped_at']}) / {m['oracle_best_psnr']:.2f}"
                       for m in r["lip"]["members"])
        es = " / ".join(f"{e['psnr']:.2f}" for e in r["lip"]["ensemble"])
        print(f"| {_label(r)} | {ms} | {es} | {r['bm3d_true']['psnr']:.2f} |")


def _baseline_table(rs: list[dict[str, Any]], task: str, baselines: tuple[str, ...]) -> None:
    print(f"\n## {task} (PSNR dB / SSIM; SR: Y-PSNR without a 4-pixel border)\n")
    print("| crop | " + " | ".join(baselines) + " | lip auto-stopped (reported it) | lip oracle | baseline CPU s "
          "| lip CPU s |")
    print("|---|" + "---|" * (len(baselines) + 4))
    for r in rs:
        m = _first(r)
        print(f"| {_label(r)} | " + " | ".join(f"{r[b]['psnr']:.2f} / {r[b]['ssim']:.3f}" for b in baselines)
              + f" | {m['psnr_stopped']:.2f} / {m['ssim_stopped']:.3f} ({m['stopped_at']}) | "
              f"{m['oracle_best_psnr']:.2f} | {r[baselines[0]]['cpu']:.2f} | {m['cpu']:.0f} |")
    print("| mean | " + " | ".join(f"{_m(rs, lambda r: r[b]['psnr']):.2f}" for b in baselines)
          + f" | {_m(rs, lambda r: _first(r)['psnr_stopped']):.2f} | {_m(rs, lambda r: _first(r)['oracle_best_psnr']):.2f}"
          " | | |")


def report(out: Path) -> None:
    rows = read_rows(out / "rows.jsonl")
    den = [r for k, r in rows.items() if k.startswith("denoise|")]
    if den:
        _denoise_tables(den)
    ens = [r for r in den if len(r["lip"]["ensemble"]) > 1]
    if ens:
        _ensemble_tables(ens)
    for task, baselines in (("inpaint", ("biharmonic",)), ("sr4", ("bicubic", "lanczos"))):
        rs = sorted((r for k, r in rows.items() if k.startswith(task + "|")), key=lambda r: r["key"])
        if rs:
            _baseline_table(rs, task, baselines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=64, help="crop side in pixels")
    parser.add_argument("--members", type=int, default=1, help="lip seeds fitted per denoising cell at sigma 25")
    parser.add_argument("--report", action="store_true", help="print the tables of the rows recorded so far")
    parser.add_argument("--only", default="", help="run only the cells whose key contains this, e.g. 'barbara|128'")
    parser.add_argument("--iters", type=int, help="cap lip's iterations (a quick check; results use the preset's)")
    args = parser.parse_args()
    if args.iters:
        FLAGS["iters"] = args.iters
    if args.report:
        report(args.out)
    else:
        run(args.out, args.side, args.members, args.only)


if __name__ == "__main__":
    main()
