"""What compressive sensing reads and writes besides images (`lip cs`, and `--task cs` of restore and prune):
measurement vectors y.npy, matrices A.npy, and the small operator file that names a seeded operator
instead of storing it; and the one reading of the CS flags both commands share (`check_flags`,
`flag_operator`, `read_measurements`).

Arrays are .npy files read with `allow_pickle=False` after their header has been checked (a real float
dtype, the expected number of dimensions, values present, the file as long as its header says), so a
pickle is never run and a damaged file is one line. A matrix too large to keep is memory-mapped and read
a block of rows at a time (physics/cs.py `MatrixCS`).

operator.yaml (written by `--save-measurements`, read by `--operator FILE`):

    format: lip-cs-operator
    version: 1
    kind: gaussian          # a CS_OPERATORS name
    seed: 0
    m: 1000
    shape: [256, 256, 3]    # H, W, C of the image
    noise: 0.01
    outliers: 20
    outlier_value: 10000.0
    image: [28, 28]         # version 2, optional: the measured image's own H, W, centred in `shape` and
                            # zero-padded to it (a digit measured for a 32x32 generator); the result is cropped
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .. import files, yamlfile
from ..errors import LipError
from ..imageformats import check_file, save_npy
from .cs import (BLOCK_ENTRIES, CS_OPERATORS, CompressedSensing, MatrixCS, check_image_shape, check_values,
                         from_description, make)

FORMAT, VERSION = "lip-cs-operator", 2  # version 2 added the optional `image` key; files without it say 1
IMAGE_KEY = "image"
MAX_OPERATOR_BYTES = 65_536  # an operator file is a few lines
Y_NAME, OPERATOR_NAME = "y.npy", "operator.yaml"
DEFAULTS = {"measurements": 200, "outliers": 0, "noise": 0.01, "outlier_value": 10000.0}  # of simulated CS


def parse_shape(text: str) -> tuple[int, int, int]:
    """`--shape H,W[,C]` as (C, H, W)."""
    try:
        dims = [int(v) for v in text.split(",")]
    except ValueError:
        dims = []
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise LipError(f"--shape {text}: give H,W or H,W,C with positive integers (e.g. 256,256,3)")
    h, w, c = (*dims, 1) if len(dims) == 2 else dims
    try:
        check_image_shape(h, w, c)
    except LipError as exc:
        raise LipError(f"--shape {text}: {exc}") from None
    return c, h, w


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a .npy file, from its header alone (nothing is unpickled)."""
    with open(path, "rb") as f:
        start = f.read(6)
        f.seek(0)
        if start[:2] == b"PK":
            raise LipError(f"cannot read {path}: it is an .npz archive; give one array saved with numpy.save")
        try:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"npy format version {version[0]}.{version[1]}")
            shape, _, dtype = read(f)
        except (ValueError, OSError, SyntaxError) as exc:
            raise LipError(f"cannot read {path}: not a .npy array file ({str(exc).splitlines()[0]}); "
                           "save it with numpy.save") from None
        return shape, dtype, f.tell()


