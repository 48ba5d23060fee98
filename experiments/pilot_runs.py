"""Pilot restores through a patched CLI: sparse_study.py's 128x128 centre crops, one JSON row per (crop, arm),
for pilots that change lip's loop from the outside before a flag exists (weight_decay/pilot.py, fold/pilot.py).

Each arm is a set of environment variables the pilot's own `patch()` reads; the pilot script is re-run as
`SCRIPT lip restore ...` for each row. Two workers may run the same list in opposite orders: a claim file beside
the rows marks a row as done or taken.
"""
from __future__ import annotations

import json
import os
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
    """A pilot's command line: `lip ...` (one patched restore) or `run ARMS HALF SIGMA [SEED [rev]]`."""
    if sys.argv[1] == "lip":
        patch()
        from lipcli.launch import main as lip
        sys.argv = sys.argv[1:]
        lip()
    else:
        wanted = sys.argv[2].split(",")
        run(script, {a: arms[a] for a in wanted}, sys.argv[3], sys.argv[4],
            sys.argv[5] if len(sys.argv) > 5 else "0", len(sys.argv) > 6, out)
