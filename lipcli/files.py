"""Atomic output files: write to a temporary name beside the target, then rename.

A crash, Ctrl-C or a full disk therefore never leaves a partial output file behind.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import LipError, LipRuntimeError


def check_writable(path: Path) -> None:
    """Fail early, before hours of work, if `path` cannot be written."""
    parent = path.resolve().parent
    if not parent.is_dir():
        raise LipError(f"cannot write {path}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise LipError(f"cannot write {path}: folder {parent} is not writable (choose another --out)")
    if path.is_dir():
        raise LipError(f"cannot write {path}: it is a folder (give a file name)")


def make_folder(path: Path, what: str) -> None:
    """Create one output folder, refusing (before anything exists) where that cannot work."""
    if not path.parent.is_dir():
        raise LipError(f"cannot create {what} {path}: {path.parent} does not exist")
    check_writable(path)  # a read-only parent: refuse before creating anything
    try:
        path.mkdir()
    except OSError as exc:
        raise LipError(f"cannot create {what} {path}: {exc.strerror or exc}") from None


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` if the block succeeds."""
    path = Path(path)
    check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.resolve().parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, path)
    except OSError as exc:  # the write itself failed: a runtime failure (exit 1), nothing left behind
        tmp_path.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise LipRuntimeError(f"cannot write {path}: the disk is full (free space or choose another "
                                  "--out)") from None
        raise LipRuntimeError(f"cannot write {path}: {exc.strerror or exc} (check the path and "
                              "permissions)") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
