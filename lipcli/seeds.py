"""Random streams derived from `--seed`. A derived seed such as `seed * 100_003 + round` outgrows torch's 64 bits
for a large `--seed` (which may be up to 2**63 - 1): taken modulo 2**64 it stays a valid seed, and every value
below that (every seed a run has used so far) is unchanged."""
from __future__ import annotations

import torch


def valid(seed: int) -> int:
    """`seed` modulo 2**64: a seed torch takes."""
    return seed % 2**64


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator on `device` seeded with `valid(seed)`."""
    return torch.Generator(device=device).manual_seed(valid(seed))
