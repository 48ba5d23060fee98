"""The mask artifact: one safetensors file holding a whole pruning trajectory and its lottery ticket.

Tensors:
  `prune_round/<param>`  uint8, per element the round at which it was pruned (0 = never), so the
                         mask of any round k is `prune_round == 0 | prune_round > k` — masks are nested;
  `theta0/<param>`       float32, the initial weights of every parameter (mask + theta0 = the ticket);
  `finetuned/<k>/<param>` float32, optional: weights a search trained for round k, pruned weights exactly
                         0 under round k's mask (GAN IMP: the generator as its fine-tuning left it, the
                         weights the LIP paper evaluates); parameters not stored are theta0's.
Metadata: one key, "lip", holding sorted compact JSON (one key keeps the header byte-stable, so the
same content always gives the same bytes). No pickle anywhere; a pickle is refused, never opened.

Slim files (format version 2, `save(..., slim=True)`; what the shipped mask library uses): a
`prune_round` tensor may keep size 1 along dims it is constant along (a channel ticket's rounds are
one byte per filter) and is broadcast back on load; and theta0 may be left out when it is exactly the
net's seeded initialisation, recorded as "theta0_sha256": it is regenerated from the spec and "seed"
and checked against that hash, so a torch whose initialisation changed is refused, never used
silently. Version 1 files are still what `save` writes by default, and both versions are read.

Files with fine-tuned weights carry format version 3, so an older lip refuses them by version ("upgrade
lip") instead of tripping over the unknown tensors; a file's version is the newest feature it uses.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__, files, library, nets
from .errors import LipError
from .files import atomic_path
from .imageformats import PICKLE_MAGIC
from .masks import Masks, from_rounds, kept_count, sparsity, total_count

FORMAT = "lip-artifact"
SUFFIX = ".safetensors"
FORMAT_VERSION = 1  # what plain files carry, so older lips read them
SLIM_VERSION = 2  # slim files (module docstring)
FINETUNED_VERSION = 3  # files holding fine-tuned weights
NEWEST_VERSION = FINETUNED_VERSION  # what this lip reads up to
ROUND, THETA0, FINETUNED = "prune_round/", "theta0/", "finetuned/"


@dataclass
class Artifact:
    """A net spec, its initial weights, the round at which each masked element was pruned, and (optionally)
    weights trained for some rounds: finetuned[k] = {param: tensor} for the parameters the search trained."""

    meta: dict[str, Any]
    theta0: dict[str, torch.Tensor]
    prune_round: dict[str, torch.Tensor]
    finetuned: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def __repr__(self) -> str:  # the dataclass's would print every tensor: megabytes in a notebook cell
        return (f"Artifact({self.meta.get('method') or 'mask'} on {self.spec.get('kind', '?')}, "
                f"rounds 0..{self.rounds}, recommended {self.recommended_round}, {len(self.prune_round)} masked tensors)")

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta["spec"]

    @property
    def rounds(self) -> int:
        """The last round recorded (round 0 is the dense net)."""
        return max((int(r["round"]) for r in self.meta.get("rounds", [])), default=0)

    @property
    def recommended_round(self) -> int:
        rec = self.meta.get("recommended_round")
        return self.rounds if rec is None else int(rec)

    def mask(self, round_: int) -> Masks:
        """Boolean keep-masks after `round_` rounds (0 = dense)."""
        if not 0 <= round_ <= self.rounds:
            raise LipError(f"round {round_} is not in this artifact (it has rounds 0..{self.rounds})")
        return from_rounds(self.prune_round, round_)

    def counts(self, round_: int) -> tuple[int, int]:
        """(kept, total) over the masked parameters at a round: sparsity counted exactly."""
        keep = self.mask(round_)
        return kept_count(keep), total_count(keep)

    def sparsity(self, round_: int) -> float:
        return sparsity(*self.counts(round_))

    @property
    def granularity(self) -> str:
        return granularity(self.meta)

    def round_for_sparsity(self, target: float) -> int:
        """The round whose sparsity is closest to `target`."""
        return min(range(self.rounds + 1), key=lambda k: abs(self.sparsity(k) - target))


def created() -> str:
    """UTC creation time; SOURCE_DATE_EPOCH pins it so reruns give byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch) if epoch else None))


def new_meta(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Metadata every artifact carries, plus whatever the producing method adds."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec,
            "tool_version": __version__, "torch_version": torch.__version__.split("+")[0]}
    meta.update(fields)
    return meta


