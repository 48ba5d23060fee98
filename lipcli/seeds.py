"""Random streams derived from `--seed`.

torch's CPU generator (mt19937) reads only the low 32 bits of a seed: 2**32 draws what 0 draws. So `--seed` stays
below 2**32 (`MAX`), every stream of a run is offset from it within 32 bits, and a derived seed such as
`seed * 100_003 + round` is taken modulo 2**32, which is what the CPU generator read of it anyway (a CUDA
generator would read all 64 bits: this keeps the two devices' streams alike).
"""
from __future__ import annotations

import torch

MAX = 2**32 - 1  # the largest --seed: one more would repeat seed 0's draws
# Seed offset of the weights a mask gets under --init fresh: a stream of their own, so that at the seed the mask
# was searched with (0 by default for both) they are not the draw its theta0 came from.
FRESH_INIT = 0x7F4A7C15
# Seed offset of SGLD's weight noise: its own stream (2**32, as it once was, drew the input jitter's numbers on a
# CPU), so the jitter is the same with or without it.
SGLD = 0x9E3779B9
# Offsets of CS's simulated noise and of its solver's starting latents: the matrix is drawn from the operator's seed
# itself, so at a seed both share, these would otherwise be its first entries (the noise its first row, scaled).
CS_NOISE = 0x2545F491
CS_LATENT = 0x61C88647


def valid(seed: int) -> int:
    """`seed` modulo 2**32: what the CPU generator reads of it."""
    return seed % 2**32


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator on `device` seeded with `valid(seed)`."""
    return torch.Generator(device=device).manual_seed(valid(seed))