def read_array(path: Path, what: str, ndim: int) -> np.ndarray:
    """A finite real float array of `ndim` dimensions (memory-mapped: a large matrix is not loaded)."""
    check_file(path, f"a .npy file of {what}")
    shape, dtype, offset = _header(path)
    if dtype.hasobject:
        raise LipError(f"cannot read {path}: it holds Python objects (a pickle); lip never unpickles, "
                       f"save {what} as a float array")
    if dtype.kind != "f":
        raise LipError(f"{path}: {what} has dtype {dtype}; give real floats (float32 or float64)")
    if len(shape) != ndim:
        want = "(m,)" if ndim == 1 else "(m, n)"
        raise LipError(f"{path}: {what} has shape {tuple(shape)}; it must be {want}")
    if math.prod(shape) == 0:
        raise LipError(f"{path}: {what} has no values (shape {tuple(shape)})")
    need = offset + math.prod(shape) * dtype.itemsize
    if path.stat().st_size < need:
        raise LipError(f"cannot read {path}: the file is truncated ({path.stat().st_size:,} bytes, its "
                       f"header promises {need:,}); re-export it")
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    rows = max(1, BLOCK_ENTRIES // max(1, math.prod(shape[1:])))
    for start in range(0, shape[0], rows):  # a block at a time: a large matrix is never loaded whole
        if not np.isfinite(arr[start:start + rows]).all():
            raise LipError(f"{path}: {what} has non-finite values (NaN or inf)")
    return arr


def read_operator(path: Path) -> tuple[CompressedSensing, tuple[int, int]]:
    """The seeded operator an operator file describes, and the (H, W) of the image it measured (the operator's
    own unless the file says the image was zero-padded to it)."""
    check_file(path, "an operator file")
    if path.stat().st_size > MAX_OPERATOR_BYTES:
        raise LipError(f"cannot read {path}: {path.stat().st_size:,} bytes is too large for an operator file")
    try:
        data = yamlfile.load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LipError(f"cannot read {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LipError(f"{path}: not a lip operator file (it must start with 'format: {FORMAT}'; "
                       "lip cs --save-measurements writes one)")
    version = data.pop("version", None)
    data.pop("format")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise LipError(f"{path}: version must be a positive integer, not {version!r}")
    if version > VERSION:
        raise LipError(f"{path}: has operator file version {version}; this lip reads up to {VERSION} (upgrade lip)")
    image = data.pop(IMAGE_KEY, None) if version >= 2 else None
    try:
        op = from_description(data)
        return op, op.shape[1:] if image is None else _image_size(image, op.shape)
    except LipError as exc:
        raise LipError(f"{path}: {exc}") from None


def _image_size(image: Any, shape: tuple[int, int, int]) -> tuple[int, int]:
    """The `image` key: [H, W] of positive integers that fit inside the operator's image `shape`."""
    if not (isinstance(image, list) and len(image) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in image)):
        raise LipError(f"{IMAGE_KEY} must be [H, W] of positive integers, not {image!r}")
    if image[0] > shape[1] or image[1] > shape[2]:
        raise LipError(f"{IMAGE_KEY} {image} does not fit in the measured {shape[1]}x{shape[2]}")
    return image[0], image[1]


def read_y(path: Path, m: int | None, source: str) -> torch.Tensor:
    """Measurements y (m,) from a .npy file as a (1, m) float32 tensor; `m` is what the operator from
    `source` expects."""
    y = read_array(path, "the measurements y", 1)
    if m is not None and y.shape[0] != m:
        raise LipError(f"{path} has {y.shape[0]:,} measurements but {source} has m = {m:,}")
    return torch.from_numpy(np.array(y, dtype=np.float32))[None]


def cs_operator(shape: tuple[int, int, int] | None, *, kind: str, matrix: Path | None, m: int, outliers: int,
                noise: float, outlier_value: float, seed: int) -> CompressedSensing:
    """The CS operator for images of `shape` (C, H, W): a given matrix, an operator file (`kind` is then
    its path; the file sets the shape), or the seeded operator `kind` with m rows."""
    if matrix is not None:
        if shape is None:
            raise LipError("--matrix needs --shape H,W[,C]: the image size the matrix measures")
        return MatrixCS(read_array(matrix, "the matrix A", 2), shape, str(matrix), outliers=outliers,
                        noise=noise, outlier_value=outlier_value, seed=seed)
    if is_operator_file(kind):
        return _file_operator(Path(kind), shape)[0]
    if shape is None:
        raise LipError("give the image size with --shape H,W[,C]")
    return make(kind, shape, m, outliers=outliers, noise=noise, outlier_value=outlier_value, seed=seed)


def _file_operator(path: Path, shape: tuple[int, int, int] | None
                   ) -> tuple[CompressedSensing, tuple[int, int]]:
    """`read_operator`, for images of `shape` (None: any)."""
    op, image = read_operator(path)
    if shape is not None and op.shape != shape:
        raise LipError(f"{path} measures {hwc(op.shape)} images but this run's are {hwc(shape)} (the input's "
                       "size; with a generator prior, the generator's: give the one it was measured for)")
    return op, image


def is_operator_file(kind: str) -> bool:
    """`--operator` names a file rather than a kind: a YAML suffix, a path separator, or an existing file
    that is not a kind's name."""
    return kind.endswith((".yaml", ".yml")) or "/" in kind or (kind not in CS_OPERATORS and kind != "auto"
                                                               and Path(kind).is_file())


def hwc(shape: tuple[int, ...]) -> str:
    """(C, H, W) as the H x W x C the user writes."""
    c, h, w = shape
    return f"{h}x{w}x{c}"


def check_folder(folder: Path) -> None:
    """Refuse up front a --save-measurements folder that cannot be written (it is made when missing)."""
    if folder.exists() and not folder.is_dir():  # asked twice: another task may have made it in between
        raise LipError(f"cannot create --save-measurements folder {folder}: it exists and is not a folder")
    if folder.is_dir():
        for name in (Y_NAME, OPERATOR_NAME):
            files.check_writable(folder / name)
    else:
        files.check_writable(folder)


def save_measurements(folder: Path, y: torch.Tensor, op: CompressedSensing,
                      image: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write y.npy and operator.yaml into `folder` (made if missing); return the description written. `image`:
    the measured image's own (H, W) when it was zero-padded to the operator's size (for a generator)."""
    padded = image is not None and tuple(image) != op.shape[1:]
    description = {"format": FORMAT, "version": VERSION if padded else 1, **op.describe(),
                   **({IMAGE_KEY: list(image)} if padded else {})}  # a version-1 reader can read what has no `image`
    if not folder.is_dir():
        files.make_folder(folder, "--save-measurements folder")
    save_npy(folder / Y_NAME, y.detach().to("cpu", torch.float32).numpy()[0])
    text = "# lip cs measurements: y.npy = A x + noise; A rebuilt from this description\n" + \
        yaml.safe_dump(description, sort_keys=False, default_flow_style=None)
    with files.atomic_path(folder / OPERATOR_NAME) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return description


def check_flags(*, simulate: bool, operator: str, matrix: Path | None, shape: str | None,
                given: dict[str, Any]) -> None:
    """Refuse, before any file is read, CS flags that cannot mean anything together. `given` holds the
    DEFAULTS keys as the user gave them (None: not given)."""
    op_file = is_operator_file(operator)
    named = ["--" + k.replace("_", "-") for k in DEFAULTS if given.get(k) is not None]
    if not simulate and named:
        raise LipError(f"{named[0]} describes simulated measurements (add --simulate); measurements from "
                       "files come with their operator")
    if op_file and named:
        raise LipError(f"{named[0]}: the operator file {operator} sets m, noise and outliers")
    if matrix is not None and (operator != "auto" or given.get("measurements") is not None):
        raise LipError("--matrix is the operator and its rows the measurements: drop "
                       + ("--operator" if operator != "auto" else "--measurements"))
    value = given.get("outlier_value")
    check_values(given.get("noise"), value)
    if value is not None and not given.get("outliers"):
        raise LipError(f"--outlier-value {value:g} is the value of corrupted measurements: add --outliers K")
    if shape is not None and simulate:
        raise LipError("--shape is the size of measurements read from files; with --simulate the image gives it")


def flag_operator(shape: tuple[int, int, int] | None, *, simulate: bool, operator: str, matrix: Path | None,
                  given: dict[str, Any], seed: int) -> CompressedSensing:
    """The operator the CS flags name (`given`: the DEFAULTS keys, None = the default). Without --simulate
    nothing is simulated, so no noise level is claimed."""
    v = {k: d if given.get(k) is None else given[k] for k, d in DEFAULTS.items()}
    if not simulate:
        v["noise"] = 0.0
    op = cs_operator(shape, kind=operator, matrix=matrix, m=v["measurements"], outliers=v["outliers"],
                     noise=v["noise"], outlier_value=v["outlier_value"], seed=seed)
    op.noise_known = simulate
    return op


def check_source(path: Path, *, operator: str, matrix: Path | None, command: str) -> None:
    """Refuse, before reading anything, measurements that are not a .npy file or come without their
    operator; `command` names who reads them."""
    if path.suffix.lower() != ".npy":
        raise LipError(f"{path}: without --simulate, {command} reads measurements y from a .npy file "
                       "(to measure an image, add --simulate)")
    if matrix is None and not is_operator_file(operator):
        raise LipError("measurements need the operator that made them: --matrix A.npy --shape H,W[,C], or "
                       "--operator operator.yaml")


def read_measurements(path: Path, shape: tuple[int, int, int] | None, *, operator: str, matrix: Path | None,
                      seed: int, padded: bool = False) -> tuple[CompressedSensing, torch.Tensor, tuple[int, int]]:
    """Measurements y.npy (checked by `check_source`), the operator that made them (a matrix measuring images
    of `shape` (C, H, W), or an operator file), and the (H, W) of the image measured. Only a generator prior
    (`padded`) recovers an image that an operator file says was zero-padded to the operator's size."""
    if matrix is None and is_operator_file(operator):
        op, image = _file_operator(Path(operator), shape)
        if image != op.shape[1:] and not padded:
            raise LipError(f"{operator} measured a {image[1]}x{image[0]} image zero-padded to {op.shape[2]}x"
                           f"{op.shape[1]} for a generator prior: recover it with lip cs --prior generator")
    else:
        op = flag_operator(shape, simulate=False, operator=operator, matrix=matrix, given={}, seed=seed)
        image = op.shape[1:]
    return op, read_y(path, op.m, str(matrix or operator)), image
