"""Every file lip writes goes through here: regular files atomically, anything else written through.

A regular file (or a path that does not exist yet) is written to a temporary name beside it and renamed
over it, so a crash, Ctrl-C or a full disk never leaves a partial output. Renaming over anything else would
destroy it: `-o /dev/null` run as root replaced the system's null device with a regular file. So a
character device, FIFO or socket (/dev/null, /dev/stdout, a named pipe, `>(...)`) and `-` (stdout) receive
the finished bytes directly, and no temporary file is ever made in /dev. A folder or a block device where a
file is expected is refused in one line.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence, TextIO

from .errors import LipError, LipRuntimeError

STDOUT = "-"
_DEVICE_DIRS = ("/dev", "/proc", "/sys")  # no temporary file is ever made below these
_OWN_FD = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$|^/dev/std(out|err)$")


def is_stdout(path: Path | str) -> bool:
    return str(path) == STDOUT


def reaches_stdout(path: Path | str) -> bool:
    """`-`, or a path that is this process's stdout under another name (/dev/stdout, /proc/self/fd/1, the file
    or pipe stdout was redirected to); the null device takes anything, so it never counts."""
    if is_stdout(path):
        return True
    try:
        here, out = os.stat(path), os.fstat(1)
    except (OSError, ValueError):
        return False
    return (here.st_dev, here.st_ino) == (out.st_dev, out.st_ino) and not os.path.samefile(path, os.devnull)


def sha256_of(path: Path | str) -> str:
    """SHA-256 of a file's bytes: how records name a small input file (a mask, a generator) by its content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_distinct(outputs: dict[str, Path | str | None]) -> None:
    """Refuse two of a command's outputs (flag -> path) that name one file: the second write would replace the
    first, and both would be reported as written. Streams (stdout, /dev/null) take both."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None or is_stream(path):
            continue
        where = os.path.realpath(path)
        if where in seen:
            raise LipError(f"{seen[where]} and {flag} both name {path}: give them different files")
        seen[where] = flag


def _under_devices(path: Path) -> bool:
    return any(str(path) == d or str(path).startswith(d + "/") for d in _DEVICE_DIRS)


def is_stream(path: Path | str) -> bool:
    """True when `path` must be written through rather than replaced: stdout, or an existing
    character device, FIFO or socket, or any existing node below /dev, /proc or /sys."""
    if is_stdout(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (
        stat.S_ISREG(mode) and (_under_devices(Path(os.path.abspath(path))) or _under_devices(Path(path).resolve())))


_READS: set[tuple[int, int]] = set()  # (device, inode) of the files this command reads (`reading`)
_MADE: list[Path] = []  # the folders this command created (`tidy`)


@contextmanager
def reading(paths: Iterable[object]) -> Iterator[None]:
    """While a command runs, the existing regular files among `paths` (its inputs) are never written over:
    `check_writable`, which every write of lip passes, refuses them (`lip restore x.png -o x.png` would
    replace the user's only copy of the image with the result, `inspect A --csv A` the artifact)."""
    _READS.clear()
    protect(paths)
    try:
        yield
    finally:
        _READS.clear()


@contextmanager
def tidy() -> Iterator[None]:
    """The folders `make_folder` creates while a command runs are removed if the command fails (an error, a
    signal) and they are still empty: a failed run leaves no output behind, not even a folder."""
    start = len(_MADE)
    try:
        yield
    except (Exception, KeyboardInterrupt):  # not a clean exit (SystemExit)
        _remove_empty(_MADE[start:])
        raise
    finally:
        del _MADE[start:]


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):  # the innermost first
        with suppress(OSError):  # not empty (or gone): kept
            folder.rmdir()