def granularity(meta: dict[str, Any]) -> str:
    """What a round prunes: "element" or "channel" (whole filters), as recorded with the search
    settings; artifacts written before channel pruning existed have no key and read as element."""
    return (meta.get("search") or {}).get("granularity", "element")


def theta0_hash(theta0: dict[str, torch.Tensor]) -> str:
    """sha256 over every (name, float32 bytes) in name order: what identifies a regenerated theta0."""
    h = hashlib.sha256()
    for name in sorted(theta0):
        h.update(name.encode() + b"\0" + theta0[name].detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def seeded_theta0(spec: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """The net's initial weights as every lip command draws them: `nets.build(spec, seed)`."""
    return {n: p.detach().float().clone() for n, p in nets.build(spec, seed).named_parameters()}


def _narrowest(r: torch.Tensor) -> torch.Tensor:
    """The smallest tensor that broadcasts back to `r`: size 1 along every dim `r` is constant along."""
    for d in range(r.dim()):
        first = r.narrow(d, 0, 1)
        if r.shape[d] > 1 and torch.equal(r, first.expand_as(r)):
            r = first
    return r.contiguous()


def to_bytes(art: Artifact, slim: bool = False) -> bytes:
    meta, rounds, theta0 = art.meta, art.prune_round, art.theta0
    if art.finetuned:
        meta = {**meta, "format_version": FINETUNED_VERSION}
    if slim:
        rounds = {n: _narrowest(r) for n, r in rounds.items()}
        meta = {**meta, "format_version": max(SLIM_VERSION, meta["format_version"])}
        seed, digest = meta.get("seed"), theta0_hash(theta0)
        if _is_int(seed) and theta0_hash(seeded_theta0(art.spec, seed)) == digest:
            theta0, meta = {}, {**meta, "theta0_sha256": digest}
    tensors = {ROUND + n: r.to(torch.uint8).contiguous() for n, r in rounds.items()}
    tensors.update({THETA0 + n: w.detach().float().cpu().contiguous() for n, w in theta0.items()})
    tensors.update({f"{FINETUNED}{k}/{n}": w.detach().float().cpu().contiguous()
                    for k, weights in art.finetuned.items() for n, w in weights.items()})
    meta_json = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return st_save(tensors, metadata={"lip": meta_json})


def check_output(path: Path | str) -> None:
    """Refuse, before any work, an artifact output lip cannot or should not write: one not named .safetensors
    (`-o photo.png` is a slip that would put a mask under an image's name; a stream is fine)."""
    files.check_writable(path)
    if not files.is_stream(path) and Path(path).suffix.lower() != SUFFIX:
        raise LipError(f"cannot write {path}: an artifact is a {SUFFIX} file (e.g. -o {Path(path).stem}{SUFFIX})")


def save(path: Path | str, art: Artifact, slim: bool = False) -> None:
    """Write atomically: an interrupted save never leaves a partial artifact."""
    data = to_bytes(art, slim)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(data)


def _safetensors_layout(data: bytes) -> bool:
    """An 8-byte little-endian header length, then a JSON header that fits in the file. Checked
    before the pickle sniff because a header length of 0x..80 also starts with pickle's 0x80."""
    n = int.from_bytes(data[:8], "little")
    return len(data) >= 10 and data[8:9] == b"{" and 8 + n <= len(data)


NO_METADATA = "has no lip metadata; it was not written by lip"


def _fail(path: Path, what: str) -> LipError:
    return LipError(f"{path}: {what}")


def load(path: Path | str) -> Artifact:
    """Read and fully validate an artifact; any problem is one LipError, never a partial load."""
    path = library.resolve(Path(path))
    if not path.is_file():
        names = ", ".join(library.names()) or "none yet"
        raise _fail(path, f"{'is a folder, not an artifact file' if path.is_dir() else 'no such artifact file'} "
                          f"(check the path; shipped masks by name: {names})")
    data = path.read_bytes()
    if data.startswith(PICKLE_MAGIC) and not _safetensors_layout(data):
        raise _fail(path, "is a pickle/torch.save file; lip only reads .safetensors artifacts and "
                          "never unpickles (re-export the mask with lip prune)")
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"is not a valid safetensors file ({str(exc).splitlines()[0][:80]})") from None
    raw_meta = (header.get("__metadata__") or {}).get("lip")
    if raw_meta is None:
        raise _fail(path, NO_METADATA)
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError:
        raise _fail(path, "its lip metadata is not valid JSON (the file is damaged)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "is not a lip artifact (wrong format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, f"has an invalid format version {version!r} (the file is damaged)")
    if version > NEWEST_VERSION:
        raise _fail(path, f"has format version {version}; this lip reads up to {NEWEST_VERSION} "
                          "(upgrade lip)")
    _check_meta_shape(path, meta)
    art = Artifact(meta, *_split(path, tensors))
    shapes = _spec_shapes(path, art.spec)
    regenerated = version >= SLIM_VERSION and not art.theta0 and "theta0_sha256" in meta
    if version >= SLIM_VERSION:  # a slim file's rounds may broadcast
        art.prune_round = {n: _broadcast(path, n, r, shapes.get(n)) for n, r in art.prune_round.items()}
    _check_against_spec(path, art, shapes, regenerated)
    _check_finetuned(path, art, shapes)
    if regenerated:
        art.theta0 = _regenerate(path, art)
    return art


def _regenerate(path: Path, art: Artifact) -> dict[str, torch.Tensor]:
    """A slim file's theta0, drawn again from its seed and checked against the recorded hash."""
    seed = art.meta.get("seed")
    if not _is_int(seed):
        raise _fail(path, "records a theta0 hash but no integer seed to regenerate it from (the file is damaged)")
    theta0 = seeded_theta0(art.spec, seed)
    if theta0_hash(theta0) != art.meta["theta0_sha256"]:
        wrote = str(art.meta.get("torch_version"))
        if wrote.split("+")[0] == torch.__version__.split("+")[0]:  # same torch, same draw: the record changed
            raise _fail(path, f"its initial weights, regenerated from seed {seed} by the torch that wrote it "
                              f"({wrote}), do not match its recorded hash (the file is damaged)")
        raise _fail(path, f"its initial weights are regenerated from seed {seed}, but this torch "
                          f"({torch.__version__}) draws different ones than the torch that wrote it "
                          f"({wrote}); use that torch version, or a full artifact")
    return theta0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


MAPPINGS = ("search", "settings", "operator")  # metadata records readers look into
ROUND_NUMBERS = ("loss", "psnr_final")  # the numbers a round record carries, which readers format


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_meta_shape(path: Path, meta: dict[str, Any]) -> None:
    """The fields every reader relies on have the right types, so later code cannot trip on them."""
    if not isinstance(meta.get("spec"), dict):
        raise _fail(path, "its net spec is invalid (missing or not a mapping; the file is damaged)")
    rounds = meta.get("rounds", [])
    if not isinstance(rounds, list) or not all(isinstance(r, dict) and _is_int(r.get("round"))
                                               and r["round"] >= 0 for r in rounds):
        raise _fail(path, "its round records are malformed (the file is damaged)")
    wrong = next((k for k in MAPPINGS if meta.get(k) is not None and not isinstance(meta[k], dict)), None)
    if wrong is not None:
        raise _fail(path, f"its {wrong} record is not a mapping (the file is damaged)")
    if not isinstance(meta.get("images") or [], list):
        raise _fail(path, "its image records are not a list (the file is damaged)")
    wrong = next((f"round {r['round']}'s {k}" for r in rounds for k in ROUND_NUMBERS
                  if r.get(k) is not None and not _is_number(r[k])), None)
    if wrong is not None:
        raise _fail(path, f"{wrong} is not a number (the file is damaged)")
    rec = meta.get("recommended_round")
    top = max((r["round"] for r in rounds), default=0)
    if rec is not None and not (_is_int(rec) and 0 <= rec <= top):
        raise _fail(path, f"its recommended round {rec!r} is not one of its rounds 0..{top}")


def _split(path: Path, tensors: dict[str, torch.Tensor]) -> tuple[dict, dict, dict]:
    theta0, rounds, finetuned = {}, {}, {}
    for key, t in sorted(tensors.items()):  # a fixed order: the same file, the same message
        if key.startswith(FINETUNED):
            k, _, name = key[len(FINETUNED):].partition("/")
            if not (re.fullmatch(r"0|[1-9][0-9]{0,5}", k) and name):
                raise _fail(path, f"unexpected tensor {key!r} (fine-tuned weights are finetuned/<round>/<param>)")
            finetuned.setdefault(int(k), {})[name] = _typed(path, key, t, torch.float32)
        elif key.startswith(THETA0):
            theta0[key[len(THETA0):]] = _typed(path, key, t, torch.float32)
        elif key.startswith(ROUND):
            rounds[key[len(ROUND):]] = _typed(path, key, t, torch.uint8)
        else:
            raise _fail(path, f"unexpected tensor {key!r} (not a lip artifact key)")
    return theta0, rounds, finetuned


def _typed(path: Path, key: str, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The tensor, if it has `dtype` and (weights) only finite values: a NaN weight would otherwise surface
    as a fit that "diverged", blaming the learning rate for a damaged file."""
    if t.dtype != dtype:
        raise _fail(path, f"tensor {key} has dtype {t.dtype}, expected {str(dtype).removeprefix('torch.')}")
    if dtype.is_floating_point and not bool(torch.isfinite(t).all()):
        raise _fail(path, f"tensor {key} holds non-finite values (NaN or inf; the file is damaged)")
    return t


def _broadcast(path: Path, name: str, r: torch.Tensor, shape: tuple[int, ...] | None) -> torch.Tensor:
    """A slim file's per-round tensor expanded to its parameter's shape (left alone when the names do
    not match: the spec check reports that)."""
    if shape is None or tuple(r.shape) == shape:
        return r
    if r.dim() != len(shape) or any(a not in (1, b) for a, b in zip(r.shape, shape)):
        raise _fail(path, f"{name} has shape {tuple(r.shape)}, which does not broadcast to the net's {shape}")
    return r.expand(shape).clone()


def _spec_shapes(path: Path, spec: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape under the artifact's spec."""
    try:
        with torch.device("meta"), warnings.catch_warnings():  # shapes only: a hostile spec (huge
            warnings.simplefilter("ignore")  # widths) costs no memory, a degenerate one prints nothing
            net = nets.build(spec)
    except Exception as exc:  # any malformed spec, whatever the builder trips on
        raise _fail(path, f"its net spec is invalid ({exc})") from None
    return {n: tuple(p.shape) for n, p in net.named_parameters()}


def _check_against_spec(path: Path, art: Artifact, shapes: dict[str, tuple[int, ...]],
                        regenerated: bool) -> None:
    """The tensors are exactly the spec's parameters (theta0 may be absent when it is `regenerated`)."""
    missing = [] if regenerated else sorted(set(shapes) - set(art.theta0))
    extra = sorted(set(art.theta0) - set(shapes)) + sorted(set(art.prune_round) - set(shapes))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unknown parameter {extra[0]}"
        raise _fail(path, f"does not match its net spec: {what} ({len(missing)} missing, "
                          f"{len(extra)} unknown)")
    for group in (art.theta0, art.prune_round):
        for name, t in group.items():
            if tuple(t.shape) != shapes[name]:
                raise _fail(path, f"{name} has shape {tuple(t.shape)}, the net needs {shapes[name]}")
    held = sum(r.numel() for r in art.prune_round.values())
    totals = {r["total"] for r in art.meta.get("rounds", []) if _is_int(r.get("total"))}
    if totals and totals != {held}:
        raise _fail(path, f"its rounds record {min(totals):,} masked weights but its masks hold {held:,} (a mask "
                          "tensor is missing or added; the file is damaged)")
    top = max((int(r.max()) for r in art.prune_round.values() if r.numel()), default=0)
    if top > art.rounds:
        raise _fail(path, f"masks refer to round {top} but only {art.rounds} rounds are recorded")


def _check_finetuned(path: Path, art: Artifact, shapes: dict[str, tuple[int, ...]]) -> None:
    """Fine-tuned weights belong to recorded rounds, are parameters of the spec, and respect their round's
    mask (what they claim: a sparse net whose pruned weights are exactly 0)."""
    for k, weights in sorted(art.finetuned.items()):
        if k > art.rounds:
            raise _fail(path, f"has fine-tuned weights for round {k} but only {art.rounds} rounds are recorded")
        keep = art.mask(k)
        for name, w in sorted(weights.items()):
            if name not in shapes:
                raise _fail(path, f"fine-tuned weights of round {k} hold unknown parameter {name}")
            if tuple(w.shape) != shapes[name]:
                raise _fail(path, f"fine-tuned {name} of round {k} has shape {tuple(w.shape)}, the net needs "
                                  f"{shapes[name]}")
            if name in keep and bool((w[~keep[name]] != 0).any()):
                raise _fail(path, f"fine-tuned {name} of round {k} is nonzero where round {k} pruned it "
                                  "(the file is damaged)")
