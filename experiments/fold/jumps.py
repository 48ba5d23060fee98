"""Loss jumps per fit without a stop (RESULTS-fold.md, last section): does a compaction make its fits jumpier?

Fits the default prior to a 128x128 centre crop of experiments/sparse_study.py (simulated sigma 25, one thread,
1200 iterations, no stop) and counts loss jumps: iterations where the loss exceeds 1.15x its trailing mean over
the 50 before, a run of such iterations counting once. Which lip is fitted is whichever PYTHONPATH puts first.

    PYTHONPATH=/tmp/base python experiments/fold/jumps.py experiments/fold/jumps-base.jsonl 5 baboon,barbara,...
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from lipcli import api

EXPERIMENTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXPERIMENTS))
from sparse_study import crop as crop_of  # noqa: E402


def main(out: str, seed: int, crops: list[str]) -> None:
    torch.set_num_threads(1)
    for crop in crops:
        losses, psnr = [], []

        def on_step(step) -> None:
            losses.append(step.loss)
            psnr.append(step.metrics[0])

        src = crop_of(crop, 128, "c", EXPERIMENTS / "sparse" / "crops")
        r = api.restore(src, simulate=True, sigma=25, seed=seed, on_step=on_step, iters=1200, early_stop=False)
        loss = np.array(losses)
        trailing = np.convolve(loss, np.ones(50) / 50)[: len(loss)]
        over = [i for i in range(60, len(loss)) if loss[i] > 1.15 * trailing[i - 1]]
        events = [i for k, i in enumerate(over) if k == 0 or over[k - 1] != i - 1]
        row = {"crop": crop, "seed": seed, "events": len(events), "at": events[:10],
               "recoveries": r.report["recoveries"], "psnr_1200": psnr[-1],
               "best": max(p for p in psnr if p is not None)}
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","))