def protect(paths: Iterable[object]) -> None:
    """Count the existing regular files among `paths` as inputs of the running command (`reading`): also
    those it finds as it goes, such as the images of a training folder."""
    for p in paths:
        try:
            st = os.stat(p) if isinstance(p, (str, Path)) and not is_stdout(p) else None
        except (OSError, ValueError):
            continue
        if st is not None and stat.S_ISREG(st.st_mode):
            _READS.add((st.st_dev, st.st_ino))


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the file system of `folder` takes (255 where it does not say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def fitting_name(name: str, extra: int, limit: int = 255) -> str:
    """`name`, or when `name` plus `extra` more bytes would be a longer file name than `limit`, its head and a hash
    of the whole: lip's companions of an output (its temporary file, its state folder) must fit wherever it fits."""
    raw = os.fsencode(name)
    if len(raw) + extra <= limit:
        return name
    head = raw[: max(limit - extra - 17, 1)].decode(errors="ignore")  # whole characters only
    return f"{head}-{hashlib.sha256(raw).hexdigest()[:16]}"


def check_writable(path: Path | str) -> None:
    """Fail early, before hours of work, if `path` cannot be written (or must not be); every write checks
    again."""
    if is_stdout(path):
        return
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    mode = None if st is None else st.st_mode
    if mode is not None and stat.S_ISDIR(mode):
        raise LipError(f"cannot write {path}: it is a folder (give a file name)")
    if st is not None and stat.S_ISREG(mode) and (st.st_dev, st.st_ino) in _READS:
        raise LipError(f"cannot write {path}: it is one of this run's inputs, which lip never overwrites "
                       "(choose another output name)")
    if mode is not None and stat.S_ISBLK(mode):
        raise LipError(f"cannot write {path}: it is a block device (give a file name)")
    if is_stream(path):
        if not os.access(path, os.W_OK):
            raise LipError(f"cannot write {path}: permission denied")
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise LipError(f"cannot write {path}: not a regular file, device or pipe")
    real = path.resolve()
    longest = name_max(real.parent) if real.parent.is_dir() else 255
    if len(os.fsencode(path.name)) > longest:
        raise LipError(f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes long, and a file name "
                       f"may have at most {longest} (choose a shorter one)")
    if _under_devices(real.parent):
        raise LipError(f"cannot write {path}: no such device (lip creates no files in {real.parent})")
    if not real.parent.is_dir():
        raise LipError(f"cannot write {path}: " + (f"{real.parent} is a file, not a folder" if real.parent.exists()
                                                   else f"folder {real.parent} does not exist (create it first)"))
    if not os.access(real.parent, os.W_OK):
        raise LipError(f"cannot write {path}: folder {real.parent} is not writable (choose another --out)")


def make_folder(path: Path, what: str) -> None:
    """Create one output folder, refusing (before anything exists) where that cannot work; an existing
    folder is used as it is."""
    check_folder(path, what)
    if path.is_dir():
        return
    try:
        path.mkdir()
        _MADE.append(path)
    except FileExistsError:  # made meanwhile, e.g. by another task of the same job array: fine
        if not path.is_dir():
            raise LipError(f"cannot create {what} {path}: it exists and is not a folder") from None
    except OSError as exc:
        raise LipError(f"cannot create {what} {path}: {exc.strerror or exc}") from None


def check_folder(path: Path, what: str) -> None:
    """Refuse now an output folder that `make_folder` could not make or write into (it makes it later)."""
    if path.is_dir():
        if not os.access(path, os.W_OK):  # a read-only mount too
            raise LipError(f"cannot write into {what} {path}: the folder is not writable")
        return
    if path.is_symlink():  # a link to nothing: exists() says no, and mkdir would say it exists
        raise LipError(f"cannot create {what} {path}: it is a link to {os.readlink(path)}, which does not exist")
    if path.exists() and not path.is_dir():  # asked twice: another task may have made it in between
        raise LipError(f"cannot create {what} {path}: it exists and is not a folder")
    if not path.parent.is_dir():
        raise LipError(f"cannot create {what} {path}: {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise LipError(f"cannot create {what} {path}: folder {path.parent} is not writable")


def _nearly_full(path: Path) -> bool:
    """Whether the disk `path` is written to has (almost) no room left."""
    try:
        return shutil.disk_usage(path.resolve().parent).free < (1 << 20)
    except OSError:
        return False


def write_failed(path: Path | str, exc: OSError) -> LipRuntimeError:
    """A write that failed after the run: a runtime failure (exit 1) with a hint."""
    if exc.errno == errno.ENOSPC or exc.errno is None and _nearly_full(Path(path)):  # numpy, tifffile: no errno
        return LipRuntimeError(f"cannot write {path}: the disk is full (free space, or write elsewhere)")
    if exc.errno == errno.EPIPE:
        return LipRuntimeError(f"cannot write {path}: the reading end of the pipe was closed")
    return LipRuntimeError(f"cannot write {path}: {exc.strerror or exc} (check the path and permissions)")


def _send(path: Path | str, source: BinaryIO) -> None:
    """Copy finished bytes into stdout, one of our own descriptors, a socket, a device or a FIFO."""
    if is_stdout(path):
        shutil.copyfileobj(source, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    own = _OWN_FD.match(str(path))
    if own:  # our own descriptor, whatever it is (a socket cannot be opened by path)
        fd = int(own.group(1)) if own.group(1) else {"out": 1, "err": 2}[own.group(2)]
        while chunk := source.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        return
    if stat.S_ISSOCK(os.stat(path).st_mode):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendfile(source)
        return
    with open(path, "wb") as sink:  # a FIFO blocks here until its reader opens it
        shutil.copyfileobj(source, sink)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write the whole output into; on success it becomes `path`.

    Regular files: renamed over the target (the target's symlinks followed). Streams (`is_stream`):
    the bytes are copied into the target and the temporary file, made in the system's temp folder, removed.
    """
    check_writable(path)
    stream = is_stream(path)
    folder = tempfile.gettempdir() if stream else Path(path).resolve().parent
    name = Path(str(path)).name or "stdout"
    suffix = ".part" + Path(str(path)).suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{fitting_name(name, 10 + len(suffix))}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if stream:
            with open(tmp_path, "rb") as source:
                _send(path, source)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
            os.replace(tmp_path, Path(path).resolve())
    except OSError as exc:  # the write itself failed: nothing partial is left behind
        raise write_failed(path, exc) from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def checkpointed(path: Path | str) -> Iterator[Path]:
    """The regular file a long run rewrites as it goes (a prune artifact is its own checkpoint).

    For a regular file that is `path` itself. A stream would receive every rewrite (a FIFO's reader would
    get one file per round), so it gets a temporary checkpoint whose final content is sent once, when the
    run ends without an error; an interrupted run then leaves nothing behind to resume from.
    """
    if not is_stream(path):
        yield Path(path)
        return
    check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=".lip-checkpoint.", suffix=".safetensors")
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # absent until the first checkpoint: callers test for existence
    try:
        yield tmp_path
        with open(tmp_path, "rb") as source:
            _send(path, source)
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def sole_writer(path: Path, hint: str, shown: Path | str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a file appended to over hours, created if missing) while the block
    runs: a second run that would append to it at the same time is refused in one line (`hint` says what to do;
    `shown` names what is written, if `path` is only its lock) instead of repeating the first one's work. The
    lock goes with the process, so a killed run leaves none; a file it created and never wrote is removed. File
    systems without locks (some network mounts) run unlocked."""
    created = not path.exists()
    try:
        f = open(path, "ab")
    except OSError as exc:
        raise write_failed(path, exc) from None
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LipError(f"{shown or path} is being written by another lip run right now: {hint}") from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise write_failed(path, exc) from None
        yield
    finally:
        held = os.fstat(f.fileno())
        with suppress(OSError):  # gone or replaced meanwhile (a merge): not ours to remove
            if created and not held.st_size and os.path.samestat(held, os.stat(path)):
                path.unlink()
        f.close()


def open_append(path: Path | str, what: str) -> TextIO:
    """A text file appended to as a run goes (logs): stdout for `-`, never a folder or a block device."""
    try:
        check_writable(path)
    except LipError as exc:
        raise LipError(f"{what}: {exc}") from None
    if is_stdout(path):
        return sys.stdout
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise LipError(f"cannot open {what} {path}: {exc.strerror} (check the folder)") from None


def write_csv(path: Path | str, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Path:
    """A table as CSV, written as every file is (`-`: stdout): `columns` in order, other keys left out,
    None empty, floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape")  # a file name as its bytes
    return Path(path)
