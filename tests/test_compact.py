"""Tests for lipcli.nets.compact: a compacted masked SkipNet computes the masked net's train-mode output.

Exactness is checked against the masked net itself (float32 within the issue's 1e-5, float64 within
1e-10: the folding is algebraically exact, what remains is rounding) and against the masked net's
exact-arithmetic output (float64, constant channels snapped), which is the only fair reference
where the masked net's own rounding is amplified by train-mode BN (see `_exact_output`). BN affine
parameters are randomised so that folded constants (betas) are not the zeros of initialisation.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lipcli import nets
from lipcli.fit import FitConfig, Target, fit
from lipcli.masks import apply_masks
from lipcli.nets.compact import CompactSkipNet, compact
from lipcli.physics import Denoise
from conftest import narrow_spec, tiny_spec


def grad_pairs(net: nn.Module, small: CompactSkipNet, masks: dict[str, torch.Tensor]):
    """(compact name, source name, rows, cols, compact grad, the masked full grad it should equal)."""
    full, kept = dict(net.named_parameters()), dict(small.named_parameters())
    for cname, (src, rows, cols) in small._sources.items():
        if cname not in kept:
            continue
        g = full[src].grad * masks[src] if src in masks else full[src].grad
        g = g[rows] if cols is None else g[rows][:, cols]
        yield cname, src, rows, cols, kept[cname].grad * small.masks.get(cname, 1), g


def _net(spec: dict, seed: int = 0) -> nets.SkipNet:
    """A net with random BN affine params (so dead channels carry nonzero betas)."""
    torch.manual_seed(seed)
    net = nets.build(spec)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.7, 1.3, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
    return net


def _random_masks(net: nn.Module, sparsity: float, seed: int, names: list[str] | None = None,
                  dead_filters: float = 0.0) -> dict[str, torch.Tensor]:
    """Unstructured random keep-masks at `sparsity`, plus a fraction of whole filters zeroed."""
    g = torch.Generator().manual_seed(seed)
    params = dict(net.named_parameters())
    masks = {}
    for n in names or nets.conv_weight_names(net):
        m = torch.rand(params[n].shape, generator=g) >= sparsity
        if params[n].dim() == 4 and n != "head.weight" and dead_filters:
            m[torch.rand(params[n].shape[0], generator=g) < dead_filters] = False
        masks[n] = m
    return masks


def _kill(masks: dict, net: nn.Module, name: str, filters: slice | list | None = None) -> None:
    """Prune filters of conv `name` (all of them by default)."""
    w = dict(net.named_parameters())[f"{name}.weight"]
    m = masks.setdefault(f"{name}.weight", torch.ones(w.shape, dtype=torch.bool))
    m[filters if filters is not None else slice(None)] = False


def _z(net, h=64, w=64, batch=1, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((batch, *net.input_shape(h, w)), generator=g) * 0.1).to(dtype)


def _exact_output(net: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The masked net's output in exact arithmetic (to float64 rounding): evaluated in float64 with
    every BN input channel that is constant up to rounding snapped to its exact mean. Without the
    snap, a constant re-derived through live weights (e.g. a whole dead level) carries conv rounding
    that each train-mode BN multiplies by gamma / sqrt(eps) ~ 300, until it is O(1) noise."""
    def snap(_module, args):
        x = args[0]
        spread = x.amax((0, 2, 3)) - x.amin((0, 2, 3))
        flat = (spread <= 1e-9 * (1 + x.abs().amax((0, 2, 3))))[None, :, None, None]
        return (torch.where(flat, x.mean((0, 2, 3), keepdim=True), x),)
    net = copy.deepcopy(net).double()
    hooks = [m.register_forward_pre_hook(snap) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        out = net(z.double())
    for h in hooks:
        h.remove()
    return out


def _check(net, masks, z, plain: bool = True, tol32: float = 1e-5) -> CompactSkipNet:
    """Compact a masked copy of `net`; compare train-mode outputs.

    Always: compact (float32) vs the exact masked output within `tol32`, and compact (float64) within
    1e-10. With `plain` (the masked net is numerically stable): compact vs the masked net itself,
    float32 within `tol32` and float64 within 1e-10."""
    net = copy.deepcopy(net)
    apply_masks(net, masks)
    small = compact(net, masks)
    net.train(), small.train()
    exact = _exact_output(net, z)
    net64 = copy.deepcopy(net).double()
    small64 = compact(net64, masks)
    with torch.no_grad():
        assert (small(z).double() - exact).abs().max().item() <= tol32
        assert (small64(z.double()) - exact).abs().max().item() <= 1e-10
        if plain:
            assert (net(z) - small(z)).abs().max().item() <= tol32
            assert (net64(z.double()) - small64(z.double())).abs().max().item() <= 1e-10
    return small


# -------------------------------------------------------------------------------------------------
# forward exactness
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 2])
def test_random_masks_with_dead_filters_narrow(seed):
    net = _net(narrow_spec(), seed)
    masks = _random_masks(net, 0.9, seed, dead_filters=0.15)
    small = _check(net, masks, _z(net, seed=seed))
    r = small.report
    assert r["channels_removed"] > 0
    assert r["params_after"] < r["params_before"] == nets.count_params(net)
    assert r["unpruned_after"] < r["unpruned_before"]


