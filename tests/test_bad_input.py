"""The bad-input matrix: every command refuses bad files, names and numbers with one line, no traceback,
and leaves nothing behind (issue 6).

Each case builds its inputs in a fresh folder (the working directory while it runs), snapshots the
folder, runs `lip COMMAND ...` through typer's CliRunner and checks:
  * the exit code: 2 for bad input or usage (refused up front), 1 for a runtime failure (the disk
    filled up while writing);
  * stderr: exactly one line starts with "lip: error: ", it is the last line and names the problem;
    a case refused up front prints that line and nothing else; nothing says "Traceback" or
    "internal error";
  * stdout is empty and the folder's listing is unchanged (no output, no temporary file).
Inputs that look odd but are valid (EXIF rotation, palette, 16-bit, gray+alpha, 1x1) must succeed;
they are checked separately below.

`python tests/test_bad_input.py docs/bad-input.md` runs the matrix and writes the table of cases
and outcomes (the test at the end checks that the table lists every case).
"""
from __future__ import annotations

import errno
import importlib.util
import io
import json
import os
import pickle
import stat
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from safetensors.torch import save as st_save
from torch.nn.utils import prune
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # for `python tests/test_bad_input.py`

from lipcli import artifact, files, gan, nets  # noqa: E402
from lipcli.artifact import ROUND, THETA0  # noqa: E402
from lipcli.cli import app  # noqa: E402
from dip_replica import dip_skip  # noqa: E402
from prune_helpers import NARROW_YAML, make_mask, write_picture  # noqa: E402

SPEC = nets.preset("dip", down=[8] * 5, up=[8] * 5, skip=[4] * 5)  # the net of narrow.yaml
RUN = ["--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--iters", "1"]
BASE = {  # every case's own arguments come after these, so they override them
    "restore": [*RUN, "-o", "out.png"],
    "prune": [*RUN, "--rounds", "1", "-o", "out.safetensors"],
    "transfer": [*RUN, "--baselines", "none", "--out", "res"],
    "cs": ["--device", "cpu", "--threads", "1", "--iters", "1", "-o", "cs.png"],
    "inspect": [],
    "spectra": ["-o", "maps"],
    "import-mask": ["--config", "narrow.yaml", "-o", "out.safetensors"],
    "export-mask": ["-o", "out.pt"],
    "classify": ["--device", "cpu", "--threads", "1"],
}
GAN_PRUNE = ["--threads", "1", "--rounds", "1", "-o", "out.safetensors"]  # lip prune --prior gan reads no DIP flag
NO_CUDA = not torch.cuda.is_available()


# ---------------------------------------------------------------- building bad files

def _tensors(art: artifact.Artifact) -> dict[str, torch.Tensor]:
    t = {ROUND + n: r for n, r in art.prune_round.items()}
    t.update({THETA0 + n: w for n, w in art.theta0.items()})
    return t


def _raw(path: Path, tensors: dict[str, torch.Tensor], meta: Any, **changes: Any) -> Path:
    """Write tensors with `meta` (a dict, updated by `changes`, or a raw metadata string)."""
    text = meta if isinstance(meta, str) else json.dumps({**meta, **changes})
    path.write_bytes(st_save(tensors, metadata={"lip": text}))
    return path


class Boom:
    """Unpickling this creates a folder: a refused pickle must leave the listing unchanged."""

    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return os.mkdir, (self.sentinel,)


def bad_artifact(w: "Work", kind: str, name: str = "bad.safetensors") -> str:
    """A damaged or foreign artifact of the given kind, written to `name`."""
    path = w.dir / name
    good = artifact.load(w.dir / "A.safetensors")
    data = (w.dir / "A.safetensors").read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    tensors = _tensors(good)
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "malformed header":  # same length, not JSON
        path.write_bytes(data[:8] + b"{" + b"x" * (header_len - 1) + data[8 + header_len:])
    elif kind == "absurd header length":
        path.write_bytes((10 ** 15).to_bytes(8, "little") + data[8:])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong dtype":
        name0 = next(iter(good.theta0))
        _raw(path, {**tensors, THETA0 + name0: good.theta0[name0].double()}, good.meta)
    elif kind == "float masks":
        name0 = next(iter(good.prune_round))
        _raw(path, {**tensors, ROUND + name0: good.prune_round[name0].float()}, good.meta)
    elif kind == "missing key":
        _raw(path, {k: v for k, v in tensors.items() if k != THETA0 + "head.weight"}, good.meta)
    elif kind == "extra key":
        _raw(path, {**tensors, THETA0 + "levels.9.down.conv.weight": torch.zeros(3)}, good.meta)
    elif kind == "stray key":
        _raw(path, {**tensors, "optimizer/exp_avg": torch.zeros(3)}, good.meta)
    elif kind == "another net":
        other = artifact.load(make_mask(w.dir / "other.tmp", nets.preset("dip", down=[12] * 5, up=[12] * 5,
                                                                          skip=[4] * 5), rounds=2))
        (w.dir / "other.tmp").unlink()
        _raw(path, _tensors(other), good.meta)
    elif kind == "future version":
        _raw(path, tensors, good.meta, format_version=artifact.NEWEST_VERSION + 1)
    elif kind == "metadata not JSON":
        _raw(path, tensors, "{this is not json")
    elif kind == "no lip metadata":
        path.write_bytes(st_save(tensors))
    elif kind == "wrong format tag":
        _raw(path, tensors, good.meta, format="something-else")
    elif kind == "hostile spec":  # a net far too big to build: must be refused without building it
        _raw(path, tensors, good.meta, spec={**SPEC, "down": [200_000] * 5, "up": [200_000] * 5})
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"boom": Boom(str(w.dir / "UNPICKLED"))}, protocol=2))
    elif kind == "torch.save":
        torch.save({"theta0": {"w": torch.zeros(2)}, "boom": Boom(str(w.dir / "UNPICKLED"))}, path)
    elif kind == "png":
        path.write_bytes((w.dir / "img.png").read_bytes())
    else:
        raise AssertionError(kind)
    return name


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, width: int = 10_000, height: int = 10_000) -> str:
    """A valid all-black 1-bit PNG of 10000x10000 written by hand: ~12 kB, no pixels in memory."""
    row = b"\0" * (1 + (width + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(row * height, 9)) + _png_chunk(b"IEND", b""))
    return path.name


def bad_image(w: "Work", kind: str, name: str | None = None) -> str:
    name = name or f"{kind.replace(' ', '_')}.png"
    path = w.dir / name
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            path, compress_level=0)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "truncated jpeg":
        PILImage.open(w.dir / "img.png").convert("RGB").save(path, format="JPEG")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "text":
        path.write_text("this is not an image\n")
    elif kind == "huge":
        huge_png(path)
    elif kind == "pickled npy":
        np.save(path, np.array([Boom(str(w.dir / "UNPICKLED"))], dtype=object), allow_pickle=True)
    elif kind == "4-D npy":
        np.save(path, np.zeros((2, 16, 16, 3), np.float32))
    elif kind == "npy with NaN":
        a = np.random.default_rng(0).random((16, 16), dtype=np.float32)
        a[3, 4] = np.nan
        np.save(path, a)
    elif kind == "TIFF stack":
        tifffile.imwrite(path, np.zeros((3, 16, 16), np.uint16), photometric="minisblack")
    else:
        raise AssertionError(kind)
    return name


def kspace(w: "Work", kind: str = "good", name: str = "k.npy") -> str:
    """A 64x64 single-coil k-space .npy (complex64), or a bad one of the given kind."""
    path = w.dir / name
    k = np.fft.fftshift(np.fft.fft2(np.random.default_rng(0).random((64, 64)), norm="ortho")).astype(np.complex64)
    if kind == "good":
        np.save(path, k)
    elif kind == "real":
        np.save(path, np.abs(k))
    elif kind == "nan":
        k[3, 5] = np.nan
        np.save(path, k)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"boom": Boom(str(w.dir / "UNPICKLED"))}, protocol=2))
    elif kind == "object array":
        np.save(path, np.array([Boom(str(w.dir / "UNPICKLED"))], dtype=object), allow_pickle=True)
    elif kind == "truncated":
        np.save(path, k)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, k=k)
    elif kind == "volume":
        np.save(path, np.stack([k, k]))
    else:
        raise AssertionError(kind)
    return name


def sampling_mask(w: "Work", shape: tuple[int, ...] = (64,), kind: str = "good", name: str = "m.npy") -> str:
    """A 0/1 column mask (every 4th column), or a bad one of the given kind."""
    m = np.zeros(shape, np.float32)
    m[..., ::4] = 1
    if kind == "values":
        m[..., 1] = 0.5
    elif kind == "none sampled":
        m[:] = 0
    elif kind == "nan":
        m[..., 2] = np.nan
    np.save(w.dir / name, m)
    return name


def mri(w: "Work", k: str = "good", m: str = "good", shape: tuple[int, ...] = (64,)) -> list[str]:
    return ["--task", "mri", kspace(w, k), "--sampling-mask", sampling_mask(w, shape, m)]


def inpaint_mask(w: "Work", size: tuple[int, int], value: int = 255, name: str = "mask.png") -> str:
    keep = np.full(size[::-1], value, np.uint8)
    keep[: size[1] // 2, : size[0] // 3] = 0
    PILImage.fromarray(keep).save(w.dir / name)
    return name


def picture_at(w: "Work", name: str, size: int = 64) -> str:
    """A valid picture at `name` (folders made) below the case's folder."""
    (w.dir / name).parent.mkdir(parents=True, exist_ok=True)
    write_picture(w.dir / name, size, size)
    return name


def white_mask(w: "Work", name: str = "white.png") -> str:
    """An all-white (everything observed) 64x64 inpainting mask."""
    PILImage.fromarray(np.full((64, 64), 255, np.uint8)).save(w.dir / name)
    return name


def readonly(w: "Work", name: str = "ro") -> str:
    """A folder with mode 0555. Root ignores the mode bits; then lip's permission check is made to
    see the folder as a user would (os.access reports it read-only), so the case still runs."""
    folder = w.dir / name
    folder.mkdir()
    folder.chmod(0o555)
    w.cleanup.append(lambda: folder.chmod(0o755))
    if os.access(folder, os.W_OK):
        real, target = os.access, folder.resolve()

        def access(path, mode, *args, **kwargs):
            if mode & os.W_OK and Path(path).resolve() == target:
                return False
            return real(path, mode, *args, **kwargs)

        w.mp.setattr(os, "access", access)
    return name


def folder(w: "Work", name: str = "a-folder") -> str:
    (w.dir / name).mkdir()
    return name


def block_device(w: "Work", name: str = "blockdev") -> str:
    """A block-device node (loop device numbers) in the case's folder: lip must refuse to write into it."""
    os.mknod(w.dir / name, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    return name


def npy(w: "Work", name: str, value: Any) -> str:
    """Write `value` to `name`: an array as .npy (objects pickled inside, as numpy allows), or raw bytes."""
    if isinstance(value, bytes):
        (w.dir / name).write_bytes(value)
    else:
        np.save(w.dir / name, value, allow_pickle=True)
    return name


def npy_bytes(a: np.ndarray) -> bytes:
    """`a` as the bytes of an .npy file, whatever the name they go under (np.save adds .npy to a name)."""
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def matrix(w: "Work", m: int = 50, n: int = 1024, name: str = "A.npy", dtype: Any = np.float64) -> str:
    """A Gaussian (m, n) matrix: n = 1024 measures the bundled generator's 32x32 gray digits."""
    return npy(w, name, np.random.default_rng(0).standard_normal((m, n)).astype(dtype))


def operator_file(w: "Work", text: str | None = None, drop: str = "", **changes: Any) -> str:
    """An operator.yaml for m = 50 Gaussian measurements of a 32x32 gray image (changed, or raw `text`)."""
    fields = {"format": "lip-cs-operator", "version": 1, "kind": "gaussian", "seed": 0, "m": 50,
              "shape": [32, 32, 1], "noise": 0.01, "outliers": 0, **changes}
    lines = [f"{k}: {json.dumps(v)}" for k, v in fields.items() if k != drop]
    (w.dir / "operator.yaml").write_text("\n".join(lines) + "\n" if text is None else text)
    return "operator.yaml"


NOT_ROOT = None if hasattr(os, "geteuid") and os.geteuid() == 0 else "making a device node needs root"


def bundled_generator(w: "Work", name: str = "mnist-g.safetensors") -> str:
    """A copy of the bundled generator artifact in the case's folder (a short path in the messages)."""
    (w.dir / name).write_bytes(gan.GENERATOR.read_bytes())
    return name


def external_generator(w: "Work", kind: str = "good") -> list[str]:
    """`--generator g.safetensors --generator-spec g.yaml`: the bundled G as an external state dict, or a bad one."""
    bundle = artifact.load(gan.GENERATOR)
    weights = {n[2:]: t for n, t in bundle.theta0.items() if n.startswith("g.")}
    spec = dict(bundle.spec["g"])
    if kind == "missing key":
        del weights["head.bias"]
    elif kind == "shape mismatch":
        spec["ngf"] = 16
    elif kind == "unknown field":
        spec["depth"] = 4
    elif kind == "bad value":
        spec["size"] = 30
    elif kind == "not a generator":
        spec = nets.preset("dip")
    (w.dir / "g.safetensors").write_bytes(st_save(weights))
    (w.dir / "g.yaml").write_text("kind: [unclosed\n" if kind == "not yaml" else json.dumps(spec))
    return ["--generator", "g.safetensors", "--generator-spec", "g.yaml"]


def foreign(w: "Work", kind: str, name: str = "their.pt", amount: float = 0.5) -> str:
    """A mask file as the LIP code (torch.nn.utils.prune) or OES (a .npy vector) writes it, or a damaged one."""
    path = w.dir / name
    torch.manual_seed(0)
    other = nets.preset("dip", down=[12] * 5, up=[12] * 5, skip=[4] * 5)
    theirs = dip_skip(other if kind.startswith("another") else SPEC)
    for m in theirs.modules():
        if isinstance(m, torch.nn.Conv2d):
            prune.l1_unstructured(m, "weight", amount=amount)
    state = theirs.state_dict()
    masks = {k: v for k, v in state.items() if k.endswith("_mask")}
    if kind in ("masks", "another net"):
        torch.save(masks, path)
    elif kind == "another state dict":
        torch.save(state, path)
    elif kind == "not binary":
        torch.save({k: 0.5 * v for k, v in masks.items()}, path)
    elif kind == "no masks":
        torch.save({k: v for k, v in state.items() if k not in masks}, path)
    elif kind == "code":
        torch.save({**masks, "boom": Boom(str(w.dir / "UNPICKLED"))}, path)
    elif kind == "object array":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        path.rename(w.dir / name)
    elif kind == "short vector":
        np.save(path, np.ones(100, dtype=bool))
        path.rename(w.dir / name)
    else:
        raise AssertionError(kind)
    return name


def nan_init(w: "Work", name: str = "i.pt") -> str:
    """A state dict of the case's net (as LIP saves its inits) with one NaN weight."""
    torch.manual_seed(0)
    state = dip_skip(SPEC).state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    torch.save(state, w.dir / name)
    return name


GAN_TRAIN = ["--device", "cpu", "--threads", "1", "--epochs", "1", "--size", "8", "--nz", "4", "--ngf", "4",
             "--ndf", "4"]


def picture_folder(w: "Work", *names: str) -> str:
    """A folder of training images (`lip train-generator --data`)."""
    (w.dir / "data").mkdir()
    for name in names:
        write_picture(w.dir / "data" / name, 32, 32, seed=1)
    return "data"


def same_name(w: "Work") -> str:
    """Another picture named like img.png, in a folder of its own."""
    (w.dir / "sub").mkdir()
    write_picture(w.dir / "sub" / "img.png", 32, 32, seed=3)
    return "sub/img.png"


def config_file(w: "Work", text: str, name: str = "c.yaml") -> str:
    (w.dir / name).write_text(text)
    return name


def fifo(w: "Work", name: str = "pipe.png") -> str:
    os.mkfifo(w.dir / name)
    return name


def damaged_rows(w: "Work") -> str:
    """A transfer results folder whose one row holds a score that is not a number."""
    (w.dir / "res").mkdir()
    (w.dir / "res" / "results.jsonl").write_text(json.dumps({"psnr_stopped": "abc"}) + "\n")
    return "res"


def no_matplotlib(w: "Work") -> None:
    """matplotlib as if it were not installed."""
    real = importlib.util.find_spec
    w.mp.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))


