"""The interface every net family declares, the family registry, and what works on any net.

A net is built from a spec: a plain JSON-able dict whose "kind" names its family. The spec is what a
mask artifact records, so a net is always rebuilt from the same numbers that made it. A family is one
file in this package holding a `Net` subclass registered under its kind (`@FAMILIES.register`), so
`build(spec)` finds it and a new family needs no edit elsewhere. What callers would otherwise work
out from outside by type checks, each family declares: its input geometry (`multiple`, `min_side`,
`input_shape`), the convs that read the input code (`input_convs`), the activation memory of a
training step (`activation_floats`) and whether `lipcli.nets.compact` can shrink it (`compactable`).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from .. import seeds
from ..errors import LipError
from ..registry import Registry

Spec = dict[str, Any]


class Net(nn.Module):
    """A net built from its spec. The defaults suit an input with no constraint on its size."""

    multiple: int = 1  # input sides must be multiples of this ...
    min_side: int = 1  # ... and at least this
    compactable: bool = False  # lipcli.nets.compact turns a masked one into a smaller dense net
    image_prior: bool = True  # fits an image from an input code (`--net`); the GAN's parts do not

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.spec = spec

    def input_shape(self, height: int, width: int) -> tuple[int, ...]:
        """Shape of the input code (without the batch) for an output of height x width."""
        raise NotImplementedError

    def input_convs(self) -> list[str]:
        """Names of the conv weights that read the input code (LIP keeps these dense)."""
        raise NotImplementedError

    @classmethod
    def activation_floats(cls, spec: Spec, checkpoint: bool) -> float:
        """Floats per output pixel that one training step keeps for backward (uncalibrated)."""
        raise LipError(f"no memory estimate for a {spec['kind']!r} net: it does not restore images")


FAMILIES: Registry[type[Net]] = Registry("net kind")


def family(spec: Spec) -> type[Net]:
    """The registered class of the spec's kind."""
    kind = spec.get("kind")
    if kind not in FAMILIES:
        raise ValueError(f"unknown net kind {kind!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES.get(kind)


def build(spec: Spec, seed: int | None = None) -> Net:
    """Build a net from its spec (the timm-style create-from-config entry point); with `seed`, its initial
    weights are that seed's draw (`seeded`)."""
    with nullcontext() if seed is None else seeded(seed):
        return family(spec)(spec)


_DRAWS = threading.RLock()  # held by `seeded`: torch's CPU stream is one per process


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw initial weights (torch's CPU stream, as `torch.manual_seed(seed)` would) without reseeding the
    caller's stream: a library call that reset it would hand a script the same "random" numbers after every
    restore. One draw at a time: the stream is the process's, and two threads' draws would interleave."""
    with _DRAWS, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seeds.valid(seed))
        yield


def skeleton(spec: Spec) -> Net:
    """The net's structure (names, shapes, parameter counts, padded sizes) on the meta device: no memory, and
    no draw from torch's random stream, which belongs to the caller (and to other threads' seeded draws)."""
    with torch.device("meta"):
        return build(spec)


def validate(spec: Spec) -> None:
    """Check that a spec builds, without allocating or initialising weights (on the meta device).

    Raises what `build` raises for a malformed spec (KeyError, TypeError, ValueError, IndexError).
    """
    skeleton(spec)


def pad(x: torch.Tensor, widths: tuple[int, ...], mode: str) -> torch.Tensor:
    """`F.pad` (a non-zero `mode`) in `x`'s own dtype. CPU autocast runs reflection padding in fp32, so a
    bf16 activation would be cast up before every padded conv and back down for it, and the same again in
    backward: 1-8% of a bf16 iteration at 128x128 (benchmarks/RESULTS-pad.md). The padded values are the
    input's own, so nothing is lost by padding in bf16."""
    if x.device.type == "cpu" and x.dtype != torch.float32:
        with torch.autocast("cpu", enabled=False):
            return F.pad(x, widths, mode=mode)
    return F.pad(x, widths, mode=mode)


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D map is laid out channels-last (and not also NCHW: a map with one channel, or one pixel, is
    both). Asked through the NHWC view, which also works under torch.func.vmap (its tensors cannot be asked
    about `memory_format`)."""
    return x.dim() == 4 and not x.is_contiguous() and x.permute(0, 2, 3, 1).is_contiguous()


def concat(parts: list[torch.Tensor]) -> torch.Tensor:
    """`torch.cat` along channels that keeps a channels-last net channels-last.

    A one-channel map (the compacted ticket's skip branches) is NCHW-contiguous and channels-last at once, but
    torch.cat makes an NCHW tensor of inputs whose strides disagree: the merge BN, the up conv's input and the
    upsampled branch's gradient then ran in NCHW, with layout copies around them (upsampling's backward alone is
    2x slower on an NCHW gradient). A contiguous one-channel map is the same memory in both layouts, so it joins
    as a channels-last view. With the jitter drawn in z's layout (fit.jittered): 0.92 of the ticket's training
    step at one thread, 0.97-0.99 at two (benchmarks/RESULTS-profile.md)."""
    if any(is_channels_last(p) for p in parts):
        parts = [p.as_strided(p.shape, (p.shape[2] * p.shape[3], 1, p.shape[3], 1))
                 if p.dim() == 4 and p.shape[1] == 1 and p.is_contiguous() else p for p in parts]
    return torch.cat(parts, dim=1)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class _ProductFlops(TorchFunctionMode):
    """Counts the FLOPs of convolutions and matrix products as torch's FlopCounterMode does (2 per
    multiply-add; its transposed-conv, linear and mm rules), at the torch-function level: FlopCounterMode
    imports torch._dynamo, ~2 s of a CPU process's start (benchmarks/RESULTS-startup.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        out = func(*args, **(kwargs or {}))
        if func in (F.conv1d, F.conv2d, F.conv3d):  # weight (C_out, C_in / groups, *kernel)
            self.total += 2 * out.numel() * args[1][0].numel()
        elif func in (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d):  # counted at the input
            self.total += 2 * args[0].numel() * args[1][0].numel()
        elif func is F.linear:
            self.total += 2 * (args[0].numel() // args[1].shape[-1]) * args[1].numel()
        elif func in (torch.matmul, torch.Tensor.__matmul__, torch.mm) and min(a.dim() for a in args[:2]) >= 2:
            self.total += 2 * out.numel() * args[0].shape[-1]
        return out


def iteration_gflop(net: nn.Module, x: torch.Tensor) -> float:
    """GFLOP of one training iteration on input `x`: the conv/matmul FLOPs of a forward pass, times 3 (the
    backward computes input and weight gradients). This is the work that channel compaction shrinks; the
    rest of an iteration (BatchNorm, upsampling, the optimizer) is memory-bound and not counted. One
    no-grad forward, so it fits wherever the fit does."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), _ProductFlops() as counter:
            net(x)
    finally:
        net.train(was_training)
    return 3 * counter.total / 1e9


def probe(net: Net, hooks: list[RemovableHandle]) -> None:
    """Run one forward pass for `hooks` to watch, then remove them: at the smallest valid input on the
    net's own device (meta included), in eval mode and without gradients, so that the BatchNorm running
    statistics and the training mode stay as they were."""
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()
            device = next(net.parameters(), torch.empty(0)).device
            net(torch.zeros((1, *net.input_shape(net.min_side, net.min_side)), device=device))
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()


def _forward_modules(net: Net) -> list[str]:
    """Names of the modules holding parameters, in the order one forward pass first calls them."""
    owners = {id(m): name for name, m in net.named_modules() if next(m.parameters(recurse=False), None) is not None}
    called: list[str] = []
    probe(net, [m.register_forward_pre_hook(lambda mod, args, name=owners[id(m)]: called.append(name))
                for m in net.modules() if id(m) in owners])
    return list(dict.fromkeys(called))


def conv_weight_names(net: Net) -> list[str]:
    """Conv weights in forward order: what IMP prunes. Only convs the forward reaches (a GAN bundle's
    forward is its generator's, so these are exactly G's)."""
    convs = {name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)}
    return [f"{name}.weight" for name in _forward_modules(net) if name in convs]


def param_order(net: Net) -> list[str]:
    """Every parameter name in forward order (a module's own in definition order: weight, bias); any the
    forward never reaches go last, in definition order.

    The published nets are `nn.Sequential`s built in the order they run (DIP's skip: a level's skip
    branch, its two down convs, the deeper levels, then its merge BN and up convs), so this is also
    their `model.parameters()` order: how interop.py matches their mask files to lip's names."""
    by_module: dict[str, list[str]] = {}
    for name, _ in net.named_parameters():
        by_module.setdefault(name.rpartition(".")[0], []).append(name)
    order = [p for mod in _forward_modules(net) for p in by_module.get(mod, [])]
    reached = set(order)
    return order + [n for n, _ in net.named_parameters() if n not in reached]


def padded_size(net: Net, height: int, width: int) -> tuple[int, int]:
    """The size the net works at: each side rounded up to the net's multiple and minimum."""
    m, lo = net.multiple, net.min_side
    return tuple(max(lo, -(-side // m) * m) for side in (height, width))  # type: ignore[return-value]


def make_input(net: Net, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """The fixed input code z ~ U[0,1) * 0.1 (DIP's `get_noise(..., 'noise')` default)."""
    return torch.rand((1, *net.input_shape(height, width)), generator=generator) * 0.1


def estimate_bytes(spec: Spec, height: int, width: int, precision: str, checkpoint: bool = False) -> int:
    """Rough peak memory of one training step: activations kept for backward dominate.

    The family counts the activation floats per pixel; times a calibration factor, plus weights,
    Adam state, a fixed overhead and the early-stop buffer. Calibrated against measured peaks in
    benchmarks/RESULTS-iter.md (128^2-512^2) and, for checkpointed conv blocks,
    benchmarks/RESULTS-bigimage.md (up to 2048^2).
    """
    per = 2 if precision == "bf16" else 4
    floats = family(spec).activation_floats(spec, checkpoint)
    n_params = count_params(skeleton(spec))  # shapes only: no weights allocated or initialised
    fixed = (350 if precision == "bf16" else 200) * 2**20  # runtime, allocator, rollback snapshots
    es_buffer = 200 * min(3 * height * width, 65536) * 8  # early-stop window (float64)
    return int(1.45 * floats * per * height * width + 16 * n_params + fixed + es_buffer)