def test_random_masks_alone_kill_some_1x1_filters():
    """90% unstructured masks: 3x3 filters (144 weights) survive, but 16-input 1x1 ones often die."""
    net = _net(narrow_spec(), 3)
    small = _check(net, _random_masks(net, 0.9, 3), _z(net))
    assert 0 < small.report["channels_removed"] < small.report["channels_total"] // 2


def test_whole_skip_branches_dead_filters_and_unread_channels():
    net = _net(narrow_spec(), 4)
    masks = _random_masks(net, 0.5, 4)
    _kill(masks, net, "levels.1.skip.conv")  # whole skip branches: folded via merge_bn's betas
    _kill(masks, net, "levels.3.skip.conv")
    _kill(masks, net, "levels.0.down2.conv", [0, 3, 5, 9])
    _kill(masks, net, "levels.2.up.conv", slice(0, 8))
    masks["levels.0.up.conv.weight"][:, 4 + 7] = False  # levels.1.up1x1 channel 7: read by nobody
    small = _check(net, masks, _z(net, seed=5))
    lay = small.report["layers"]
    assert small.levels[1].skip.bn is None and small.levels[3].skip.bn is None
    assert lay["levels.1.skip"][0] == 0 and lay["levels.3.skip"][0] == 0
    assert lay["levels.0.down2"][0] <= 12 and lay["levels.2.up"][0] <= 8
    assert lay["levels.1.up1x1"][0] <= 15
    assert small.report["params_after"] < small.report["params_before"]


def test_whole_deeper_level_pruned_filter_by_filter():
    """Every filter of levels.3.down/down2 and of level 4 pruned: level 3's deep input is constant
    (biases only, exactly constant), nothing below level 3's skip branch is computed."""
    net = _net(narrow_spec(), 4)
    masks = _random_masks(net, 0.5, 4)
    for name in ("levels.3.down", "levels.3.down2", *(f"levels.4.{b}" for b in
                                                       ("skip", "down", "down2", "up", "up1x1"))):
        _kill(masks, net, f"{name}.conv")
    small = _check(net, masks, _z(net, seed=5))
    assert not small.levels[3].deep
    lay = small.report["layers"]
    assert all(lay[f"levels.4.{b}"][0] == 0 for b in ("skip", "down", "down2", "up", "up1x1"))
    assert small.report["params_after"] < 0.75 * small.report["params_before"]


def test_whole_deeper_level_cut_off_at_its_input():
    """Only levels.3.down is pruned: all below is constant *mathematically*, but the masked net
    re-derives those constants through live weights, and its float rounding is amplified by every
    train-mode BN (gain gamma/sqrt(eps)) into O(1) noise. So the compact net is compared with the
    exact masked output only; it is the masked net's float evaluation that is off here."""
    net = _net(narrow_spec(), 4)
    masks = _random_masks(net, 0.5, 4)
    _kill(masks, net, "levels.3.down.conv")
    small = _check(net, masks, _z(net, seed=5), plain=False)
    assert not small.levels[3].deep


def test_paper_preset_at_64():
    net = _net(nets.preset("dip"), 1)
    masks = _random_masks(net, 0.9, 1, dead_filters=0.1)
    _kill(masks, net, "levels.2.skip.conv")
    # Full width, 128 channels through ~20 conv + BN layers: float32 rounding depends on the CPU's kernels
    # (1.4e-5 on an AVX2-only CPU, under 1e-5 with AVX-512). Exactness is the float64 check's (1e-10).
    small = _check(net, masks, _z(net, seed=2), tol32=5e-5)
    r = small.report
    assert r["params_before"] == 2_217_831
    assert r["channels_removed"] > 0.1 * r["channels_total"] and r["params_after"] < r["params_before"]


