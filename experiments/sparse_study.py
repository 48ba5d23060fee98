"""Which prior should `lip restore` fit? Dense DIP vs uniform narrow widths vs channel tickets (issue 12).

Every prior restores the same simulated crops through the real CLI (`lip restore --simulate --json`), so
the numbers are exactly what a user gets: the auto-stopped PSNR/SSIM, the final iterate, the oracle best
(clean image needed, labelled), iterations and seconds. Images are split in two halves by sorted name:
`tune` (even positions) chooses, `report` (odd positions) is where the choice is judged. A ticket is
searched blind on the bundled noisy House crop, which is in neither half.

One JSON row per restore, appended as it finishes; a re-run skips rows already present (resumable).
Seconds are wall time on whatever the machine was doing: compare speed in benchmarks/, not here. Each row
also records the restore's CPU seconds and the lip commit it ran (the key records neither the preset nor the
code: a changed preset needs a new rows file).

    PYTHONPATH=$PWD python experiments/sparse_study.py --half tune --priors dense,w32 --out experiments/sparse/rows.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lipcli import library
from lipcli.physics import TASKS

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"  # /work/shared/data/images
PHOTOS = ("baboon", "baby", "barbara", "bird", "butterfly", "coastguard", "comic", "f16", "flowers", "foreman",
          "kodim02", "lenna", "man", "monarch", "pepper", "zebra")
HERE = Path(__file__).resolve().parent
TICKET = "dip-channel-house"  # the shipped library entry: this study's house_ch_l1layer search, saved --slim


def prior_args(name: str) -> list[str]:
    """`default` (what the task's fast preset fits unasked: its shipped ticket or the dense net), `dense`, `wK`
    (uniform width K), `dd-kK` (the deep decoder of width K), `ticket:rN` (round N of the shipped channel
    ticket), `NAME:rN` (round N of the library entry NAME, fitted with the settings its entry records), or
    `STEM:rN` (round N of the ticket file experiments/sparse/STEM.safetensors, e.g. one searched for another task,
    or a random control)."""
    if name == "default":
        return []
    if name == "dense":
        return ["--net", "dip"]
    if re.fullmatch(r"w\d+", name):  # not any stem that starts with w (a mask file's, e.g. w32-x:r0)
        return ["--net", f"dip-{name}"]
    if re.fullmatch(r"dd-k\d+", name):
        return ["--prior", "deep-decoder", "--dd-k", name[4:]]
    kind, _, round_ = name.partition(":r")
    if round_ and kind in library.names():  # a library entry by name: fitted with its own settings
        return ["--mask", kind, "--round", round_]
    path = HERE / "sparse" / f"{kind}.safetensors"
    if not round_ or (kind != "ticket" and not path.exists()):
        raise SystemExit(f"unknown prior {name}")
    return ["--mask", TICKET if kind == "ticket" else str(path), "--round", round_]


def crop(name: str, size: int, where: str, folder: Path) -> Path:
    """A size x size crop (centre, or the top-left quarter's centre), RGB, cached as PNG."""
    path = folder / f"{name}_{size}_{where}.png"
    if not path.exists():
        src = next(IMAGES.glob(f"{name}.*"))
        im = Image.open(src).convert("RGB")
        w, h = im.size
        cx, cy = (w // 2, h // 2) if where == "c" else (w // 4, h // 4)
        cx, cy = min(max(cx, size // 2), w - size // 2), min(max(cy, size // 2), h - size // 2)
        folder.mkdir(parents=True, exist_ok=True)
        im.crop((cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2)).save(path)
    return path


def half_of(name: str) -> str:
    """tune (even positions of PHOTOS), report (odd) or fresh (outside both)."""
    return "fresh" if name not in PHOTOS else "tune" if PHOTOS.index(name) % 2 == 0 else "report"


def cpu_seconds() -> float:
    """User + system CPU seconds of the children waited for so far (one restore at a time: the difference
    around a restore is its own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=("tune", "report", "all", "fresh"), default="all",
                    help="fresh: --images outside both halves, for a check after both have been read")
    ap.add_argument("--priors", default="dense,w32,w16,ticket:r3")
    ap.add_argument("--sizes", default="128")
    ap.add_argument("--crops", default="c", help="c = centre, q = top-left quarter's centre")
    ap.add_argument("--sigmas", default="25")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--extra", default="", help="extra restore flags, recorded in the row")
    ap.add_argument("--reverse", action="store_true", help="images in reverse order (a second worker)")
    ap.add_argument("--images", default="", help="comma list: only these images of the half")
    ap.add_argument("--threads", default="1", help="per restore (1: steadiest on a shared machine; not in the key)")
    ap.add_argument("--out", type=Path, default=HERE / "sparse" / "rows.jsonl")
    a = ap.parse_args()
    if a.half == "fresh":
        names = [n for n in a.images.split(",") if n]
        if not names or set(names) & set(PHOTOS):
            ap.error("--half fresh takes --images, none of them in the tune or report half")
    else:
        names = [n for n in PHOTOS if a.half in ("all", half_of(n)) and (not a.images or n in a.images.split(","))]
    names = names[::-1] if a.reverse else names
    done = set()
    if a.out.exists():
        done = {json.loads(line)["key"] for line in a.out.read_text().splitlines() if line.strip()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    extra = a.extra.split()
    task = extra[extra.index("--task") + 1] if "--task" in extra else "denoise"

    def noise(sigma: str) -> list[str]:
        """--sigma where the task has a noise level; lip refuses it for a noise-free one (the key keeps the column)."""
        return ["--sigma", sigma] if TASKS.get(task).noisy else []

    for name in names:
        for size in map(int, a.sizes.split(",")):
            for where in a.crops.split(","):
                for sigma in a.sigmas.split(","):
                    for seed in a.seeds.split(","):
                        for prior in a.priors.split(","):
                            key = f"{name}|{size}|{where}|{sigma}|{seed}|{prior}|{a.extra}"
                            if key in done:
                                continue
                            src = crop(name, size, where, a.out.parent / "crops")
                            cmd = [sys.executable, "-m", "lipcli", "restore", "--simulate", str(src), *noise(sigma),
                                   "--seed", seed, "--json", "-o", "/dev/null", "--threads", a.threads, *prior_args(prior),
                                   *extra]
                            before = cpu_seconds()
                            run = subprocess.run(cmd, capture_output=True, text=True)
                            cpu = cpu_seconds() - before
                            if run.returncode:
                                print(f"FAILED {key}: {run.stderr.strip().splitlines()[-1:]}", flush=True)
                                continue
                            row = json.loads(run.stdout)
                            row.update(key=key, cpu_seconds=round(cpu, 1), lip_commit=commit, image=name,
                                       size=size, crop=where, prior_name=prior, extra=a.extra,
                                       half=half_of(name))
                            with open(a.out, "a") as f:
                                f.write(json.dumps(row) + "\n")
                            oracle = row["oracle_best_psnr"]  # None for an ensemble: its members have one each
                            print(f"{key}: stopped {row['psnr_stopped']:.2f} oracle {oracle or float('nan'):.2f} "
                                  f"it {row['stopped_at']}/{row['iterations']} {row['seconds']:.0f}s ({cpu:.0f} CPU s)",
                                  flush=True)


if __name__ == "__main__":
    main()
