"""Experiment (issue 3): IMP vs random vs SNIP vs SynFlow vs OES vs dense, PSNR against sparsity.

Blind protocol throughout: masks are searched on the noisy observation, restores fit the noisy
observation, and the clean image is used only to score (final iterate, auto-stopped, and the
labelled oracle best). Small crops so that it runs on a 2-core CPU; see RESULTS-prune.md.

    python experiments/prune_compare.py --size 64 --images house,bird --out experiments/RESULTS-prune.md
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lipcli import artifact
from lipcli.fit import FitConfig
from lipcli.problem import load_problem, provenance
from lipcli.prune.imp import ImpSettings
from lipcli.prune.run import SearchRequest, search
from lipcli.restore import Prior, dense_prior, restore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def crop(name: str, size: int, folder: Path) -> Path:
    img = Image.open(SHARED / f"{name}.png").convert("RGB")
    w, h = img.size
    path = folder / f"{name}{size}.png"
    img.crop((w // 2 - size // 2, h // 2 - size // 2, w // 2 + size // 2, h // 2 + size // 2)).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", default="house,bird")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--search-iters", type=int, default=300)
    ap.add_argument("--eval-iters", type=int, default=1000)
    ap.add_argument("--eval-rounds", default="2,4,6,8")
    ap.add_argument("--methods", default="imp,random,snip,synflow,oes")
    ap.add_argument("--work", default="/tmp/lip-exp")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="experiments/RESULTS-prune.md")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    settings = {"sigma": 25.0, "keep": 0.5, "scale": 4}
    search_cfg = FitConfig(iters=a.search_iters, reg_noise=1 / 30, ema=0.99, early_stop=False,
                           precision="bf16", channels_last=True)
    eval_cfg = FitConfig(iters=a.eval_iters, reg_noise=1 / 30, ema=0.99, es_patience=300,
                         early_stop=False, precision="bf16", channels_last=True)
    eval_rounds = [int(r) for r in a.eval_rounds.split(",")]
    dev = torch.device("cpu")
    rows, log = [], work / "rows.jsonl"
    for name in a.images.split(","):
        path = crop(name, a.size, work)
        problem = load_problem(path, "denoise", settings, simulate=True, seed=0)
        blind = load_problem(path, "denoise", settings, simulate=True, seed=0)
        blind.clean = None  # the search never sees the clean image
        r = lambda prior, label, k: _evaluate(problem, prior, eval_cfg, dev, name, label, k, rows, log)
        r(dense_prior("dip"), "dense", 0)
        for method in a.methods.split(","):
            levels = eval_rounds if method != "oes" else eval_rounds
            arts = {}
            if method == "oes":
                for k in levels:
                    out = work / f"{name}_oes_{k}.safetensors"
                    arts[k] = _search(method, blind, search_cfg, dev, out, rounds=k,
                                      target=1 - 0.8 ** k)
            else:
                out = work / f"{name}_{method}.safetensors"
                art = _search(method, blind, search_cfg, dev, out, rounds=a.rounds)
                arts = {k: art for k in levels}
            for k in levels:
                art = arts[k]
                kk = 1 if method == "oes" else k
                prior = Prior(spec=art.spec, theta0=art.theta0, masks=art.mask(kk),
                              source={"method": method})
                r(prior, method, k)
    _write(rows, a, Path(a.out))


def _search(method: str, problem, cfg: FitConfig, dev, out: Path, rounds: int,
            target: float | None = None) -> artifact.Artifact:
    if out.exists():
        return artifact.load(out)
    req = SearchRequest(method=method, task="denoise", net="dip", rounds=rounds, rate=0.2,
                        scope="conv", keep_input_dense=False, fit=cfg, seed=0,
                        imp=ImpSettings(rounds=rounds), target_sparsity=target,
                        synflow_iters=100)
    t0 = time.time()
    art = search(req, [problem], provenance([problem]), dev, out, False, lambda: None, lambda s: None,
                 lambda r: None)
    print(f"searched {out.name} in {time.time() - t0:.0f}s", flush=True)
    return art


def _evaluate(problem, prior, cfg, dev, image, method, k, rows, log) -> None:
    _, rep = restore(problem, prior, cfg, dev, seed=0)
    row = {"image": image, "method": method, "round": k, "sparsity": rep["sparsity"],
           "psnr_final": rep["psnr_final"], "psnr_stopped": rep["psnr_stopped"],
           "stopped_at": rep["stopped_at"], "oracle_best_psnr": rep["oracle_best_psnr"],
           "oracle_best_iter": rep["oracle_best_iter"], "seconds": rep["seconds"]}
    rows.append(row)
    with open(log, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _write(rows: list[dict], a: argparse.Namespace, out: Path) -> None:
    lines = [f"# IMP vs baselines vs dense (blind denoising, sigma 25, {a.size}x{a.size} centre crops)",
             "", f"Command: `python experiments/prune_compare.py --size {a.size} --images {a.images} "
             f"--rounds {a.rounds} --search-iters {a.search_iters} --eval-iters {a.eval_iters}`", "",
             "| image | method | sparsity | PSNR final | PSNR auto-stopped (iter) | oracle best (iter) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['method']} | {100 * r['sparsity']:.1f}% | {r['psnr_final']:.2f} | "
                     f"{r['psnr_stopped']:.2f} ({r['stopped_at']}) | {r['oracle_best_psnr']:.2f} "
                     f"({r['oracle_best_iter']}) |")
    for method in sorted({r["method"] for r in rows}):
        sel = [r for r in rows if r["method"] == method]
        lines.append(f"\nMean over images, {method}: final {np.mean([r['psnr_final'] for r in sel]):.2f}, "
                     f"stopped {np.mean([r['psnr_stopped'] for r in sel]):.2f}")
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
