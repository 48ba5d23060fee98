"""Does the kernel decay bring a noise-free task's fit to its peak sooner? Paired replay of recorded trajectories.

Rows: `es_collect.py --grid` run twice on the same crops and seed, once per `--weight-decay` (the row records it
when on), to a horizon past the preset's cap. For a task that runs to its cap (inpainting's fast preset has no
automatic stop), what lip returns is the EMA output, observed pixels put back where the task has that step
(`psnr_ema_dc`), at the cap; so each crop is scored there, at other caps (`--caps`), and by its oracle over the
whole horizon (labelled: it reads the clean image). Arms are paired crop by crop; tune and report halves are
shown apart (es_collect's halves).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/decay_tasks.py \
        experiments/es_dev/rows-tasks-inpaint-wd0.jsonl.gz experiments/es_dev/rows-tasks-inpaint-wd02.jsonl.gz
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from es_rows import read_rows


def curve(row: dict) -> np.ndarray:
    """The PSNR of what lip returns at each iteration (EMA output, data consistency where recorded)."""
    sig = row["signals"]
    return np.asarray(sig.get("psnr_ema_dc") or sig["psnr_ema"], dtype=float)


def paired(d: np.ndarray) -> str:
    """Mean ± sample std (ddof 1, as the other studies' tables) and how many crops gained."""
    if not d.size:
        return "-"
    return f"{d.mean():+.2f} ± {d.std(ddof=1) if d.size > 1 else 0.0:.2f} ({(d > 0).sum()}/{d.size})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", type=Path, help="one rows file per arm; the first is the baseline")
    ap.add_argument("--caps", default="1500,1875,2250", help="iterations at which the returned output is scored")
    a = ap.parse_args()
    caps = [int(c) for c in a.caps.split(",")]
    arms: list[tuple[str, dict[str, dict]]] = []
    for path in a.rows:
        rows = {r["image"]: r for r in read_rows(path) if "signals" in r}
        decay = {r.get("weight_decay", 0.0) for r in rows.values()}
        arms.append((f"{path.name}: decay {'/'.join(f'{d:g}' for d in sorted(decay))}", rows))
    base_name, base = arms[0]
    images = sorted(set.intersection(*(set(rows) for _, rows in arms)), key=lambda i: (base[i]["half"], i))
    head = ["image", "half"] + [f"{name}: " + " / ".join(map(str, caps)) + " (oracle @ it)" for name, _ in arms]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    diffs: dict[tuple[str, str, int | str], list[float]] = defaultdict(list)
    for image in images:
        cells = [image, base[image]["half"]]
        for k, (name, rows) in enumerate(arms):
            c = curve(rows[image])
            at = [c[cap - 1] for cap in caps]
            best = int(np.argmax(c))
            cells.append(" / ".join(f"{v:.2f}" for v in at) + f" ({c[best]:.2f} @ {best + 1})")
            if k:
                b = curve(base[image])
                for cap, v in zip(caps, at):
                    diffs[(name, base[image]["half"], cap)].append(v - b[cap - 1])
                diffs[(name, base[image]["half"], "oracle")].append(c.max() - b.max())
        print("| " + " | ".join(cells) + " |")
    print(f"\nPaired differences against {base_name} (mean ± std, better / crops):\n")
    print("| arm | half | " + " | ".join(f"at {c}" for c in caps) + " | oracle |\n|" + "---|" * (len(caps) + 3))
    for name, _ in arms[1:]:
        for half in sorted({base[i]["half"] for i in images}) + ["all"]:
            cells = [name, half]
            for cap in [*caps, "oracle"]:
                d = np.asarray(diffs[(name, half, cap)] if half != "all" else
                               [x for (n, h, c), v in diffs.items() if n == name and c == cap for x in v])
                cells.append(paired(d))
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
