"""Check the denoising ticket's 2400 cap with real restores on another seed (issue 17; RESULTS-stop-gate.md).

The cap was chosen on replays of seed-0 trajectories. Here the default `lip restore` (the ticket, cap 2400
from its library entry) and the same restore with the old cap (`--iters 1800`) run through the CLI on the
report crops of experiments/es_collect.py (128x128 centre crops), seed 1 (another noise draw, net init and
jitter). One JSON row per restore, appended as it ends; a re-run skips rows already present.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/cap_check.py --sigma 15 --out experiments/es_dev/rows-cap-check.jsonl
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from es_collect import REPORT, Job, prepare

HERE = Path(__file__).resolve().parent
ARMS = {"cap2400": [], "cap1800": ["--iters", "1800"]}  # the default, and the cap before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", type=float, default=15)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", default=",".join(REPORT[:6]))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    done = {(r["image"], r["arm"]) for r in map(json.loads, a.out.read_text().splitlines())} if a.out.exists() else set()
    for image in a.images.split(","):
        path, _, _ = prepare(Job(image, 128, 0, "denoise", str(int(a.sigma)), a.seed), HERE / "es_dev" / "crops")
        for arm, extra in ARMS.items():
            if (image, arm) in done:
                continue
            cmd = [sys.executable, "-m", "lipcli", "restore", str(path), "--simulate", "--sigma", str(a.sigma),
                   "--seed", str(a.seed), "--threads", "1", "--json", "-o", f"/tmp/cap-{arm}.png", *extra]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.splitlines()[-1])
            row = {"image": image, "arm": arm, "sigma": a.sigma, "seed": a.seed,
                   **{k: r[k] for k in ("iterations", "stopped_at", "psnr_stopped", "ssim_stopped", "psnr_final",
                                        "oracle_best_psnr", "oracle_best_iter", "seconds")}}
            with a.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
