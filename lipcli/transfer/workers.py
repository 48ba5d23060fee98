"""`lip transfer --device A,B,...`: one worker process per device, each running one shard of the grid.

Worker i runs exactly what a user could start by hand: the same `lip transfer` arguments with
`--shard i/n --device DEV_i`. So there is one mechanism, not two: rows, resume and `--merge` are the
grid's shard machinery (grid.py, rows.py), and a failed worker can be re-run or debugged on its own.

Workers are subprocesses (`python -m lipcli transfer ...`), not multiprocessing: each device gets a
fresh interpreter (CUDA cannot be used in a forked child, and spawn would pickle a Grid: a second way
to describe a run besides its command line). They run in their own session, so a terminal's Ctrl-C
reaches only the parent, which stops them with one SIGTERM each (they keep their finished rows).
Their output goes to a log file beside their shard file: nothing to drain, and it stays readable.
Nothing here prints; the CLI passes `say`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import device as devices
from ..errors import LipError, LipRuntimeError
from .rows import read_rows, rows_name

POLL_SECONDS = 0.2
OWN_FLAGS = ("--device", "--threads")  # the workers get their own values
DROPPED = ("--json",)  # the parent prints the rows after merging


def parse_devices(text: str) -> list[str] | None:
    """A comma list of devices, each checked now; None for a single device (no workers).

    Repeats are allowed: `cpu,cpu` splits a many-core CPU (and is how this is tested without GPUs)."""
    if "," not in text:
        return None
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise LipError(f"--device {text!r}: an empty entry; give e.g. cuda:0,cuda:1")
    return [str(devices.resolve(name)) for name in names]


def threads_each(threads: str | int | None, n: int) -> int:
    """--threads T goes to every worker; by default (auto: the free ones) the usable cores are shared so n
    workers do not oversubscribe them (a GPU worker's degradations, metrics and spectra run on the CPU too)."""
    if threads is None or threads == "auto":
        return max(1, (devices.free_cores() if threads == "auto" else devices.usable_cores()) // n)
    return devices.thread_count(threads)


def worker_args(args: list[str], shard: str, device: str, threads: int) -> list[str]:
    """The user's `lip transfer` arguments for one worker: their --device/--threads/--json left out,
    the worker's shard, device and threads put first (before any `--`, which ends the options)."""
    kept, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            kept += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in OWN_FLAGS:
            i += 1 if "=" in arg else 2
            continue
        if arg not in DROPPED:
            kept.append(arg)
        i += 1
    return ["--shard", shard, "--device", device, "--threads", str(threads), *kept]


@dataclass
class Worker:
    """One running shard: its `lip transfer --shard i/n` process and the files it writes."""

    index: int
    count: int
    device: str
    rows: Path
    log: Path
    proc: subprocess.Popen
    started: float

    @property
    def name(self) -> str:
        return f"worker {self.index} (shard {self.index}/{self.count} on {self.device})"


def start(args: list[str], index: int, device_list: list[str], threads: int, folder: Path, stem: str) -> Worker:
    n = len(device_list)
    rows = folder / rows_name(stem, (index, n))
    log = rows.with_suffix(".log")
    command = [sys.executable, "-m", "lipcli", "transfer",
               *worker_args(args, f"{index}/{n}", device_list[index], threads)]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Worker(index, n, device_list[index], rows, log, proc, time.monotonic())


def run(args: list[str], device_list: list[str], threads: int | None, folder: Path, stem: str,
        say: Callable[[str], None]) -> None:
    """Run one worker per device and wait for all; any failure is reported, then raised once at the end
    (the other workers finish their shards, so a re-run has less to do)."""
    each = threads_each(threads, len(device_list))
    workers: list[Worker] = []
    try:
        for i in range(len(device_list)):
            workers.append(start(args, i, device_list, each, folder, stem))
            say(f"{workers[-1].name}: started, {each} thread{'s' * (each > 1)}, log {workers[-1].log}")
        failed = _wait(workers, say)
    finally:
        _stop(workers)  # only those still running: Ctrl-C, SIGTERM or an error in the parent
    if failed:
        names = ", ".join(f"shard {w.index}/{w.count}" for w in failed)
        raise LipRuntimeError(f"{len(failed)} of {len(workers)} workers failed ({names}; see above and their "
                              "logs); finished runs are kept: fix it and re-run the same command to continue")


def _wait(workers: list[Worker], say: Callable[[str], None]) -> list[Worker]:
    """Report each worker as it ends; return the failed ones."""
    running, failed = list(workers), []
    while running:
        for w in [w for w in running if w.proc.poll() is not None]:
            running.remove(w)
            seconds = time.monotonic() - w.started
            if w.proc.returncode == 0:
                say(f"{w.name}: done in {seconds:.1f}s, {len(read_rows(w.rows))} runs in {w.rows}")
            else:
                failed.append(w)
                say(f"{w.name}: failed (exit {w.proc.returncode}) after {seconds:.1f}s: {_last_line(w.log)} "
                    f"(log {w.log})")
        if running:
            time.sleep(POLL_SECONDS)
    return failed


def _stop(workers: list[Worker]) -> None:
    """SIGTERM every running worker and wait: each saves its finished rows and exits 143."""
    alive = [w for w in workers if w.proc.poll() is None]
    for w in alive:
        w.proc.terminate()
    try:
        for w in alive:
            w.proc.wait()
    except BaseException:  # a second Ctrl-C: stop waiting for a clean exit
        for w in alive:
            w.proc.kill()
        raise


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"