def slurm_array(**env: str) -> Callable[["Work"], None]:
    """The variables of a SLURM array task, set as given (others unset)."""
    def patch(w: "Work") -> None:
        for var in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_COUNT",
                    "SLURM_ARRAY_TASK_STEP"):
            w.mp.delenv(var, raising=False)
        for var, value in env.items():
            w.mp.setenv(f"SLURM_ARRAY_TASK_{var}", value)
    return patch


# ---------------------------------------------------------------- simulated full disks

def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_full_at_rename(w: "Work") -> None:
    """The data was written, but the final rename onto the output fails with ENOSPC."""
    def replace(src, dst, *args, **kwargs):
        raise _enospc()
    w.mp.setattr(files.os, "replace", replace)


def disk_full_while_writing(w: "Work") -> None:
    """Every write of an output (image, artifact, CSV) puts half its bytes on disk, then ENOSPC."""
    real_save = PILImage.Image.save

    def save(self, fp, format=None, **params):
        buf = io.BytesIO()
        real_save(self, buf, format=format, **params)
        Path(fp).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise _enospc()

    def write_bytes(self, data):
        with open(self, "wb") as f:
            f.write(bytes(data)[: len(data) // 2])
        raise _enospc()

    def write_text(self, data, encoding=None, errors=None, newline=None):
        return write_bytes(self, data.encode(encoding or "utf-8"))

    w.mp.setattr(PILImage.Image, "save", save)
    w.mp.setattr(Path, "write_bytes", write_bytes)
    w.mp.setattr(Path, "write_text", write_text)


# ---------------------------------------------------------------- the matrix

@dataclass
class Work:
    dir: Path
    mp: pytest.MonkeyPatch
    cleanup: list


@dataclass(frozen=True)
class Case:
    id: str
    command: str
    build: Callable[[Work], list]  # creates its files, returns the command's arguments
    needles: tuple[str, ...]  # fragments the error line must contain
    code: int = 2
    patch: Callable[[Work], None] | None = None  # applied after the listing snapshot's files exist
    skip: str | None = None
    base: list[str] | None = None  # instead of BASE[command]
    kept: str | None = None  # what a failed run keeps on purpose (a fit's saved state), checked, not a leftover


CASES: list[Case] = []


def case(command: str, id: str, build: Callable[[Work], list], *needles: str, code: int = 2,
         patch: Callable[[Work], None] | None = None, skip: str | None = None, base: list[str] | None = None,
         kept: str | None = None) -> None:
    CASES.append(Case(f"{command}: {id}", command, build, needles, code, patch, skip, base, kept))


CUDA_SKIP = None if NO_CUDA else "this machine has CUDA"

# --- lip restore: input images
case("restore", "missing input", lambda w: ["nope.png"], "nope.png", "no such file")
case("restore", "empty input", lambda w: [bad_image(w, "empty")], "empty.png", "empty")
case("restore", "truncated PNG", lambda w: [bad_image(w, "truncated")], "truncated or corrupt")
case("restore", "truncated JPEG", lambda w: [bad_image(w, "truncated jpeg", "cut.jpg")], "cut.jpg",
     "truncated or corrupt")
case("restore", "text file named .png", lambda w: [bad_image(w, "text")], "not an image")
def several_images(w: "Work", name: str) -> str:
    """A file holding three images of one size: TIFF pages (16-bit, read by tifffile) or GIF frames (Pillow)."""
    planes = [np.full((24, 24), 1000 * (k + 1), np.uint16) for k in range(3)]
    if name.endswith(".tif"):
        with tifffile.TiffWriter(w.dir / name) as tif:
            for plane in planes:
                tif.write(plane)
    else:
        frames = [PILImage.fromarray((plane // 256).astype(np.uint8)) for plane in planes]
        frames[0].save(w.dir / name, save_all=True, append_images=frames[1:])
    return name


case("restore", "multi-page TIFF", lambda w: [several_images(w, "pages.tif")], "holds 3 images")
case("restore", "animated GIF", lambda w: [several_images(w, "anim.gif")], "holds 3 images")
case("restore", "pickled .npy", lambda w: [bad_image(w, "pickled npy", "obj.npy")], "obj.npy", "never unpickles")
case("restore", ".npy of 4 dimensions", lambda w: [bad_image(w, "4-D npy", "cube.npy")], "(2, 16, 16, 3)",
     "HxW or HxWxC")
case("restore", ".npy with NaN", lambda w: [bad_image(w, "npy with NaN", "nan.npy")], "1 NaN")
case("restore", "TIFF stack", lambda w: [bad_image(w, "TIFF stack", "stack.tif")], "stack", "one plane")
case("restore", "a folder as input", lambda w: [(w.dir / "folder.png").mkdir() or "folder.png"],
     "folder.png", "it is a folder")
case("restore", "10000x10000 image", lambda w: [bad_image(w, "huge")], "10000x10000", "GiB of memory",
     "resize or crop")
case("restore", "inpaint mask of another size",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask", inpaint_mask(w, (32, 48))],
     "mask.png", "same size")
case("restore", "inpaint mask not binary",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask", inpaint_mask(w, (64, 64), value=200)],
     "black-and-white")
case("restore", "inpaint mask with coloured pixels",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask",
                PILImage.fromarray(np.dstack([np.full((64, 64), 255, np.uint8), np.zeros((64, 64), np.uint8),
                                              np.full((64, 64), 255, np.uint8)])).save(w.dir / "rgb.png") or "rgb.png"],
     "mask rgb.png has 4096 coloured pixels", "black-and-white")
case("restore", "inpaint mask missing", lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask",
                                                   "nomask.png"], "nomask.png")
case("restore", "inpaint mask all black",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask", inpaint_mask(w, (64, 64), value=0)],
     "mask.png", "observes no pixel")
case("restore", "--keep beside --inpaint-mask",
     lambda w: ["img.png", "--task", "inpaint", "--simulate", "--keep", "0.3", "--inpaint-mask",
                inpaint_mask(w, (64, 64))], "--keep", "give one of them")
# --- lip restore: flags the task would ignore
case("restore", "--sigma on a real image", lambda w: ["img.png", "--sigma", "15"], "--sigma", "--simulate",
     "estimated")
case("restore", "--scale on denoising", lambda w: ["img.png", "--scale", "2"], "--scale applies to --task sr")
case("restore", "--inpaint-mask on denoising", lambda w: ["img.png", "--inpaint-mask", inpaint_mask(w, (64, 64))],
     "--inpaint-mask applies to --task inpaint")
case("restore", "--measurements on denoising", lambda w: ["img.png", "-m", "100"],
     "--measurements applies to --task cs")
case("restore", "--acceleration on a real k-space", lambda w: [*mri(w), "--acceleration", "8"], "--acceleration",
     "--sampling-mask")
case("prune", "--sigma on a real image", lambda w: ["img.png", "--sigma", "15"], "--sigma", "--simulate")
# --- outputs that are inputs
case("restore", "output is the input", lambda w: ["img.png", "-o", "img.png"], "img.png",
     "one of this run's inputs")
case("restore", "output folder holds the inputs",
     lambda w: [picture_at(w, "in/a.png"), "img.png", "-o", "in/"],
     "in/a.png", "one of this run's inputs")
case("restore", "output is the --clean reference",
     lambda w: ["img.png", "--clean", picture_at(w, "ref.png"), "-o", "ref.png"],
     "ref.png", "one of this run's inputs")
case("prune", "artifact written over the input", lambda w: ["img.png", "--simulate", "-o", "img.png"],
     "one of this run's inputs")
case("prune", "--rewind with a one-shot method", lambda w: ["img.png", "--simulate", "--method", "snip", "--rewind",
                                                            "0.1"], "--rewind", "only --method imp")
case("prune", "a channel score without --granularity channel", lambda w: ["img.png", "--simulate", "--method", "l1"],
     "add --granularity channel")
case("cs", "--restarts with --prior dip", lambda w: ["img.png", "--simulate", "--prior", "dip", "--restarts", "3"],
     "--restarts", "only --prior generator")
case("prune", "--rounds beside --target-sparsity",
     lambda w: ["img.png", "--simulate", "--rounds", "3", "--target-sparsity", "0.9"], "--rounds 3 would be ignored")
case("prune", "artifact not named .safetensors", lambda w: ["img.png", "--simulate", "-o", "mask.txt"],
     ".safetensors")
case("cs", "output is the input", lambda w: ["img.png", "--simulate", "--prior", "dip", "-o", "img.png"],
     "one of this run's inputs")
# --- stdout shared
case("restore", "-o - with --log -", lambda w: ["img.png", "-o", "-", "--log", "-"], "--log - and -o -")
case("restore", "--json with --log -", lambda w: ["img.png", "--json", "--log", "-"], "--log - and --json")
case("restore", "PNG named .npy", lambda w: [npy(w, "png.npy", (w.dir / "img.png").read_bytes())],
     "png.npy", "a PNG image")
case("restore", "unknown sample", lambda w: ["sample:nope"], "no such sample", "sample:house")
case("restore", "inpaint mask is not an image",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask", bad_image(w, "text")], "not an image")
# --- lip restore: MRI k-space and sampling masks
for kind, needles in [("real", ("holds real float32 values", "complex")), ("nan", ("NaN or infinite",)),
                      ("empty", ("the file is empty",)), ("pickle", ("pickled", "never unpickles")),
                      ("object array", ("pickled", "never unpickles")), ("truncated", ("truncated or corrupt",)),
                      ("npz", (".npz archive",)), ("volume", ("shape (2, 64, 64)", "single-coil"))]:
    case("restore", f"k-space: {kind}", lambda w, k=kind: mri(w, k), "k.npy", *needles)
case("restore", "k-space missing", lambda w: ["--task", "mri", "nope.npy", "--sampling-mask", sampling_mask(w)],
     "nope.npy", "no such file")
case("restore", "k-space: an image without --simulate", lambda w: ["--task", "mri", "img.png"], "add --simulate")
case("restore", "k-space without --sampling-mask", lambda w: ["--task", "mri", kspace(w)], "needs --sampling-mask")
case("restore", "sampling mask of another shape", lambda w: mri(w, shape=(65,)), "m.npy", "shape (65,)", "(64, 64)")
case("restore", "sampling mask (H, W) transposed", lambda w: mri(w, shape=(64, 32)), "shape (64, 32)")
case("restore", "sampling mask not 0/1", lambda w: mri(w, m="values"), "other than 0 and 1")
case("restore", "sampling mask samples nothing", lambda w: mri(w, m="none sampled"), "samples nothing")
case("restore", "sampling mask with NaN", lambda w: mri(w, m="nan"), "m.npy", "NaN")
case("restore", "a PNG as the sampling mask", lambda w: ["--task", "mri", kspace(w), "--sampling-mask", "img.png"],
     "img.png: not a .npy array file; it is a PNG image, and here lip reads an array")
case("restore", "a PNG named .npy as the sampling mask",
     lambda w: ["--task", "mri", kspace(w), "--sampling-mask",
                (w.dir / "m.npy").write_bytes((w.dir / "img.png").read_bytes()) and "m.npy"],
     "m.npy: not a .npy array file; it is a PNG image: give it its own suffix")
case("restore", "an .npy array named .png", lambda w: [npy(w, "a.png", npy_bytes(np.zeros((8, 8), np.float32)))],
     "a.png: it is a .npy array: give it the .npy suffix")
case("restore", "sampling mask missing", lambda w: ["--task", "mri", kspace(w), "--sampling-mask", "none.npy"],
     "none.npy", "no such file")
case("restore", "sampling mask pickled",
     lambda w: ["--task", "mri", kspace(w), "--sampling-mask", kspace(w, "pickle", "m.npy")], "m.npy", "pickled")
case("restore", "--save-kspace without --simulate", lambda w: [*mri(w), "--save-kspace", "ks"], "--save-kspace")
case("restore", "--snapshots into a file", lambda w: ["img.png", "--snapshots", "5", "narrow.yaml"],
     "snapshot folder narrow.yaml", "not a folder")
case("restore", "--snapshots over an input", lambda w: [
     "img.png", "--iters", "10", "--snapshots", "5", "snaps", "--clean", picture_at(w, "snaps/img_10.png")],
     "snaps/img_10.png", "one of this run's inputs")
case("restore", "--snapshots 0", lambda w: ["img.png", "--snapshots", "0", "snaps"], "--snapshots 0", "at least 1")
case("restore", "--snapshots with --ensemble", lambda w: ["img.png", "--snapshots", "5", "snaps", "--ensemble", "2"],
     "drop --ensemble")
case("restore", "unknown --mask-type", lambda w: ["img.png", "--task", "mri", "--simulate", "--mask-type", "spiral"],
     "unknown --mask-type 'spiral'")
case("restore", "--acceleration below 1", lambda w: ["img.png", "--task", "mri", "--simulate", "--acceleration",
                                                     "0.5"], "--acceleration 0.5")
case("restore", "--headroom below 1", lambda w: [*mri(w), "--headroom", "0.9"], "--headroom",
     "greater than or equal to 1")
case("restore", "--headroom above 100", lambda w: [*mri(w), "--headroom", "1e40"], "--headroom 1e+40",
     "from 1 to 100")
case("restore", "--reg-noise-every without jitter", lambda w: ["img.png", "--reg-noise", "0", "--reg-noise-every", "5"],
     "--reg-noise-every 5", "give --reg-noise")
case("restore", "--headroom on denoising", lambda w: ["img.png", "--headroom", "2"], "--headroom applies to --task mri")
case("restore", "--center-fraction above 1/acceleration",
     lambda w: ["img.png", "--task", "mri", "--simulate", "--acceleration", "8", "--center-fraction", "0.3"],
     "--center-fraction 0.3")
# --- lip restore: mask artifacts
for kind, needles in [("truncated", ("not a valid safetensors",)),
                      ("malformed header", ("not a valid safetensors",)),
                      ("absurd header length", ("not a valid safetensors",)),
                      ("wrong dtype", ("dtype", "float32")),
                      ("missing key", ("missing head.weight",)),
                      ("extra key", ("unknown parameter",)),
                      ("another net", ("has shape", "the net needs")),
                      ("future version", (f"format version {artifact.NEWEST_VERSION + 1}", "upgrade lip")),
                      ("metadata not JSON", ("not valid JSON",)),
                      ("no lip metadata", ("no lip metadata",)),
                      ("hostile spec", ("has shape",)),
                      ("pickle", ("pickle", "never unpickles"))]:
    case("restore", f"--mask artifact: {kind}", lambda w, k=kind: ["img.png", "--mask", bad_artifact(w, k)],
         "bad.safetensors", *needles)
case("restore", "--mask artifact missing", lambda w: ["img.png", "--mask", "none.safetensors"],
     "no such artifact")
case("restore", "--round not in the artifact", lambda w: ["img.png", "--mask", "A.safetensors", "--round", "9"],
     "round 9")
# --- lip restore: names
case("restore", "--compact with --dense", lambda w: ["img.png", "--dense", "--compact"], "--compact needs a masked net")
case("restore", "--round past the default ticket's", lambda w: ["img.png", "--config", "fast", "--round", "9"],
     "the default prior, library mask dip-channel-house: round 9")
case("restore", "--round of the dense net", lambda w: ["img.png", "--dense", "--round", "1"], "--round",
     "add --mask")
case("restore", "unknown task", lambda w: ["img.png", "--task", "deblur"], "unknown task 'deblur'")
case("restore", "unknown device", lambda w: ["img.png", "--device", "banana"], "unknown device 'banana'")
case("restore", "--device cuda without a GPU", lambda w: ["img.png", "--device", "cuda"], "no CUDA GPU",
     skip=CUDA_SKIP)
case("restore", "--device cuda:7 without a GPU", lambda w: ["img.png", "--device", "cuda:7"], "cuda:7",
     skip=CUDA_SKIP)
case("restore", "unknown precision", lambda w: ["img.png", "--precision", "fp64"], "--precision")
case("restore", "unknown prior", lambda w: ["img.png", "--prior", "gan"], "unknown --prior")
case("restore", "--dd-k without the deep decoder", lambda w: ["img.png", "--net", "dip", "--dd-k", "300"],
     "--dd-k 300 sets the deep decoder's width")
case("restore", "unknown --init", lambda w: ["img.png", "--mask", "A.safetensors", "--init", "warm"],
     "unknown --init")
case("restore", "unknown net preset", lambda w: ["img.png", "--net", "resnet"], "unknown net preset 'resnet'")
case("restore", "unknown option", lambda w: ["img.png", "--sigmaa", "25"], "No such option", "lip restore --help")
case("restore", "config file missing", lambda w: ["img.png", "--config", "nothere.yaml"], "not found")
case("restore", "config file not YAML",
     lambda w: [(w.dir / "bad.yaml").write_text("net: [unclosed\n") and "img.png", "--config", "bad.yaml"],
     "not readable YAML")
case("restore", "config file with an unknown key",
     lambda w: [(w.dir / "k.yaml").write_text("iterations: 5\n") and "img.png", "--config", "k.yaml"],
     "unknown key 'iterations'")
case("restore", "config file with a text learning rate",
     lambda w: [(w.dir / "lr.yaml").write_text("lr: abc\n") and "img.png", "--config", "lr.yaml"], "--lr 'abc'")
case("restore", "config file with a 1-iteration early-stop window",
     lambda w: [(w.dir / "w.yaml").write_text("es_window: 1\n") and "img.png", "--config", "w.yaml"],
     "--es-window 1", ">= 2")
case("restore", "config file with a fractional patience",
     lambda w: [(w.dir / "p.yaml").write_text("es_patience: 2.5\n") and "img.png", "--config", "p.yaml"],
     "--es-patience 2.5", "whole number")
# --- lip restore: numbers
case("restore", "--scale 3", lambda w: ["img.png", "--task", "sr", "--scale", "3"], "--scale 3")
case("restore", "negative --sigma", lambda w: ["img.png", "--simulate", "--sigma", "-5"], "--sigma -5")
case("restore", "--sigma 300", lambda w: ["img.png", "--simulate", "--sigma", "300"], "--sigma 300")
case("restore", "zero --iters", lambda w: ["img.png", "--iters", "0"], "'--iters'")
case("restore", "--iters not a number", lambda w: ["img.png", "--iters", "many"], "'--iters'")
case("restore", "--keep 1.5", lambda w: ["img.png", "--simulate", "--task", "inpaint", "--keep", "1.5"],
     "--keep 1.5")
case("restore", "--sparsity 1", lambda w: ["img.png", "--mask", "A.safetensors", "--sparsity", "1"],
     "--sparsity 1.0")
case("restore", "--lr 0", lambda w: ["img.png", "--lr", "0"], "--lr")
case("restore", "--ema 1", lambda w: ["img.png", "--ema", "1"], "--ema")
case("restore", "negative --sgld", lambda w: ["img.png", "--sgld", "-1"], "--sgld -1")
case("restore", "--sgld nan in a config file",
     lambda w: [(w.dir / "s.yaml").write_text("sgld: .nan\n") and "img.png", "--config", "s.yaml"], "--sgld nan")
case("restore", "--threads 0", lambda w: ["img.png", "--threads", "0"], "--threads 0")
case("restore", "simulated SR of an odd size",
     lambda w: [write_picture(w.dir / "odd.png", 37, 53).name, "--simulate", "--task", "sr", "--scale", "4"],
     "divisible by 4")
# --- lip restore: outputs
case("restore", "output in a missing folder", lambda w: ["img.png", "-o", "missing/out.png"], "does not exist")
case("restore", "output in a read-only folder", lambda w: ["img.png", "-o", f"{readonly(w)}/out.png"],
     "not writable")
case("restore", "output folder inside a read-only folder",
     lambda w: ["img.png", write_picture(w.dir / "img2.png", 32, 32).name, "-o", f"{readonly(w)}/outs"],
     "not writable")
case("restore", "output without a suffix (a folder meant?)", lambda w: ["img.png", "-o", "results"],
     "give it an image type suffix")
case("cs", "output without a suffix", lambda w: ["mnist:0", "--simulate", "-o", "csdir/"], "image type suffix")
case("restore", "two inputs whose default outputs coincide",
     lambda w: ["img.png", picture_at(w, "img.jpg")], "would both be written", base=RUN)
case("restore", "output with an unknown suffix", lambda w: ["img.png", "-o", "out.webq"], "unknown image type",
     code=2)
case("restore", "--log in a missing folder", lambda w: ["img.png", "--log", "missing/log.jsonl"], "--log")
case("restore", "--log is a folder", lambda w: ["img.png", "--log", folder(w)], "--log", "it is a folder")
case("restore", "output is a block device", lambda w: ["img.png", "-o", block_device(w)], "block device",
     skip=NOT_ROOT)
case("restore", "-o - (stdout) with --json", lambda w: ["img.png", "-o", "-", "--json"], "--json", "--log")
case("restore", "-o - with several inputs",
     lambda w: ["img.png", write_picture(w.dir / "img2.png", 32, 32).name, "-o", "-"], "one input")
case("restore", "output below /dev that does not exist", lambda w: ["img.png", "-o", "/dev/lip-no-such.png"],
     "no such device")
case("restore", "disk full at the final rename", lambda w: ["img.png"], "out.png", "disk is full", code=1,
     patch=disk_full_at_rename)  # the fit's state could not be saved either: nothing is kept
case("restore", "disk full while writing the PNG", lambda w: ["img.png", "--resume-every", "0.001"], "out.png",
     "disk is full", code=1, patch=disk_full_while_writing, kept="out.png.lip-resume")  # the state saved at the end

# --- lip prune
case("prune", "missing image", lambda w: ["nope.png", "--simulate"], "no such file")
case("prune", "real k-space", lambda w: mri(w, "real"), "holds real float32 values")
case("prune", "text file named .png", lambda w: [bad_image(w, "text"), "--simulate"], "not an image")
case("prune", "10000x10000 image", lambda w: [bad_image(w, "huge"), "--simulate"], "10000x10000", "GiB")
case("prune", "--shared-input with images of two sizes",
     lambda w: ["img.png", write_picture(w.dir / "wide.png", 64, 96).name, "--simulate", "--shared-input"],
     "--shared-input", "64x64 and 96x64", "crop them")
case("prune", "unknown method", lambda w: ["img.png", "--simulate", "--method", "lottery"], "unknown --method")
case("prune", "unknown prior", lambda w: ["img.png", "--simulate", "--prior", "vae"], "unknown --prior")
case("prune", "unknown scope", lambda w: ["img.png", "--simulate", "--scope", "bn"], "unknown --scope")
case("prune", "--target-sparsity 1", lambda w: ["img.png", "--simulate", "--target-sparsity", "1"],
     "--target-sparsity 1.0")
case("prune", "--rate 1", lambda w: ["img.png", "--simulate", "--rate", "1"], "--rate 1.0")
case("prune", "zero --rounds", lambda w: ["img.png", "--simulate", "--rounds", "0"], "'--rounds'")
case("prune", "zero --iters", lambda w: ["img.png", "--simulate", "--iters", "0"], "'--iters'")
case("prune", "--device cuda without a GPU", lambda w: ["img.png", "--simulate", "--device", "cuda"],
     "no CUDA GPU", skip=CUDA_SKIP)
RESUMED = [*RUN, "--rounds", "1"]  # no -o: a resumed search writes the artifact it continues
case("prune", "--resume a pickle", lambda w: ["img.png", "--simulate", "--resume", bad_artifact(w, "pickle")],
     "never unpickles", base=RESUMED)
case("prune", "--resume a truncated artifact",
     lambda w: ["img.png", "--simulate", "--resume", bad_artifact(w, "truncated")], "not a valid safetensors",
     base=RESUMED)
case("prune", "--resume with another -o",
     lambda w: ["img.png", "--simulate", "--resume", "A.safetensors", "-o", "B.safetensors"], "drop it")
case("prune", "--like a mask of another net width",
     lambda w: ["img.png", "--simulate", "--method", "random-layerwise", "--like", "A.safetensors", "--net", "dip-w16"],
     "--like A.safetensors masks another net (levels.0.down.conv.weight: (8, 32, 3, 3), here (16, 32, 3, 3))",
     base=[*RUN, "-o", "out.safetensors"])
case("prune", "--like an artifact of a future version",
     lambda w: ["img.png", "--simulate", "--method", "random-layerwise", "--like", bad_artifact(w, "future version")],
     "upgrade lip", base=[*RUN, "-o", "out.safetensors"])  # no --rounds: it copies --like's
case("prune", "negative --sgld", lambda w: ["img.png", "--simulate", "--sgld", "-0.5"], "--sgld -0.5")
case("prune", "--sgld with a method that trains no weights",
     lambda w: ["img.png", "--simulate", "--method", "oes", "--sgld", "1"], "--sgld", "--method oes")
case("prune", "--early-bird above 1", lambda w: ["img.png", "--simulate", "--early-bird", "2"], "'--early-bird'")
case("prune", "output in a read-only folder",
     lambda w: ["img.png", "--simulate", "-o", f"{readonly(w)}/x.safetensors"], "not writable")
case("prune", "output is a folder", lambda w: ["img.png", "--simulate", "-o", folder(w)], "it is a folder")
case("prune", "output is a block device", lambda w: ["img.png", "--simulate", "-o", block_device(w)],
     "block device", skip=NOT_ROOT)
case("prune", "disk full while saving the artifact", lambda w: ["img.png", "--simulate"], "out.safetensors",
     "disk is full", code=1, patch=disk_full_while_writing)

# --- lip transfer
for kind, needles in [("truncated", ("not a valid safetensors",)), ("future version", ("upgrade lip",)),
                      ("malformed header", ("not a valid safetensors",)), ("torch.save", ("never unpickles",))]:
    case("transfer", f"--mask artifact: {kind}", lambda w, k=kind: ["img.png", "--mask", bad_artifact(w, k)],
         *needles)
case("transfer", "missing image", lambda w: ["nope.png", "--mask", "A.safetensors"], "no such file")
case("transfer", "--sigma for an SR grid", lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "sr4",
                                                    "--sigma", "10"], "--sigma", "no task of the grid")
case("transfer", "--inpaint-mask for a denoising grid",
     lambda w: ["img.png", "--mask", "A.safetensors", "--inpaint-mask", inpaint_mask(w, (64, 64))],
     "--inpaint-mask", "no task of the grid")
case("transfer", "empty image", lambda w: [bad_image(w, "empty"), "--mask", "A.safetensors"], "empty")
case("transfer", "10000x10000 image", lambda w: [bad_image(w, "huge"), "--mask", "A.safetensors"], "GiB")
case("transfer", "unknown task", lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "sr3"],
     "unknown task 'sr3'")
case("transfer", "mri without the acceleration", lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "mri"],
     "unknown task 'mri'", "mri4 or mri8")
case("transfer", "unknown experiment", lambda w: ["img.png", "--mask", "A.safetensors", "--experiment", "x"],
     "unknown --experiment")
case("transfer", "zero --iters", lambda w: ["img.png", "--mask", "A.safetensors", "--iters", "0"], "--iters 0")
case("transfer", "negative --sigma", lambda w: ["img.png", "--mask", "A.safetensors", "--sigma", "-5"],
     "--sigma -5")
case("transfer", "negative --sgld", lambda w: ["img.png", "--mask", "A.safetensors", "--sgld", "-2"],
     "--sgld -2")
case("transfer", "--sparsities 1", lambda w: ["img.png", "--mask", "A.safetensors", "--sparsities", "1"],
     "--sparsities")
case("transfer", "--device cuda without a GPU", lambda w: ["img.png", "--mask", "A.safetensors", "--device",
                                                           "cuda"], "no CUDA GPU", skip=CUDA_SKIP)
case("transfer", "--device list with an empty entry", lambda w: ["img.png", "--mask", "A.safetensors", "--device",
                                                                "cpu,"], "empty entry")
case("transfer", "--device list with --shard", lambda w: ["img.png", "--mask", "A.safetensors", "--device", "cpu,cpu",
                                                          "--shard", "0/2"], "drop --shard")
case("transfer", "--device list with an unknown device",
     lambda w: ["img.png", "--mask", "A.safetensors", "--device", "cpu,banana"], "unknown device 'banana'")
case("transfer", "inpaint mask of another size",
     lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "inpaint", "--inpaint-mask",
                inpaint_mask(w, (32, 48))], "same size")
