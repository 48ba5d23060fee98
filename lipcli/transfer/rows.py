"""Result rows on disk: one JSON object per finished run, one line each, in `STEM.jsonl`.

Appending a line the moment a run ends is what makes a grid resumable: a kill loses at most the run
in progress, and a line it cut short is ignored. `--shard i/n` writes `STEM.shard-i-of-n.jsonl`;
`merge` joins them. A row is identified by its key (prior, image, task, seed), never by position.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any, ContextManager

from ..config import differences
from ..errors import LipError
from ..files import atomic_path, sole_writer, write_failed
from .summary import STATS

Key = tuple[str, Any, int, str, str, int]  # method, mask, round, image name, task, seed
STEMS = ("results", "impedance")  # a folder's tables: the grid's rows, the impedance experiment's


def row_key(row: dict[str, Any]) -> Key:
    return (row["method"], row["mask"], row["round"], row["image"], row["task"], row["seed"])


def rounded(v: float | None, digits: int = 4) -> float | None:
    """A number as rows store it: rounded, so curves and spectra keep the files small."""
    return None if v is None else round(float(v), digits)


def rows_name(stem: str, shard: tuple[int, int] | None) -> str:
    return f"{stem}.jsonl" if shard is None else f"{stem}.shard-{shard[0]}-of-{shard[1]}.jsonl"


def exclusive(path: Path) -> ContextManager[None]:
    """Held while a run appends to `path`: a second run into the same file is refused, not run twice."""
    return sole_writer(path, "wait for it to end (a re-run then skips its finished runs), or use another folder")


@contextmanager
def tables_held(folder: Path) -> Iterator[None]:
    """Held on the folder's tables (STEMS) while a merge may replace them (`lip transfer --merge`, and the parent of
    `--device` workers, which merges at the end): a run appending to a table would go on writing to the replaced
    file, its later rows lost, and a second parent would run the grid again beside the first."""
    with ExitStack() as held:
        for stem in STEMS:
            held.enter_context(sole_writer(folder / rows_name(stem, None), "wait for it to end, then merge (a re-run "
                                           "skips its finished runs), or use another folder"))
        yield


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; an unfinished last line (a write cut short by a kill) is ignored."""
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LipError(f"cannot read {path}: {exc}") from None
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or any(not isinstance(row.get(k), (int, float, type(None)))
                                                for k in STATS):
                raise ValueError
            row_key(row)
        except (ValueError, KeyError):
            if i == len(lines) - 1:  # no newline after it: cut short; append_row drops it
                continue
            raise LipError(f"{path}: line {i + 1} is not a transfer row (the file is damaged; "
                           "delete that line to re-run its cell)") from None
        rows.append(row)
    return rows


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one line and flush it to disk; first end an unterminated last line left by a kill
    (dropped if cut short, as read_rows ignores it; kept if it is a whole row). A write that fails (a full
    disk) takes back its part-line and ends in one line (exit 1); the cell runs again on a re-run."""
    try:
        with open(path, "ab+", buffering=0) as f:
            f.seek(0)
            data = f.read()
            if data and not data.endswith(b"\n"):
                start = data.rfind(b"\n") + 1
                try:
                    json.loads(data[start:])
                    f.write(b"\n")
                except ValueError:
                    f.truncate(start)
            end = f.seek(0, os.SEEK_END)
            try:
                line = memoryview((json.dumps(row) + "\n").encode())
                while line:
                    line = line[f.write(line):]
                os.fsync(f.fileno())
            except OSError:
                with suppress(OSError):
                    f.truncate(end)
                raise
    except OSError as exc:
        raise write_failed(path, exc) from None


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _shards(folder: Path, stem: str) -> list[tuple[Path, int, int]]:
    """The shard files of `stem` in `folder` as (file, i, n), ordered by n, then i."""
    found = [(p, re.fullmatch(rf"{re.escape(stem)}\.shard-(\d+)-of-(\d+)\.jsonl", p.name))
             for p in folder.glob(f"{stem}.shard-*-of-*.jsonl")]
    return sorted(((p, int(m[1]), int(m[2])) for p, m in found if m), key=lambda s: (s[2], s[1]))


def missing_shards(folder: Path, stem: str) -> list[str]:
    """The shards "i/n" with no file in `folder` while another shard of the same n has one: a merge without
    them holds part of the grid (a shard still running is not seen; its rows are merged as far as written)."""
    have: dict[int, set[int]] = {}
    for _, i, n in _shards(folder, stem):
        have.setdefault(n, set()).add(i)
    return [f"{i}/{n}" for n in sorted(have) for i in range(n) if i not in have[n]]


def merge(folder: Path, stem: str) -> list[dict[str, Any]]:
    """Join `stem`.jsonl and its shard files into `stem`.jsonl (`joined`)."""
    merged = joined([folder / f"{stem}.jsonl"] + [p for p, _, _ in _shards(folder, stem)])
    if merged:
        write_rows(folder / f"{stem}.jsonl", merged)
    return merged


def joined(sources: list[Path]) -> list[dict[str, Any]]:
    """The rows of `sources`, de-duplicated by key. Every run of a task must have been made with the same
    settings, and a mask or image name must stand for one file: shards run with other flags, under another default
    preset (a GPU node's), or two runs started into one folder at once would fill one table with runs that do not
    compare."""
    rows: dict[Key, tuple[str, dict[str, Any]]] = {}  # key -> (file, row), as first seen
    first: dict[tuple[str, str], tuple[str, Any]] = {}  # (what, name) -> (file, its value), as first seen

    def clash(source: Path, other: str, why: str) -> LipError:
        where = f"{source.name} holds" if other == source.name else f"{source.name} and {other} hold"
        return LipError(f"{where} {why}; merge them separately (two runs into one --out folder?)")
    for source in sources:
        for row in read_rows(source):
            origin, old = rows.setdefault(row_key(row), (source.name, row))
            if old.get("settings") != row.get("settings"):
                raise clash(source, origin, f"the same run ({row['method']} {row['mask']} round {row['round']}, "
                            f"{row['image']}, {row['task']}, seed {row['seed']}) made with different settings")
            settings = dict(row.get("settings") or {})  # rows of lips before settings were recorded: unchecked
            hashes = {("mask", row["mask"]): settings.pop("mask_sha256", None),
                      ("image", row["image"]): settings.pop("image_sha256", None)}
            fitted = row["task"] + " (deep decoder)" * (row["method"] == "deep-decoder")  # its own fit (Grid.config)
            for (what, name), value in [(("task", fitted), settings or None), *hashes.items()]:
                seen = first.get((what, name))
                if seen is None or seen[1] is None:
                    first[(what, name)] = (source.name, value)
                elif value is not None and seen[1] != value:
                    why = (f"{name} runs made with different settings ({', '.join(differences(seen[1], value))})"
                           if what == "task" else f"two different {what}s named {name}")
                    raise clash(source, seen[0], why)
    return [row for _, row in rows.values()]
