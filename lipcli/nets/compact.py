"""Structured compaction of a masked DIP skip net: drop dead and unread channels, fold constants.

Why a pruned net can be made smaller at all (issue 7.2). In the SkipNet every feature map a conv
reads is the output of a *train-mode* BatchNorm (possibly followed by LeakyReLU, pooling or
upsampling). If a channel is constant over (N, H, W) before such a BN, its batch variance is 0 and
the BN outputs exactly its beta (`bn.bias`), whatever the constant, gamma or anything upstream. A
channel is constant when its conv reads no varying input through an unpruned weight: e.g. a filter
whose weights are all pruned outputs its bias. (A masked BN gamma makes the BN output beta too.)
Pooling (after the activation, or between a conv and its BN as in the OES net), bilinear/nearest
upsampling, reflection padding and LeakyReLU keep constants constant, so
a constant channel c with value v_c contributes to the next conv's output o the spatially constant
sum_taps W[o, c, :, :] * v_c: it can be removed and its contribution added to that conv's bias. The
Concat of a level feeds `merge_bn`, so a constant skip or deeper channel leaves the merge as
merge_bn's beta and is folded into the `up` conv the same way. Independently, a channel whose every
outgoing weight (into the outputs that are themselves needed) is pruned is read by nobody and is
removed from its producer. One forward pass (which channels are constant) and one backward pass
(which channels some needed output reads) over the whole hourglass settle both rules, so a whole
skip branch, or a whole deeper level, can disappear.

What is exact (tests/test_compact.py checks each claim):

* Forward pass, train mode: `compact(net, masks)(z)` computes the masked net's function (masked
  entries zeroed) for any batch of valid-size inputs: equal to ~1e-13 in float64, and in float32
  within the masked net's own rounding (measured up to ~4e-6, narrow and paper presets; the tests
  use 1e-5). Eval mode is NOT equivalent (a constant channel's running variance is not 0), but DIP
  never calls eval().
  One caveat belongs to the masked net, not to compaction. Train-mode BN of a channel whose
  variance is far below eps multiplies its spatial deviations by gamma / sqrt(eps) ~ 300. A
  constant that a conv re-derives from other constants through *live* weights is constant only up
  to rounding (the conv's border and interior paths round differently), so along a chain of such
  layers (e.g. a level cut off by pruning its `down` conv entirely: everything below it is
  mathematically constant) the masked net amplifies rounding into O(1) noise, which it then feeds
  on as if it were a feature. The compact net computes the exact-arithmetic value there (checked
  against a float64 evaluation that snaps constant channels), so it differs from the masked net's
  float output; with single dead filters, dead skip branches, or filters pruned one by one (biases
  only, exactly constant) this does not arise and the two agree to rounding.

* Training: every parameter entry that influences the output is kept, so the compact net's gradients
  equal the masked net's, entry by entry, and one optimizer step agrees (Adam is per element: kept
  entries see the same gradients). A constant channel shifts every output of a conv that reads it by a
  constant, and the train-mode BN after every conv but the head subtracts that shift again: so a
  removed constant channel matters only where the head reads it. There it is kept as its BN beta
  (`const_bias`, on the producer block; it is what the BN emits whatever its input), and the head
  keeps the unpruned weights from it (`fold_weight`, out x removed x k x k, taps kept separately for
  Adam), adding `fold_weight.sum(taps) @ act(const_bias)` to its bias every forward, a tiny
  differentiable path. What is dropped has zero gradient in the masked net up to rounding: the params
  of unread channels (they meet only pruned weights), the conv bias, gamma and inputs of a constant
  channel (a train-mode BN passes a zero-sum gradient to a constant input), and the betas of constant
  channels and the weights from them that only BN-followed convs read. Until 2026-12-06 those were
  kept and trained: 405k of the 551k parameters the default ticket then fitted, which the masked net's Adam moves on
  round-off alone (a few 1e-3 in 50 steps) to no effect beyond round-off; dropping them took a
  fixed-length restore 0.93 of the time (experiments/RESULTS-fold.md). Over many steps, in float64,
  the two fits agree iterate by iterate (tests/test_restore_compact.py) with one exception: at a
  ticket's theta0 every BN beta is 0, so a removed channel that the head reads (the one conv with no
  BN after it) sits exactly on the kink of its LeakyReLU. The compact net takes the slope at 0 (0.2);
  the masked net adds round-off to beta and takes 1 or 0.2 by its sign, so that beta's first gradient
  differs up to 5x, Adam's moments differ, and the fits part from the second step. Either is a valid
  subgradient; the masked net's choice is round-off, so it cannot be reproduced. In float32 a DIP fit
  is chaotic anyway: rounding differences grow to ~0.1 in the raw output within tens of Adam steps
  (Adam normalises gradients, however small), and the masked net run in channels_last drifts from
  itself about as much as the compact fit drifts from it. Fit it with `fit(compact_net, ...,
  masks=compact_net.masks)` so pruned entries inside kept blocks stay zero, and write the result back
  with `compact_net.load_into(net)`.

Structure comes from the masks, never from weight values: an entry is pruned iff its mask entry is
False; a parameter without a mask is dense. (So the compaction stays valid for a whole fit: masked
entries stay zero, unmasked ones move.) Zero padding (spec pad != "reflection" with k > 1) does not
keep constants constant at the border, so a constant read through such a conv is kept
materialised instead of folded (exact, less compaction). Only the SkipNet is handled.

`compact_net.report`: channels_removed / channels_total (conv-block output channels, head
excluded), params_before / params_after (all parameters, as nets.count_params), unpruned_before /
unpruned_after (parameters not masked out), z_channels_kept, layers (block -> (kept, total)).

Unstructured masks rarely empty a whole filter, so they compact little; see
benchmarks/RESULTS-compact.md for measured speed-ups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..masks import Masks, kept_count
from .base import Spec, concat, count_params, pad, skeleton
from .skip import ConvBlock, HourglassGeometry, SkipNet

Size = tuple[int, int]


# --------------------------------------------------------------------------------------------------
# Analysis: which channels are constant, which are materialised, which constants are read
# --------------------------------------------------------------------------------------------------

@dataclass
class _Site:
    """A feature map some conv reads (or the Concat reads): per-channel facts."""

    const: torch.Tensor  # bool[C]: spatially (and batch-) constant in the masked net
    keep: torch.Tensor = field(default=None)  # bool[C]: materialised in the compact net
    read: torch.Tensor = field(default=None)  # bool[C]: some needed output reads it via a live weight

    def __post_init__(self) -> None:
        self.keep = torch.zeros_like(self.const)
        self.read = torch.zeros_like(self.const)

    @property
    def folded(self) -> torch.Tensor:
        """Constant channels that are read but not materialised: their value is folded."""
        return self.const & ~self.keep & self.read


def _foldable(conv: nn.Conv2d) -> bool:
    """A constant input stays constant after this conv's padding (reflect/replicate/circular or none)."""
    return conv.padding_mode != "zeros" or all(p == 0 for p in conv.padding)