case("transfer", "results folder inside a read-only folder",
     lambda w: ["img.png", "--mask", "A.safetensors", "--out", f"{readonly(w)}/res"], "not writable")
case("transfer", "--shard auto outside a SLURM job array", lambda w: ["img.png", "--mask", "A.safetensors",
                                                                     "--shard", "auto"],
     "--shard auto", "SLURM_ARRAY_TASK_ID is not set", patch=slurm_array())
case("transfer", "--shard auto in a stepped SLURM array", lambda w: ["img.png", "--mask", "A.safetensors",
                                                                   "--shard", "auto"],
     "not consecutive", patch=slurm_array(ID="2", MIN="0", MAX="6", COUNT="4", STEP="2"))
case("transfer", "--shard auto with a task outside its array", lambda w: ["img.png", "--mask", "A.safetensors",
                                                                        "--shard", "auto"],
     "outside the array 0..3", patch=slurm_array(ID="7", MIN="0", COUNT="4"))
case("transfer", "unknown --plot-format", lambda w: ["img.png", "--mask", "A.safetensors", "--plot-format", "eps"],
     "--plot-format 'eps'")
case("transfer", "--plot-format pdf without matplotlib",
     lambda w: ["img.png", "--mask", "A.safetensors", "--plot-format", "png,pdf"], "need matplotlib",
     "pip install 'matplotlib>=3.7'", patch=no_matplotlib)

