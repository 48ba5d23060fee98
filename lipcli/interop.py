"""Masks from and for other DIP code: the official LIP code's `torch.nn.utils.prune` files and OES's flat
boolean vectors, translated to and from lip's parameter names. Pure functions; the CLI renders.

What is read (never code: `torch.load(weights_only=True)`, `numpy.load(allow_pickle=False)`):
- LIP (Chasing-Better-DIPs, anchors-spec b.1): `torch.save` of `{"<module>.weight_mask": tensor}` for
  every Conv2d (1 = keep), or of a whole pruned `state_dict()` (`*_orig` weights, `*_mask` buffers, BN
  statistics), possibly under a "state_dict" key and with DataParallel's "module." prefix.
- OES (Optimal Eye Surgeon, anchors-spec c.2): a `.npy` vector of booleans, one per parameter of
  `model.parameters()`, concatenated. One that prunes conv weights alone is imported as lip's conv scope.

How names are matched. Neither file uses lip's names (`levels.0.down.conv.weight`): the published code
names modules by their index in nested Sequentials (`1.1.1.1.weight_mask`), and OES keeps no names at
all. So masks are matched by order and shape. The published `skip()` is an nn.Sequential built in the
order it runs, so its `model.parameters()` order is the order in which lip's net of the same spec uses
its parameters (`nets.param_order`: per level its skip conv, its two down convs, the deeper levels, then
its merge BatchNorm, up conv and 1x1 conv; the head last; tests/test_interop.py checks that the two nets
compute the same image with weights matched this way). A prune file's masks are taken in the file's
order (a state dict keeps module order; inside one module weight comes before bias, which `prune`
reverses by re-registering `weight_orig` last) and must be exactly lip's conv weights in forward order
(LIP prunes every Conv2d) or every parameter (OES's scope); an OES vector must have one entry per
parameter. A different count or any different shape is refused, naming the first mismatch: a mask laid
on the wrong tensor would silently be another mask. The net is the one given, or else the first image
preset (with 3 or 1 output channels) that every file fits.

The way back, `export`: a round's masks as the plain dict `prune.custom_from_mask` takes one entry of
(`{"<lip name>_mask": float tensor, 1 = keep}`, conv weights or every parameter, in the same order, so
zipping it with the published net's Conv2d modules pairs each mask with its layer), or an OES vector.
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import artifact, nets
from .errors import LipError
from .files import atomic_path, sha256_of
from .imageformats import NPY_MAGIC, PICKLE_MAGIC
from .masks import Masks, record_round
from .prune.search import Trajectory

PRUNE, VECTOR = "torch-prune", "oes-vector"
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # state-dict entries that are no parameters
EXPORTS = {".pt": PRUNE, ".pth": PRUNE, ".npy": VECTOR}


@dataclass
class Foreign:
    """One file's masks in the file's order: (name, bool tensor) per mask, or one flat vector (name "")."""

    path: Path
    layout: str
    masks: list[tuple[str, torch.Tensor]]
    sha256: str


# ------------------------------------------------------------------ reading files

def read(path: Path) -> Foreign:
    """A LIP prune file or an OES vector (told apart by content, not by name)."""
    data = _bytes(path)
    if data.startswith(NPY_MAGIC):
        flat = _binary(path, "the vector", torch.from_numpy(_npy(path, data)))
        return Foreign(path, VECTOR, [("", flat)], hashlib.sha256(data).hexdigest())
    entries = _state_dict(path, data)
    masks = [(name, _binary(path, name, t)) for name, t in entries if name.endswith("_mask")]
    if not masks:
        raise LipError(f"{path}: no *_mask entries (not a torch.nn.utils.prune mask file or pruned state dict)")
    return Foreign(path, PRUNE, masks, hashlib.sha256(data).hexdigest())


def read_weights(path: Path, net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Initial weights from a state dict (LIP's saved inits, or a pruned state dict's `*_orig`) under
    lip's names: its parameters, in order, must be every parameter of `net` in forward order."""
    entries = _state_dict(path, _bytes(path))
    params = [(name.removesuffix("_orig"), t) for name, t in entries
              if not name.endswith("_mask") and name.rpartition(".")[2] not in BN_BUFFERS]
    order = nets.param_order(net)
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    _check_order(path, "weight", params, order, shapes, "parameter")
    bad = next((name for name, t in params if t.is_complex() or not t.is_floating_point()
                or not bool(torch.isfinite(t).all())), None)
    if bad is not None:  # NaN made an artifact every command refuses; complex lost its imaginary part in silence
        raise LipError(f"{path}: {bad} is not a tensor of finite real numbers (weights must be)")
    return {n: t.detach().float().clone() for n, (_, t) in zip(order, params)}