def test_dense_net_compacts_to_the_same_count_and_output():
    net = _net(narrow_spec(), 6)
    for masks in ({}, _random_masks(net, 0.0, 6)):
        small = _check(net, masks, _z(net))
        r = small.report
        assert r["channels_removed"] == 0 and r["params_after"] == r["params_before"]
        assert small.masks == {} and small.z_index is None


def test_all_parameter_masks_batch_and_non_square():
    """--scope all masks (conv biases, BN gammas/betas too); batch of 2; 64x96 input."""
    net = _net(narrow_spec(), 7)
    names = [n for n, _ in net.named_parameters()]
    masks = _random_masks(net, 0.6, 7, names=names, dead_filters=0.1)
    masks["levels.1.merge_bn.weight"][:6] = False  # merge channels constant through a dead gamma
    small = _check(net, masks, _z(net, 64, 96, batch=2, seed=8))
    assert small.report["channels_removed"] > 0


def test_everything_dead_gives_the_constant_image():
    net = _net(tiny_spec(), 9)
    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in net.named_parameters()
             if n.endswith("conv.weight")}
    small = _check(net, masks, _z(net, 16, 32))
    assert small.report["channels_removed"] == small.report["channels_total"]


SMALL_OES = nets.preset("oes", down=[8, 8, 16, 16], up=[8, 8, 16, 16], skip=[0] * 4)  # avg pool at the conv


@pytest.mark.parametrize("spec", [
    tiny_spec(pad="zero"),  # constants are not constant under zero padding: kept materialised
    SMALL_OES,
    {**SMALL_OES, "pool_at": "act"},  # the pool after the activation
    nets.preset("dip-inpaint", down=[8] * 4, up=[8] * 4, skip=[8] * 4, need1x1_up=False),
])
def test_other_hourglass_variants(spec):
    net = _net(spec, 10)
    masks = _random_masks(net, 0.6, 10, dead_filters=0.25)
    _check(net, masks, _z(net, net.min_side, 2 * net.min_side))


@pytest.mark.parametrize("at", ["conv", "act"])
def test_pooled_levels_with_every_parameter_masked(at):
    """OES's scope (every parameter masked) on its pooled levels: a down filter pruned whole, or a dead
    gamma of the BN right after the pool, makes a channel constant behind the pool; batch 2, non-square."""
    net = _net({**SMALL_OES, "pool_at": at}, 16)
    masks = _random_masks(net, 0.6, 16, names=[n for n, _ in net.named_parameters()], dead_filters=0.2)
    _kill(masks, net, "levels.1.down.conv", [0, 1])
    masks["levels.2.down.bn.weight"][:5] = False
    small = _check(net, masks, _z(net, net.min_side, 2 * net.min_side, batch=2, seed=17))
    assert small.report["layers"]["levels.1.down"][0] <= 6 and small.report["layers"]["levels.2.down"][0] <= 11


def test_zero_padding_keeps_read_constants_materialised():
    net = _net(tiny_spec(pad="zero"), 11)
    masks = {}
    _kill(masks, net, "levels.0.down.conv", [0, 1])  # constant channels read by a zero-padded 3x3
    small = _check(net, masks, _z(net, 16, 16))
    assert small.report["layers"]["levels.0.down"][0] == 8


# -------------------------------------------------------------------------------------------------
# training
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, dead, filters, side", [(narrow_spec(), "levels.2.skip.conv", None, 64),
                                                       (SMALL_OES, "levels.2.down.conv", [0, 1, 2], 48)],
                         ids=["dip", "oes"])
