#!/usr/bin/env python
"""Two `lip restore` jobs started by hand at once, each with the default threads (issue 16, item 2: never
slower than 2.2x each than one alone). Before lipcli/sharing.py each took every core and both ran 4.6x slower.

Arms, interleaved per repeat (A B C D A B C D ...), each a whole process on the bundled House crop, `--iters N
--no-early-stop`, default threads:
- alone: one restore;
- apart: two at once, each with its own LIP_SHARE_DIR, so they cannot see each other (what lip did before);
- shared: two at once, one share folder (what lip does now);
- later: the second started `--delay` seconds after the first, one share folder (a running fit gives up
  cores to a newcomer and takes them back when it ends).
A job's slowdown is its wall time over the median wall time of "alone" in the same run.

Usage:  python benchmarks/bench_share.py [--iters 150] [--repeats 2] [--nets dense,ticket] [--arms ...]
                                         [--out FILE.md]
(`--arms alone,shared,later` skips the slow "apart" arm.)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import emit, log  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NETS = {"dense": ["--dense"], "ticket": []}  # ticket: the default prior
ARMS = ("alone", "apart", "shared", "later")


def start(net: str, iters: int, share: Path, out: Path) -> tuple[subprocess.Popen, float]:
    cmd = [sys.executable, "-m", "lipcli", "restore", "sample:house-noisy", "--clean", "sample:house", *NETS[net],
           "--iters", str(iters), "--no-early-stop", "--seed", "0", "--json", "-o", str(out)]
    env = {**os.environ, "LIP_SHARE_DIR": str(share), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True), \
        time.perf_counter()


def finish(job: tuple[subprocess.Popen, float]) -> dict:
    proc, t0 = job
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"a restore failed (exit {proc.returncode})")
    report = json.loads(out.splitlines()[-1])
    return {"wall": round(wall, 2), "psnr": round(report["psnr_final"], 3),
            "shared": report.get("threads_shared", [])}


def run_arm(arm: str, net: str, iters: int, delay: float, tmp: Path) -> list[dict]:
    folders = [Path(tempfile.mkdtemp(dir=tmp)) for _ in range(2)]
    if arm == "alone":
        return [finish(start(net, iters, folders[0], tmp / "a.png"))]
    first = start(net, iters, folders[0], tmp / "a.png")
    if arm == "later":
        time.sleep(delay)
    second = start(net, iters, folders[1] if arm == "apart" else folders[0], tmp / "b.png")
    return [finish(first), finish(second)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--nets", default="dense,ticket")
    ap.add_argument("--delay", type=float, default=5.0)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    arms = [arm for arm in ARMS if arm in a.arms.split(",")]
    rows: dict[tuple[str, str], list[dict]] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for net in a.nets.split(","):
            for r in range(a.repeats):
                for arm in arms:
                    jobs = run_arm(arm, net, a.iters, a.delay, Path(tmp))
                    rows.setdefault((net, arm), []).extend(jobs)
                    log(f"{net} {arm} #{r + 1}: " + ", ".join(f"{j['wall']} s" for j in jobs))
    loads.append(os.getloadavg()[0])
    lines = [f"- command: `python benchmarks/bench_share.py --iters {a.iters} --repeats {a.repeats} --nets {a.nets} "
             f"--arms {','.join(arms)}`",
             f"- {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
             f"{loads[0]:.1f} before, {loads[1]:.1f} after; wall seconds of whole processes, medians", "",
             "| net | how | jobs | wall s (median) | slowdown vs alone (median, max) | PSNR final dB (mean) | "
             "thread changes (first job) |", "|---|---|---:|---:|---:|---:|---|"]
    for net in a.nets.split(","):
        alone = statistics.median(j["wall"] for j in rows[(net, "alone")])
        for arm in arms:
            jobs = rows[(net, arm)]
            walls = [j["wall"] for j in jobs]
            slow = [w / alone for w in walls]
            lines.append(f"| {net} | {arm} | {len(jobs)} | {statistics.median(walls):.1f} | "
                         f"{statistics.median(slow):.2f}x, {max(slow):.2f}x | "
                         f"{statistics.mean(j['psnr'] for j in jobs):.2f} | {jobs[0]['shared'] or '-'} |")
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
