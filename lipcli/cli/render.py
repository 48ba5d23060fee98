"""What every command shows the same way: progress on stderr, one-line errors, JSON on stdout.

Human text goes to stderr, machine output to stdout. On a terminal a rich progress bar; otherwise
(CI logs, pipes, `tail -f`) a plain line every few seconds, since rich draws nothing until exit there.
"""
from __future__ import annotations

import errno
import functools
import json
import os
import signal
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import device as devices, files, stops
from ..errors import LipError, LipRuntimeError
from ..jsonsafe import finite
from ..stops import SAID
from ..resume import clear, saved_fits

# COLUMNS=0 or LINES=0 would make rich print nothing at all, error lines included: such a size is ignored
_SIZED = {k: v for k, v in os.environ.items() if not (k in ("COLUMNS", "LINES") and v.isdigit() and int(v) < 1)}
err = Console(stderr=True, highlight=False, emoji=False, _environ=_SIZED)  # a file named x:-1:.png stays as it is


class Terminated(Exception):
    """SIGTERM or SIGHUP, turned into an exception so that cleanup runs like for Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(SAID[signum][0])
        self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
    raise Terminated(signum)


# Parameters that name what a command writes (or, --resume, reads and writes back): every other path a command
# is given is one of its inputs, which no write of it may replace (files.reading).
WRITES = frozenset({"out", "csv_", "plot", "log", "resume", "samples", "save_measurements_", "save_kspace",
                    "snapshots"})


def _read_values(params: dict[str, Any]) -> list[Any]:
    return [v for name, value in params.items() if name not in WRITES
            for v in (value if isinstance(value, (list, tuple)) else [value])]


def _one_line(text: str) -> str:
    """An error stays one line whatever a file name in it holds (a newline is legal in one)."""
    return text.replace("\n", "\\n").replace("\r", "\\r")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; bad input and failures become one line on stderr and an exit code.

    2 = bad input/usage, 1 = runtime failure, 130 = Ctrl-C, 143 = SIGTERM, 129 = SIGHUP. LIP_DEBUG=1 re-raises.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        held = stops.release()  # a signal the entry point held while the command was built (lipcli/launch.py)
        try:  # an ignored signal (SIGHUP under nohup) stays ignored
            previous = {s: signal.signal(s, _on_signal) for s in SAID
                        if s != signal.SIGINT and signal.getsignal(s) is not signal.SIG_IGN}
        except ValueError:  # not the main thread (e.g. a test runner thread)
            previous = {}
        try:
            if held is not None:
                raise KeyboardInterrupt if held == signal.SIGINT else Terminated(held)
            if kwargs.get("json_") and sys.stdout is None:  # before any work (several commands write first)
                raise LipError("stdout is closed: drop --json")
            with files.reading(_read_values(kwargs)), files.tidy():
                return fn(*args, **kwargs)
        except LipError as exc:
            err.print(f"lip: error: {_one_line(str(exc))}", markup=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("lip: interrupted", markup=False)
            raise typer.Exit(130) from None
        except Terminated as exc:
            word, code = SAID[exc.signum]
            try:
                err.print(f"lip: {word}", markup=False)
            except OSError:  # a hung-up terminal takes no more lines
                pass
            raise typer.Exit(code) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # the reader left (`lip masks --json | head`): stop quietly, as SIGPIPE would
            try:  # Python's own flush of stdout at exit would fail again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):  # stdout has no descriptor (captured)
                pass
            raise typer.Exit(141) from None
        except torch.OutOfMemoryError as exc:  # a GPU's (a CPU's shortage is the kernel's OOM kill, or a refusal)
            err.print(f"lip: error: {devices.out_of_memory(exc)}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as exc:  # a bug: still one line, unless debugging
            if os.environ.get("LIP_DEBUG"):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given, not a bug
                err.print(f"lip: error: a file name is longer than the file system allows: {exc.filename}",
                          markup=False, soft_wrap=True)
                raise typer.Exit(2) from None
            first = (str(exc).splitlines() or [""])[0][:200]
            err.print(f"lip: internal error: {type(exc).__name__}: {first} (set LIP_DEBUG=1 for details)",
                      markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    return wrapper


def emit_json(obj: dict[str, Any]) -> None:
    """One JSON object per line on stdout; NaN/inf become null so every consumer can parse it."""
    try:
        sys.stdout.write(json.dumps(finite(obj), sort_keys=True) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left: guarded's quiet exit
        raise
    except OSError as exc:  # e.g. stdout on a full disk: one line, as for any other output
        raise files.write_failed("stdout", exc) from None


class RunLog:
    """`--log FILE`: JSON lines of every iteration, round and result, flushed as written (tail -f)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.made = path, path is not None and not files.is_stdout(path) and not os.path.lexists(path)
        self.file = None if path is None else files.open_append(path, "--log")

    def write(self, event: str, **fields: Any) -> None:
        self.append({"event": event, "time": round(time.time(), 3), **fields})

    def append(self, record: dict[str, Any]) -> None:
        """One line as is: also what a `restore --jobs` worker logged, with its own time."""
        if self.file is not None:
            try:
                self.file.write(json.dumps(finite(record), sort_keys=True) + "\n")
                self.file.flush()
            except OSError as exc:  # a full disk: one line (exit 1), and a log this run made and never wrote goes
                self._drop()
                raise files.write_failed(self.path or "--log", exc) from None

    def close(self) -> None:
        if self.file is not None and self.file is not sys.stdout:
            try:
                self.file.close()
            except OSError as exc:
                self._drop()
                raise files.write_failed(self.path or "--log", exc) from None

    def _drop(self) -> None:
        file, self.file = self.file, None
        if file is not sys.stdout:
            with suppress(OSError):
                file.close()
        if self.made:
            with suppress(OSError):
                if os.path.getsize(self.path) == 0:
                    os.unlink(self.path)


