"""LIP Table 1 at lip's scale (SMALL): GAN IMP vs random pruning of the shipped MNIST generator,
evaluated by robust CS (MOM, 2% outliers) and GAN inpainting on held-back test digits.

Usage: python experiments/gan_table1.py OUTDIR [--ratio 0.4] [--epochs 1] [--rounds 6] [--iters 500]
                                                [--weights rewound]
Writes OUTDIR/gan_imp.safetensors, OUTDIR/gan_random.safetensors, OUTDIR/results.jsonl (one line per
evaluation, appended as it goes) and OUTDIR/table.md. The evaluated generator is
generators.at_round(art, k, WEIGHTS): by default the PRETRAINED weights under round k's mask (the
paper evaluates the fine-tuned sparse G, --weights auto; the random baseline is not fine-tuned here,
so it is rewound either way).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from lipcli import artifact, gan, generators
from lipcli.cs import CSConfig, mse, solve
from lipcli.nets import generator_of
from lipcli.physics import GaussianCS, Inpaint
from lipcli.prune import gan_imp

DIGITS = (0, 1, 2)


def search(method: str, out: Path, a: argparse.Namespace, data: torch.Tensor) -> artifact.Artifact:
    s = gan_imp.GanImpSettings(rounds=a.rounds, epochs=a.epochs, ratio=a.ratio, method=method, seed=0)
    traj = gan_imp.start(gan.GENERATOR, s, command=" ".join(sys.argv))
    t0 = time.perf_counter()
    art = gan_imp.run(traj, data, s, out, on_round=lambda rec: print(
        f"[{method}] round {rec.get('round')} done {time.perf_counter() - t0:.0f}s {rec}", flush=True))
    return art


def evaluate(g: torch.nn.Module, x: torch.Tensor, d: int, iters: int) -> tuple[float, float]:
    shape = tuple(x.shape[1:])
    op = GaussianCS(shape, 200, outliers=4, noise=0.01, outlier_value=10000.0, seed=d)
    y = op(x, torch.Generator().manual_seed(d))
    r = solve(g, op, y, CSConfig(solver="mom", iters=iters, restarts=1, batch_size=20, seed=d))
    cs_mse = mse(r.image, x)
    ip = Inpaint.bernoulli((1, shape[1], shape[2]), 0.5, d)
    r2 = solve(g, ip, ip(x, torch.Generator().manual_seed(d)),
               CSConfig(solver="ls", iters=iters, restarts=1, seed=d))
    return cs_mse, mse(r2.image, x)


def table(rows: list[dict]) -> str:
    by = {(r["method"], r["round"]): r for r in rows}
    lines = ["| sparsity | LIP CS | random CS | LIP inpaint | random inpaint |",
             "|---|---|---|---|---|"]
    for k in sorted({r["round"] for r in rows}):
        sp = next(r["sparsity"] for r in rows if r["round"] == k)
        cells = []
        for task in ("cs", "inpaint"):
            for m in ("imp", "random"):
                r = by.get((m, k)) or (by.get(("dense", 0)) if k == 0 else None)
                cells.append(f"{r[task]:.4f}" if r else "n/a")
        lines.append(f"| {100 * sp:.0f}% | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("outdir", type=Path)
    p.add_argument("--ratio", type=float, default=0.4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--iters", type=int, default=500)
    p.add_argument("--weights", choices=generators.WEIGHTS, default="rewound")
    a = p.parse_args()
    torch.set_num_threads(1)
    a.outdir.mkdir(parents=True, exist_ok=True)
    res = a.outdir / "results.jsonl"
    spec = artifact.load(gan.GENERATOR).spec
    data = gan.load_data("mnist", spec)
    test = gan.load_mnist("test", int(spec["g"]["size"]))[0]
    arts = {"random": search("random", a.outdir / "gan_random.safetensors", a, data)}
    arts["imp"] = search("imp", a.outdir / "gan_imp.safetensors", a, data)
    rows = []
    jobs = [("dense", 0)] + [(m, k) for k in range(1, a.rounds + 1) for m in ("imp", "random")]
    for method, k in jobs:
        art = arts["imp" if method == "dense" else method]
        kept, total = art.counts(k)
        g = generator_of(generators.at_round(art, k, a.weights)[0])
        t0 = time.perf_counter()
        per = [evaluate(g, test[d:d + 1], d, a.iters) for d in DIGITS]
        row = {"method": method, "round": k, "sparsity": 1 - kept / total, "kept": kept, "total": total,
               "cs": sum(c for c, _ in per) / len(per), "inpaint": sum(i for _, i in per) / len(per),
               "cs_per_digit": [c for c, _ in per], "inpaint_per_digit": [i for _, i in per],
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        with res.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        (a.outdir / "table.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