# --- lip cs
case("cs", "missing image", lambda w: ["nope.png", "--simulate"], "no such file")
case("cs", "text file named .png", lambda w: [bad_image(w, "text"), "--simulate"], "not an image")
case("cs", "10000x10000 image", lambda w: [bad_image(w, "huge"), "--simulate"], "10000x10000")
case("cs", "image of another size than the generator", lambda w: ["img.png", "--simulate"], "32x32")
case("cs", "unknown task", lambda w: ["mnist:0", "--simulate", "--task", "deblur"], "unknown --task")
case("cs", "unknown prior", lambda w: ["mnist:0", "--simulate", "--prior", "vae"], "unknown --prior")
case("cs", "unknown operator", lambda w: ["mnist:0", "--simulate", "--operator", "fourier"], "unknown --operator")
case("cs", "test digit out of range", lambda w: ["mnist:9999", "--simulate"], "mnist:0 ..")
case("cs", "measurements without --simulate", lambda w: ["mnist:0"], "--simulate")
case("cs", "zero measurements", lambda w: ["mnist:0", "--simulate", "-m", "0"], "'--measurements'")
case("cs", "negative noise", lambda w: ["mnist:0", "--simulate", "--noise", "-1"], "--noise")
case("cs", "negative --lr", lambda w: ["mnist:0", "--simulate", "--lr", "-1"], "--lr")
case("cs", "--device cuda without a GPU", lambda w: ["mnist:0", "--simulate", "--device", "cuda"], "no CUDA GPU",
     skip=CUDA_SKIP)
case("cs", "--generator that is a pickle", lambda w: ["mnist:0", "--simulate", "--generator",
                                                      bad_artifact(w, "torch.save")], "never unpickles")
case("cs", "--generator truncated", lambda w: ["mnist:0", "--simulate", "--generator",
                                               bad_artifact(w, "truncated")], "not a valid safetensors")
case("cs", "--generator that is a DIP mask", lambda w: ["mnist:0", "--simulate", "--generator", "A.safetensors"],
     "not a generator")
case("cs", "inpaint mask not binary",
     lambda w: ["mnist:0", "--simulate", "--task", "inpaint", "--inpaint-mask", inpaint_mask(w, (32, 32), 100)],
     "black-and-white")
case("cs", "--keep beside --inpaint-mask",
     lambda w: ["mnist:0", "--simulate", "--task", "inpaint", "--keep", "0.5", "--inpaint-mask",
                inpaint_mask(w, (32, 32))], "--inpaint-mask replaces")
case("cs", "--keep on a real image",
     lambda w: ["img.png", "--task", "inpaint", "--prior", "dip", "--keep", "0.5"], "drop --keep")
case("cs", "--keep with --task cs", lambda w: ["mnist:0", "--simulate", "--keep", "0.5"], "--keep is for --task inpaint")
case("cs", "output in a missing folder", lambda w: ["mnist:0", "--simulate", "-o", "missing/x.png"],
     "does not exist")
case("cs", "unknown solver", lambda w: ["mnist:0", "--simulate", "--solver", "l1"], "unknown --solver")
# --- lip cs: an external generator (a safetensors state dict + its spec) and the weights of a round
case("cs", "external generator missing a tensor", lambda w: ["mnist:0", "--simulate", *external_generator(w, "missing key")],
     "g.safetensors", "missing head.bias")
case("cs", "external generator of another width than its spec",
     lambda w: ["mnist:0", "--simulate", *external_generator(w, "shape mismatch")], "has shape", "the spec needs")
case("cs", "generator spec with an unknown field",
     lambda w: ["mnist:0", "--simulate", *external_generator(w, "unknown field")], "g.yaml", "unknown field depth")
case("cs", "generator spec with an impossible size",
     lambda w: ["mnist:0", "--simulate", *external_generator(w, "bad value")], "g.yaml", "not a valid generator spec")
case("cs", "generator spec of a DIP", lambda w: ["mnist:0", "--simulate", *external_generator(w, "not a generator")],
     "g.yaml", "kind gan or dcgan-g")
case("cs", "generator spec not YAML", lambda w: ["mnist:0", "--simulate", *external_generator(w, "not yaml")],
     "g.yaml", "not a readable YAML/JSON spec")
case("cs", "--generator-spec without --generator",
     lambda w: ["mnist:0", "--simulate", *external_generator(w)[2:]], "--generator-spec describes")
case("cs", "--generator-spec for a lip artifact",
     lambda w: ["mnist:0", "--simulate", *external_generator(w)[2:], "--generator", bundled_generator(w)],
     "is a lip artifact")
case("cs", "unknown --weights", lambda w: ["mnist:0", "--simulate", "--weights", "best"], "unknown --weights")
case("cs", "--weights with --prior dip", lambda w: ["mnist:0", "--simulate", "--prior", "dip", "--weights", "rewound"],
     "--weights chooses a generator's weights")
case("cs", "--weights finetuned of a dense generator",
     lambda w: ["mnist:0", "--simulate", "--generator", bundled_generator(w), "--weights", "finetuned"],
     "has no fine-tuned weights for round 0", "--weights rewound")
case("prune", "--prior gan on an external generator without its critic",
     lambda w: ["--prior", "gan", *external_generator(w)], "g.safetensors", "with its critic", base=GAN_PRUNE)
case("prune", "--prior gan with --rate 0", lambda w: ["--prior", "gan", "--rate", "0"], "--rate 0.0", "(0, 1)",
     base=GAN_PRUNE)
case("prune", "--prior gan with images", lambda w: ["img.png", "--prior", "gan"], "drop the image arguments",
     base=GAN_PRUNE)
case("prune", "--prior gan with DIP search flags", lambda w: ["--prior", "gan", "--task", "inpaint", "--sigma", "25",
                                                               "--granularity", "channel"],
     "--prior gan", "does not read --task, --sigma, --granularity", base=GAN_PRUNE)
case("prune", "--prior gan with a DIP run's flags", lambda w: ["--prior", "gan"], "--iters, --device, --config")
case("prune", "GAN pruning flags without --prior gan", lambda w: ["img.png", "--simulate", "--data", "mnist",
                                                                  "--epochs", "3"], "--data, --epochs",
     "only --prior gan")
# --- lip cs: measurements from files (y.npy with --matrix A.npy or --operator operator.yaml)
Y = np.zeros(50)
case("cs", "measurements file missing", lambda w: ["nope.npy", "--matrix", matrix(w)], "nope.npy", "no such file")
case("cs", "measurements without their operator", lambda w: [npy(w, "y.npy", Y)], "--matrix", "--operator")
case("cs", "y length not matching A", lambda w: [npy(w, "y.npy", np.zeros(49)), "--matrix", matrix(w)],
     "49 measurements", "m = 50")
case("cs", "y length not matching the operator file",
     lambda w: [npy(w, "y.npy", np.zeros(49)), "--operator", operator_file(w)], "49 measurements", "m = 50")
case("cs", "A columns not matching --shape",
     lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w, n=1000), "--prior", "dip", "--shape", "32,32"],
     "1,000 columns", "1,024 values")
case("cs", "--shape not the generator's", lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w), "--shape", "16,64"],
     "the generator makes 32x32x1")
case("cs", "integer measurements", lambda w: [npy(w, "y.npy", np.zeros(50, np.int64)), "--matrix", matrix(w)],
     "dtype int64", "float")
case("cs", "complex matrix", lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w, dtype=np.complex128)],
     "dtype complex128")
case("cs", "y of shape (m, 1)", lambda w: [npy(w, "y.npy", np.zeros((50, 1))), "--matrix", matrix(w)],
     "(50, 1)", "must be (m,)")
case("cs", "one-dimensional matrix", lambda w: [npy(w, "y.npy", Y), "--matrix", npy(w, "A.npy", np.zeros(1024))],
     "must be (m, n)")
case("cs", "NaN in y", lambda w: [npy(w, "y.npy", np.r_[np.nan, np.zeros(49)]), "--matrix", matrix(w)],
     "non-finite")
case("cs", "inf in A", lambda w: [npy(w, "y.npy", Y), "--matrix", npy(w, "A.npy", np.full((50, 1024), np.inf))],
     "non-finite")
case("cs", "empty y file", lambda w: [npy(w, "y.npy", b""), "--matrix", matrix(w)], "y.npy", "empty")
case("cs", "y with no values", lambda w: [npy(w, "y.npy", np.zeros(0)), "--matrix", matrix(w)], "no values")
case("cs", "pickled y.npy (object array)",
     lambda w: [npy(w, "y.npy", np.array([Boom(str(w.dir / "UNPICKLED"))] * 50, dtype=object)), "--matrix",
                matrix(w)], "never unpickles")