class _Analysis:
    """Constant propagation forward, liveness backward, over a SkipNet's hourglass (from masks)."""

    def __init__(self, net: SkipNet, masks: Masks) -> None:
        self.net = net
        self.params = dict(net.named_parameters())
        self.masks = masks
        self.modules = dict(net.named_modules())
        self.sites: dict[str, _Site] = {}
        self.need: dict[str, torch.Tensor] = {}  # consumer conv name -> bool[Cout] outputs computed
        self.reads: dict[str, str] = {}  # consumer conv name -> the site it reads
        self.sites["z"] = _Site(torch.zeros(net.spec["in_channels"], dtype=torch.bool))
        self._forward_level(0, "z")
        head_in = self.last(0)
        self._consume("head", head_in, torch.ones(net.head.out_channels, dtype=torch.bool))
        self._backward_level(0, self.sites[head_in].keep.clone())

    # structural facts --------------------------------------------------------------------------
    def conn(self, conv_name: str) -> torch.Tensor:
        """bool[out, in]: some tap of W[o, c] is unpruned."""
        w = self.params[f"{conv_name}.weight"]
        m = self.masks.get(f"{conv_name}.weight")
        if m is None:
            return torch.ones(w.shape[:2], dtype=torch.bool)
        return m.flatten(2).any(2).cpu()

    def dead(self, name: str, size: int) -> torch.Tensor:
        """bool[C]: entries pruned by the mask of parameter `name` (none without a mask)."""
        m = self.masks.get(name)
        return torch.zeros(size, dtype=torch.bool) if m is None else ~m.cpu()

    def last(self, i: int) -> str:
        lv = self.net.levels[i]
        return f"levels.{i}.up1x1" if lv.up1x1 is not None else f"levels.{i}.up"

    # forward: constant propagation --------------------------------------------------------------
    def _block_const(self, name: str, in_const: torch.Tensor) -> torch.Tensor:
        block: ConvBlock = self.modules[name]
        conn = self.conn(f"{name}.conv")
        live = conn & ~in_const[None] if _foldable(block.conv) else conn
        conv_const = ~live.any(1)
        out_const = conv_const | self.dead(f"{name}.bn.weight", conv_const.numel())
        self.sites[name] = _Site(out_const)
        return out_const

    def _forward_level(self, i: int, x_site: str) -> None:
        p, lv = f"levels.{i}", self.net.levels[i]
        x_const = self.sites[x_site].const
        parts = []
        if lv.skip is not None:
            parts.append(self._block_const(f"{p}.skip", x_const))
        d = self._block_const(f"{p}.down", x_const)
        d = self._block_const(f"{p}.down2", d)  # pooling (at the conv or after) keeps constants constant
        if i + 1 < len(self.net.levels):
            self._forward_level(i + 1, f"{p}.down2")
            d = self.sites[self.last(i + 1)].const
        parts.append(d)  # upsampling keeps constants constant
        cat = torch.cat(parts)
        self.sites[f"{p}.merge"] = _Site(cat | self.dead(f"{p}.merge_bn.weight", cat.numel()))
        u = self._block_const(f"{p}.up", self.sites[f"{p}.merge"].const)
        if lv.up1x1 is not None:
            self._block_const(f"{p}.up1x1", u)

    # backward: what must be materialised --------------------------------------------------------
    def _consume(self, conv_owner: str, site_name: str, needed: torch.Tensor) -> None:
        """Conv `conv_owner` computes outputs `needed` from site `site_name`: mark what it reads."""
        conv_name = "head" if conv_owner == "head" else f"{conv_owner}.conv"
        conv = self.modules[conv_name]
        site = self.sites[site_name]
        conn = self.conn(conv_name)[needed]
        materialise = conn & ~site.const[None] if _foldable(conv) else conn
        site.keep |= materialise.any(0)
        # A constant input adds a constant to each output; the train-mode BN after every conv but the head
        # subtracts it again, so only the head's constant inputs need their values folded.
        site.read |= (conn if conv_owner == "head" else materialise).any(0)
        self.need[conv_owner] = needed.clone()
        self.reads[conv_owner] = site_name

    def _backward_level(self, i: int, out_keep: torch.Tensor) -> None:
        p, lv = f"levels.{i}", self.net.levels[i]
        x_site = "z" if i == 0 else f"levels.{i - 1}.down2"
        self.sites[self.last(i)].keep = out_keep.clone()
        if lv.up1x1 is not None:
            self._consume(f"{p}.up1x1", f"{p}.up", out_keep)
        self._consume(f"{p}.up", f"{p}.merge", self.sites[f"{p}.up"].keep)
        cat_keep = self.sites[f"{p}.merge"].keep
        s = lv.skip.conv.out_channels if lv.skip is not None else 0
        if lv.skip is not None:
            self.sites[f"{p}.skip"].keep = cat_keep[:s].clone()
        if i + 1 < len(self.net.levels):
            self._backward_level(i + 1, cat_keep[s:])
        else:
            self.sites[f"{p}.down2"].keep = cat_keep[s:].clone()
        self._consume(f"{p}.down2", f"{p}.down", self.sites[f"{p}.down2"].keep)
        if lv.skip is not None:
            self._consume(f"{p}.skip", x_site, self.sites[f"{p}.skip"].keep)
        self._consume(f"{p}.down", x_site, self.sites[f"{p}.down"].keep)


