"""The shipped mask library: priors found once, measured on images they were not found on, and
resolvable by name (`lip restore --mask NAME`, `lip inspect NAME`, `lip transfer --mask NAME`).

Each entry is a slim artifact (lipcli/artifact.py: a few KB for a channel ticket) in data/library/
plus a record in data/library/index.yaml: what it is for, which round to use, how it was made, and
what it measured (the study and command that produced the numbers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent / "data" / "library"


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    task: str
    summary: str
    made_by: str
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return FOLDER / self.file


def entries() -> list[Entry]:
    """The library's masks in index order (none when the index is empty)."""
    index = FOLDER / "index.yaml"
    data = yaml.safe_load(index.read_text()) if index.exists() else None
    return [Entry(name=name, **fields) for name, fields in (data or {}).items()]


def resolve(path: Path) -> Path:
    """`path` itself, unless it names no file and is a library name: then that entry's file."""
    if path.exists() or len(path.parts) != 1:
        return path
    found = {e.name: e for e in entries()}.get(str(path))
    return found.path if found is not None else path