case("cs", "a pickle named A.npy",
     lambda w: [npy(w, "y.npy", Y), "--matrix", npy(w, "A.npy", pickle.dumps(Boom(str(w.dir / "UNPICKLED"))))],
     "A.npy", "not a .npy array file")
case("cs", "truncated A.npy",
     lambda w: [npy(w, "y.npy", Y), "--matrix", npy(w, "A.npy", (w.dir / matrix(w)).read_bytes()[:5000])],
     "truncated")
case("cs", "an .npz archive as y", lambda w: [np.savez(w.dir / "y.npz", y=Y) or "y.npz", "--matrix", matrix(w)],
     "without --simulate")
case("cs", "an .npz archive named y.npy",
     lambda w: [np.savez(w.dir / "y", y=Y) or (w.dir / "y.npz").rename(w.dir / "y.npy") and "y.npy", "--matrix",
                matrix(w)], ".npz archive")
case("cs", "operator file not YAML",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, "kind: [gaussian\n")], "not readable YAML")
case("cs", "operator file without its format line",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, drop="format")], "not a lip operator file")
case("cs", "operator file missing a key", lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, drop="seed")],
     "missing key 'seed'")
case("cs", "operator file with a wrong type", lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, m="many")],
     "m must be an integer")
case("cs", "operator file of a future version",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, version=3)], "upgrade lip")
case("cs", "operator file with an unknown kind",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, kind="fourier")], "unknown kind 'fourier'")
case("cs", "operator file for another image size",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, shape=[64, 64, 3])], "measures 64x64x3")
case("cs", "operator file with a NaN noise level", lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(
     w, "format: lip-cs-operator\nversion: 1\nkind: gaussian\nseed: 0\nm: 50\nshape: [32, 32, 1]\nnoise: .nan\n"
     "outliers: 0\n")], "noise nan: give the noise's standard deviation, a number from 0 to 1e+15")
case("cs", "--outlier-value past what float32 squares", lambda w: ["img.png", "--simulate", "--outliers", "2",
     "--outlier-value", "1e39"], "--outlier-value 1e+39: give a number from -1e+15 to 1e+15")
case("cs", "--noise past what float32 squares", lambda w: ["img.png", "--simulate", "--noise", "1e20"],
     "--noise 1e+20: give the noise's standard deviation, a number from 0 to 1e+15")
case("cs", "operator file that is empty", lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, "")], "empty")
case("cs", "operator file missing", lambda w: [npy(w, "y.npy", Y), "--operator", "meas/operator.yaml"],
     "no such file")
case("cs", "malformed --shape", lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w), "--shape", "32x32"],
     "--shape 32x32")
case("cs", "--matrix without --shape for the DIP", lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w),
                                                              "--prior", "dip"], "--shape")
case("cs", "--noise with measurements files", lambda w: [npy(w, "y.npy", Y), "--matrix", matrix(w), "--noise", "0.1"],
     "--noise", "--simulate")
case("cs", "--save-measurements with --matrix",
     lambda w: ["mnist:0", "--simulate", "--matrix", matrix(w), "--save-measurements", "meas"], "--save-measurements")
case("cs", "--save-measurements in a read-only folder",
     lambda w: ["mnist:0", "--simulate", "--save-measurements", f"{readonly(w)}/meas"], "not writable")
case("cs", "--save-measurements is a file", lambda w: ["mnist:0", "--simulate", "--save-measurements", "img.png"],
     "img.png")

# --- lip restore / prune --task cs: the same measurements files, read by the same code as lip cs
case("restore", "cs: measurements without their operator", lambda w: ["--task", "cs", npy(w, "y.npy", Y)],
     "--matrix", "--operator")
case("restore", "cs: y length not matching A",
     lambda w: ["--task", "cs", npy(w, "y.npy", np.zeros(49)), "--matrix", matrix(w), "--shape", "32,32"],
     "49 measurements", "m = 50")
case("restore", "cs: y length not matching the operator file",
     lambda w: ["--task", "cs", npy(w, "y.npy", np.zeros(49)), "--operator", operator_file(w)], "49 measurements",
     "m = 50")
case("restore", "cs: --matrix without --shape", lambda w: ["--task", "cs", npy(w, "y.npy", Y), "--matrix", matrix(w)],
     "--shape")
case("restore", "cs: an image without --simulate", lambda w: ["--task", "cs", "img.png"], "without --simulate")
case("restore", "cs: -m with measurements files",
     lambda w: ["--task", "cs", npy(w, "y.npy", Y), "--operator", operator_file(w), "-m", "10"], "--measurements",
     "--simulate")
case("restore", "cs: more measurements than pixel values", lambda w: ["--task", "cs", "--simulate", "img.png",
                                                                       "-m", "100000"], "exceed the 12,288 values")
case("restore", "cs: unknown solver", lambda w: ["--task", "cs", "--simulate", "img.png", "--solver", "l1"],
     "unknown --solver")
case("prune", "cs: y length not matching the operator file",
     lambda w: ["--task", "cs", npy(w, "y.npy", np.zeros(49)), "--operator", operator_file(w)], "49 measurements")

# --- lip inspect
for kind, needles in [("empty", ("not a valid safetensors",)), ("truncated", ("not a valid safetensors",)),
                      ("malformed header", ("not a valid safetensors",)),
                      ("absurd header length", ("not a valid safetensors",)),
                      ("float masks", ("dtype", "uint8")), ("missing key", ("missing head.weight",)),
                      ("stray key", ("unexpected tensor",)), ("another net", ("has shape",)),
                      ("future version", ("upgrade lip",)), ("metadata not JSON", ("not valid JSON",)),
                      ("wrong format tag", ("wrong format tag",)), ("hostile spec", ("has shape",)),
                      ("pickle", ("never unpickles",)), ("torch.save", ("never unpickles",)),
                      ("png", ("not a valid safetensors",))]:
    case("inspect", f"artifact: {kind}", lambda w, k=kind: [bad_artifact(w, k)], "bad.safetensors", *needles)
case("inspect", "missing artifact", lambda w: ["none.safetensors"], "no such artifact")
case("inspect", "--csv over the artifact", lambda w: ["A.safetensors", "--csv", "A.safetensors"],
     "A.safetensors", "one of this run's inputs")
case("inspect", "--round out of range", lambda w: ["A.safetensors", "--round", "7"], "--round 7")
case("inspect", "negative --round", lambda w: ["A.safetensors", "--round", "-1"], "--round -1")
case("inspect", "--plot in a read-only folder", lambda w: ["A.safetensors", "--plot", f"{readonly(w)}/p.png"],
     "not writable")
case("inspect", "--csv in a missing folder", lambda w: ["A.safetensors", "--csv", "missing/t.csv"],
     "does not exist")
case("inspect", "--plot with an unknown suffix", lambda w: ["A.safetensors", "--plot", "p.jpg"],
     "ending in .png, .pdf or .svg")
case("inspect", "--plot PDF without matplotlib", lambda w: ["A.safetensors", "--plot", "p.pdf"], "need matplotlib",
     patch=no_matplotlib)
case("inspect", "disk full while writing --csv", lambda w: ["A.safetensors", "--csv", "t.csv"], "t.csv",
     "disk is full", code=1, patch=disk_full_while_writing)
case("inspect", "three masks, one --round-b", lambda w: ["A.safetensors"] * 3 + ["--round-b", "1"],
     "--round-b '1' gives 1 round for the 2 masks after A")

# --- lip spectra
case("spectra", "missing image", lambda w: ["img.png", "nope.png"], "nope.png", "no such file")
case("spectra", "truncated image", lambda w: ["img.png", bad_image(w, "truncated")], "truncated or corrupt")
case("spectra", "huge image", lambda w: ["img.png", bad_image(w, "huge")], "more than the limit")
case("spectra", "images of different sizes", lambda w: ["img.png", write_picture(w.dir / "small.png", 32, 32).name],
     "small.png is 32x32", "one size")
case("spectra", "two images of one name", lambda w: ["img.png", write_picture(
    w.dir / folder(w, "sub") / "img.png", seed=1).relative_to(w.dir)], "two images are named 'img'")
case("spectra", "-o is a file", lambda w: ["img.png", "-o", "A.safetensors"], "A.safetensors",
     "exists and is not a folder")

# --- lip restore: several inputs at once (issue 16)
case("restore", "--jobs 0", lambda w: ["img.png", write_picture(w.dir / "img2.png", 32, 32).name, "-o", "outs",
                                     "--jobs", "0"], "--jobs 0")
case("restore", "--shard 2/2", lambda w: ["img.png", "--shard", "2/2"], "--shard '2/2'")

# --- lip import-mask
case("import-mask", "missing file", lambda w: ["nope.pt"], "nope.pt", "no such file")
case("import-mask", "output over its source", lambda w: [foreign(w, "masks"), "-o", "their.pt"],
     "one of this run's inputs")
case("import-mask", "output not named .safetensors", lambda w: [foreign(w, "masks"), "-o", "out.npy"],
     ".safetensors file")
case("import-mask", "empty file", lambda w: [(w.dir / "e.pt").write_bytes(b"") or "e.pt"], "the file is empty")
case("import-mask", "text file", lambda w: [bad_image(w, "text", "t.pt")], "not a torch.save file")
case("import-mask", "an .npz archive", lambda w: [np.savez(w.dir / "m.npz", mask=np.ones(8, bool)) or "m.npz"],
     "an .npz archive of arrays (np.savez), not a torch.save file")
case("import-mask", "torch.save with code in it", lambda w: [foreign(w, "code")], "never unpickles code")
case("import-mask", "plain pickle", lambda w: [bad_artifact(w, "pickle", "p.pt")], "never unpickles code")
case("import-mask", "a lip artifact", lambda w: ["A.safetensors"], "not a torch.save file")
case("import-mask", "object .npy (needs pickle)", lambda w: [foreign(w, "object array", "o.npy")],
     "not a plain numeric .npy array")
case("import-mask", "OES vector of another length", lambda w: [foreign(w, "short vector", "v.npy")],
     "the vector has 100 entries")
case("import-mask", "masks not 0/1", lambda w: [foreign(w, "not binary")], "values other than 0 and 1")
case("import-mask", "state dict without masks", lambda w: [foreign(w, "no masks")], "no *_mask entries")
case("import-mask", "masks of another net", lambda w: [foreign(w, "another net")], "mask 2 of 26",
     "is 12x32x3x3", "made for another net")
case("import-mask", "rounds out of order",
     lambda w: [foreign(w, "masks", "r2.pt", amount=0.75), foreign(w, "masks", "r1.pt")], "r1.pt",
     "round order")
case("import-mask", "--init of another net",
     lambda w: [foreign(w, "masks"), "--init", foreign(w, "another state dict", "i.pt")], "i.pt", "weight 5 of 112",
     "made for another net")
case("import-mask", "--init without weights", lambda w: [foreign(w, "masks"), "--init", foreign(w, "masks", "i.pt")],
     "i.pt", "0 weights")
case("import-mask", "unknown --net", lambda w: [foreign(w, "masks"), "--net", "resnet"], "unknown net preset")
case("import-mask", "--init with a NaN weight", lambda w: [foreign(w, "masks"), "--init", nan_init(w)], "i.pt",
     "is not a tensor of finite real numbers")
case("import-mask", "-o - beside --json", lambda w: [foreign(w, "masks"), "-o", "-", "--json"],
     "--json prints to stdout")
def mnist_folder(w: "Work") -> str:
    """A folder named ./mnist beside the bundled digits' name."""
    (w.dir / "mnist").mkdir()
    return "mnist"


case("train-generator", "--data mnist beside a folder ./mnist",
     lambda w: ["--data", mnist_folder(w), "-o", "g.safetensors"], "--data mnist names the bundled digits",
     "--data ./mnist for the folder", base=GAN_TRAIN)
case("prune", "--prior gan --data mnist beside a folder ./mnist",
     lambda w: ["--prior", "gan", "--data", mnist_folder(w)], "--data mnist names the bundled digits", base=GAN_PRUNE)
case("train-generator", "-o - (saved after every epoch)", lambda w: ["-o", "-"], "saved after every epoch",
     base=GAN_TRAIN)
case("classify", "-o - for a ticket search (saved after every round)", lambda w: ["--prune-rounds", "1", "-o", "-"],
     "saved after every round")
case("prune", "--prior gan with a ladder that empties G", lambda w: ["--prior", "gan", "--rounds", "12", "--rate",
     "0.9"], "keeps none of the", base=GAN_PRUNE)
case("import-mask", "output in a missing folder", lambda w: [foreign(w, "masks"), "-o", "missing/x.safetensors"],
     "does not exist")
# --- lip export-mask
case("export-mask", "missing artifact", lambda w: ["none.safetensors"], "no such artifact")
case("export-mask", "artifact that is a pickle", lambda w: [bad_artifact(w, "pickle")], "never unpickles")
case("export-mask", "unknown output type", lambda w: ["A.safetensors", "-o", "out.txt"], "give OUT.pt")
case("export-mask", "--round out of range", lambda w: ["A.safetensors", "--round", "5"], "--round 5")
case("export-mask", "output in a read-only folder", lambda w: ["A.safetensors", "-o", f"{readonly(w)}/m.npy"],
     "not writable")

# Later additions go last, so the numbered table in docs/bad-input.md only grows.
case("restore", "zero --ensemble", lambda w: ["img.png", "--ensemble", "0"], "'--ensemble'")
case("restore", "radial mask below the acceleration its spokes reach",
     lambda w: ["img.png", "--task", "mri", "--simulate", "--mask-type", "radial", "--acceleration", "1.1"],
     "radial samples at most")
