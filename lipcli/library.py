"""The shipped mask library: priors found once, measured on images they were not found on, and
resolvable by name (`lip restore --mask NAME`, `lip inspect NAME`, `lip transfer --mask NAME`).

Each entry is a slim artifact (lipcli/artifact.py: a few KB for a channel ticket) in data/library/
plus a record in data/library/index.yaml: what it is for, which round to use, how it was made, what it
measured (the study and command that produced the numbers), and the fitting settings it was measured with
where they differ from the fast preset's (`fast`: a narrow net learns more slowly, so an SR ticket needs a
higher iteration cap than the dense net). `lip restore` applies them when it fits the entry for its own
task; transfer grids do not, since they compare priors at equal settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import LipError

FOLDER = Path(__file__).resolve().parent / "data" / "library"


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    task: str
    summary: str
    made_by: str
    measured: dict[str, Any] = field(default_factory=dict)
    fast: dict[str, Any] = field(default_factory=dict)  # settings over the fast preset's when this entry is fitted
    only: dict[str, Any] = field(default_factory=dict)  # as a preset's default, only where settings are these

    @property
    def path(self) -> Path:
        return FOLDER / self.file


def entries() -> list[Entry]:
    """The library's masks in index order (none when the index is empty)."""
    index = FOLDER / "index.yaml"
    data = yaml.safe_load(index.read_text()) if index.exists() else None
    return [Entry(name=name, **fields) for name, fields in (data or {}).items()]


def names() -> list[str]:
    return [e.name for e in entries()]


def _entry(name: str) -> Entry | None:
    return {e.name: e for e in entries()}.get(name)


def _named(path: Path) -> Entry | None:
    """The entry `path` names, unless it is a path with a folder in it. A file of the working folder named like
    an entry is refused, as a sample's namesake is (images.resolve): either reading would surprise someone, and
    `./NAME` reaches here as `NAME`. A folder of that name does not count: it could not be a mask."""
    if len(path.parts) != 1:
        return None
    found = _entry(str(path))
    if found is not None and path.is_file():
        raise LipError(f"{path} names both a mask in lip's library (lip masks) and the file ./{path}: give the file "
                       f"by its full path ({path.absolute()}), or rename it")
    return found


def named_entry(mask: object) -> Entry | None:
    """The entry a --mask value names (a name, not a file or path), or None."""
    return _named(Path(mask)) if isinstance(mask, (str, Path)) else None


def resolve(path: Path) -> Path:
    """`path` itself, unless it names no file and is a library name: then that entry's file."""
    found = _named(path)
    return found.path if found is not None else path


def default_for(name: str, settings: dict[str, Any]) -> bool:
    """Whether the entry `name` may be a preset's default prior under `settings`: it was measured under its
    `only` settings (an SR x4 ticket: scale 4), and another scale is another problem. A preset's ticket is
    always a library name, so a file of that name in the working folder does not hide it here."""
    found = _entry(name)
    return found is not None and all(settings.get(k) == v for k, v in found.only.items())


def entry_file(name: str) -> Path:
    """The file of entry `name`, whatever the working folder holds (a preset's ticket is always a name)."""
    found = _entry(name)
    if found is None:
        raise KeyError(name)
    return found.path


def fast_settings(mask: object, preset: str, task: str, named: bool = False) -> dict[str, Any]:
    """The settings the entry named `mask` was measured with, over the fast preset's, when it is fitted for
    its own task; {} for anything else (a file, an artifact, another preset: the paper preset fits every
    prior the papers' way; another task: its settings were tuned for this one). `named`: `mask` is a name
    for sure (a preset's ticket), not a path that a file in the working folder could take."""
    found = None
    if preset == "fast" and isinstance(mask, (str, Path)):
        found = _entry(str(mask)) if named else _named(Path(mask))
    return dict(found.fast) if found is not None and found.task == task else {}
