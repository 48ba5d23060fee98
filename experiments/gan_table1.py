"""LIP Table 1 at lip's scale (SMALL): GAN IMP vs random pruning of the shipped MNIST generator,
evaluated by robust CS (MOM, 2% outliers) and GAN inpainting on held-back test digits.

Usage: python experiments/gan_table1.py OUTDIR [--ratio 0.4] [--epochs 1] [--rounds 6] [--iters 500]
           [--methods imp,random] [--weights rewound] [--eval-rounds 1,2,...] [--digits 3] [--tasks cs,inpaint]
Writes OUTDIR/gan_<method>.safetensors, OUTDIR/results.jsonl (one line per evaluation, appended as it
goes) and OUTDIR/table.md. The evaluated generator is generators.at_round(art, k, WEIGHTS): "rewound" is
the PRETRAINED weights under round k's mask, "finetuned" the weights round k-1's fine-tuning left under
mask k (what the paper evaluates). The random baseline is not fine-tuned here, so it is only rewound.
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


def search(method: str, out: Path, a: argparse.Namespace, data: torch.Tensor) -> artifact.Artifact:
    s = gan_imp.GanImpSettings(rounds=a.rounds, epochs=a.epochs, ratio=a.ratio, method=method, seed=0)
    traj = gan_imp.start(gan.GENERATOR, s, command=" ".join(sys.argv))
    t0 = time.perf_counter()
    art = gan_imp.run(traj, data, s, out, on_round=lambda rec: print(
        f"[{method}] round {rec.get('round')} done {time.perf_counter() - t0:.0f}s {rec}", flush=True))
    return art


def evaluate(g: torch.nn.Module, x: torch.Tensor, d: int, iters: int, task: str) -> float:
    """Per-pixel MSE of digit `d` recovered by `task` (operator and solver seeded by d)."""
    shape = tuple(x.shape[1:])
    if task == "cs":
        op = GaussianCS(shape, 200, outliers=4, noise=0.01, outlier_value=10000.0, seed=d)
        cfg = CSConfig(solver="mom", iters=iters, restarts=1, batch_size=20, seed=d)
    else:
        op = Inpaint.bernoulli((1, shape[1], shape[2]), 0.5, d)
        cfg = CSConfig(solver="ls", iters=iters, restarts=1, seed=d)
    return mse(solve(g, op, op(x, torch.Generator().manual_seed(d)), cfg).image, x)


def columns(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(task, method, weights) of every evaluated generator but the dense one, in a stable order."""
    seen = {(t, r["method"], r["weights"]) for r in rows if r["method"] != "dense" for t in r["mse"]}
    return sorted(seen, key=lambda c: (c[0] != "cs", c[1] != "imp", c[2]))


def table(rows: list[dict]) -> str:
    by = {(r["method"], r["weights"], r["round"]): r for r in rows}
    cols = columns(rows)
    names = {"imp": "LIP", "random": "random"}
    lines = ["| sparsity | " + " | ".join(f"{names[m]} {w} {t}" for t, m, w in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for k in sorted({r["round"] for r in rows}):
        sp = next(r["sparsity"] for r in rows if r["round"] == k)
        cells = []
        for t, m, w in cols:
            r = by.get((m, w, k)) or (by.get(("dense", "rewound", 0)) if k == 0 else None)
            cells.append(f"{r['mse'][t]:.4f}" if r and t in r["mse"] else "n/a")
        lines.append(f"| {100 * sp:.0f}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("outdir", type=Path)
    p.add_argument("--ratio", type=float, default=0.4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--iters", type=int, default=500)
    p.add_argument("--methods", default="imp,random")
    p.add_argument("--weights", default="rewound", help="comma list of rewound, finetuned")
    p.add_argument("--eval-rounds", default=None, help="comma list [1..rounds]")
    p.add_argument("--digits", type=int, default=3, help="test digits 0..N-1")
    p.add_argument("--tasks", default="cs,inpaint")
    a = p.parse_args()
    torch.set_num_threads(1)
    a.outdir.mkdir(parents=True, exist_ok=True)
    res = a.outdir / "results.jsonl"
    spec = artifact.load(gan.GENERATOR).spec
    data = gan.load_data("mnist", spec)
    test = gan.load_mnist("test", int(spec["g"]["size"]))[0]
    methods, tasks = a.methods.split(","), a.tasks.split(",")
    arts = {m: search(m, a.outdir / f"gan_{m}.safetensors", a, data) for m in methods[::-1]}
    eval_rounds = [int(k) for k in a.eval_rounds.split(",")] if a.eval_rounds else range(1, a.rounds + 1)
    jobs = [("dense", "rewound", 0)] + [(m, w, k) for k in eval_rounds for m in methods for w in a.weights.split(",")
                                        if w == "rewound" or k in arts[m].finetuned]
    rows = []
    for method, weights, k in jobs:
        art = arts[methods[0] if method == "dense" else method]
        kept, total = art.counts(k)
        g = generator_of(generators.at_round(art, k, weights)[0])
        t0 = time.perf_counter()
        per = {t: [evaluate(g, test[d:d + 1], d, a.iters, t) for d in range(a.digits)] for t in tasks}
        row = {"method": method, "weights": weights, "round": k, "sparsity": 1 - kept / total, "kept": kept,
               "total": total, "mse": {t: sum(v) / len(v) for t, v in per.items()}, "per_digit": per,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        with res.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        (a.outdir / "table.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
