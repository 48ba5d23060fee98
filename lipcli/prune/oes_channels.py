"""Channel OES (`lip prune --method oes --granularity channel`): Optimal Eye Surgeon with one Bernoulli
logit per conv filter instead of one per weight.

The relaxed-Bernoulli mask, the KL prior towards the kept fraction rho and the frozen theta0 are oes.py's;
only the gate's shape changes. A filter's logit has shape (out, 1, ..., 1) and broadcasts over the filter's
weights, so each step draws one Gumbel sample per filter and keeps or drops the whole filter, which is
what compaction (nets/compact.py) turns into a narrower, cheaper net. The hard mask keeps the round(rho * C)
filters with the largest logits, at least one in every layer (masks.top_channels), so no layer is emptied;
the head's filters are never gated (search.prunable_names leaves the last conv out at channel granularity).
"""
from __future__ import annotations

import torch

from ..masks import Masks, channel_count, top_channels
from .oes import GumbelMasked


class ChannelGumbelMasked(GumbelMasked):
    """GumbelMasked with one logit per output channel of each gated conv weight."""

    def logit_like(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.new_zeros(weight.shape[0], *[1] * (weight.dim() - 1))

    def scores(self) -> dict[str, torch.Tensor]:
        """One logit per filter (the channel scores' shape, channel_scores.py)."""
        return {n: s.flatten() for n, s in super().scores().items()}

    def keep(self, alive: Masks, rho: float) -> Masks:
        """Exactly round(rho * C) of the alive filters (at least one per layer), as element masks."""
        return top_channels(self.scores(), alive, round(rho * channel_count(alive)))
