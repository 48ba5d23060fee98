"""`lip`'s entry point. Loading the commands imports torch (about half a second), and a Ctrl-C then lands
in torch's or numpy's import machinery, which can swallow it or print a traceback; a SIGTERM would end the
process without a word. So SIGINT, SIGTERM and SIGHUP are held while the commands load and the command is
built, and acted on as the command starts: exit 130 / 143 / 129 with lip's one line, as anywhere later. Once a
command has ended (its output written, its exit code chosen) they are ignored: one in the interpreter's last
milliseconds would only print a traceback from a finalizer.

Before anything is allocated, the process is set to keep the memory a fit frees for its next step
(lipcli/allocator.py)."""
from __future__ import annotations

import signal

from . import allocator, stops
from .stops import SAID


def main() -> None:
    allocator.keep_freed_memory()
    stops.hold()  # until the command starts (cli/render.guarded releases them and acts on one held)
    try:
        from .cli import main as run
        run()
    finally:
        stops.release()  # a command that never started (--help, a usage error) leaves a held signal unanswered
        for s in SAID:
            signal.signal(s, signal.SIG_IGN)
