"""`lip restore A B C ... --jobs N`: several restores at once, the cores divided between them.

On a CPU one fit's convolutions do not scale over cores, so k restores of c/k threads each finish more
images per hour than one restore of c threads (two jobs on 2 cores: 1.2-1.4x for the dense net, 1.7-2x for
a 1/16-parameter one, far more when other work keeps the cores busy: benchmarks/RESULTS-jobs.md), while k
restores that each take every core ran 4.6x slower each.

Job j of m runs the same `lip restore` arguments with `--inputs-at` (the positions of its inputs in the
list: j, j+m, ... of those to restore, after the user's --shard and, with --skip-existing, after the
written ones are left out, so every job gets its share of the work left), `--jobs 1`, its `--threads` and
`--log -`. So it restores its inputs one after the other, exactly as a sequential run does (same seed, same
outputs at the same thread count), and streams its log events (every iteration, every result) on stdout. The
parent hands each event on as it comes (progress, the --log file, one line per image) and the reports in input
order (the JSON lines of a sequential run). The processes are `processes.Pool`'s: Ctrl-C stops them all, and outputs
are written atomically, so nothing partial is left. Nothing here prints.

One input with `--ensemble N`: the same cores are divided between its members instead. Worker j of m runs
the same arguments with `--members j/m DIR`: it fits members j, j+m, ... exactly as the sequential ensemble
does and leaves each in DIR (lipcli/ensemble.py), a temporary folder from which this process averages them
and writes the image. With several inputs the inputs are shared out and each job fits its image's members
one after the other (one rule, no nested division of the cores); `--jobs 1` keeps the members sequential, and
on a GPU they take turns on the one device.
"""
from __future__ import annotations

import json
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch

from . import allocator, device as devices
from .ensemble import load_member
from .errors import LipError, LipRuntimeError
from .fit import FitResult
from .processes import Pool, Worker, command_args
from .resume import member_file

OWN = ("--jobs", "--threads", "--shard", "--inputs-at", "--log")  # every job gets its own values
DROPPED = ("--json",)  # the parent prints the reports, in input order


def parse_jobs(text: str) -> int | None:
    """`--jobs`: a count, or None for auto."""
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise LipError(f"--jobs {text}: give a number of jobs (at least 1) or auto")
    return int(text)