def _bytes(path: Path) -> bytes:
    if not path.is_file():
        raise LipError(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    data = path.read_bytes()
    if not data:
        raise LipError(f"{path}: the file is empty")
    return data


def _npy(path: Path, data: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused, never unpickled
        raise LipError(f"{path}: not a plain numeric .npy array ({str(exc).splitlines()[0][:80]})") from None
    except (OSError, EOFError) as exc:
        raise LipError(f"{path}: a damaged .npy file ({str(exc).splitlines()[0][:80]})") from None
    if array.ndim != 1 or not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)):
        raise LipError(f"{path}: an OES mask is a flat vector of booleans; this array is {array.dtype} "
                       f"of shape {array.shape}")
    return array


def _npz(data: bytes) -> bool:
    """Whether `data` is a zip archive of .npy members only (what np.savez writes; torch.save's zip holds a pickle)."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def _state_dict(path: Path, data: bytes) -> list[tuple[str, torch.Tensor]]:
    """The tensors of a torch.save'd dict, in a canonical order (see the module docstring)."""
    if not data.startswith(PICKLE_MAGIC):  # torch.save's zip archive, or its legacy pickle
        raise LipError(f"{path}: not a torch.save file, nor an .npy array")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it may not read: the error says it
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise LipError(f"{path}: holds Python objects besides tensors (or is damaged); lip loads with "
                       "weights_only=True and never unpickles code (save a plain dict of tensors)") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError):
        raise LipError(f"{path}: " + ("an .npz archive of arrays (np.savez), not a torch.save file: give its OES "
                                      "mask vector as one .npy (np.save)" if _npz(data)
                                      else "a damaged torch.save file")) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in obj.items()):
        raise LipError(f"{path}: not a dict of tensors (a state dict or a mask file)")
    modules: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for name, t in obj.items():
        name = name.removeprefix("module.")
        modules.setdefault(name.rpartition(".")[0], []).append((name, t))
    return [e for entries in modules.values() for e in sorted(entries, key=_leaf_rank)]


def _leaf_rank(entry: tuple[str, Any]) -> int:
    """Inside one module: weight (or its _orig/_mask) before bias, as lip and an unpruned module list them."""
    leaf = entry[0].rpartition(".")[2].removesuffix("_orig").removesuffix("_mask")
    return {"weight": 0, "bias": 1}.get(leaf, 2)


def _binary(path: Path, name: str, t: torch.Tensor) -> torch.Tensor:
    if t.dtype != torch.bool and not bool(((t == 0) | (t == 1)).all()):
        raise LipError(f"{path}: {name} holds values other than 0 and 1 (not a keep-mask)")
    return t != 0


# ------------------------------------------------------------------ matching to lip's names

def _check_order(path: Path, what: str, entries: list[tuple[str, torch.Tensor]], names: list[str],
                 shapes: dict[str, tuple[int, ...]], kind: str) -> None:
    if len(entries) != len(names):
        raise LipError(f"{path}: {len(entries)} {what}s, the net has {len(names)} {kind}s")
    for i, ((theirs, t), ours) in enumerate(zip(entries, names)):
        if tuple(t.shape) != shapes[ours]:
            raise LipError(f"{path}: {what} {i + 1} of {len(names)} ({theirs}) is {_shape(t.shape)}, lip's {kind} "
                           f"{i + 1} ({ours}) is {_shape(shapes[ours])}: made for another net (see --net)")


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape)) or "scalar"


def match(foreign: Foreign, net: torch.nn.Module) -> tuple[str, Masks]:
    """The file's masks under lip's names and their scope: "conv" (every conv weight) or "all"."""
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    order = nets.param_order(net)
    if foreign.layout == VECTOR:
        flat, total = foreign.masks[0][1], sum(math.prod(shapes[n]) for n in order)
        if flat.numel() != total:
            raise LipError(f"{foreign.path}: the vector has {flat.numel():,} entries, the net has {total:,} "
                           "parameters (an OES mask has one per parameter)")
        parts = torch.split(flat, [math.prod(shapes[n]) for n in order])
        masks = {n: part.view(shapes[n]).clone() for n, part in zip(order, parts)}
        convs = nets.conv_weight_names(net)
        if all(bool(masks[n].all()) for n in order if n not in convs):
            # Only conv weights pruned: lip's conv scope, so an exported conv ticket comes back as it left.
            return "conv", {n: masks[n] for n in convs}
        return "all", masks
    scopes = {"conv": nets.conv_weight_names(net), "all": order}
    scope = next((s for s, names in scopes.items() if len(names) == len(foreign.masks)), None)
    if scope is None:
        raise LipError(f"{foreign.path}: {len(foreign.masks)} masks; they must cover every conv weight (LIP: "
                       f"{len(scopes['conv'])} here) or every parameter (OES: {len(order)}) of the net (see --net)")
    names = scopes[scope]
    _check_order(foreign.path, "mask", foreign.masks, names, shapes, "conv weight" if scope == "conv" else "parameter")
    return scope, {n: m for n, (_, m) in zip(names, foreign.masks)}


