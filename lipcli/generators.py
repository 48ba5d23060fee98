"""Where a generator prior comes from, and which of its weights a round uses.

A generator is a lip artifact (`lip train-generator` writes a "gan" bundle: G with its critic; `lip prune
--prior gan` adds G's masks and each round's fine-tuned weights) or an external one: a safetensors state
dict under lip's parameter names plus a spec file (YAML or JSON) naming the architecture, read into the
same dense Artifact (docs/generators.md).

The weights of round k (`lip cs --weights`):
- "finetuned": what round k-1's fine-tuning left, under mask k (artifact.py `finetuned/k/`): the net the
  LIP paper evaluates (its code saves it as Iter_{k-1}_sparse_trained.pth; the CS evaluation loads that);
- "rewound": the pretrained weights (theta0) under mask k: the ticket GAN IMP rewinds to;
- "auto": finetuned where the artifact holds them, else rewound (round 0 and dense generators, which are
  the pretrained net either way; artifacts written before lip kept them; untrained random baselines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from . import artifact, files, nets, yamlfile
from .errors import LipError
from .masks import Masks, apply_masks
from .nets import DCGANGenerator, gan_spec, generator_of

WEIGHTS = ("auto", "finetuned", "rewound")
TEMPLATES = {"gan": gan_spec(), "dcgan-g": gan_spec()["g"]}  # the kinds a generator file may be, with their fields


def read(path: Path | str, spec_file: Path | str | None = None) -> artifact.Artifact:
    """A generator: a lip artifact, or with `spec_file` an external state dict (a dense Artifact)."""
    if spec_file is None:
        try:
            art = artifact.load(path)
        except LipError as exc:
            if str(exc).endswith(artifact.NO_METADATA):  # a plain state dict: say how it is read
                raise LipError(f"{exc} (an external generator's state dict needs --generator-spec: "
                               "docs/generators.md)") from None
            raise
        kind = art.spec.get("kind")
        if kind not in TEMPLATES:
            raise LipError(f"{path}: is a {kind!r} artifact, not a generator (train one with lip "
                           "train-generator, or give an external one with --generator-spec)")
        return art
    spec = read_spec(Path(spec_file))
    path = Path(path)
    theta = _state_dict(path, spec)
    source = {"file": path.name, "sha256": files.sha256_of(path),
              "spec_file": Path(spec_file).name}
    return artifact.Artifact(artifact.new_meta(spec, method="external", external=source), theta, {})


def read_spec(path: Path) -> dict[str, Any]:
    """A generator spec from YAML/JSON: kind "dcgan-g" (G alone) or "gan" (G and its critic, which GAN
    pruning fine-tunes), with exactly the fields `nets.gan_spec` has, checked before anything is built."""
    try:
        spec = yamlfile.load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LipError(f"{path}: not a readable YAML/JSON spec ({str(exc).splitlines()[0][:80]})") from None
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in TEMPLATES:
        raise LipError(f"{path}: a generator spec is a mapping with kind {' or '.join(TEMPLATES)}, not "
                       f"{kind if isinstance(spec, dict) else type(spec).__name__!r}")
    _check_fields(path, "", spec, TEMPLATES[kind])
    try:
        nets.validate(spec)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LipError(f"{path}: not a valid generator spec ({exc})") from None
    if kind == "gan" and (spec["g"]["size"], spec["g"]["out_channels"]) != (spec["d"]["size"],
                                                                           spec["d"]["in_channels"]):
        raise LipError(f"{path}: the critic d must read the generator's images (same size, in_channels = "
                       "out_channels)")
    return spec


def _check_fields(path: Path, where: str, spec: Any, template: dict[str, Any]) -> None:
    if not isinstance(spec, dict):
        raise LipError(f"{path}: {where.rstrip('.')} must be a mapping")
    unknown, missing = sorted(set(spec) - set(template)), sorted(set(template) - set(spec))
    if unknown or missing:
        what = f"unknown field {where}{unknown[0]}" if unknown else f"missing field {where}{missing[0]}"
        raise LipError(f"{path}: {what} (a {template['kind']} spec has {', '.join(template)})")
    for key, default in template.items():
        value = spec[key]
        if isinstance(default, dict):
            _check_fields(path, f"{where}{key}.", value, default)
        elif key == "kind":
            if value != default:
                raise LipError(f"{path}: {where}kind must be {default}, not {value!r}")
        elif not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise LipError(f"{path}: {where}{key} must be a positive integer, not {value!r}")


def _state_dict(path: Path, spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of a safetensors state dict: exactly the spec's parameters and shapes, finite floats."""
    if not path.is_file():
        raise LipError(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        tensors = st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise LipError(f"{path}: not a safetensors state dict ({str(exc).splitlines()[0][:80]})") from None
    if any(k.startswith(artifact.THETA0) for k in tensors):
        raise LipError(f"{path}: is a lip artifact, which carries its own spec: give it without --generator-spec")
    with torch.device("meta"):
        shapes = {n: tuple(p.shape) for n, p in nets.build(spec).named_parameters()}
    missing, unknown = sorted(set(shapes) - set(tensors)), sorted(set(tensors) - set(shapes))
    if missing or unknown:
        what = f"missing {missing[0]}" if missing else f"unknown tensor {unknown[0]}"
        raise LipError(f"{path}: does not match the spec: {what} ({len(missing)} missing, {len(unknown)} "
                       f"unknown; the spec's {spec['kind']} has {', '.join(shapes)})")
    for name, shape in shapes.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise LipError(f"{path}: {name} has shape {tuple(t.shape)}, the spec needs {shape}")
        if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
            raise LipError(f"{path}: {name} must hold finite floats ({t.dtype})")
    return {n: tensors[n].float() for n in shapes}


def at_round(art: artifact.Artifact, round_: int, weights: str = "auto") -> tuple[torch.nn.Module, Masks, str]:
    """The artifact's net with round `round_`'s mask applied and the chosen weights (module docstring):
    (net, masks, "finetuned" or "rewound", the weights it holds)."""
    if weights not in WEIGHTS:
        raise LipError(f"unknown --weights {weights!r}: use {', '.join(WEIGHTS)}")
    if not art.prune_round and round_ != 0:
        raise LipError(f"the generator is dense; it has no round {round_}")
    masks = art.mask(round_) if art.prune_round else {}
    tuned = art.finetuned.get(round_)
    if weights == "finetuned" and tuned is None:
        have = (f"rounds {', '.join(map(str, sorted(art.finetuned)))} have them" if art.finetuned else
                "dense generators, untrained random baselines and artifacts of older lips hold none")
        raise LipError(f"has no fine-tuned weights for round {round_} ({have}): use --weights rewound")
    used = "finetuned" if tuned is not None and weights != "rewound" else "rewound"
    net = nets.build(art.spec, 0)  # every parameter is loaded next; seeded, so the caller's stream is left alone
    net.load_state_dict({**art.theta0, **(tuned if used == "finetuned" else {})}, strict=True)
    apply_masks(net, masks)
    return net, masks, used


def load(path: Path | str, round_: int | None = None, weights: str = "auto",
         spec_file: Path | str | None = None) -> tuple[DCGANGenerator, Masks, str]:
    """(frozen generator in eval mode, its masks keyed by the artifact's names, the weights used)."""
    return frozen(read(path, spec_file), path, round_, weights)


def unfinished(art: artifact.Artifact) -> str | None:
    """What a generator whose training was stopped before its last epoch lacks (train-generator writes one
    after every epoch, so a stopped run leaves a usable but undertrained one); None when it is finished."""
    done, planned = art.meta.get("epochs_done"), (art.meta.get("train_config") or {}).get("epochs")
    if isinstance(done, int) and isinstance(planned, int) and done < planned:
        return (f"trained {done} of its {planned} epochs (its training was stopped; the same train-generator "
                "command continues it)")
    return None


def frozen(art: artifact.Artifact, path: Path | str, round_: int | None = None, weights: str = "auto"
           ) -> tuple[DCGANGenerator, Masks, str]:
    """`load` of an artifact read from `path` (round None: its recommended round; 0 for a dense generator)."""
    try:
        net, masks, used = at_round(art, art.recommended_round if round_ is None else round_, weights)
    except LipError as exc:
        raise LipError(f"{path}: {exc}") from None
    g = generator_of(net)
    g.eval()
    for p in g.parameters():
        p.requires_grad_(False)
    return g, masks, used
