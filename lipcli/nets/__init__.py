"""Nets built from a spec dict, one family per file, found by the spec's "kind" in `FAMILIES`.

base.py     the interface every family declares (`Net`), the registry, build / validate, and what
            works on any net (padded_size, make_input, conv_weight_names, param_order, estimate_bytes, probe, concat)
skip.py     the DIP skip hourglass ("skip")       decoder.py   the deep decoder ("decoder")
dcgan.py    the GAN prior ("dcgan-g", "dcgan-d", "gan")
presets.py  the named specs (`--net NAME`)        compact.py   a masked SkipNet made smaller and dense

A new family is one file with a registered `Net` subclass, imported below so that importing the
package fills the registry.
"""
# Import order is registration order (the order error messages list the kinds in).
from .base import (FAMILIES, Net, Spec, build, conv_weight_names, count_params, estimate_bytes, is_channels_last,
                   iteration_gflop, make_input, padded_size, param_order, probe, seeded, skeleton,
                   validate)
from .skip import CHECKPOINT_SAVING, ConvBlock, SkipNet, set_checkpointing
from .decoder import DeepDecoder, decoder_k_for_params
from .dcgan import GAN, DCGANDiscriminator, DCGANGenerator, gan_spec, generator_of
from .presets import PRESETS, image_presets, preset, resolve_spec

__all__ = [
    "FAMILIES", "Net", "Spec", "build", "conv_weight_names", "count_params", "estimate_bytes", "is_channels_last",
    "iteration_gflop", "make_input", "padded_size", "param_order", "probe", "seeded", "skeleton", "validate", "CHECKPOINT_SAVING",
    "ConvBlock", "SkipNet", "set_checkpointing", "DeepDecoder", "decoder_k_for_params", "GAN", "DCGANDiscriminator",
    "DCGANGenerator", "gan_spec", "generator_of", "PRESETS", "image_presets", "preset", "resolve_spec",
]
