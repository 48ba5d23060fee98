"""Optimal Eye Surgeon (Ghosh et al., ICML 2024; anchors-spec c.2): learn a mask at initialisation.

Weights stay frozen at theta0. Each element j has a logit p_j; every step samples a relaxed
Bernoulli keep-mask by Gumbel-softmax, m_j = sigmoid((p_j + L_j) / tau) with L_j ~ Logistic(0,1)
(the two-class Gumbel-softmax in closed form), and minimises
    MSE(A f(z; theta0 * m), y) + lambda * sum_j KL(Bern(sigmoid(p_j)) || Bern(rho)),
rho = the kept fraction. The hard mask keeps exactly round(rho * N) elements with the largest logits.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from .. import seeds
from ..masks import Masks, top_global, total_count


def kl_bernoulli(p_logits: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(Bern(q_j) || Bern(rho)) with q = sigmoid(logits), computed stably in log space."""
    log_q, log_1q = nn.functional.logsigmoid(p_logits), nn.functional.logsigmoid(-p_logits)
    q = log_q.exp()
    return (q * (log_q - math.log(rho)) + (1 - q) * (log_1q - math.log1p(-rho))).sum()


class GumbelMasked(nn.Module):
    """A frozen net seen through learnable relaxed-Bernoulli masks on `names`; only logits train."""

    def __init__(self, net: nn.Module, names: list[str], tau: float, seed: int) -> None:
        super().__init__()
        self.net, self.names, self.tau = net, names, tau
        for p in net.parameters():
            p.requires_grad_(False)
        named = dict(net.named_parameters())
        self.logits = nn.ParameterList(nn.Parameter(self.logit_like(named[n])) for n in names)
        self.gen = seeds.generator(seed, named[names[0]].device)

    def logit_like(self, weight: torch.Tensor) -> torch.Tensor:
        """The zero logits gating `weight`: one per element (oes_channels.py: one per filter)."""
        return torch.zeros_like(weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        named = dict(self.net.named_parameters())
        masked = {}
        for n, p in zip(self.names, self.logits):
            u = torch.rand(p.shape, generator=self.gen, device=p.device).clamp(1e-6, 1 - 1e-6)
            masked[n] = named[n] * torch.sigmoid((p + torch.log(u) - torch.log1p(-u)) / self.tau)
        return functional_call(self.net, masked, (z,))

    def kl(self, rho: float) -> torch.Tensor:
        return sum(kl_bernoulli(p, rho) for p in self.logits)

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in zip(self.names, self.logits)}

    def keep(self, alive: Masks, rho: float) -> Masks:
        """The hard mask: exactly round(rho * N) of the `alive` elements, those with the largest logits."""
        return top_global(self.scores(), alive, round(rho * total_count(alive)))