case("restore", "config file with early_stop not true/false",
     lambda w: [(w.dir / "e.yaml").write_text("early_stop: sometimes\n") and "img.png", "--config", "e.yaml"],
     "early_stop 'sometimes'")
case("prune", "config file with target_sparsity 95",
     lambda w: [(w.dir / "t.yaml").write_text("preset: oes\ntarget_sparsity: 95\n") and "img.png", "--simulate",
                "--config", "t.yaml"], "--target-sparsity 95")
# --- lip classify
case("classify", "--random without --mask", lambda w: ["--random"], "give --mask")
case("classify", "--mask with --net", lambda w: ["--mask", "A.safetensors", "--net", "dip-w16"], "drop --net")
case("classify", "-o without --prune-rounds", lambda w: ["-o", "t.safetensors"], "give --prune-rounds")
case("classify", "--rate without --prune-rounds", lambda w: ["--rate", "0.5"], "give --prune-rounds")
case("classify", "ticket not named .safetensors", lambda w: ["--prune-rounds", "1", "-o", "t.png"],
     ".safetensors file")
case("classify", "--train and --test above the 5,000 digits", lambda w: ["--train", "4600"], "at most 5,000")
case("classify", "unknown --head", lambda w: ["--head", "mean"], "unknown --head 'mean'")
case("classify", "--rate 1", lambda w: ["--prune-rounds", "1", "--rate", "1"], "--rate 1.0")
case("classify", "--mask missing", lambda w: ["--mask", "none.safetensors"], "no such artifact")
case("classify", "--round not in the artifact", lambda w: ["--mask", "A.safetensors", "--round", "9"], "round 9")
case("classify", "--lr 0", lambda w: ["--lr", "0"], "--lr")
case("classify", "ticket in a missing folder", lambda w: ["--prune-rounds", "1", "-o", "missing/t.safetensors"],
     "does not exist")
case("classify", "unknown net preset", lambda w: ["--net", "resnet"], "unknown net preset 'resnet'")
case("restore", "--data-consistency for a task without an exact step", lambda w: ["img.png", "--data-consistency"],
     "denoise has no exact step")
case("transfer", "--data-consistency for a grid without an exact step",
     lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "denoise,sr4", "--data-consistency"],
     "no task of the grid (denoise, sr4) has an exact step")
case("restore", "--resume-every below 0", lambda w: ["img.png", "--resume-every", "-1"], "--resume-every -1", ">= 0")
case("restore", "--resume-every NaN", lambda w: ["img.png", "--resume-every", "nan"], "--resume-every nan", ">= 0")
case("cs", "--resume-every below 0", lambda w: ["img.png", "--simulate", "--prior", "dip", "--resume-every", "-1"],
     "--resume-every -1", ">= 0")


# A fresh-eyes pass over the other commands (2026-12-04): refused up front, nothing written first.
case("train-generator", "sample grid over a training image",
     lambda w: ["--data", picture_folder(w, "x.png", "x_samples.png"), "-o", "data/x.safetensors"],
     "data/x_samples.png", "one of this run's inputs", base=GAN_TRAIN)
case("train-generator", "--samples in a missing folder",
     lambda w: ["--data", picture_folder(w, "x.png"), "-o", "g.safetensors", "--samples", "nowhere/s.png"],
     "nowhere", "does not exist", base=GAN_TRAIN)
case("train-generator", "--size not a power of two", lambda w: ["--data", picture_folder(w, "x.png"), "-o",
     "g.safetensors", "--size", "0"], "--size 0", "power of two", base=GAN_TRAIN)
case("spectra", "a map over an input", lambda w: ["img.png", picture_at(w, "maps/spectra.png")],
     "maps/spectra.png", "one of this run's inputs")
case("restore", "--save-kspace over the sampling mask",
     lambda w: ["img.png", "--simulate", "--task", "mri", "--sampling-mask",
                (w.dir / "ks").mkdir() or sampling_mask(w, name="ks/mask.npy"), "--save-kspace", "ks"],
     "ks/mask.npy", "one of this run's inputs")
case("restore", "-o over the k-space --save-kspace writes",
     lambda w: ["img.png", "--simulate", "--task", "mri", "--save-kspace", "ks", "-o", "ks/kspace.npy"],
     "--save-kspace's k-space and the output of img.png both name ks/kspace.npy")
case("restore", "-o over the mask --save-kspace writes (the folder exists)",
     lambda w: ["img.png", "--simulate", "--task", "mri", "--save-kspace", (w.dir / "ks").mkdir() or "ks",
                "-o", "ks/mask.npy"], "--save-kspace's mask and the output of img.png both name ks/mask.npy")
case("cs", "-o over the y.npy --save-measurements writes",
     lambda w: ["mnist:0", "--simulate", "--save-measurements", (w.dir / "meas").mkdir() or "meas", "-o",
                "meas/y.npy"],
     "--save-measurements' y.npy and -o both name meas/y.npy")
case("restore", "a task section that is not a section", lambda w: ["img.png", "--config", config_file(
     w, "denoise: 5\n")], "denoise", "section")
case("restore", "--mask with --net", lambda w: ["img.png", "--mask", "A.safetensors", "--net", "dip-w16"],
     "--mask brings its own net", "--net")
case("restore", "--init fresh for the dense net", lambda w: ["img.png", "--dense", "--init", "fresh"],
     "--init fresh chooses a mask's starting weights, and the dense net has none")
case("restore", "--init of an unknown kind", lambda w: ["img.png", "--init", "foo"], "unknown --init 'foo'")
case("restore", "a pipe as input", lambda w: [fifo(w)], "pipe or device")
case("restore", "-o empty", lambda w: ["img.png", "-o", ""], "-o is empty")
case("restore", "--seed of 2**32 or more (the CPU generator reads 32 bits)",
     lambda w: ["img.png", "--seed", str(2**32)], "--seed")
case("cs", "--noise NaN", lambda w: ["img.png", "--simulate", "--noise", "nan"], "--noise nan")
case("cs", "--outlier-value infinite", lambda w: ["img.png", "--simulate", "--outliers", "2", "--outlier-value",
     "inf"], "--outlier-value inf", "give a number from")
case("prune", "--oes-tau 0", lambda w: ["img.png", "--simulate", "--method", "oes", "--oes-tau", "0"],
     "--oes-tau 0", "above 0")
case("prune", "rounds: 0 in a config", lambda w: ["img.png", "--simulate", "--config", config_file(w, "rounds: 0\n")],
     "--rounds 0", "1 or more", base=[*RUN[2:], "-o", "out.safetensors"])
case("transfer", "a row whose score is not a number", lambda w: ["--merge", damaged_rows(w)], "not a transfer row",
     base=[])
case("prune", "--early-bird-every without --early-bird",
     lambda w: ["img.png", "--simulate", "--early-bird-every", "20"], "--early-bird-every 20", "--early-bird F")
case("restore", "--es-gate for SR", lambda w: ["img.png", "--task", "sr", "--es-gate", "1.2"], "--es-gate 1.2",
     "--task sr has none")
case("transfer", "--es-gate for an SR grid", lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "sr4",
                                                      "--es-gate", "1.2"], "--es-gate", "no task of the grid")
case("cs", "--outliers with --task inpaint", lambda w: ["mnist:0", "--simulate", "--task", "inpaint", "--outliers", "3"],
     "--outliers is for --task cs")
case("cs", "--operator with --task inpaint", lambda w: ["mnist:0", "--simulate", "--task", "inpaint", "--operator", "dct"],
     "--operator is for --task cs")
case("cs", "--mom-batch for a least-squares DIP fit",
     lambda w: ["img.png", "--simulate", "--prior", "dip", "--solver", "ls", "--mom-batch", "10"], "--mom-batch",
     "--solver ls has none")
case("cs", "--mom-batch for a least-squares generator fit",
     lambda w: ["mnist:0", "--simulate", "--solver", "ls", "--mom-batch", "10"], "--mom-batch",
     "the generator's fit with --solver ls has none")
case("restore", "--dense with the deep decoder's --net", lambda w: ["img.png", "--dense", "--net", "deep-decoder"],
     "--dense fits the dense DIP net, not the decoder net of --net")
case("restore", "a file in the folder named like a library mask",
     lambda w: ["img.png", "--mask", npy(w, "dip-channel-house", b"not a mask")],
     "dip-channel-house names both a mask in lip's library (lip masks) and the file ./dip-channel-house")
case("inspect", "a file in the folder named like a library mask", lambda w: [npy(w, "dip-channel-house", b"x")],
     "dip-channel-house names both a mask in lip's library")
case("restore", "--ensemble past the largest seed", lambda w: ["img.png", "--ensemble", "2", "--seed", "4294967295"],
     "--ensemble 2 from --seed 4294967295 runs seeds up to 4294967296", "give --seed 4294967294 or lower")
case("transfer", "--seeds past the largest seed", lambda w: ["img.png", "--mask", "A.safetensors", "--seeds", "3",
     "--seed", "4294967294"], "--seeds 3 from --seed 4294967294 runs seeds up to 4294967296")
case("transfer", "--operator FILE for a grid", lambda w: ["img.png", "--mask", "A.safetensors", "--tasks", "cs1000",
     "--operator", operator_file(w)], "a grid's csN tasks simulate N measurements", "--operator gaussian, dct or auto")
case("prune", "one image given twice", lambda w: ["img.png", "./img.png", "--simulate"],
     "img.png is given twice", "give each image once")
case("cs", "one Median-of-Means batch over an inpainting's values",
     lambda w: ["img.png", "--task", "inpaint", "--simulate", "--prior", "dip", "--solver", "mom", "--mom-batch",
                "100000"], "--mom-batch 100000 makes one batch")
case("restore", "a config's sampling mask beside --acceleration",
     lambda w: ["img.png", "--task", "mri", "--simulate", "--acceleration", "8", "--config",
                config_file(w, f"sampling_mask: {npy(w, 'sm.npy', np.ones((64, 64)))}\n")],
     "--acceleration: the config's sampling_mask sm.npy gives the sampled k-space points", base=[*RUN[2:]])
case("prune", "--shared-input with one image", lambda w: ["img.png", "--simulate", "--shared-input"],
     "--shared-input shares one z and one output between several images")
case("cs", "--mom-batch of half the measurements or more (one batch: least squares)",
     lambda w: ["mnist:0", "--simulate", "-m", "300", "--mom-batch", "200"],
     "--mom-batch 200 makes one batch of the 300 measurements", "give --mom-batch 150 or less, or --solver ls")
case("restore", "CS --mom-batch of half the measurements or more",
     lambda w: ["img.png", "--task", "cs", "--simulate", "-m", "30"],
     "--mom-batch 20 makes one batch of the 30 measurements", "--solver ls")
case("train-generator", "--resume-every below 0", lambda w: ["--data", picture_folder(w, "x.png"), "-o",
     "g.safetensors", "--resume-every", "-1"], "--resume-every -1", ">= 0", base=GAN_TRAIN)
case("transfer", "--experiment impedance with flags it does not read",
     lambda w: ["img.png", "--mask", "A.safetensors", "--experiment", "impedance", "--keep", "0.2", "--early-stop"],
     "--keep, --early-stop: --experiment impedance does not read them")
case("transfer", "--curves for one shard",
     lambda w: ["img.png", "--mask", "A.safetensors", "--shard", "0/2", "--curves"],
     "--curves: a shard writes its rows only", "lip transfer --merge")
case("inspect", "--csv and --plot one file", lambda w: ["A.safetensors", "--csv", "same.png", "--plot", "same.png"],
     "--plot and --csv both name same.png")
case("restore", "--log and -o one file", lambda w: ["img.png", "-o", "r.png", "--log", "r.png"],
     "--log and the output of img.png both name r.png")
case("import-mask", "--seed beside --init", lambda w: [foreign(w, "masks"), "--init", foreign(w, "masks", "i.pt"),
     "--seed", "5"], "--seed draws theta0, which --init i.pt gives")
case("cs", "--outlier-value without --outliers", lambda w: ["img.png", "--simulate", "--outlier-value", "5"],
     "--outlier-value 5", "add --outliers K")
case("cs", "--clean beside --simulate", lambda w: ["img.png", "--simulate", "--clean", "img.png"],
     "--clean and --simulate exclude each other")
case("cs", "--round of the dense DIP", lambda w: ["img.png", "--simulate", "--prior", "dip", "--round", "2"],
     "--round 2 picks a round of a mask")
case("restore", "--acceleration beside a sampling mask",
     lambda w: ["img.png", "--simulate", "--task", "mri", "--sampling-mask", sampling_mask(w, (64, 64)),
                "--acceleration", "8"], "--acceleration: --sampling-mask gives the sampled k-space points")
case("prune", "--oracle-target for a one-shot method",
     lambda w: ["img.png", "--method", "snip", "--oracle-target", "img.png"],
     "--oracle-target: --method snip does not read it")
case("prune", "channel --method bn, a score of trained nets only",
     lambda w: ["img.png", "--simulate", "--granularity", "channel", "--method", "bn"], "unknown --method 'bn'")
case("prune", "a channel ladder that reaches one channel per conv before its last round",
     lambda w: ["img.png", "--simulate", "--granularity", "channel", "--method", "random", "--rate", "0.8",
                "--rounds", "4"], "comes down to the 25 channels a search keeps", "by round 2 of 4",
     base=[*RUN, "-o", "out.safetensors"])
case("prune", "--clean for a method whose rounds fit no image",
     lambda w: ["img.png", "--method", "oes", "--clean", "img.png"],
     "--clean: --method oes does not read it (only --method imp)")
case("restore", "./sample:house, a file named like a bundled sample",
     lambda w: [(w.dir / "sample:house").write_bytes((w.dir / "img.png").read_bytes()) and "./sample:house"],
     "sample:house names both a sample bundled with lip and the file ./sample:house", "full path")
