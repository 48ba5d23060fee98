"""`lip masks`: the shipped mask library, each entry with what it measured."""
from __future__ import annotations

from dataclasses import asdict

from rich import box
from rich.table import Table

from .. import library
from .options import json_flag
from .render import emit_json, err, guarded, print_wide

ListJson = json_flag("Print the library as JSON lines on stdout (one entry per line)", panel=None)


@guarded
def masks_cmd(json_: ListJson = False) -> None:
    """List the shipped masks: use one with `lip restore --mask NAME`."""
    found = library.entries()
    if json_:
        for e in found:
            emit_json({**asdict(e), "path": str(e.path)})
        return
    if not found:
        err.print("the mask library is empty", markup=False)
        return
    table = Table(box=box.SIMPLE_HEAD, title="lip mask library (lip restore --mask NAME)")
    for col in ("name", "task", "what it is", "measured", "made by"):
        table.add_column(col, overflow="fold")
    for e in found:
        measured = "; ".join(f"{k}: {v}" for k, v in e.measured.items())
        table.add_row(e.name, e.task, e.summary, measured, e.made_by)
    print_wide(table)
