"""`lip`'s entry point. Loading the commands imports torch (about half a second), and a Ctrl-C then lands
in torch's or numpy's import machinery, which can swallow it or print a traceback; a SIGTERM would end the
process without a word. So SIGINT, SIGTERM and SIGHUP are held while the commands load and the command is
built, and acted on as the command starts: exit 130 / 143 / 129 with lip's one line, as anywhere later. Once a
command has ended (its output written, its exit code chosen) they are ignored: one in the interpreter's last
milliseconds would only print a traceback from a finalizer.

Before anything is allocated, the process is set to keep the memory a fit frees for its next step
(lipcli/allocator.py).

The cyclic garbage collector is off while the commands load and then frozen: importing torch makes ~190k
long-lived objects that every full collection would walk again (three during the imports, one at exit: about
0.45 s of a 1.7 s one-iteration restore, benchmarks/RESULTS-startup.md). Frozen objects are never collected,
and module-level ones live for the whole process anyway; during the command the collector runs as usual on
what the command makes. What the command made is frozen once it has ended, so exit skips that walk too."""
from __future__ import annotations

import gc
import os
import signal
import sys

from . import allocator, stops
from .stops import SAID


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # without loading the commands and torch (2 s)
        from . import VERSION_LINE
        try:
            if sys.stdout is not None:  # closed (>&-): nothing to say it to, as --help
                sys.stdout.write(VERSION_LINE + "\n")
                sys.stdout.flush()
        except OSError as exc:
            sys.stderr.write(f"lip: error: cannot write to stdout: {exc.strerror or exc}\n")
            sys.exit(2)
        return
    try:  # torch's import aborts in a deleted working folder ("oneMKL FATAL ERROR: Cannot load libtorch_cpu.so")
        os.getcwd()
    except OSError:
        sys.stderr.write("lip: error: the working folder no longer exists (it was deleted): cd to another one\n")
        sys.exit(2)
    allocator.keep_freed_memory()
    stops.hold()  # until the command starts (cli/render.guarded releases them and acts on one held)
    gc.disable()
    try:
        try:
            from .cli import main as run
        finally:
            gc.freeze()
            gc.enable()
        run()
    finally:
        stops.release()  # a command that never started (--help, a usage error) leaves a held signal unanswered
        for s in SAID:
            signal.signal(s, signal.SIG_IGN)
        gc.freeze()