case("restore", "one input given twice", lambda w: ["img.png", "img.png", "-o", "outs/"],
     "img.png is given twice")
case("restore", "one input given twice, spelt two ways", lambda w: ["img.png", str(w.dir / "img.png")],
     "img.png is given twice (also as img.png)")
case("restore", "two inputs of one name with --snapshots",
     lambda w: ["img.png", same_name(w), "--snapshots", "10", "snaps"],
     "img.png and sub/img.png would write their snapshots to the same files (snaps/img_N.png)", base=RUN)
case("restore", "--log named as one of the run's snapshots", lambda w: ["img.png", "--snapshots", "1", "snaps",
     "--log", "snaps/img_1.png"], "--log snaps/img_1.png is the name of a snapshot this run writes")
case("restore", "--log over the output of one of two inputs of one name",
     lambda w: ["img.png", same_name(w), "--log", "sub/img_restored.png"],
     "--log and the output of sub/img.png both name sub/img_restored.png", base=RUN)
case("transfer", "one image given twice, spelt two ways",
     lambda w: ["img.png", str(w.dir / "img.png"), "--mask", "A.safetensors"], "img.png is given twice (also as img.png)")
case("restore", "--clean of another size", lambda w: ["img.png", "--clean", picture_at(w, "ref.png", 32)],
     "--clean ref.png is 32x32", "restored from img.png is 64x64")
case("prune", "--oracle-target of another size",
     lambda w: ["img.png", "--oracle-target", picture_at(w, "ref.png", 32)],
     "--oracle-target ref.png is 32x32", "restored from img.png is 64x64")
case("transfer", "a plot's name over an input in --out",
     lambda w: [picture_at(w, "res/psnr_vs_sparsity_denoise.png"), "--mask", "A.safetensors"],
     "res/psnr_vs_sparsity_denoise.png", "one of this run's inputs")
case("transfer", "summary.csv over an input mask in --out",
     lambda w: ["img.png", "--mask", (w.dir / "res").mkdir() or
                str((w.dir / "res" / "summary.csv").write_bytes((w.dir / "A.safetensors").read_bytes()) and
                    "res/summary.csv")],
     "res/summary.csv", "one of this run's inputs")
case("transfer", "--baselines none beside others",
     lambda w: ["img.png", "--mask", "A.safetensors", "--baselines", "none,dense"],
     "--baselines none,dense", "'none' stands alone")
case("prune", "--rounds for random-layerwise", lambda w: ["img.png", "--simulate", "--method", "random-layerwise",
                                                         "--like", "A.safetensors", "--rounds", "1"],
     "--rounds: --method random-layerwise copies --like's rounds")
case("restore", "inpaint mask all white",
     lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask", white_mask(w)],
     "observes every pixel")

case("prune", "--rewind that rounds to iteration 0", lambda w: ["img.png", "--simulate", "--rewind", "0.01"],
     "--rewind 0.01 of 1 iterations is iteration 0")
case("prune", "a --rate that empties the net", lambda w: ["img.png", "--simulate", "--rate", "0.99", "--rounds", "4"],
     "--rate 0.99 keeps none of the", "lower --rate or --rounds")

case("restore", "--task cs with an operator file of a digit padded for a generator",
     lambda w: ["--task", "cs", npy(w, "y.npy", Y), "--operator", operator_file(w, version=2, image=[28, 28])],
     "measured a 28x28 image zero-padded to 32x32", "lip cs --prior generator")
case("cs", "an operator file whose image does not fit its shape",
     lambda w: [npy(w, "y.npy", Y), "--operator", operator_file(w, version=2, image=[40, 28])], "does not fit")

def tiff_of(w: "Work", name: str, arr: np.ndarray, **kw: Any) -> str:
    """A TIFF of `arr` written with tifffile's options `kw`."""
    tifffile.imwrite(w.dir / name, arr, **kw)
    return name


case("restore", "8-bit TIFF with an extra channel not called alpha",
     lambda w: [tiff_of(w, "two.tif", np.zeros((16, 16, 2), np.uint8), photometric="minisblack",
                        planarconfig="contig", extrasamples=["unspecified"])], "1 of its 2 channels", "not call alpha")
case("restore", "float RGB TIFF with an extra channel not called alpha",
     lambda w: [tiff_of(w, "rgbx.tif", np.zeros((16, 16, 4), np.float32), photometric="rgb",
                        extrasamples=["unspecified"])], "1 of its 4 channels", "not call alpha")
case("restore", "8-bit TIFF of two planes", lambda w: [tiff_of(w, "planes.tif", np.zeros((2, 16, 16), np.uint8),
                                                                photometric="minisblack")], "stack", "one plane")

case("restore", "an image file name as -o for two inputs",
     lambda w: ["img.png", write_picture(w.dir / "img2.png", 32, 32).name, "-o", "out/one.png"],
     "names one image file", "output folder")

case("train-generator", "--samples - (stdout)", lambda w: ["--data", picture_folder(w, "x.png"), "-o",
     "g.safetensors", "--samples", "-"], "rewritten after every epoch", "file name", base=GAN_TRAIN)
case("cs", "-o - (stdout) with --json", lambda w: ["mnist:0", "--simulate", "-o", "-", "--json"],
     "drop --json (the lines on stderr say the same)")
case("restore", "a folder as --mask", lambda w: ["img.png", "--mask", "."], "is a folder, not an artifact file")

case("cs", "--generator beside a GAN-IMP --mask", lambda w: ["mnist:0", "--simulate", "--mask", "m.safetensors",
     "--generator", "g.safetensors"], "holds its generator's weights", "drop --generator")

# Config files typed as the flags are (a fresh-eyes pass over restore's tasks, 2026-12-05).
OWN_CONFIG = [*RUN[2:]]
case("restore", "a number as a config key", lambda w: ["img.png", "--config", config_file(w, "1: 10\n")],
     "unknown key '1'", base=OWN_CONFIG)
case("restore", "scale: 2.5 in a config", lambda w: ["img.png", "--task", "sr", "--simulate", "--config",
     config_file(w, "scale: 2.5\n")], "--scale 2.5", "whole number", base=OWN_CONFIG)
case("restore", "scale: four in a config", lambda w: ["img.png", "--task", "sr", "--simulate", "--config",
     config_file(w, "scale: four\n")], "--scale 'four'", "whole number", base=OWN_CONFIG)
case("restore", "noise: abc in a CS config", lambda w: ["img.png", "--task", "cs", "--simulate", "--config",
     config_file(w, "noise: abc\n")], "config key noise 'abc' must be a finite number >= 0", base=OWN_CONFIG)
case("restore", "--mom-batch for a least-squares CS fit",
     lambda w: ["img.png", "--task", "cs", "--simulate", "--solver", "ls", "--mom-batch", "5"],
     "--mom-batch sets the median-of-means batches; --solver ls has none: drop it")
case("restore", "mom_batch: 2.5 in a CS config", lambda w: ["img.png", "--task", "cs", "--simulate", "--config",
     config_file(w, "mom_batch: 2.5\n")], "--mom-batch 2.5 must be a whole number >= 1", base=OWN_CONFIG)
case("restore", "an even kernel in a config's net", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip, k_down: 4}\n")], "k_down must be an odd kernel size", base=OWN_CONFIG)
case("restore", "a negative width in a config's net", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip, down: [8, -8, 8, 8, 8]}\n")], "down must hold whole numbers >= 1, not -8",
     base=OWN_CONFIG)
case("restore", "a net too wide for the memory", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip, down: [8, 8, 8, 8, 8000000]}\n")], "GiB, more than the", base=OWN_CONFIG)
case("prune", "a net too wide for the memory (prune had no memory check)", lambda w: ["img.png", "--simulate",
     "--config", config_file(w, "net: {preset: dip, down: [8, 8, 8, 8, 8000000]}\n")], "GiB, more than the",
     base=OWN_CONFIG)
case("classify", "a ladder that empties the net", lambda w: ["--prune-rounds", "3", "--rate", "0.9999", "-o",
     "e.safetensors"], "--rate 0.9999 keeps none of the", "by round")
case("classify", "--lr inf", lambda w: ["--lr", "inf"], "--lr inf must be positive and finite")
case("prune", "early_bird: 5 in a config", lambda w: ["img.png", "--simulate", "--config",
     config_file(w, "net: {preset: dip, down: [8, 8, 8, 8, 8], up: [8, 8, 8, 8, 8], skip: [4, 4, 4, 4, 4]}\n"
                    "early_bird: 5\n")], "--early-bird 5 must be a number in [0, 1]", base=["--device", "cpu", "--threads",
                                                                                       "1", "--iters", "1", "-o", "o.safetensors"])
case("prune", "rounds: 300 in a config", lambda w: ["img.png", "--simulate", "--config",
     config_file(w, "rounds: 300\n")], "300 rounds asked for; at most 255", base=["--device", "cpu", "--threads", "1",
                                                                                  "--iters", "1", "-o", "o.safetensors"])
case("restore", "a misspelt key in another task's section", lambda w: ["img.png", "--config",
     config_file(w, "sr:\n  iterz: 5\n")], "sr", "unknown key 'iterz'", base=OWN_CONFIG)
case("spectra", "-o empty", lambda w: ["img.png", "img.png", "-o", ""], "-o is empty", base=[])
case("train-generator", "--size beyond 256", lambda w: ["--data", picture_folder(w, "x.png"), "-o", "g.safetensors",
     "--size", "1024"], "--size 1024", "from 8 to 256", base=GAN_TRAIN)
case("restore", "--config paper beside a file named paper", lambda w: ["img.png", "--config",
     config_file(w, "iters: 5\n", "paper")], "--config paper names both a preset and the file ./paper", base=OWN_CONFIG)
case("restore", "a ticket that is no library mask", lambda w: ["img.png", "--config", config_file(w, "ticket: 7\n")],
     "ticket 7", "not a library mask", base=OWN_CONFIG)
case("restore", "a misspelt field of a config's net", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip, dwon: [8, 8, 8, 8, 8]}\n")], "unknown field 'dwon'", base=OWN_CONFIG)
case("restore", "an unknown padding in a config's net", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip, pad: bogus}\n")], "pad must be one of reflection, zero", base=OWN_CONFIG)
case("restore", "a one-channel net for a colour image", lambda w: ["img.png", "--config",
     config_file(w, "net: {preset: dip-w16, out_channels: 1}\n")], "1-channel images", "out_channels to 3",
     base=OWN_CONFIG)
case("restore", "a mask found for one-channel images on a colour image", lambda w: ["img.png", "--mask",
     str(make_mask(w.dir / "gray.safetensors", {**SPEC, "out_channels": 1}, rounds=1))], "1-channel images",
     "gray.safetensors was found for 1-channel images", "use a mask found on colour images")
case("transfer", "a mask found for one-channel images on a colour image", lambda w: ["img.png", "--mask",
     str(make_mask(w.dir / "gray.safetensors", {**SPEC, "out_channels": 1}, rounds=1))],
     "gray.safetensors was found for 1-channel images", "use a mask found on colour images")

case("restore", "--keep so small that no value is observed", lambda w: ["img.png", "--task", "inpaint", "--simulate",
     "--keep", "1e-9"], "observes no value of it", base=OWN_CONFIG)
case("restore", "--keep 1: nothing to inpaint", lambda w: ["img.png", "--task", "inpaint", "--simulate", "--keep", "1"],
     "observes every value", base=OWN_CONFIG)

case("restore", "a .npy inpainting mask of 0 and 2", lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask",
     npy(w, "m.npy", np.tile(np.array([0, 2], np.uint8), (64, 32)))], "values other than 0 and 1 (2)", base=OWN_CONFIG)
case("restore", "a complex .npy inpainting mask", lambda w: ["img.png", "--task", "inpaint", "--inpaint-mask",
     npy(w, "m.npy", np.ones((64, 64), complex))], "dtype complex128", "(H, W) array of 0/1", base=OWN_CONFIG)

case("restore", "a key given twice in a config", lambda w: ["img.png", "--config",
     config_file(w, "iters: 10\niters: 2000\n")], "not readable YAML", "the key 'iters' is given twice",
     base=OWN_CONFIG)
case("cs", "a key given twice in an operator file", lambda w: [npy(w, "y.npy", Y), "--operator",
     operator_file(w, text="format: lip-cs-operator\nversion: 1\nm: 50\nm: 40\n")], "the key 'm' is given twice")

case("train-generator", "MNIST for a colour generator", lambda w: ["--channels", "3", "-o", "g.safetensors"],
     "MNIST is gray", "a folder of colour images", base=GAN_TRAIN)

# Weight decay (`--weight-decay`, 2026-12-05).
case("restore", "--weight-decay that takes a whole kernel a step", lambda w: ["img.png", "--weight-decay", "100",
     "--lr", "0.01"], "--weight-decay 100 x --lr 0.01 must be below 1")
case("restore", "a weight_decay schedule with a word in it", lambda w: ["img.png", "--config",
     config_file(w, "weight_decay: {0: 0.2, 37.5: lots}\n")], "--weight-decay", "schedule", base=OWN_CONFIG)
case("transfer", "negative --weight-decay", lambda w: ["img.png", "--mask", "A.safetensors", "--weight-decay", "-1"],
     "--weight-decay")

# The stop's spike guard (`--es-spike`, 2026-12-05): a factor of 1 or under would fire on every flat loss.
case("restore", "--es-spike under 1", lambda w: ["img.png", "--es-spike", "0.5"],
     "--es-spike 0.5 must be 0 (off) or a finite number above 1")
