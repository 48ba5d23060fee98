"""The signals that stop lip cleanly (a fit saves its state, outputs stay whole), with the word and exit code it
ends with: Ctrl-C, a scheduler's or `kill`'s SIGTERM, and the hangup of a closed terminal or lost ssh session.

A leaf module: the entry point (launch.py) reads it before anything heavy is imported, and the fit's signal hold
(resume.py) and the commands' handlers (cli/render.py) read the same table."""
from __future__ import annotations

import signal

SAID = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143),
        **({signal.SIGHUP: ("hung up", 129)} if hasattr(signal, "SIGHUP") else {})}
