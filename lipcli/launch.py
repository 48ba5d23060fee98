"""`lip`'s entry point. Loading the commands imports torch (about half a second), and a Ctrl-C then lands
in torch's or numpy's import machinery, which can swallow it or print a traceback. So SIGINT is held while the
commands load and acted on as soon as they have: exit 130 with lip's one line, as anywhere later.

Before anything is allocated, the process is set to keep the memory a fit frees for its next step
(lipcli/allocator.py)."""
from __future__ import annotations

import signal
import sys

from . import allocator


def main() -> None:
    allocator.keep_freed_memory()
    held: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    hold = previous is signal.default_int_handler  # an ignored SIGINT (a background job) stays ignored
    if hold:
        signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        from .cli import main as run
    finally:
        if hold:
            signal.signal(signal.SIGINT, previous)
    if held:
        print("lip: interrupted", file=sys.stderr)
        raise SystemExit(130)
    run()
