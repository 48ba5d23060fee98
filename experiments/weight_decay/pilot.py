"""The pilot behind RESULTS-weight-decay.md (issues 12 and 17): the default ticket at sigma 25 on the 8 tune crops
of experiments/sparse_study.py, seed 0, one thread per restore, with an Adam step-size schedule or a decoupled
weight decay of the conv kernels patched into lip's fitting loop before `--weight-decay` existed (lip 51ea877).
The decay arm is what `lip restore --weight-decay W` now does (kodim02 at 0.2 gives the same row).

    python experiments/weight_decay/pilot.py run base,wd0.2 tune 25 [rev]   # rows to pilot-rows.jsonl
    python experiments/weight_decay/pilot.py lip restore ...                  # one patched restore (LR_SCHED, WD)
"""
from __future__ import annotations

import json
import os
import subprocess
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


def run(arms: list[str], half: str, sigma: str, reverse: bool) -> None:
    sys.path.insert(0, str(HERE.parent))
    from sparse_study import PHOTOS, crop
    out = HERE / "pilot-rows.jsonl"
    done = {json.loads(line)["key"] for line in out.read_text().splitlines()} if out.exists() else set()
    names = [n for i, n in enumerate(PHOTOS) if (i % 2 == 0) == (half == "tune")][::-1 if reverse else 1]
    for name in names:
        for arm in arms:
            key = f"{name}|{sigma}|{arm}"
            if key in done:
                continue
            src = crop(name, 128, "c", HERE.parent / "sparse" / "crops")
            env = dict(os.environ, LR_SCHED=ARMS[arm][0], WD=ARMS[arm][1])
            r = subprocess.run([sys.executable, __file__, "lip", "restore", "--simulate", str(src), "--sigma", sigma,
                                "--seed", "0", "--json", "-o", "/dev/null", "--threads", "1"],
                               capture_output=True, text=True, env=env)
            if r.returncode:
                print("FAILED", key, r.stderr[-300:], flush=True)
                continue
            row = {**json.loads(r.stdout), "key": key, "arm": arm, "image": name}
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(key, row["psnr_stopped"], row["oracle_best_psnr"], row["iterations"], flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "lip":
        patch()
        from lipcli.launch import main
        sys.argv = sys.argv[1:]
        main()
    else:
        run(sys.argv[2].split(","), sys.argv[3], sys.argv[4], len(sys.argv) > 5)
