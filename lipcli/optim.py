"""Adam for lip's loops, without torch.optim's start-up cost.

torch.optim's Optimizer imports torch._dynamo (the compiler) on first use: about 2 s of every `lip`
process on a 2-core CPU (benchmarks/RESULTS-startup.md), for a compiler no lip loop uses. `Adam` makes the
update torch.optim.Adam makes, to the bit: with `fused=True` through the same fused kernel (the DIP fit),
otherwise by torch's own per-tensor arithmetic, which is what torch.optim.Adam runs on CPU tensors (the
generator's training and its latent solvers, whose tests carry thresholds measured under it). Its
state_dict has torch's layout (so a fit's state saved by an earlier lip still continues). It has what the
loops and the fit's rollback use: `state` (per parameter), `param_groups[0]["lr"]`, `zero_grad`, `step`.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterable

import torch

# The group settings torch.optim.Adam records, in its order, written alongside a state as it writes them: those
# the running torch's Adam takes (torch 2.4 has no `decoupled_weight_decay`; reading the signature loads no compiler).
_GROUP = {key: value for key, value in {
    "betas": None, "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
    "capturable": False, "differentiable": False, "fused": None, "decoupled_weight_decay": False}.items()
    if key in inspect.signature(torch.optim.Adam).parameters}


class Adam:
    """Adam (Kingma & Ba) with torch's defaults but `betas`: one fused pass over the parameters per step
    (`fused`), or torch's per-tensor update."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 fused: bool = True) -> None:
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, **_GROUP, "betas": betas, "fused": fused}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Gradients to None, as torch.optim's default: the next backward writes them afresh."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        groups: dict[tuple[torch.device, torch.dtype], list[list[torch.Tensor]]] = {}
        for p in self.params:
            if p.grad is None:
                continue
            if p not in self.state:  # as torch: the step count in float32 on the parameter's device
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            s = self.state[p]
            lists = groups.setdefault((p.device, p.dtype), [[], [], [], [], []])
            for column, t in zip(lists, (p, p.grad, s["exp_avg"], s["exp_avg_sq"], s["step"])):
                column.append(t)
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        for ps, grads, avgs, sqs, steps in groups.values():
            if group["fused"]:
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(ps, grads, avgs, sqs, [], steps, amsgrad=False, lr=lr, beta1=beta1,
                                   beta2=beta2, weight_decay=0.0, eps=eps, maximize=False,
                                   grad_scale=None, found_inf=None)
                continue
            for p, grad, avg, sq, step in zip(ps, grads, avgs, sqs, steps):  # torch's order of operations
                step += 1
                avg.lerp_(grad, 1 - beta1)
                sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                t = step.item()
                denom = (sq.sqrt() / (1 - beta2 ** t) ** 0.5).add_(eps)
                p.addcdiv_(avg, denom, value=-lr / (1 - beta1 ** t))

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: moments keyed by the parameter's index, the group without its tensors."""
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """`state_dict`'s (or torch.optim.Adam's); moments go to their parameter's device and dtype."""
        (group,) = state["param_groups"]
        self.param_groups[0].update({k: v for k, v in group.items() if k != "params"})
        self.state = {}
        for i, s in state["state"].items():
            p = self.params[int(i)]
            self.state[p] = {"step": s["step"].to(device=p.device, dtype=torch.float32),
                             **{k: s[k].to(device=p.device, dtype=p.dtype) for k in ("exp_avg", "exp_avg_sq")}}


def adam(params: list[torch.Tensor], lr: float, device: torch.device) -> Adam | torch.optim.Optimizer:
    """The fit's optimizer: the fused `Adam` where torch has the fused kernel (CPU, CUDA), torch.optim.Adam
    elsewhere. The fused kernel is one pass over all parameters: 1.9 ms vs 6.3 ms per step for the
    2.2M-param net on CPU (the same Adam update, rounded differently)."""
    if device.type in ("cpu", "cuda"):
        return Adam(params, lr)
    return torch.optim.Adam(params, lr=lr)
