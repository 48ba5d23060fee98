"""The table of experiments/RESULTS-oes-protocol.md from the per-iteration logs that run.sh writes.

    python experiments/oes_protocol/report.py OUT [--curves curves.jsonl]

PSNR (dB, against the clean crop) of the raw output at fixed iterations, the best over the run (oracle:
it needs the clean image) and what the run lost from that peak by its last iteration. `--curves` also writes
every 100th iteration of every run as one JSON line (iteration, psnr), small enough to keep in the repo.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

AT = (1000, 2000, 5000, 10000, 20000)
ORDER = ("house_dense", "house_dense_lr0.001", "house_oes", "house_random", "baboon_dense", "baboon_oes")


def curve(path: Path) -> dict[int, float]:
    """Iteration -> PSNR from a `lip restore --log` file (steps only)."""
    out = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "step" and event.get("metric") is not None:
            out[event["iteration"]] = event["metric"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--curves", type=Path)
    a = ap.parse_args()
    runs = sorted(a.out.glob("*.jsonl"), key=lambda p: ORDER.index(p.stem) if p.stem in ORDER else len(ORDER))
    print("| run | params fitted | sparsity | " + " | ".join(f"@{k // 1000}k" for k in AT)
          + " | peak (oracle) | at | last - peak |")
    print("|---|---:|---:|" + "---:|" * len(AT) + "---:|---:|---:|")
    lines = []
    for path in runs:
        c = curve(path)
        if not c:
            continue
        report = a.out / f"{path.stem}.json"
        r = json.loads(report.read_text()) if report.exists() and report.stat().st_size else {}
        best = max(c, key=c.get)
        last = max(c)
        cells = " | ".join(f"{c[k]:.2f}" if k in c else "-" for k in AT)
        print(f"| {path.stem} | {r.get('params_fitted', '-'):,} | {100 * r.get('sparsity', 0):.1f}% | {cells} | "
              f"{c[best]:.2f} | {best} | {c[last] - c[best]:+.2f} (at {last}) |"
              if r else f"| {path.stem} (running) | - | - | {cells} | {c[best]:.2f} | {best} | "
              f"{c[last] - c[best]:+.2f} (at {last}) |")
        lines += [json.dumps({"run": path.stem, "iteration": k, "psnr": round(c[k], 3)})
                  for k in sorted(c) if k % 100 == 0 or k == 1]
    if a.curves:
        a.curves.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
