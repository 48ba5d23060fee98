"""`lip`'s entry point. Loading the commands imports torch (about half a second), and a Ctrl-C then lands
in torch's or numpy's import machinery, which can swallow it or print a traceback; a SIGTERM would end the
process without a word. So SIGINT, SIGTERM and SIGHUP are held while the commands load and acted on as soon as
they have: exit 130 / 143 / 129 with lip's one line, as anywhere later. Once a command has ended (its output
written, its exit code chosen) they are ignored: one in the interpreter's last milliseconds would only print a
traceback from a finalizer.

Before anything is allocated, the process is set to keep the memory a fit frees for its next step
(lipcli/allocator.py)."""
from __future__ import annotations

import signal
import sys

from . import allocator
from .stops import SAID


def main() -> None:
    allocator.keep_freed_memory()
    held: list[int] = []
    # an ignored signal (SIGINT in a background job) stays ignored
    previous = {s: signal.getsignal(s) for s in SAID if signal.getsignal(s) is not signal.SIG_IGN}
    for s in previous:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        from .cli import main as run
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        word, code = SAID[signal.Signals(held[0])]
        print(f"lip: {word}", file=sys.stderr)
        raise SystemExit(code)
    try:
        run()
    finally:
        for s in SAID:
            signal.signal(s, signal.SIG_IGN)