case("restore", "es_spike: a word in a config", lambda w: ["img.png", "--config", config_file(w, "es_spike: high\n")],
     "--es-spike 'high'", base=OWN_CONFIG)
case("transfer", "--es-spike 1", lambda w: ["img.png", "--mask", "A.safetensors", "--es-spike", "1"],
     "--es-spike 1.0 must be 0 (off)")
# Rollback's threshold (`--jump-factor`, 2026-12-06): 1 or under would roll back on every step the loss does not fall.
case("restore", "--jump-factor 1", lambda w: ["img.png", "--jump-factor", "1"],
     "--jump-factor 1.0 must be a finite number above 1")
case("restore", "jump_factor: a word in a config",
     lambda w: ["img.png", "--config", config_file(w, "jump_factor: high\n")], "--jump-factor 'high'", base=OWN_CONFIG)
case("transfer", "--jump-factor 0.5", lambda w: ["img.png", "--mask", "A.safetensors", "--jump-factor", "0.5"],
     "--jump-factor 0.5 must be a finite number above 1")
# The stop's close (`--es-close`, 2026-12-06): a lag-1 autocorrelation level in [0, 1).
case("restore", "--es-close 1", lambda w: ["img.png", "--es-close", "1"], "--es-close")
case("restore", "an es_close schedule with a word in it", lambda w: ["img.png", "--config",
     config_file(w, "es_close: {0: 0.015, 20: low}\n")], "--es-close", "schedule", base=OWN_CONFIG)
TARGETED = [*RUN, "-o", "o.safetensors"]  # no --rounds: a target sets them
case("prune", "OES at a target that keeps no weight", lambda w: ["img.png", "--simulate", "--method", "oes",
     "--target-sparsity", "0.9999999"], "--target-sparsity 0.9999999 keeps 0 of the", "lower it", base=TARGETED)
case("prune", "channel OES below one channel per conv", lambda w: ["img.png", "--simulate", "--method", "oes",
     "--granularity", "channel", "--target-sparsity", "0.99"], "fewer than the", "a search keeps", base=TARGETED)
case("prune", "a --rate whose rounds prune nothing", lambda w: ["img.png", "--simulate", "--rate", "1e-9", "--rounds",
     "2"], "--rate 1e-09 prunes none of the", "raise --rate")
case("prune", "a --target-sparsity that empties the net", lambda w: ["img.png", "--simulate", "--target-sparsity",
     "0.9999999"], "--target-sparsity 0.9999999 keeps 0 of the", "lower it", base=TARGETED)
case("prune", "the bn channel score on a net without a BatchNorm after its convs", lambda w: ["img.png", "--simulate",
     "--granularity", "channel", "--channel-score", "bn", "--net", "deep-decoder"],
     "needs a BatchNorm right after every pruned conv")
case("prune", "a channel ladder round that prunes nothing", lambda w: ["img.png", "--simulate", "--granularity",
     "channel", "--rate", "0.001", "--rounds", "2"], "--rate 0.001 prunes none of the", "channels")
case("prune", "channel IMP at a target below one channel per conv", lambda w: ["img.png", "--simulate",
     "--granularity", "channel", "--target-sparsity", "0.99"], "--target-sparsity 0.99 keeps 2 of the 180 channels",
     "lower it", base=TARGETED)
case("prune", "channel OES below the floor at the paper preset's rounds", lambda w: ["img.png", "--simulate",
     "--method", "oes", "--granularity", "channel", "--config", config_file(w, "preset: paper\nnet: {preset: dip, "
     "down: [8, 8, 8, 8, 8], up: [8, 8, 8, 8, 8], skip: [4, 4, 4, 4, 4]}\n")],
     "that the rounds and rate make", "give a lower --target-sparsity", base=[*OWN_CONFIG, "-o", "o.safetensors"])
case("prune", "rate: null in a config", lambda w: ["img.png", "--simulate", "--config",
     config_file(w, "rate: null\n")], "--rate None must be a number in [0, 1]", base=[*OWN_CONFIG, "-o", "o.safetensors"])

# ---------------------------------------------------------------- running a case

def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def populate(folder: Path) -> None:
    write_picture(folder / "img.png", 64, 64, seed=0)
    (folder / "narrow.yaml").write_text(NARROW_YAML)
    make_mask(folder / "A.safetensors", rounds=2)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    output: str
    exception: BaseException | None
    before: list[str]
    after: list[str]


def run_case(c: Case, folder: Path, mp: pytest.MonkeyPatch) -> Outcome:
    """Build the case's inputs in `folder` (made the working directory), run it, list the folder."""
    populate(folder)
    mp.chdir(folder)
    for var in ("LIP_DEVICE", "LIP_DEBUG", "SOURCE_DATE_EPOCH"):
        mp.delenv(var, raising=False)
    w = Work(folder, mp, [])
    try:
        args = [c.command, *(BASE[c.command] if c.base is None else c.base), *[str(a) for a in c.build(w)]]
        before = listing(folder)
        if c.patch is not None:
            c.patch(w)
        result = CliRunner().invoke(app, args)
        code, out, err, both, exc = (result.exit_code, result.stdout, result.stderr, result.output,
                                     result.exception)
    finally:
        mp.undo()  # patches off before the folder is listed again
        for undo in w.cleanup:
            undo()
    return Outcome(code, out, err, both, exc, before, listing(folder))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, tmp_path: Path) -> None:
    if c.skip:
        pytest.skip(c.skip)
    with pytest.MonkeyPatch.context() as mp:
        o = run_case(c, tmp_path, mp)
    assert "Traceback" not in o.output and "internal error" not in o.output, o.output
    assert o.exception is None or isinstance(o.exception, SystemExit), repr(o.exception)
    assert o.code == c.code, o.output
    lines = o.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("lip: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], o.stderr
    if c.code == 2:  # refused up front: the error line alone
        assert lines == errors, o.stderr
    line = errors[0]
    assert len(line) < 400, line
    for needle in c.needles:
        assert needle in line, line
    assert o.stdout == ""
    new = set(o.after) - set(o.before)
    if c.kept is not None:  # a fit's saved state, kept for the same command to continue from (and said so)
        assert c.kept in new and "the fit's state is kept" in lines[-2], o.stderr
    left = {p for p in new if c.kept is None or p.split("/")[0] != c.kept}
    assert not left, f"a refused run left files behind: {left}"


def test_the_matrix_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 30
    assert {c.command for c in CASES} == {"restore", "prune", "transfer", "cs", "inspect", "spectra", "import-mask",
                                          "export-mask", "classify", "train-generator"}
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_table_lists_every_case() -> None:
    table = (Path(__file__).parent.parent / "docs" / "bad-input.md").read_text()
    missing = [c.id for c in CASES if f"| {c.id} |" not in table]
    assert not missing, f"docs/bad-input.md is out of date (python tests/test_bad_input.py docs/bad-input.md): {missing}"


# ---------------------------------------------------------------- odd but valid inputs succeed

def restore_ok(tmp_path: Path, image: str, *extra: str) -> PILImage.Image:
    """Restore `image` (in tmp_path) for 1 iteration; return the output, opened."""
    populate(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        result = CliRunner().invoke(app, ["restore", image, *BASE["restore"], *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "lip: error" not in result.output
    out = PILImage.open(tmp_path / "out.png")
    out.load()
    return out


def test_exif_rotated_input_is_restored_upright(tmp_path):
    """A 40x20 file with EXIF orientation 6 (rotate 90) is a 20x40 picture: restored as one, with
    exactly the pixels of the same picture stored upright."""
    tmp_path.mkdir(exist_ok=True)
    arr = (np.random.default_rng(3).random((20, 40, 3)) * 255).astype(np.uint8)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "rotated.png", exif=exif)
    im.transpose(PILImage.Transpose.ROTATE_270).save(tmp_path / "upright.png")  # what orientation 6 shows
    rotated = restore_ok(tmp_path, "rotated.png")
    assert (rotated.mode, rotated.size) == ("RGB", (20, 40))
    upright = restore_ok(tmp_path, "upright.png")
    assert np.array_equal(np.asarray(rotated), np.asarray(upright))


@pytest.mark.parametrize("kind, mode, size", [
    ("palette", "RGB", (40, 30)),
    ("gray palette", "L", (40, 30)),
    ("palette with transparency", "RGBA", (40, 30)),
    ("16-bit gray", None, (40, 30)),  # None: the input's own mode (Pillow 10.0 opens 16-bit gray as I, today's as I;16)
    ("gray+alpha", "LA", (40, 30)),
    ("1x1", "RGB", (1, 1)),
    ("1x1 gray", "L", (1, 1)),
    ("CMYK JPEG", "RGB", (40, 30)),
])
def test_odd_but_valid_images_succeed(tmp_path, kind, mode, size):
    rng = np.random.default_rng(0)
    rgb = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    name = "in.png"
    if kind == "palette":
        PILImage.fromarray(rgb).convert("P").save(tmp_path / name)
    elif kind == "gray palette":
        PILImage.fromarray(rgb[..., 0]).convert("P").save(tmp_path / name)
    elif kind == "palette with transparency":
        PILImage.fromarray(rgb).convert("P").save(tmp_path / name, transparency=0)
    elif kind == "16-bit gray":
        PILImage.fromarray((rng.random((30, 40)) * 65535).astype(np.uint16)).save(tmp_path / name)
    elif kind == "gray+alpha":
        PILImage.fromarray(rgb[..., :2].copy(), "LA").save(tmp_path / name)
    elif kind == "1x1":
        PILImage.new("RGB", (1, 1), (200, 30, 10)).save(tmp_path / name)
    elif kind == "1x1 gray":
        PILImage.new("L", (1, 1), 77).save(tmp_path / name)
    else:
        name = "in.jpg"
        PILImage.fromarray(rgb).convert("CMYK").save(tmp_path / name, format="JPEG")
    with PILImage.open(tmp_path / name) as src:
        assert src.mode in ("P", "I;16", "I", "LA", "RGB", "L", "CMYK")
        mode = mode or src.mode
    out = restore_ok(tmp_path, name)
    assert (out.mode, out.size) == (mode, size)


# ---------------------------------------------------------------- the table in docs/bad-input.md

def write_table(dest: Path) -> None:
    """Run every case and write the table of cases and outcomes (what the tests assert, as run)."""
    import tempfile

    rows = []
    for i, c in enumerate(CASES, 1):
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            if c.skip:
                rows.append(f"| {i} | {c.id} | skipped | {c.skip} |")
                continue
            o = run_case(c, Path(tmp), mp)
            line = o.stderr.strip().splitlines()[-1] if o.stderr.strip() else "(none)"
            line = line.replace(str(Path(tmp).resolve()), "<dir>").replace(tmp, "<dir>").replace("|", "\\|")
            left = "" if o.after == o.before else " **(left files)**"
            rows.append(f"| {i} | {c.id} | {o.code}{left} | `{line}` |")
            print(f"{i:3} {c.id}: {o.code}", file=sys.stderr)
    head = ["# Bad input: every case tried and its outcome", "",
            "Generated by `python tests/test_bad_input.py docs/bad-input.md` from the matrix in",
            "`tests/test_bad_input.py`, which asserts each outcome: exit code 2 for bad input or usage",
            "(refused before any work, the error line alone on stderr), 1 for a runtime failure (progress",
            "lines may precede the error line), never a traceback, nothing on stdout, and no file left",
            "behind. Paths are relative to the folder the case ran in (`<dir>`). A read-only folder is",
            "mode 0555; when the tests run as root, which ignores the mode, lip's permission check is made",
            "to see the folder as read-only. A full disk is simulated (ENOSPC from the write or the final",
            "rename).", "",
            "Odd but valid inputs succeed (tests `test_exif_rotated_input_is_restored_upright` and",
            "`test_odd_but_valid_images_succeed`): an EXIF-rotated image is restored upright (identical",
            "to the same picture stored upright); palette (to RGB, or L for a gray palette, or RGBA with",
            "transparency), 16-bit gray (kept 16-bit), gray+alpha (kept LA), CMYK JPEG (to RGB) and 1x1",
            "images (the net pads them) are restored in their own size and mode, also at the default",
            "iterations: an observation of fewer than 1024 values rolls back only a non-finite loss, since a",
            "close fit's loss there jumps by more than the 5 dB rollback answers from step to step (1x1 and",
            "2x2 denoising and SR x8, 4x4 SR x4 ended with exit 1 before, 2026-12-06; with the jitter kept,",
            "4x4 and 8x8 SR x4 inputs came out 0.4-2.4 dB better than with `--reg-noise 0`, the old hint, on",
            "6 of 7 crops; bird at 4x4 came out 1.05 dB worse). 16-bit PNGs (gray, RGB, RGBA), 16-bit and",
            "float TIFFs and .npy arrays keep their dtype, value range and shape (`tests/test_formats.py`);",
            "a 9x7 image gets SSIM null with a note, a 28x28 digit is padded for",
            "`lip cs` and cropped back (`tests/test_odd_inputs.py`).", "",
            "Interruptions, determinism and numerical faults are covered by `tests/test_interrupt.py`,",
            "`tests/test_determinism.py` and `tests/test_numerical_faults.py`.", "",
            "Outputs that are not regular files succeed and stay what they were (`tests/test_special_outputs.py`):",
            "`-o /dev/null` or any character device, a named pipe, `>(...)`, a socket and `-o -` (stdout; PNG",
            "bytes, with nothing else on stdout, so `--json` is refused there: use `--log`) receive the finished",
            "file through a temporary file in the system's temp folder; nothing is ever renamed over them, and",
            "`lip prune` sends its artifact once, at the end, instead of after every round.", "",
            "| # | command: case | exit | stderr (last line) |", "| --- | --- | --- | --- |"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(head + rows) + "\n")


if __name__ == "__main__":
    write_table(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bad-input.md"))
