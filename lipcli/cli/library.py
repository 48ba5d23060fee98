"""`lip masks`: the shipped mask library, each entry with what it measured (one wrapped block each:
the fields are sentences, which a table squeezes into unreadable columns)."""
from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import asdict

from .. import library
from ..config import LEVELED
from ..physics import TASKS
from .options import json_flag
from .render import emit_json, err, guarded

WIDTH = 100  # in a pipe or log: the fields are sentences, wrapped, not a table

ListJson = json_flag("Print the library as JSON lines on stdout (one entry per line)", panel=None)


@guarded
def masks_cmd(json_: ListJson = False) -> None:
    """List the shipped masks (on stderr, as every report of lip; --json puts them on stdout): use one with
    `lip restore --mask NAME`."""
    found = library.entries()
    if json_:
        for e in found:
            emit_json({**asdict(e), "path": str(e.path)})
        return
    if not found:
        err.print("the mask library is empty", markup=False)
        return
    width = min(err.width, WIDTH) if err.is_terminal else WIDTH
    blocks = []
    for e in found:
        fitted = ", ".join(f"{k} {_setting(k, v)}" for k, v in e.fast.items())
        fields = {"what it is": e.summary, **e.measured, "made by": e.made_by,
                  **({"fitted with": f"{fitted} (over the fast preset; flags override)"} if fitted else {}),
                  "use": " ".join(["lip restore", *([f"--task {e.task}"] if e.task != "denoise" else []),
                                   *(f"--{k.replace('_', '-')} {v}" for k, v in e.only.items()),
                                   f"--mask {e.name} INPUT.png"])}
        if TASKS.get(e.task).fast_ticket == e.name:
            fields["use"] += " (the fast preset's default there: no --mask needed)"
        lines = [f"{e.name} ({e.task})"]
        for key, value in fields.items():
            lines += textwrap.wrap(f"{key}: {value}", width, initial_indent="  ", subsequent_indent="    ")
        blocks.append("\n".join(lines))
    err.print("\n\n".join(blocks), markup=False, highlight=False, soft_wrap=True)


def _setting(key: str, value: object) -> str:
    """A fitting setting as the listing shows it: a schedule over the noise level as its points, read as
    `config.at_level` reads it (linear between them, or switching at each)."""
    if not isinstance(value, Mapping):
        return str(value)
    points = sorted(value.items(), key=lambda kv: float(kv[0]))
    if LEVELED[key].linear:
        shown = " -> ".join(f"{v:.4g} at sigma {k}" for k, v in points)
        return f"{shown} (linear between, by the estimated noise level)"
    shown = ", ".join([f"{points[0][1]:.4g}", *(f"{v:.4g} above sigma {k}" for k, v in points[1:])])
    return f"{shown} (by the estimated noise level)"