def find_spec(files: list[Foreign]) -> dict[str, Any]:
    """The first image preset, with 3 or 1 output channels, that every file fits."""
    for name in nets.image_presets():
        for channels in (3, 1):
            spec = nets.preset(name, out_channels=channels)
            with torch.device("meta"):
                net = nets.build(spec)
            try:
                for f in files:
                    match(f, net)
            except LipError:
                continue
            return spec
    raise LipError(f"{files[0].path}: fits none of the nets {', '.join(nets.image_presets())} (3 or 1 output "
                   "channels); give the one it was made for with --net, or --config with its net:")


# ------------------------------------------------------------------ import and export

def import_masks(paths: list[Path], spec: dict[str, Any] | None = None, init: Path | None = None,
                 seed: int = 0, keep_input_dense: bool = False) -> artifact.Artifact:
    """One artifact from foreign masks: file k is round k (files of one search, sparsest last, must be
    nested). theta0 is `init`'s weights, else a fresh draw with `seed` (as `lip prune --seed` would make).
    `keep_input_dense` leaves the z-facing convs unmasked, as the LIP code applies its masks."""
    files = [read(Path(p)) for p in paths]
    spec = spec if spec is not None else find_spec(files)
    net = nets.build(spec, seed)
    matched = [match(f, net) for f in files]
    scopes = {scope for scope, _ in matched}
    if len(scopes) > 1:
        raise LipError(f"{paths[0]} and the other files mask different parameters (conv weights vs every "
                       "parameter): import them separately")
    names = [n for n in matched[0][1] if not (keep_input_dense and n in net.input_convs())]
    provenance: dict[str, Any] = {"seed": seed}  # theta0 is the seeded draw (a slim save can regenerate it)
    if init is not None:
        weights = read_weights(Path(init), net)
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(weights[n])
        digest = sha256_of(init)
        provenance = {"init": {"file": Path(init).name, "sha256": digest}}
    traj = Trajectory.start(net, names, method="imported", **provenance,
                            imported=[{"file": f.path.name, "layout": f.layout, "sha256": f.sha256} for f in files],
                            search={"scope": scopes.pop(), "keep_input_dense": keep_input_dense})
    traj.record(0, 0.0)
    before = traj.masks(0)
    for k, (f, (_, masks)) in enumerate(zip(files, matched), 1):
        after = {n: masks[n] for n in names}
        revived = next((n for n in names if bool((after[n] & ~before[n]).any())), None)
        if revived is not None:
            raise LipError(f"{f.path}: keeps weights of {revived} that {files[k - 2].path.name} pruned; give the "
                           "files of one search in round order (their masks are nested)")
        record_round(traj.prune_round, before, after, k)
        traj.record(k, 0.0)
        before = after
    return traj.to_artifact(len(files))


def export_layout(path: Path) -> str:
    """The layout an export name asks for: .pt/.pth a prune mask dict, .npy an OES vector."""
    layout = EXPORTS.get(path.suffix.lower())
    if layout is None:
        raise LipError(f"{path}: give OUT.pt (torch.nn.utils.prune masks, LIP's format) or OUT.npy (an OES vector)")
    return layout


def export(art: artifact.Artifact, round_: int, path: Path) -> tuple[int, float]:
    """Write round `round_`'s masks for the published code (see the module docstring); returns how many
    tensors (or vector entries) were written and the fraction of zeros among the entries written. Parameters
    the artifact does not mask are written all-ones, so that fraction is below the artifact's sparsity (of the
    parameters it masks) when the layout covers more than they."""
    layout = export_layout(path)
    with torch.device("meta"):
        net = nets.build(art.spec)
    order, convs = nets.param_order(net), nets.conv_weight_names(net)
    keep = art.mask(round_)
    names = convs if layout == PRUNE and set(keep) <= set(convs) else order
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    masks = {n: keep[n] if n in keep else torch.ones(shapes[n], dtype=torch.bool) for n in names}
    with atomic_path(path) as tmp:
        if layout == VECTOR:
            with open(tmp, "wb") as out:
                np.save(out, torch.cat([masks[n].flatten() for n in names]).numpy(), allow_pickle=False)
        else:
            torch.save({f"{n}_mask": masks[n].float() for n in names}, tmp)
    entries = sum(math.prod(shapes[n]) for n in names)
    zeros = sum(int((~masks[n]).sum()) for n in names) / entries
    return (entries if layout == VECTOR else len(names)), zeros
