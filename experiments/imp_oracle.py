"""Experiment (issue 12, item 4): does unstructured IMP beat a random mask once it searches as the paper did?

Every earlier lip study searched blind (the noisy crop) and found IMP's masks 0.4-0.7 dB below a random
mask of the same size (RESULTS-prune.md, RESULTS-search-budget.md). The LIP paper found its denoising
masks on the clean image (anchors-spec b.1); lip has that as `lip prune --oracle-target CLEAN`. Here the
same noisy 64x64 crop is searched both ways (blind: fit the noisy crop; oracle: fit the clean crop), with
the fast preset's IMP schedule (36% per round, 1200 iterations per round, 4 rounds: the paper's rounds
2, 4, 6 and 8, which transferred as well as the paper's schedule in RESULTS-search-budget.md), full DIP
net, seed 0, on two search images. Every mask is then fitted by `lip transfer` (sigma 25 denoising, fast
preset, auto-stopped, never reading the clean image) on the search images and on six other images,
beside the dense net and a random mask of the same kept count.

    python experiments/imp_oracle.py search            # 4 searches, 2 at a time (~15 min)
    python experiments/imp_oracle.py transfer --seeds 1  # then --seeds 2: rows are appended, never redone
    python experiments/imp_oracle.py report --out experiments/RESULTS-imp-oracle.md
    python experiments/imp_oracle.py search --study paper128 --hows oracle --lanes 1   # the paper's schedule, 128x128
    python experiments/imp_oracle.py search --init-seed 1   # another theta0: work in experiments/imp_oracle_init1/

Work files go to --work (default experiments/imp_oracle/); re-running any part resumes it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
EVAL = ("astronaut", "baby", "barbara", "bridge", "flowers", "foreman")
SIGMA = 25


@dataclass(frozen=True)
class Study:
    """Crop size, IMP schedule and search images of one run of this experiment."""

    size: int
    schedule: tuple[str, ...]
    search: tuple[str, ...]
    work: str
    eval: tuple[str, ...] = EVAL
    sparsities: str = "0.59,0.738,0.832"
    init_seed: int = 0  # the searches' seed: theta0 and the input code (the grids' baselines start from it too)


STUDIES = {
    # the fast preset's schedule on 64x64 crops of two images (RESULTS-imp-oracle.md, first part)
    "fast64": Study(64, ("--rate", "0.36", "--rounds", "4", "--iters", "1200"), ("house", "bird"), "imp_oracle"),
    # the published schedule (anchors-spec b.1: 20% per round, 3000 iterations, a fresh z every round) on a
    # 128x128 crop: the paper's protocol at the largest size a session's time allows here
    "paper128": Study(128, ("--rate", "0.2", "--rounds", "8", "--iters", "3000", "--fresh-input"), ("house",),
                      "imp_paper128", ("astronaut", "baby", "barbara", "foreman"), "0.59,0.832"),
}
STUDY = STUDIES["fast64"]  # set by main()
# How a search is made: blind (the noisy crop), oracle (the clean crop, the paper's), and blind with late
# rewinding (to the weights after 10% of the first round, Frankle et al. 2020's remedy for IMP at scale).
HOWS = {"blind": [], "oracle": [], "rewound": ["--rewind", "0.1"]}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def crops(name: str, work: Path) -> tuple[Path, Path]:
    """The clean centre crop and its noisy copy (seeded Gaussian noise, sigma 25, rounded to 8 bits)."""
    size = STUDY.size
    clean, noisy = work / f"{name}{size}.png", work / f"{name}{size}-noisy.png"
    if not noisy.exists():
        img = Image.open(SHARED / f"{name}.png").convert("RGB")
        w, h = img.size
        img = img.crop((w // 2 - size // 2, h // 2 - size // 2, w // 2 + size // 2, h // 2 + size // 2))
        img.save(clean)
        x = np.asarray(img, np.float64)
        rng = np.random.default_rng(sum(map(ord, name)))
        Image.fromarray(np.clip(np.round(x + rng.normal(0, SIGMA, x.shape)), 0, 255).astype(np.uint8)).save(noisy)
    return clean, noisy


def search_cmd(name: str, how: str, work: Path, threads: int) -> tuple[list[str], Path]:
    clean, noisy = crops(name, work)
    out = work / f"{name}-{how}.safetensors"
    target = ["--oracle-target", str(clean)] if how == "oracle" else ["--clean", str(clean)]
    cmd = [sys.executable, "-m", "lipcli", "prune", str(noisy), *target, *STUDY.schedule, "--seed", str(STUDY.init_seed),
           "--precision", "bf16", *HOWS[how], "--threads", str(threads), "--json"]
    return cmd + (["--resume", str(out)] if out.exists() else ["-o", str(out)]), out


def search(work: Path, lanes: int, hows: list[str]) -> None:
    todo = [(n, how) for n in STUDY.search for how in hows
            if not (work / f"{n}-{how}.done").exists()]
    running: dict[tuple[str, str], subprocess.Popen] = {}
    while todo or running:
        while todo and len(running) < lanes:
            key = todo.pop(0)
            cmd, _ = search_cmd(*key, work, max(1, (os.cpu_count() or 1) // lanes))
            log(" ".join(cmd))
            running[key] = subprocess.Popen(cmd, stdout=open(work / f"{key[0]}-{key[1]}.jsonl", "a"),
                                            stderr=open(work / f"{key[0]}-{key[1]}.log", "a"))
        for key, proc in list(running.items()):
            if proc.poll() is not None:
                if proc.returncode:
                    raise SystemExit(f"{key}: lip prune failed ({proc.returncode}); see its .log")
                (work / f"{key[0]}-{key[1]}.done").write_text("")
                log(f"{key} done")
                del running[key]
        time.sleep(5)


def transfer(work: Path, seeds: int, hows: list[str]) -> None:
    """The blind and oracle masks in one grid (masks/), the dense and random baselines in another (baselines/),
    and a later variant's masks in a grid of their own (e.g. rewound/), so that no grid's shards change."""
    images = [str(crops(n, work)[0]) for n in (*STUDY.search, *STUDY.eval)]
    base = [sys.executable, "-m", "lipcli", "transfer", *images, "--sparsities", STUDY.sparsities, "--seeds", str(seeds),
            "--sigma", str(SIGMA), "--precision", "bf16", "--device", "cpu,cpu", "--threads", "1"]
    searched = [h for h in ("blind", "oracle") if h in hows]
    masks = [work / f"{n}-{how}.safetensors" for n in STUDY.search for how in searched]
    grids = [("masks", masks, "none"), ("baselines", masks[:1], "dense,random")]
    grids += [(how, [work / f"{n}-{how}.safetensors" for n in STUDY.search], "none")
              for how in hows if how not in ("blind", "oracle")]
    for folder, grid_masks, baselines in grids:
        seed_shards(work / folder, [work / "masks", work / folder], images, grid_masks, baselines, seeds)
        cmd = base + [a for m in grid_masks for a in ("--mask", str(m))] + ["--baselines", baselines,
                                                                         "--out", str(work / folder)]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def seed_shards(folder: Path, sources: list[Path], images: list[str], masks: list[Path], baselines: str, seeds: int,
                lanes: int = 2) -> None:
    """Hand each worker of the grid about to run in `folder` the rows it would otherwise fit again: the same
    cells' rows found in `sources` (the baselines grid repeats the first mask's cells of the masks grid; a grid
    run again with more sparsities repeats its own), each in the shard file of the worker that owns the cell
    (cell index modulo the workers)."""
    from lipcli import api  # the grid itself says which cells it has, in which order
    from lipcli.transfer.rows import read_rows, row_key, rows_name
    done = {row_key(r): r for d in sources for path in d.glob("results*.jsonl") for r in read_rows(path)}
    grid = api.transfer_grid(images, masks, sparsities=STUDY.sparsities, seeds=seeds, baselines=baselines,
                             sigma=SIGMA, precision="bf16", device="cpu")
    folder.mkdir(exist_ok=True)
    for i in range(lanes):
        path = folder / rows_name("results", (i, lanes))
        have = {row_key(r) for r in read_rows(path)}
        with open(path, "a") as f:
            for cell in grid.cells()[i::lanes]:
                if cell.key in done and cell.key not in have:
                    f.write(json.dumps(done[cell.key]) + "\n")


def rows(work: Path) -> list[dict]:
    """Every finished row of both grids (merged or still in their shard files), one per cell."""
    cells: dict[tuple, dict] = {}
    for folder in ("masks", "baselines", *(h for h in HOWS if h not in ("blind", "oracle"))):
        for path in sorted((work / folder).glob("results*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    cells[(r["method"], r.get("mask"), r["round"], r["image"], r["seed"])] = r
    return list(cells.values())


def report(work: Path, out: Path) -> None:
    """Mean auto-stopped PSNR per prior and sparsity, with the paired differences to the dense net and to the
    random mask of the same kept count on the same image and seed (mean ± std over the pairs)."""
    table = rows(work)
    dense = {(r["image"], r["seed"]): r for r in table if r["method"] == "dense"}
    random = {(round(r["sparsity"], 3), r["image"], r["seed"]): r for r in table if r["method"] == "random"}

    def searched_on(r: dict) -> str:
        return r["mask"].split("-")[0]

    def stats(values: list[float]) -> str:
        if not values:
            return "-"
        sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):+.2f}{sd}"

    lines = ["| prior | sparsity | images | runs | auto-stopped dB | minus dense | minus random | oracle dB | "
             "final dB |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, float, str], list[dict]] = {}
    others = len(STUDY.search) + len(STUDY.eval) - 1
    for r in table:
        s = round(r["sparsity"], 3)
        if r["method"] == "mask":
            how = r["mask"].split("-")[1]
            own = r["image"].startswith(searched_on(r))
            groups.setdefault((f"IMP {how}", s, "its search image" if own else f"the other {others}"), []).append(r)
        elif r["method"] == "random":
            groups.setdefault(("random", s, f"all {others + 1}"), []).append(r)
    for (name, s, where), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        vs_dense = [r["psnr_stopped"] - dense[(r["image"], r["seed"])]["psnr_stopped"] for r in rs
                    if (r["image"], r["seed"]) in dense]
        vs_random = [r["psnr_stopped"] - random[(s, r["image"], r["seed"])]["psnr_stopped"] for r in rs
                     if (s, r["image"], r["seed"]) in random and r["method"] != "random"]
        lines.append(f"| {name} | {100 * s:.1f}% | {where} | {len(rs)} | "
                     f"{statistics.fmean(r['psnr_stopped'] for r in rs):.2f} | {stats(vs_dense)} | {stats(vs_random)} | "
                     f"{statistics.fmean(r['oracle_best_psnr'] for r in rs):.2f} | "
                     f"{statistics.fmean(r['psnr_final'] for r in rs):.2f} |")
    d = list(dense.values())
    if d:
        lines.append(f"| dense | 0.0% | all {others + 1} | {len(d)} | {statistics.fmean(r['psnr_stopped'] for r in d):.2f} | "
                     f"+0.00 | - | {statistics.fmean(r['oracle_best_psnr'] for r in d):.2f} | "
                     f"{statistics.fmean(r['psnr_final'] for r in d):.2f} |")
    out.write_text("\n".join(lines) + "\n")
    log(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("search", "transfer", "report"))
    ap.add_argument("--study", choices=STUDIES, default="fast64")
    ap.add_argument("--work", type=Path, help="work folder [experiments/<the study's>]")
    ap.add_argument("--lanes", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--sparsities", help="comma list [the study's]; a grid run later with more reuses the rows")
    ap.add_argument("--hows", default="blind,oracle", help=f"comma list of {', '.join(HOWS)}")
    ap.add_argument("--out", type=Path, default=Path("imp-oracle-table.md"))
    ap.add_argument("--init-seed", type=int, default=0, help="seed of the searches (theta0); other than 0, the work "
                    "folder is the study's with _initN appended")
    a = ap.parse_args()
    global STUDY
    STUDY = STUDIES[a.study]
    if a.sparsities:
        STUDY = replace(STUDY, sparsities=a.sparsities)
    if a.init_seed:
        STUDY = replace(STUDY, init_seed=a.init_seed, work=f"{STUDY.work}_init{a.init_seed}")
    a.work = a.work or Path(__file__).resolve().parent / STUDY.work
    a.work.mkdir(parents=True, exist_ok=True)
    hows = a.hows.split(",")
    if a.part == "search":
        search(a.work, a.lanes, hows)
    elif a.part == "transfer":
        transfer(a.work, a.seeds, hows)
    else:
        report(a.work, a.out)


if __name__ == "__main__":
    main()
