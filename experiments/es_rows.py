"""The early-stopping study's rows file: gzip-compressed JSON lines, one row per run.

A row carries every per-iteration signal (~190 KB as text, ~5x less compressed). Each append is a gzip
member of its own, which gzip readers concatenate, so the collector can still append as runs finish; a
member or line cut by a kill is skipped (that run simply reruns).
"""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any, Iterator

# Two files of ../shared/data hold the same photograph: head.png (280x280) is face.png (276x276) with a
# 2-pixel border, so their centre crops are the same pixels. Both were in the REPORT half until
# 2026-12-01; rows of the repeat are recorded but not counted (es_analyze.load), so each picture counts once.
SAME_PICTURE = {"head": "face"}


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete row of `path` (none when it does not exist yet)."""
    if not path.exists():
        return
    with gzip.open(path, "rt") as f:
        try:
            for line in f:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
        except (EOFError, zlib.error, gzip.BadGzipFile):
            return  # a member cut by a kill ends the file


def append_row(path: Path, row: dict[str, Any]) -> None:
    """One gzip member written with one write call, so a kill does not leave half a member that would
    hide every later row from the reader."""
    member = gzip.compress((json.dumps(row, separators=(",", ":")) + "\n").encode())
    with open(path, "ab") as f:
        f.write(member)
