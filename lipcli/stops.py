"""The signals that stop lip cleanly (a fit saves its state, outputs stay whole), with the word and exit code it
ends with: Ctrl-C, a scheduler's or `kill`'s SIGTERM, and the hangup of a closed terminal or lost ssh session.

A leaf module: the entry point (launch.py) reads it before anything heavy is imported, and the fit's signal hold
(resume.py) and the commands' handlers (cli/render.py) read the same table."""
from __future__ import annotations

import signal

SAID = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143),
        **({signal.SIGHUP: ("hung up", 129)} if hasattr(signal, "SIGHUP") else {})}


_held: list[int] = []
_previous: dict[int, object] = {}


def hold() -> None:
    """Hold the stopping signals (an ignored one stays ignored) until `release`: while the commands load and are
    built, a Ctrl-C would land in import machinery or argument parsing (a traceback) and a SIGTERM would end the
    process without a word."""
    _previous.update({s: signal.getsignal(s) for s in SAID if signal.getsignal(s) is not signal.SIG_IGN})
    for s in _previous:
        signal.signal(s, lambda signum, frame: _held.append(signum))


def release() -> int | None:
    """Put back the handlers `hold` replaced; the first signal held meanwhile, to act on (None: none, or not
    holding). A command calls it as it starts, so that a signal is handled where every other one is."""
    for s, handler in _previous.items():
        signal.signal(s, handler)  # type: ignore[arg-type]
    _previous.clear()
    return _held.pop(0) if _held else None