def plan(jobs: int | None, threads: str | None, count: int, dev: torch.device, need: Callable[[], int | None],
         notify: Callable[[str], None]) -> tuple[int, int] | None:
    """(jobs, threads per job) for restoring `count` inputs, `need()` bytes at most each; None: one job,
    in this process (the sequential restore).

    Auto: one job on a GPU or MPS device (its kernels already fill it), on a CPU `devices.split_cores`:
    as many jobs as the thread budget gives one thread each, at most one per input. Either way no more
    jobs than the free memory holds at once (each job checks only its own need when it starts).
    """
    if count < 2 or jobs == 1 or (jobs is None and dev.type != "cpu"):
        return None
    n, each = devices.split_cores(threads, min(jobs, count) if jobs else None, count)
    if n == 1:
        return None
    free, most = devices.available_memory(dev), need()
    if most and dev.type == "cpu":  # room for each job's kept memory (lipcli/allocator.py)
        most = int(most * allocator.peak_factor())
    if most and free is not None and n * most > devices.MEMORY_SHARE * free:
        fits = max(1, int(devices.MEMORY_SHARE * free // most))
        if jobs is not None:
            notify(f"lip: {n} jobs would need about {n * most / 2**30:.1f} GiB, more than the "
                   f"{devices.MEMORY_SHARE * free / 2**30:.1f} GiB lip plans to fill of the {free / 2**30:.1f} GiB "
                   f"free; running {fits} at once")
        n, each = devices.split_cores(threads, fits, count)
    return (n, each) if n > 1 else None


def plan_members(jobs: int | None, threads: str | None, inputs: int, members: int, dev: torch.device,
                 need: Callable[[], int | None], notify: Callable[[str], None]) -> tuple[int, int] | None:
    """(workers, threads each) for fitting the `members` of an ensemble at once, as `plan` divides the cores;
    None: one after the other, in this process. Only for one input (several are shared out by `plan`) on a
    CPU (a GPU's kernels already fill it: its members take turns)."""
    if inputs != 1 or dev.type != "cpu":
        return None
    return plan(jobs, threads, members, dev, need, notify)


def job_args(args: list[str], positions: list[int], job: int, jobs: int, threads: int) -> list[str]:
    """The command line of job `job` of `jobs`: every jobs-th of the inputs at `positions` (in the whole
    list of inputs), from the job-th."""
    return _worker_args(args, ["--inputs-at", ",".join(map(str, positions[job::jobs]))], threads)


def parse_positions(text: str, count: int) -> list[int]:
    """A worker's `--inputs-at I,J,...`: positions in its list of `count` inputs."""
    try:
        positions = [int(part) for part in text.split(",")]
    except ValueError:
        positions = [-1]
    if not positions or not all(0 <= p < count for p in positions):
        raise LipError(f"--inputs-at {text}: give positions 0..{count - 1} of the inputs, separated by commas")
    return positions


def member_args(args: list[str], position: int, worker: int, workers: int, threads: int, folder: Path) -> list[str]:
    """The command line of ensemble worker `worker` of `workers`: the one input at `position`, members
    worker, worker + workers, ... left in `folder`."""
    return _worker_args(args, ["--inputs-at", str(position), "--members", f"{worker}/{workers}", str(folder)],
                        threads)


def _worker_args(args: list[str], first: list[str], threads: int) -> list[str]:
    return ["restore", *command_args(args, OWN, DROPPED, [*first, "--jobs", "1", "--threads", str(threads),
                                                          "--log", "-"])]


def run(args: list[str], positions: list[int], jobs: int, threads: int,
        on_event: Callable[[int, dict[str, Any]], None], on_report: Callable[[int, dict[str, Any]], None],
        say: Callable[[str], None]) -> None:
    """Restore the inputs at `positions` (in the whole list of inputs) as `jobs` worker processes of
    `threads` each.

    `on_event(job, event)` gets every log event of job `job` as it arrives; `on_report(position, report)`
    every result, in input order, as soon as the ones before it are in (and, after a failure or Ctrl-C,
    every result that came in). A failed job does not stop the others; its error is raised once at the end.
    """
    count = len(positions)
    reports: dict[int, dict[str, Any]] = {}  # input position -> report, until handed on
    done = [0] * jobs  # results per job: job j's k-th result is input j + k * jobs
    handed = 0

    def hand_on(every: bool) -> None:
        nonlocal handed
        while handed < count and (handed in reports or every):
            if handed in reports:
                on_report(positions[handed], reports.pop(handed))
            handed += 1

    def on_job_event(job: int, event: dict[str, Any]) -> None:
        on_event(job, event)
        if event.get("event") == "result":
            reports[job + done[job] * jobs] = {k: v for k, v in event.items() if k not in ("event", "time")}
            done[job] += 1
            hand_on(every=False)

    try:
        _work("job", [job_args(args, positions, j, jobs, threads) for j in range(jobs)], on_job_event, say)
    finally:
        hand_on(every=True)


def run_members(args: list[str], position: int, members: int, workers: int, threads: int,
                on_event: Callable[[int, dict[str, Any]], None], say: Callable[[str], None],
                states: Path | None = None) -> list[tuple[FitResult, dict[str, Any]]]:
    """Fit the `members` of the ensemble of the input at `position` as `workers` worker processes of `threads`
    each; return them in member order, as `ensemble.members` yields them. `on_event(worker, event)` gets
    every log event of a worker as it arrives. The members' files live in `states`, the restore's state
    folder, where their fits keep their states too (lipcli/resume.py), or else in a temporary folder,
    removed whatever happens; a failed worker's error is raised once the others have ended."""
    with tempfile.TemporaryDirectory(prefix="lip-ensemble-") if states is None else nullcontext(states) as where:
        folder = Path(where)
        folder.mkdir(exist_ok=True)
        _work("ensemble job", [member_args(args, position, j, workers, threads, folder) for j in range(workers)],
              on_event, say)
        return [load_member(member_file(folder, k)) for k in range(members)]


def _work(noun: str, commands: list[list[str]], on_event: Callable[[int, dict[str, Any]], None],
          say: Callable[[str], None]) -> None:
    """Run `lip` command lines that log to stdout (`--log -`) as workers at once, each log event to
    `on_event(worker, event)` as it arrives; raise their failure once every one has ended."""
    def on_line(w: Worker, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:  # not a log line: show it rather than lose it
            say(line)
            return
        on_event(w.index, event)

    with Pool() as pool:  # leaving early (Ctrl-C, SIGTERM, an error) stops the workers still running
        for j, command in enumerate(commands):
            pool.start(f"{noun} {j + 1}/{len(commands)}", command)
        failed = pool.wait(lambda w: None, on_line)
    if failed:
        raise _failure(failed, len(commands))


def _failure(failed: list[Worker], jobs: int) -> LipError:
    """One error for the failed jobs, in their own words: exit 2 when all were refused input, else 1."""
    def why(w: Worker) -> str:
        line = w.last_line().removeprefix("lip: error: ")
        code = w.proc.returncode
        return line if code > 0 else f"{line} (killed by signal {-code}{', out of memory?' if code == -9 else ''})"

    if len(failed) == 1:
        text = f"{why(failed[0])} ({failed[0].name}; the other jobs finished)"
    else:
        text = f"{len(failed)} of {jobs} jobs failed: " + "; ".join(f"{w.name}: {why(w)}" for w in failed)
    return LipError(text) if all(w.proc.returncode == 2 for w in failed) else LipRuntimeError(text)
