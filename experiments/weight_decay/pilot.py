"""The pilot behind RESULTS-weight-decay.md (issues 12 and 17): the default ticket at sigma 25 on the 8 tune crops
of experiments/sparse_study.py, seed 0, one thread per restore, with an Adam step-size schedule or a decoupled
weight decay of the conv kernels patched into lip's fitting loop before `--weight-decay` existed (lip 51ea877).
The decay arm is what `lip restore --weight-decay W` now does (kodim02 at 0.2 gives the same row).

    python experiments/weight_decay/pilot.py run base,wd0.2 tune 25 [SEED [rev]]  # rows to pilot-rows.jsonl
    python experiments/weight_decay/pilot.py lip restore ...                  # one patched restore (LR_SCHED, WD)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# arm -> (LR_SCHED "boost,iterations,step|linear": the step size times boost for the first iterations, decaying
# linearly or in one step to lip's; WD: decoupled decay, the kernels times 1 - lr x WD after each step)
ARMS = {"base": ("", ""), "s2x300": ("2,300,step", ""), "l3x400": ("3,400,linear", ""),
        **{f"wd{w}": ("", w) for w in ("0.1", "0.2", "0.3", "0.5", "2")}}


def patch() -> None:
    """Wrap lip's Adam factory: a schedule on the step size, then the decay, both read from the environment."""
    import torch
    import lipcli.fit as F
    made = F.adam
    sched, wd = os.environ.get("LR_SCHED", ""), float(os.environ.get("WD") or 0)

    def adam(params, lr, device):
        opt, steps = made(params, lr, device), [0]
        step, kernels = opt.step, [p for p in params if p.dim() == 4]

        def patched(*a, **kw):
            if sched:
                boost, k, shape = sched.split(",")
                t, boost, k = steps[0], float(boost), int(k)
                f = 1.0 if t >= k else boost if shape == "step" else boost + (1 - boost) * t / k
                for g in opt.param_groups:
                    g["lr"] = lr * f
            steps[0] += 1
            out = step(*a, **kw)
            if wd:
                with torch.no_grad():
                    torch._foreach_mul_(kernels, 1 - opt.param_groups[0]["lr"] * wd)
            return out
        opt.step = patched
        return opt
    F.adam = adam


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    from pilot_runs import main
    main(__file__, {arm: {"LR_SCHED": lr, "WD": wd} for arm, (lr, wd) in ARMS.items()}, HERE / "pilot-rows.jsonl",
         patch)