def check_stdout_free(out: Path | None, json_: bool, log: Path | None = None, logs: bool = True) -> None:
    """Stdout carries one stream at most: the output (`-o -`), the JSON lines (--json) or the log (`--log -`).
    Refuse two rather than mix them (a PNG with JSON lines in front of it is no PNG). `logs`: the command has
    --log (the hint offers it)."""
    to_out, to_log = out is not None and files.reaches_stdout(out), log is not None and files.reaches_stdout(log)
    if (to_out or to_log or json_) and sys.stdout is None:
        fixes = ["give -o a file name"] * to_out + ["give --log a file name"] * to_log + ["drop --json"] * json_
        raise LipError(f"stdout is closed: {', or '.join(fixes)}")
    if to_out and json_:
        raise LipError(f"--json prints to stdout, which -o {out} fills with the output: drop "
                       "--json" + (" and add --log FILE, which records the same result" if logs else
                                   " (the lines on stderr say the same)"))
    if to_log and (to_out or json_):
        raise LipError(f"--log {log} and {f'-o {out}' if to_out else '--json'} both write to stdout: give --log a "
                       "file name")


def set_threads_quietly(threads: int | str | None) -> Callable[[], None]:
    """Set the thread count now (a fit's numbers depend on it, so it comes before any computation), but hold
    what it has to say (a busy machine) until the returned function is called: after the checks, when the
    run goes ahead. A refused run prints its one error line alone. Only the first call says them, so a command
    may call it wherever its run can first go ahead."""
    notes: list[str] = []
    devices.set_threads(threads, notes.append)

    def say_notes() -> None:
        for line in notes:
            say(line)
        notes.clear()
    return say_notes


def say(line: str) -> None:
    """One human line on stderr, printed as is (no rich markup)."""
    err.print(line, markup=False, soft_wrap=True)


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_wide(renderable: RenderableType) -> None:
    """Print a table on stderr; in a pipe or log (no terminal width to respect) never truncate names."""
    if err.is_terminal:
        err.print(renderable)
        return
    natural = Measurement.get(err, err.options.update(width=1000), renderable).maximum
    before = err.width
    err.width = max(before, min(natural, 1000))
    try:
        err.print(renderable)
    finally:
        err.width = before


