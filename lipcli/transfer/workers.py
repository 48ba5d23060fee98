"""`lip transfer --device A,B,...`: one worker process per device, each running one shard of the grid.

Worker i runs exactly what a user could start by hand: the same `lip transfer` arguments with
`--shard i/n --device DEV_i`. So there is one mechanism, not two: rows, resume and `--merge` are the
grid's shard machinery (grid.py, rows.py), and a failed worker can be re-run or debugged on its own.
The processes themselves (own session, stopped by SIGTERM on Ctrl-C) are `processes.Pool`'s. Each
worker's output goes to a log file beside its shard file: it stays readable. Nothing here prints; the
CLI passes `say`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import device as devices
from ..errors import LipError, LipRuntimeError
from ..processes import Pool, Worker, command_args
from .rows import read_rows, rows_name

OWN_FLAGS = ("--device", "--threads")  # the workers get their own values
PLOTTING = ("--plot-format", "--plot-metric")  # the parent's (with their values): it merges and plots
DROPPED = ("--json", "--curves")  # the parent prints the rows after merging, and plots


def parse_devices(text: str) -> list[str] | None:
    """A comma list of devices, each checked now; None for a single device (no workers).

    Repeats are allowed: `cpu,cpu` splits a many-core CPU (and is how this is tested without GPUs)."""
    if "," not in text:
        return None
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise LipError(f"--device {text!r}: an empty entry; give e.g. cuda:0,cuda:1")
    return [str(devices.resolve(name)) for name in names]


def worker_args(args: list[str], shard: str, device: str, threads: int) -> list[str]:
    """The user's `lip transfer` arguments for one worker: their --device/--threads, --json and plotting options
    left out, the worker's shard, device and threads put first."""
    return command_args(args, OWN_FLAGS + PLOTTING, DROPPED,
                        ["--shard", shard, "--device", device, "--threads", str(threads)])


def run(args: list[str], device_list: list[str], threads: str | None, folder: Path, stem: str,
        say: Callable[[str], None]) -> None:
    """Run one worker per device and wait for all; any failure is reported, then raised once at the end
    (the other workers finish their shards, so a re-run has less to do). By default the cores are shared
    between the workers (a GPU worker's degradations, metrics and spectra run on the CPU too)."""
    n = len(device_list)
    each = devices.split_cores(threads, n, n)[1]
    rows = [folder / rows_name(stem, (i, n)) for i in range(n)]

    def on_end(w: Worker) -> None:
        if w.proc.returncode == 0:
            say(f"{w.name}: done in {w.seconds:.1f}s, {len(read_rows(rows[w.index]))} runs in {rows[w.index]}")
        else:
            say(f"{w.name}: failed (exit {w.proc.returncode}) after {w.seconds:.1f}s: {w.last_line()} (log {w.log})")

    with Pool() as pool:  # leaving early (Ctrl-C, SIGTERM, an error) stops the workers still running
        for i, dev in enumerate(device_list):
            w = pool.start(f"worker {i} (shard {i}/{n} on {dev})",
                           ["transfer", *worker_args(args, f"{i}/{n}", dev, each)], log=rows[i].with_suffix(".log"))
            say(f"{w.name}: started, {each} thread{'s' * (each > 1)}, log {w.log}")
        failed = pool.wait(on_end)
    if failed:
        names = ", ".join(f"shard {w.index}/{n}" for w in failed)
        raise LipRuntimeError(f"{len(failed)} of {n} workers failed ({names}; see above and their "
                              "logs); finished runs are kept: fix it and re-run the same command to continue")
