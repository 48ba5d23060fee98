"""Worker processes: `lip` command lines run side by side, waited for together, stopped together.

`transfer --device A,B` runs a shard of its grid per device and `restore --jobs N` a share of its inputs
per job, both as a `python -m lipcli ...` subprocess running exactly what a user could start by hand.
So a worker can be re-run or debugged on its own, and there is no second way to describe a run (spawned
multiprocessing would pickle one; a forked child cannot use CUDA).

Workers run in their own session, so a terminal's Ctrl-C reaches only the parent, which stops them with
one SIGTERM each: they end as `lip` does on SIGTERM (exit 143, atomic outputs, finished work kept).
A worker's output goes either to a log file (nothing to drain, readable afterwards) or through pipes:
its stdout lines are handed to the parent one by one, in the parent's thread, and the last lines of its
stderr are kept to say why it failed. Nothing here prints.
"""
from __future__ import annotations

import collections
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

POLL_SECONDS = 0.2
TAIL_LINES = 20  # stderr lines kept per piped worker


def command_args(args: list[str], own: tuple[str, ...], dropped: tuple[str, ...], first: list[str]) -> list[str]:
    """The user's arguments for one worker: the options in `own` (with their values) and the flags in
    `dropped` left out, the worker's own options `first` put first (before any `--`, which ends options)."""
    kept, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            kept += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in own:
            i += 1 if "=" in arg else 2
            continue
        if arg not in dropped:
            kept.append(arg)
        i += 1
    return [*first, *kept]


@dataclass(eq=False)
class Worker:
    """One running `lip` process."""

    index: int
    name: str
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    log: Path | None = None  # its stdout and stderr; None: piped to the parent
    readers: list[threading.Thread] = field(default_factory=list)
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def last_line(self) -> str:
        """Its last non-empty line of output: the one-line error of a failed `lip`."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log is not None else list(self.tail)
        lines = [line.strip() for line in lines if line.strip()]
        return lines[-1] if lines else "(no output)"


class Pool:
    """Workers started together; leaving the `with` block early (Ctrl-C, SIGTERM, an error) stops those
    still running and waits for them."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self._lines: queue.Queue[tuple[Worker, str]] = queue.Queue()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, name: str, args: list[str], log: Path | None = None) -> Worker:
        """Start `python -m lipcli ARGS`, its output into `log`, or piped to `wait`'s `on_line` when None."""
        command = [sys.executable, "-m", "lipcli", *args]
        index = len(self.workers)
        if log is not None:
            with open(log, "w") as out:
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            worker = Worker(index, name, proc, log=log)
        else:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
                                    start_new_session=True)
            worker = Worker(index, name, proc)
            worker.readers = [_drain(proc.stdout, lambda line: self._lines.put((worker, line))),
                              _drain(proc.stderr, worker.tail.append)]
        self.workers.append(worker)
        return worker

    def wait(self, on_end: Callable[[Worker], None], on_line: Callable[[Worker, str], None] = lambda w, line: None
             ) -> list[Worker]:
        """Run until every worker has ended; return the failed ones. `on_line` gets each stdout line of a
        piped worker, `on_end` each worker once it has exited and all its lines were handed on."""
        running, failed = list(self.workers), []
        while running:
            # Workers whose process and readers are done before the queue is drained: all their lines
            # are in it by now, so `on_end` comes after the last of them.
            ended = [w for w in running if w.proc.poll() is not None and not any(t.is_alive() for t in w.readers)]
            try:
                item = self._lines.get(block=not ended, timeout=POLL_SECONDS)
                while True:
                    on_line(*item)
                    item = self._lines.get_nowait()
            except queue.Empty:
                pass
            for w in ended:
                running.remove(w)
                if w.proc.returncode != 0:
                    failed.append(w)
                on_end(w)
        return failed

    def stop(self) -> None:
        """SIGTERM every running worker and wait: each keeps its finished work and exits 143."""
        alive = [w for w in self.workers if w.proc.poll() is None]
        for w in alive:
            w.proc.terminate()
        try:
            for w in alive:
                w.proc.wait()
        except BaseException:  # a second Ctrl-C: stop waiting for a clean exit
            for w in alive:
                w.proc.kill()
            raise


def _drain(stream: IO[str], sink: Callable[[str], None]) -> threading.Thread:
    """Read a worker's pipe to its end in a thread (a full pipe would block the worker)."""
    def run() -> None:
        with stream:
            for line in stream:
                sink(line.rstrip("\n"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