def test_gradients_match_and_dropped_entries_have_none(spec, dead, filters, side):
    """Train-exact mode: each kept parameter gets the masked net's gradient; what compaction drops
    gets (float64 rounding-level) zero gradient in the masked net, so an optimizer step agrees."""
    torch.set_default_dtype(torch.float64)
    try:
        net = _net(spec, 12)
        names = [n for n, _ in net.named_parameters()]
        masks = _random_masks(net, 0.6, 12, names=names, dead_filters=0.15)
        _kill(masks, net, dead, filters)
        apply_masks(net, masks)
        small = compact(net, masks)
        z, y = _z(net, side, side, seed=13, dtype=torch.float64), torch.rand(1, 3, side, side)
        ((net(z) - y) ** 2).mean().backward()
        ((small(z) - y) ** 2).mean().backward()
    finally:
        torch.set_default_dtype(torch.float32)
    full = dict(net.named_parameters())
    scale = max(p.grad.abs().max().item() for p in full.values())
    covered = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in full.items()}
    for cname, src, rows, cols, mine, g in grad_pairs(net, small, masks):
        assert torch.allclose(mine, g, rtol=1e-7, atol=1e-12 * scale), cname
        if cols is None:
            covered[src][rows] = True
        else:
            covered[src][rows[:, None], cols[None, :]] = True
    kept = dict(small.named_parameters())
    assert any(n.endswith("fold_weight") for n in kept) and any(n.endswith("const_bias") for n in kept)
    for n, p in full.items():
        g = p.grad * masks[n] if n in masks else p.grad
        dropped = g[~covered[n]]
        assert dropped.numel() == 0 or dropped.abs().max().item() <= 1e-10 * scale, n


def test_only_the_head_folds_constants():
    """Every conv but the head has a train-mode BN after it, which subtracts a constant input's shift: only the
    head's constant inputs are kept (their betas and the head's weights from them), and the output is the same."""
    net = _net(narrow_spec(), 14)
    masks = _random_masks(net, 0.9, 14, dead_filters=0.2)
    _kill(masks, net, "levels.0.up1x1.conv", [0, 1])  # constants ...
    masks["head.weight"][:, :2] = True  # ... that the head reads
    apply_masks(net, masks)
    small = compact(net, masks)
    folds = {n for n, _ in small.named_parameters() if "fold_weight" in n or "const_bias" in n}
    assert folds == {"head.fold_weight", "levels.0.up1x1.const_bias"}
    z = _z(net)
    with torch.no_grad():
        assert torch.allclose(small(z), net(z), atol=1e-5)


def test_fit_on_compact_net_keeps_masks_and_loads_back():
    net = _net(tiny_spec(), 15)
    masks = _random_masks(net, 0.7, 15, dead_filters=0.2)
    apply_masks(net, masks)
    small = compact(net, masks)
    assert small.masks
    g = torch.Generator().manual_seed(0)
    z = _z(net, 32, 32)
    y = torch.rand(1, 3, 32, 32, generator=g)
    fit(small, [Target(z=z, op=Denoise(25), y=y, size=(32, 32))],
        FitConfig(iters=5, early_stop=False, ema=0), masks=small.masks)
    named = dict(small.named_parameters())
    for n, m in small.masks.items():
        assert (named[n][~m] == 0).all(), n
    # write the trained values back: the full masked net computes what the compact one does
    back = copy.deepcopy(net)
    small.load_into(back)
    with torch.no_grad():
        assert (back(z) - small(z)).abs().max().item() <= 1e-5
        assert (back(z) - net(z)).abs().max().item() > 1e-4  # it did train


def test_rejects_other_nets_and_bad_masks():
    with pytest.raises(TypeError, match="SkipNet"):
        compact(nets.build(nets.preset("deep-decoder", k=8)), {})
    net = nets.build(tiny_spec())
    with pytest.raises(KeyError, match="names no parameter"):
        compact(net, {"nope.weight": torch.ones(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        compact(net, {"head.weight": torch.ones(3, dtype=torch.bool)})


@pytest.mark.parametrize("seed", [0, 2])
def test_kept_spec_has_the_widths_the_compact_net_keeps(seed):
    """A restore plans its memory with these widths before it builds any net (the default ticket's estimate was the
    dense net's, 2.5x too large, refusing images the compacted fit holds)."""
    from lipcli.nets.compact import kept_spec
    net = _net(narrow_spec(), seed)
    masks = _random_masks(net, 0.9, seed, dead_filters=0.15)
    small = compact(net, masks)
    spec = kept_spec(net.spec, masks)

    def width(block) -> int:
        return 0 if block is None or block.conv is None else block.conv.out_channels
    for i, lv in enumerate(small.levels):
        assert spec["down"][i] == max(1, width(lv.down), width(lv.down2))
        assert spec["up"][i] == max(1, width(lv.up), width(lv.up1x1))
        assert spec["skip"][i] == width(lv.skip)
    assert nets.estimate_bytes(spec, 256, 256, "fp32") < nets.estimate_bytes(net.spec, 256, 256, "fp32")
