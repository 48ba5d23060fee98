"""The named net specs: what `--net NAME`, a YAML config's `net:` and the tests choose from.

A new entry here (or `PRESETS[name] = spec` at run time) is choosable by name everywhere; its
"kind" must be a registered family.
"""
from __future__ import annotations

import copy
from typing import Any

from .base import Spec, family
from .dcgan import gan_spec

_GAN = gan_spec()  # 32x32 gray digits: generator 373k params, critic 166k

PRESETS: dict[str, Spec] = {
    # LIP / DIP denoising, inpainting and SR net (anchors-spec a.1, a.3 LIP row): 2,217,831 params.
    "dip": dict(
        kind="skip", in_channels=32, out_channels=3, down=[128] * 5, up=[128] * 5, skip=[4] * 5,
        k_down=3, k_up=3, k_skip=1, down_mode="stride", up_mode="bilinear", need1x1_up=True,
        pad="reflection",
    ),
    # DIP text-inpainting variant: 128 skip channels, nearest upsampling.
    "dip-inpaint": dict(
        kind="skip", in_channels=32, out_channels=3, down=[128] * 5, up=[128] * 5, skip=[128] * 5,
        k_down=3, k_up=3, k_skip=1, down_mode="stride", up_mode="nearest", need1x1_up=True,
        pad="reflection",
    ),
    # OES encoder-decoder (anchors-spec c.1): 3,008,867 params. It average-pools between the down conv and
    # its BN, as the published code does (a spec without "pool_at" pools after the activation: masks
    # made before the field existed rebuild the net they were made on).
    "oes": dict(
        kind="skip", in_channels=32, out_channels=3, down=[16, 32, 64, 128, 128, 128],
        up=[16, 32, 64, 128, 128, 128], skip=[0] * 6, k_down=5, k_up=3, k_skip=1, down_mode="avg",
        pool_at="conv", up_mode="nearest", need1x1_up=False, pad="reflection",
    ),
    # Deep decoder (anchors-spec d): 6(k^2+2k)+3k params, 100,224 for k=128.
    "deep-decoder": dict(kind="decoder", k=128, blocks=6, out_channels=3),
    # GAN prior (dcgan.py): the generator, the critic, and both in one artifact.
    "dcgan-g": _GAN["g"],
    "dcgan-d": _GAN["d"],
    "gan": _GAN,
}
# The same hourglass with every 128 -> k (the uniform-width baseline of structured tickets): 1/2, 1/4 and
# 1/8 of the channels; 572,455 / 152,199 / 42,679 parameters for RGB.
for _k in (64, 32, 16):
    PRESETS[f"dip-w{_k}"] = {**PRESETS["dip"], "down": [_k] * 5, "up": [_k] * 5}


def preset(name: str, **overrides: Any) -> Spec:
    """A copy of a named spec with fields overridden (e.g. out_channels=1 for gray images)."""
    if name not in PRESETS:
        raise KeyError(f"unknown net preset {name!r}; choose one of {', '.join(PRESETS)}")
    spec = copy.deepcopy(PRESETS[name])
    spec.update(overrides)
    return spec


def resolve_spec(value: str | Spec) -> Spec:
    """A preset name, or a dict {"preset": name, **overrides} (e.g. from a YAML config's `net:`)."""
    if isinstance(value, str):
        return preset(value)
    if isinstance(value, dict):
        fields = dict(value)
        base = preset(fields.pop("preset", "dip"))
        known = {k for spec in PRESETS.values() if spec.get("kind") == base.get("kind") for k in spec}
        unknown = sorted(map(str, set(fields) - known))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} of a {base.get('kind')} net (fields: "
                           f"{', '.join(sorted(known))})")
        return {**base, **fields}
    raise KeyError(f"net must be a preset name or a mapping, not {type(value).__name__}")


def image_presets() -> list[str]:
    """The presets a DIP restore can fit (`--net` choices), read when asked so a later entry is listed."""
    return [name for name, spec in PRESETS.items() if family(spec).image_prior]
