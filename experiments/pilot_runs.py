"""Pilot restores through a patched CLI: sparse_study.py's 128x128 centre crops, one JSON row per (crop, arm),
for pilots that change lip's loop from the outside before a flag exists (weight_decay/pilot.py, fold/pilot.py).

Each arm is a set of environment variables the pilot's own `patch()` reads; the pilot script is re-run as
`SCRIPT lip restore ...` for each row. Two workers may run the same list in opposite orders: a claim file beside
the rows marks a row as done or taken.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Iterable

from sparse_study import PHOTOS, crop

HERE = Path(__file__).resolve().parent


def key(name: str, sigma: str, arm: str, seed: str) -> str:
    """A row's key: crop|sigma|arm, then |sSEED unless the seed is 0 (the first pilots ran at seed 0 only)."""
    return f"{name}|{sigma}|{arm}" + (f"|s{seed}" if seed != "0" else "")


def paired(rows: Iterable[Path], sigma: str) -> dict[tuple[str, int], dict[str, dict]]:
    """(crop, seed) -> arm -> row at noise level `sigma`, from rows files `run` wrote (a later row of the same key
    wins)."""
    runs: dict[tuple[str, int], dict[str, dict]] = {}
    for path in rows:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            name, level, arm, *seed = r["key"].split("|")
            if level == sigma:
                runs.setdefault((name, int(seed[0][1:]) if seed else 0), {})[arm] = r
    return runs


def compare(rows: Iterable[Path], a: str, b: str, seeds: set[int], sigma: str) -> None:
    """Arm `b` against arm `a`, paired by crop and seed: one line per pair that differs, then the summary. The gap
    is to the better of the pair's two oracles (the same trajectory up to the earlier stop, where that holds)."""
    ps = [(image, seed, arms[a], arms[b]) for (image, seed), arms in sorted(paired(rows, sigma).items())
          if seed in seeds and {a, b} <= set(arms)]
    d = [y["psnr_stopped"] - x["psnr_stopped"] for *_, x, y in ps]
    for image, seed, x, y in ps:
        if abs(y["psnr_stopped"] - x["psnr_stopped"]) > 1e-9:
            print(f"| {image} | {seed} | {x['psnr_stopped']:.2f} ({x['iterations']}; {x['recoveries']}) | "
                  f"{y['psnr_stopped']:.2f} ({y['iterations']}; {y['recoveries']}) | "
                  f"{y['psnr_stopped'] - x['psnr_stopped']:+.2f} |")
    its = sum(y["iterations"] for *_, y in ps) / sum(x["iterations"] for *_, x, _ in ps)
    oracle = [max(x["oracle_best_psnr"], y["oracle_best_psnr"]) for *_, x, y in ps]
    gaps = {arm: sorted(o - r[arm]["psnr_stopped"] for o, r in zip(oracle, ({a: x, b: y} for *_, x, y in ps)))
            for arm in (a, b)}
    p90 = {arm: statistics.quantiles(g, n=10)[-1] for arm, g in gaps.items()}
    print(f"{b} - {a}, seeds {sorted(seeds)}: {len(ps)} pairs, median {statistics.median(d):+.3f} mean "
          f"{statistics.mean(d):+.3f} ± {statistics.stdev(d):.3f} dB; {sum(x > 0 for x in d)} better, "
          f"{sum(x < 0 for x in d)} worse, {sum(abs(x) > 0.5 for x in d)} apart by > 0.5 dB; iterations {its:.3f}x; "
          f"rollbacks per run {a} {statistics.mean(x['recoveries'] for *_, x, _ in ps):.2f}, "
          f"{b} {statistics.mean(y['recoveries'] for *_, y in ps):.2f}; gap to the pair's oracle (mean / p90): "
          f"{a} {statistics.mean(gaps[a]):.3f} / {p90[a]:.2f}, {b} {statistics.mean(gaps[b]):.3f} / {p90[b]:.2f}")


def run(script: str, arms: dict[str, dict[str, str]], half: str, sigma: str, seed: str, reverse: bool,
        out: Path) -> None:
    """Rows of `arms` (name -> environment) over the `half` (tune, report or all) at `sigma` and `seed`."""
    names = [n for i, n in enumerate(PHOTOS) if half == "all" or (i % 2 == 0) == (half == "tune")]
    for name in names[::-1 if reverse else 1]:
        for arm, env in arms.items():
            k = key(name, sigma, arm, seed)
            claim = out.parent / f".claim-{k.replace('|', '-')}"
            if claim.exists():
                continue
            claim.touch()
            src = crop(name, 128, "c", HERE / "sparse" / "crops")
            r = subprocess.run([sys.executable, script, "lip", "restore", "--simulate", str(src), "--sigma", sigma,
                                "--seed", seed, "--json", "-o", "/dev/null", "--threads", "1"],
                               capture_output=True, text=True, env={**os.environ, **env})
            if r.returncode:
                print("FAILED", k, r.stderr[-300:], flush=True)
                continue
            row = {**json.loads(r.stdout), "key": k, "arm": arm, "image": name}
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(k, row["psnr_stopped"], row["oracle_best_psnr"], row["iterations"], row.get("params_fitted"),
                  flush=True)


def main(script: str, arms: dict[str, dict[str, str]], out: Path, patch) -> None:
    """A pilot's command line: `lip ...` (one patched restore), `run ARMS HALF SIGMA [SEED [rev]]` or
    `report A B SEEDS [SIGMA]` (arm B against arm A in the pilot's rows, `compare`)."""
    if sys.argv[1] == "lip":
        patch()
        from lipcli.launch import main as lip
        sys.argv = sys.argv[1:]
        lip()
    elif sys.argv[1] == "report":
        compare([out], sys.argv[2], sys.argv[3], {int(s) for s in sys.argv[4].split(",")},
                sys.argv[5] if len(sys.argv) > 5 else "25")
    else:
        wanted = sys.argv[2].split(",")
        run(script, {a: arms[a] for a in wanted}, sys.argv[3], sys.argv[4],
            sys.argv[5] if len(sys.argv) > 5 else "0", len(sys.argv) > 6, out)