# --------------------------------------------------------------------------------------------------
# Compact modules
# --------------------------------------------------------------------------------------------------

def _idx(b: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(b, as_tuple=False).flatten()


class _Builder:
    """Copies sub-tensors of the masked net's parameters and remembers where each came from."""

    def __init__(self, net: nn.Module, masks: Masks) -> None:
        self.tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
        self.masks = masks

    def take(self, module: nn.Module, attr: str, source: str, rows: torch.Tensor,
             cols: torch.Tensor | None = None, kind: str = "param") -> None:
        """module.<attr> = (source * mask)[rows][:, cols]; kind: param | buffer."""
        t = self.tensors[source].detach()
        m = self.masks.get(source)
        if m is not None:
            t = t * m.to(device=t.device, dtype=t.dtype)
        r = rows.to(t.device)
        t = t.index_select(0, r)
        if cols is not None:
            t = t.index_select(1, cols.to(t.device))
        t = t.clone()
        module.__dict__.pop(attr, None)  # a plain `None` placeholder set in __init__
        if kind == "param":
            module.register_parameter(attr, nn.Parameter(t))
        else:
            module.register_buffer(attr, t)
        module._lip_sources[attr] = (source, rows, cols)


def _src_init(module: nn.Module) -> None:
    module._lip_sources = {}  # attr -> (original name, row index, column index or None)


def _out_size(geometry: tuple, size: Size) -> Size:
    k, stride, padding = geometry
    return tuple((s + 2 * p - kk) // st + 1 for s, p, kk, st in zip(size, padding, k, stride))


class _Conv(nn.Module):
    """A conv restricted to kept inputs/outputs, plus the folded contribution of constant inputs."""

    def __init__(self, b: _Builder, name: str, conv: nn.Conv2d, rows: torch.Tensor, cols: torch.Tensor,
                 folded: torch.Tensor) -> None:
        super().__init__()
        _src_init(self)
        self.k, self.stride, self.pad = conv.kernel_size, conv.stride, conv.padding
        self.padding_mode = conv.padding_mode
        self.weight: nn.Parameter | None = None
        self.bias: nn.Parameter | None = None
        self.fold_weight: torch.Tensor | None = None
        if cols.numel():
            b.take(self, "weight", f"{name}.weight", rows, cols)
        if conv.bias is not None:
            b.take(self, "bias", f"{name}.bias", rows)
        if folded.numel():
            b.take(self, "fold_weight", f"{name}.weight", rows, folded)
        self.out_channels = rows.numel()

    def out_size(self, size: Size) -> Size:
        return _out_size((self.k, self.stride, self.pad), size)

    def forward(self, x: torch.Tensor | None, consts: torch.Tensor | None, batch: int,
                size: Size) -> torch.Tensor:
        bias = self.bias
        if self.fold_weight is not None:
            inject = self.fold_weight.sum((2, 3)) @ consts
            bias = inject if bias is None else bias + inject
        if x is None:  # no materialised input: every computed output is a constant (pinned)
            h, w = self.out_size(size)
            if bias is None:
                bias = torch.zeros(self.out_channels, device=consts.device if consts is not None else None)
            return bias.view(1, -1, 1, 1).expand(batch, -1, h, w).contiguous()
        widths = self.pad
        if self.padding_mode != "zeros" and any(widths):
            x = pad(x, (widths[1], widths[1], widths[0], widths[0]), self.padding_mode)
            widths = (0, 0)
        return F.conv2d(x, self.weight, bias, self.stride, widths)


class _Block(nn.Module):
    """ConvBlock over kept channels; `const_bias` holds beta of removed constant outputs others read."""

    def __init__(self, b: _Builder, name: str, block: ConvBlock, a: _Analysis) -> None:
        super().__init__()
        _src_init(self)
        site = a.sites[name]
        rows = _idx(a.need[name])
        read_site = a.sites[a.reads[name]]
        self.act = block.act
        self.pool = block.pool  # between conv and BN (a pool keeps constant channels constant)
        self.conv: _Conv | None = None  # None: no output is materialised
        self.bn: nn.BatchNorm2d | None = None
        if rows.numel():
            self.conv = _Conv(b, f"{name}.conv", block.conv, rows, _idx(read_site.keep),
                              _idx(read_site.folded))
            self.bn = _bn(b, f"{name}.bn", block.bn, rows)
        self.const_bias: torch.Tensor | None = None
        if site.folded.any():
            b.take(self, "const_bias", f"{name}.bn.bias", _idx(site.folded))

    def constants(self) -> torch.Tensor | None:
        """Values of the removed constant outputs: act(beta), as the train-mode BN would emit."""
        c = self.const_bias
        if c is None:
            return None
        return F.leaky_relu(c, 0.2) if self.act else c

    def forward(self, x, consts, batch: int, size: Size) -> torch.Tensor | None:
        if self.bn is None:
            return None
        y = self.conv(x, consts, batch, size)
        if self.pool is not None:
            y = self.pool(y)
        y = self.bn(y)
        return F.leaky_relu(y, 0.2) if self.act else y


def _bn(b: _Builder, name: str, bn: nn.BatchNorm2d, rows: torch.Tensor) -> nn.BatchNorm2d:
    ref = bn.weight if bn.weight is not None else bn.running_mean
    new = nn.BatchNorm2d(rows.numel(), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats, device=ref.device, dtype=ref.dtype)
    _src_init(new)
    for attr, kind in (("weight", "param"), ("bias", "param"), ("running_mean", "buffer"),
                       ("running_var", "buffer")):
        if getattr(bn, attr, None) is not None:
            delattr(new, attr)
            b.take(new, attr, f"{name}.{attr}", rows, kind=kind)
    return new


class _Level(nn.Module):
    def __init__(self, b: _Builder, net: SkipNet, i: int, a: _Analysis) -> None:
        super().__init__()
        _src_init(self)
        p, lv = f"levels.{i}", net.levels[i]

        def blk(n: str) -> _Block:
            return _Block(b, f"{p}.{n}", getattr(lv, n), a)

        self.skip = blk("skip") if lv.skip is not None else None
        merge = a.sites[f"{p}.merge"]
        s = lv.skip.conv.out_channels if lv.skip is not None else 0
        self.deep = bool(merge.keep[s:].any())  # does anything of the deeper path reach the merge?
        self.down = blk("down")
        self.down_geometry = (lv.down.conv.kernel_size, lv.down.conv.stride, lv.down.conv.padding)
        self.pooled = lv.pool is not None or lv.down.pool is not None  # the deeper path halves the size
        self.pool = lv.pool  # after the down block (a pool at the conv is inside `down`)
        self.down2 = blk("down2")
        self.merge_bn = _bn(b, f"{p}.merge_bn", lv.merge_bn, _idx(merge.keep)) if merge.keep.any() else None
        self.merge_const_bias: torch.Tensor | None = None
        if merge.folded.any():
            b.take(self, "merge_const_bias", f"{p}.merge_bn.bias", _idx(merge.folded))
        self.up = blk("up")
        self.up1x1 = blk("up1x1") if lv.up1x1 is not None else None

    @property
    def last(self) -> _Block:
        return self.up1x1 if self.up1x1 is not None else self.up


class CompactSkipNet(HourglassGeometry, nn.Module):
    """A smaller dense SkipNet equivalent (train mode) to a masked one; build it with `compact()`.

    Attributes: `masks` (compact parameter name -> bool keep-mask, for `fit(..., masks=...)`),
    `report` (channels_removed, params_before/after, ...), `load_into(net)` to write values back.
    """

    def __init__(self, net: SkipNet, masks: Masks) -> None:
        super().__init__()
        masks = _check(net, masks)
        a = _Analysis(net, masks)
        b = _Builder(net, masks)
        self.spec = net.spec
        self.up_mode = net.up_mode
        self.levels = nn.ModuleList(_Level(b, net, i, a) for i in range(len(net.levels)))
        head_in = a.sites[a.last(0)]
        self.head = _Conv(b, "head", net.head, torch.arange(net.head.out_channels), _idx(head_in.keep),
                          _idx(head_in.folded))
        z_keep = a.sites["z"].keep
        self.register_buffer("z_index", None if bool(z_keep.all()) else _idx(z_keep).to(net.head.weight.device))
        self._sources = {f"{mod_name}.{attr}" if mod_name else attr: src
                         for mod_name, mod in self.named_modules()
                         for attr, src in getattr(mod, "_lip_sources", {}).items()}
        self.masks: Masks = {}
        named = dict(self.named_parameters())
        for cname, (source, rows, cols) in self._sources.items():
            m = masks.get(source)
            if m is None or cname not in named:
                continue
            sub = m.index_select(0, rows.to(m.device))
            if cols is not None:
                sub = sub.index_select(1, cols.to(m.device))
            if not bool(sub.all()):
                self.masks[cname] = sub.clone()
        self.report = _report(net, masks, self, a)

    def _level(self, i: int, x: torch.Tensor | None, x_consts, batch: int, size: Size) -> torch.Tensor | None:
        lv = self.levels[i]
        parts = []
        if lv.skip is not None:
            s = lv.skip(x, x_consts, batch, size)
            if s is not None:
                parts.append(s)
        if lv.deep:
            d = lv.down(x, x_consts, batch, size)
            dsize = _out_size(lv.down_geometry, size)
            if lv.pooled:
                dsize = (dsize[0] // 2, dsize[1] // 2)
            if lv.pool is not None and d is not None:
                d = lv.pool(d)
            d = lv.down2(d, lv.down.constants(), batch, dsize)
            if i + 1 < len(self.levels):
                d = self._level(i + 1, d, lv.down2.constants(), batch, dsize)
            if d is not None:
                parts.append(F.interpolate(d, scale_factor=2, mode=self.up_mode, **(
                    {"align_corners": False} if self.up_mode == "bilinear" else {})))
        m = None
        if parts:
            m = lv.merge_bn(concat(parts) if len(parts) > 1 else parts[0])
        out = lv.up(m, lv.merge_const_bias, batch, size)
        if lv.up1x1 is not None:
            out = lv.up1x1(out, lv.up.constants(), batch, size)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z if self.z_index is None else z.index_select(1, self.z_index) if self.z_index.numel() else None
        size = tuple(z.shape[-2:])
        out = self._level(0, x, None, z.shape[0], size)
        return torch.sigmoid(self.head(out, self.levels[0].last.constants(), z.shape[0], size))

    @torch.no_grad()
    def load_into(self, net: SkipNet) -> None:
        """Write this net's (e.g. trained) values back into the full net at their original places.

        Entries the compact net dropped keep their old values in `net`; they do not affect the
        masked net's train-mode output (see the module docstring)."""
        tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
        mine = {**dict(self.named_parameters()), **dict(self.named_buffers())}
        for cname, (source, rows, cols) in self._sources.items():
            dst, val = tensors[source], mine[cname].to(tensors[source].dtype)
            r = rows.to(dst.device)
            if cols is None:
                dst.index_copy_(0, r, val)
            else:
                dst[r[:, None], cols.to(dst.device)[None, :]] = val


# --------------------------------------------------------------------------------------------------
# Entry point and bookkeeping
# --------------------------------------------------------------------------------------------------

def _check(net: nn.Module, masks: Masks | None) -> Masks:
    if not isinstance(net, SkipNet):
        raise TypeError(f"compact() handles the DIP SkipNet, not {type(net).__name__}")
    params = dict(net.named_parameters())
    out: Masks = {}
    for name, m in (masks or {}).items():
        if name not in params:
            raise KeyError(f"mask {name!r} names no parameter of this net")
        if tuple(m.shape) != tuple(params[name].shape):
            raise ValueError(f"mask {name!r} has shape {tuple(m.shape)}, parameter has "
                             f"{tuple(params[name].shape)}")
        out[name] = m.detach().bool()
    return out


def _report(net: SkipNet, masks: Masks, small: CompactSkipNet, a: _Analysis) -> dict[str, Any]:
    layers = {}
    for name, m in net.named_modules():
        if isinstance(m, ConvBlock):
            layers[name] = (int(a.need[name].sum()), m.conv.out_channels)
    total = sum(t for _, t in layers.values())
    kept = sum(k for k, _ in layers.values())
    return {
        "channels_removed": total - kept,
        "channels_total": total,
        "params_before": count_params(net),
        "params_after": count_params(small),
        "unpruned_before": kept_count(masks, over=dict(net.named_parameters())),
        "unpruned_after": kept_count(small.masks, over=dict(small.named_parameters())),
        "z_channels_kept": int(a.sites["z"].keep.sum()),
        "layers": layers,  # conv block -> (kept, total) output channels
    }


def compact(net: SkipNet, masks: Masks | None = None) -> CompactSkipNet:
    """A smaller dense module whose train-mode output equals the masked `net`'s (see module docs).

    `masks` maps parameter names to bool keep-masks (missing = dense). The result carries
    `.report` (channels_removed, params_before, params_after, nonzero_before/after, per-layer
    kept/total), `.masks` (keep-masks of its own parameters, for `fit`) and `.load_into(net)`.
    """
    return CompactSkipNet(net, masks or {})


def kept_spec(spec: Spec, masks: Masks) -> Spec:
    """The hourglass spec whose memory estimate (`estimate_bytes`) is the compacted net's: per level the most
    channels it keeps among the down convs, among the up convs, and of the skip conv. The analysis alone, on the
    net's skeleton: no weights, a fraction of a second, so a restore can plan its memory before it builds a net."""
    a = _Analysis(skeleton(spec), masks)

    def kept(*names: str) -> int:
        return max(int(a.need[n].sum()) if n in a.need else 0 for n in names)
    levels = range(len(spec["down"]))
    return {**spec, "down": [max(1, kept(f"levels.{i}.down", f"levels.{i}.down2")) for i in levels],
            "up": [max(1, kept(f"levels.{i}.up", f"levels.{i}.up1x1")) for i in levels],
            "skip": [kept(f"levels.{i}.skip") for i in levels]}


def disconnected(spec: Spec, masks: Masks) -> bool:
    """Whether the masks cut every channel off the output (a SNIP mask can empty a layer): the net, masked or
    compacted, can then make one constant image only. The analysis alone, as `kept_spec`."""
    a = _Analysis(skeleton(spec), masks)
    return not any(bool(kept.any()) for name, kept in a.need.items() if name != "head")