def say_round(rec: dict[str, Any], json_: bool) -> None:
    """One finished pruning round (DIP, GAN and classification searches): a table line, and JSON with --json."""
    loss = "-" if rec.get("loss") is None else f"{rec['loss']:.6f}"
    psnr = f"  psnr(clean, report only) {rec['psnr_final']:.2f}" if rec.get("psnr_final") is not None else ""
    channels = f"  channels {rec['channels']:>5}" if "channels" in rec else ""  # channel searches
    accuracy = f"  accuracy {100 * rec['accuracy']:.1f}%" if "accuracy" in rec else ""  # classification tickets
    err.print(f"round {rec['round']:>2}  sparsity {100 * rec['sparsity']:6.2f}%  kept {rec['kept']:>9}"
              f"{channels}  loss {loss}{psnr}{accuracy}  {rec['seconds']:.1f}s", markup=False)
    if json_:
        emit_json({"type": "round", **rec})


def say_lost(dest: Path | str, source: object, lost: list[str]) -> None:
    """Before a fit: what writing its result to `dest` will lose of `source` (images.narrowed), if anything."""
    if lost:
        say(f"note: {dest} will not keep all of {source}: {'; '.join(lost)}")


def say_stopped(path: Path) -> None:
    """After Ctrl-C or SIGTERM in a search: where the finished rounds are and how to continue (a stream
    target kept none: it receives only the finished artifact)."""
    if files.is_stream(path):
        say(f"lip: stopped; nothing was written to {path} (it receives only the finished artifact)")
    elif path.exists():
        say(f"lip: stopped; finished rounds are kept in {path}. Continue with the same command plus --resume {path}")


def say_state_kept(state: Path | None, why: str = "stopped", output: Path | None = None,
                   rerun: str = "the same command") -> None:
    """After Ctrl-C or SIGTERM, or a failed write, in a fit that keeps its state (lipcli/resume.py): where the
    state is and how to continue from it (`rerun`: the command that does, e.g. a batch's with --skip-existing);
    or, for an `output` that is a stream, that there was nowhere to keep it."""
    if state is not None and saved_fits(state):
        say(f"lip: {why}; the fit's state is kept in {state}/. Run {rerun} again to continue it")
        return
    if state is not None and state.is_dir() and not any(state.iterdir()):
        state.rmdir()  # stopped before any state was saved: an empty folder would look like a kept one
    if state is not None:
        say(f"lip: {why}; no state of the fit was saved yet, so {rerun} starts over")
    elif state is None and output is not None and files.is_stream(output):
        where = "stdout" if files.is_stdout(output) else output
        say(f"lip: {why}; the fit's state is not kept for an output to {where} (a state is kept beside an output "
            "file): the same command starts over")


def write_then_discard(write: Callable[[], None], state: Path | None) -> None:
    """Write a fit's result, then remove the fit's saved state (lipcli/resume.py). A write that fails (a full
    disk) keeps the state and says so before failing: the same command continues from it."""
    try:
        write()
    except LipRuntimeError:
        say_state_kept(state, "the image was not written")
        raise
    problem = None if state is None else clear(state)
    if problem:
        say(f"lip: warning: {problem}")


def steps_done(last: dict[Any, int], fitter: Any, iteration: int) -> int:
    """How many iterations a fitter's step stands for in a progress display: a continued fit starts further on
    (lipcli/resume.py), the fitter's next fit (an ensemble member) starts again at 1."""
    done = iteration - last.get(fitter, 0) if iteration > last.get(fitter, 0) else 1
    last[fitter] = iteration
    return done


@contextmanager
def progress(total: int, label: str, every: float = 5.0) -> Iterator[Callable[..., None]]:
    """Yield `advance(n, info, total=None)`; draws a bar on a terminal, a plain line every `every` s otherwise.
    A `total` given to `advance` replaces the first (a cap that follows the noise level is known once the image is)."""
    if err.is_terminal:
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err,
                       transient=True)
        with bar:
            task = bar.add_task(label, total=total, info="")
            yield lambda n, info="", total=None: bar.update(task, advance=n, info=info, total=total)
        return
    start = last = time.monotonic()
    done, end = 0, total

    def advance(n: int, info: str = "", total: int | None = None) -> None:
        nonlocal done, last, end
        end = total or end
        done += n
        now = time.monotonic()
        if now - last >= every or done >= end:
            last = now
            eta = f" eta {(now - start) / done * (end - done):.0f}s" if done else ""
            err.print(f"{label}: {done}/{end} {info}{eta}", markup=False, soft_wrap=True)

    yield advance
