"""`lip restore A B C ... --jobs N`: several restores at once, the cores divided between them.

On a CPU one fit's convolutions do not scale over cores, so k restores of c/k threads each finish more
images per hour than one restore of c threads (two jobs on 2 cores: 1.2-1.4x for the dense net, 1.7-2x for
a 1/16-parameter one, far more when other work keeps the cores busy: benchmarks/RESULTS-jobs.md), while k
restores that each take every core ran 4.6x slower each.

Job j of m runs what a user could start by hand: the same `lip restore` arguments with `--shard j/m`
(composed with the user's own --shard), `--jobs 1`, its `--threads` and `--log -`. So it restores inputs
j, j+m, ... one after the other, exactly as a sequential run does (same seed, same outputs at the same
thread count), and streams its log events (every iteration, every result) on stdout. The parent hands each
event on as it comes (progress, the --log file, one line per image) and the reports in input order (the
JSON lines of a sequential run). The processes are `processes.Pool`'s: Ctrl-C stops them all, and outputs
are written atomically, so nothing partial is left. Nothing here prints.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import torch

from . import device as devices
from .errors import LipError, LipRuntimeError
from .processes import Pool, Worker, command_args

OWN = ("--jobs", "--threads", "--shard", "--log")  # every job gets its own values
DROPPED = ("--json",)  # the parent prints the reports, in input order
MEMORY_SHARE = 0.9  # of the free memory the jobs may plan to fill together (as restore.plan_memory)


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
    if most and free is not None and n * most > MEMORY_SHARE * free:
        fits = max(1, int(MEMORY_SHARE * free // most))
        if jobs is not None:
            notify(f"lip: {n} jobs would need about {n * most / 2**30:.1f} GiB but {free / 2**30:.1f} GiB is "
                   f"free; running {fits} at once")
        n, each = devices.split_cores(threads, fits, count)
    return (n, each) if n > 1 else None


def job_args(args: list[str], shard: tuple[int, int] | None, job: int, jobs: int, threads: int) -> list[str]:
    """The command line of job `job` of `jobs`: its share of this process's share `shard` of the inputs
    (of i/n, every jobs-th input from the job-th: the inputs whose index is i + n * job modulo n * jobs)."""
    i, n = shard or (0, 1)
    return ["restore", *command_args(args, OWN, DROPPED, ["--shard", f"{i + n * job}/{n * jobs}", "--jobs", "1",
                                                          "--threads", str(threads), "--log", "-"])]


def run(args: list[str], count: int, shard: tuple[int, int] | None, jobs: int, threads: int,
        on_event: Callable[[int, dict[str, Any]], None], on_report: Callable[[dict[str, Any]], None],
        say: Callable[[str], None]) -> None:
    """Restore `count` inputs (this process's, after `shard`) as `jobs` worker processes of `threads` each.

    `on_event(job, event)` gets every log event of job `job` as it arrives; `on_report(report)` every
    result, in input order, as soon as the ones before it are in (and, after a failure or Ctrl-C, every
    result that came in). A failed job does not stop the others; its error is raised once at the end.
    """
    reports: dict[int, dict[str, Any]] = {}  # input position -> report, until handed on
    done = [0] * jobs  # results per job: job j's k-th result is input j + k * jobs
    handed = 0

    def hand_on(every: bool) -> None:
        nonlocal handed
        while handed < count and (handed in reports or every):
            if handed in reports:
                on_report(reports.pop(handed))
            handed += 1

    def on_line(w: Worker, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:  # not a log line: show it rather than lose it
            say(line)
            return
        on_event(w.index, event)
        if event.get("event") == "result":
            reports[w.index + done[w.index] * jobs] = {k: v for k, v in event.items() if k not in ("event", "time")}
            done[w.index] += 1
            hand_on(every=False)

    try:
        with Pool() as pool:  # leaving early (Ctrl-C, SIGTERM, an error) stops the jobs still running
            for j in range(jobs):
                pool.start(f"job {j + 1}/{jobs}", job_args(args, shard, j, jobs, threads))
            failed = pool.wait(lambda w: None, on_line)
    finally:
        hand_on(every=True)
    if failed:
        raise _failure(failed, jobs)


def _failure(failed: list[Worker], jobs: int) -> LipError:
    """One error for the failed jobs, in their own words: exit 2 when all were refused input, else 1."""
    def why(w: Worker) -> str:
        line = w.last_line().removeprefix("lip: error: ")
        code = w.proc.returncode
        return line if code > 0 else f"{line} (killed by signal {-code}{', out of memory?' if code == -9 else ''})"

    if len(failed) == 1:
        text = f"{why(failed[0])} ({failed[0].name} stopped there; the other jobs finished)"
    else:
        text = f"{len(failed)} of {jobs} jobs failed: " + "; ".join(f"{w.name}: {why(w)}" for w in failed)
    return LipError(text) if all(w.proc.returncode == 2 for w in failed) else LipRuntimeError(text)
