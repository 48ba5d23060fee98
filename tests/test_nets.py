"""Tests for lipcli.nets: exact parameter counts, stable names, sizes, forward passes, decoder width,
and the family registry: every preset, and a toy family registered inside a test, meet the net interface."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import torch.nn.functional as F
from torch import nn

from lipcli import config, nets
from lipcli.errors import LipError
from lipcli.fit import FitConfig
from lipcli.problem import load_problem
from lipcli.restore import dense_prior, restore
from conftest import narrow_spec, tiny_spec


@pytest.mark.parametrize("name, overrides, expected", [
    ("dip", {}, 2_217_831),
    ("oes", {}, 3_008_867),
    ("dip-w64", {}, 572_455),
    ("dip-w32", {}, 152_199),
    ("dip-w16", {}, 42_679),
    ("deep-decoder", {"k": 128}, 100_224),
    ("deep-decoder", {"k": 320}, 619_200),
])
def test_parameter_counts_are_exact(name, overrides, expected):
    assert nets.count_params(nets.build(nets.preset(name, **overrides))) == expected


@pytest.mark.parametrize("k", [1, 7, 64, 128, 320])
def test_deep_decoder_count_formula(k):
    """6(k^2+2k)+3k: six 1x1 convs without bias plus BN affine, and a 3-channel head."""
    assert nets.count_params(nets.build(nets.preset("deep-decoder", k=k))) == 6 * (k * k + 2 * k) + 3 * k


def test_preset_returns_independent_copies():
    a = nets.preset("dip", down=[1] * 5)
    b = nets.preset("dip")
    assert b["down"] == [128] * 5 and a["down"] == [1] * 5
    b["up"].append(7)
    assert nets.PRESETS["dip"]["up"] == [128] * 5
    with pytest.raises(KeyError, match="unknown net preset"):
        nets.preset("resnet")


def test_build_rejects_unknown_kind_and_ragged_levels():
    with pytest.raises(ValueError, match="unknown net kind"):
        nets.build({"kind": "unet"})
    with pytest.raises(ValueError, match="one entry per level"):
        nets.build(nets.preset("dip", up=[128] * 4))


def test_names_are_stable_and_readable():
    net = nets.build(nets.preset("dip"))
    names = [n for n, _ in net.named_parameters()]
    for expected in ("levels.0.down.conv.weight", "levels.0.down.conv.bias", "levels.0.down.bn.weight",
                     "levels.0.skip.conv.weight", "levels.0.down2.conv.weight", "levels.0.merge_bn.weight",
                     "levels.0.up.conv.weight", "levels.0.up1x1.conv.weight", "levels.4.down2.conv.weight",
                     "head.weight", "head.bias"):
        assert expected in names
    # The same spec always gives the same names in the same order (mask files are keyed by them).
    assert names == [n for n, _ in nets.build(nets.preset("dip")).named_parameters()]
    # Every name is dotted lowercase identifiers/indices: nothing generated or opaque.
    assert all(part.isidentifier() or part.isdigit() for n in names for part in n.split("."))
    dd = [n for n, _ in nets.build(nets.preset("deep-decoder")).named_parameters()]
    assert dd[:3] == ["blocks.0.conv.weight", "blocks.0.bn.weight", "blocks.0.bn.bias"]
    assert dd[-1] == "head.weight"


def test_oes_has_no_skip_branch_and_pools():
    net = nets.build(nets.preset("oes"))
    names = {n for n, _ in net.named_parameters()}
    assert not any(".skip." in n for n in names)
    assert not any(".up1x1." in n for n in names)
    assert isinstance(net.levels[0].down.pool, nn.AvgPool2d) and net.levels[0].pool is None
    assert net.levels[0].down.conv.stride == (1, 1)
    assert nets.build(nets.preset("dip")).levels[0].down.conv.stride == (2, 2)
    old = {k: v for k, v in nets.preset("oes").items() if k != "pool_at"}  # as masks made before the field
    for after in (nets.build(old).levels[0], nets.build(nets.preset("oes", pool_at="act")).levels[0]):
        assert isinstance(after.pool, nn.AvgPool2d) and after.down.pool is None
    with pytest.raises(ValueError, match="pool_at"):
        nets.build(nets.preset("oes", pool_at="bn"))


def _called(model: nn.Module, z: torch.Tensor, kinds: tuple[type, ...], describe) -> list:
    """describe(name, module) of every module of `kinds`, in the order one forward pass calls them."""
    seen: list = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: seen.append(describe(name, mod)))
             for name, m in model.named_modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(z)
    for h in hooks:
        h.remove()
    return seen


def _layer(_name: str, m: nn.Module) -> tuple:
    """What defines a conv, pool or BN, without its name (the published net names modules by index)."""
    if isinstance(m, nn.Conv2d):
        return "conv", m.in_channels, m.out_channels, m.kernel_size, m.stride
    if isinstance(m, nn.BatchNorm2d):
        return "bn", m.num_features
    return "avgpool" if isinstance(m, nn.AvgPool2d) else "maxpool", m.kernel_size


def _layer_sequence(model: nn.Module, z: torch.Tensor) -> list[tuple]:
    return _called(model, z, (nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d), _layer)


def test_oes_layer_order_is_the_published_one():
    """anchors-spec c.1 (the published `skip` with avg downsampling): per level conv 5x5 stride 1 ->
    AvgPool 2x2 -> BN, conv 5x5 -> BN, deeper levels, merge BN, conv 3x3 -> BN; the 1x1 head last.
    Checked on the full preset against the published module layout (tests/dip_replica.py)."""
    from dip_replica import dip_skip

    spec = nets.preset("oes")
    ours = nets.build(spec)
    z = torch.rand(1, *ours.input_shape(ours.min_side, ours.min_side))
    seq = _layer_sequence(ours, z)
    assert seq == _layer_sequence(dip_skip(spec), z)
    assert seq[:6] == [("conv", 32, 16, (5, 5), (1, 1)), ("avgpool", 2), ("bn", 16),
                       ("conv", 16, 16, (5, 5), (1, 1)), ("bn", 16), ("conv", 16, 32, (5, 5), (1, 1))]
    assert seq[-4:] == [("bn", 32), ("conv", 32, 16, (3, 3), (1, 1)), ("bn", 16), ("conv", 16, 3, (1, 1), (1, 1))]
    assert sum(1 for s in seq if s[0] == "avgpool") == 6 and nets.count_params(ours) == 3_008_867


def test_conv_weight_names_are_all_conv_weights():
    net = nets.build(tiny_spec())
    names = nets.conv_weight_names(net)
    convs = {f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(names) == len(set(names)) and set(names) == convs
    params = dict(net.named_parameters())
    assert all(params[n].dim() == 4 for n in names)
    assert names[-1] == "head.weight"
    assert names == nets.conv_weight_names(nets.build(tiny_spec()))  # deterministic
    assert nets.conv_weight_names(nets.build(nets.preset("deep-decoder", k=4))) == \
        [f"blocks.{i}.conv.weight" for i in range(6)] + ["head.weight"]


def _forward_order(net: nn.Module, z: torch.Tensor) -> list[str]:
    return _called(net, z, (nn.Conv2d,), lambda name, _m: f"{name}.weight")


def test_conv_weight_names_in_forward_order():
    net = nets.build(tiny_spec())
    order = _forward_order(net, torch.rand(1, *net.input_shape(16, 16)))
    assert nets.conv_weight_names(net) == order


def test_deep_decoder_conv_weight_names_in_forward_order():
    net = nets.build(nets.preset("deep-decoder", k=4))
    order = _forward_order(net, torch.rand(1, *net.input_shape(32, 32)))
    assert nets.conv_weight_names(net) == order


def test_input_convs():
    net = nets.build(nets.preset("dip"))
    assert net.input_convs() == ["levels.0.skip.conv.weight", "levels.0.down.conv.weight"]
    assert nets.build(nets.preset("oes")).input_convs() == ["levels.0.down.conv.weight"]
    assert nets.build(nets.preset("deep-decoder")).input_convs() == ["blocks.0.conv.weight"]
    params = dict(net.named_parameters())
    # They are exactly the convs whose input channel count is the code's.
    for name in net.input_convs():
        assert params[name].shape[1] == net.spec["in_channels"]
    readers = [n for n in nets.conv_weight_names(net) if params[n].shape[1] == net.spec["in_channels"]
               and n.startswith("levels.0.") and ".up" not in n]
    assert sorted(readers) == sorted(net.input_convs())


@pytest.mark.parametrize("name, multiple, min_side", [
    ("dip", 32, 64), ("dip-inpaint", 32, 64), ("oes", 64, 192), ("deep-decoder", 32, 64),
])
def test_multiple_and_min_side(name, multiple, min_side):
    net = nets.build(nets.preset(name))
    assert (net.multiple, net.min_side) == (multiple, min_side)


def test_padded_size_examples():
    dip = nets.build(nets.preset("dip"))
    assert nets.padded_size(dip, 37, 53) == (64, 64)
    assert nets.padded_size(dip, 1, 1) == (64, 64)
    assert nets.padded_size(dip, 64, 65) == (64, 96)
    assert nets.padded_size(dip, 100, 200) == (128, 224)
    oes = nets.build(nets.preset("oes"))
    assert nets.padded_size(oes, 37, 53) == (192, 192)
    assert nets.padded_size(oes, 200, 300) == (256, 320)
    dd = nets.build(nets.preset("deep-decoder"))
    assert nets.padded_size(dd, 37, 53) == (64, 64)
    assert nets.padded_size(dd, 2, 3) == (64, 64)
    assert nets.padded_size(dd, 32, 96) == (64, 96)


def test_the_deep_decoder_draws_a_picture_at_its_smallest_size():
    """At 32x32 its 1x1 code gave a constant image (upsampled, then zeroed by BatchNorm) whatever its weights."""
    dd = nets.build(nets.preset("deep-decoder", k=16), seed=0)
    out = dd(torch.rand(1, *dd.input_shape(*nets.padded_size(dd, 32, 32)), generator=torch.Generator().manual_seed(0)))
    assert out.std(dim=(2, 3)).min() > 1e-3


_NETS = {name: nets.build(nets.preset(name, **kw)) for name, kw in
         [("dip", {}), ("oes", {}), ("deep-decoder", {"k": 4})]}


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(_NETS)), h=st.integers(1, 2000), w=st.integers(1, 2000))
def test_padded_size_is_smallest_valid_size(name, h, w):
    net = _NETS[name]
    ph, pw = nets.padded_size(net, h, w)
    for side, padded in ((h, ph), (w, pw)):
        assert isinstance(padded, int)
        assert padded >= side and padded >= net.min_side and padded % net.multiple == 0
        smaller = padded - net.multiple  # the next smaller candidate is too small
        assert smaller < side or smaller < net.min_side


@pytest.mark.parametrize("name, size", [
    ("dip", (37, 53)), ("dip", (1, 1)), ("dip", (64, 130)), ("dip-inpaint", (20, 64)),
    ("oes", (37, 53)), ("deep-decoder", (37, 53)), ("deep-decoder", (3, 3)),
])
def test_forward_at_padded_size(name, size):
    spec = nets.preset(name, **({"k": 16} if name == "deep-decoder" else {}))
    net = nets.build(spec).eval()
    ph, pw = nets.padded_size(net, *size)
    z = nets.make_input(net, ph, pw, torch.Generator().manual_seed(0))
    assert z.shape == (1, *net.input_shape(ph, pw))
    with torch.no_grad():
        out = net(z)
    assert out.shape == (1, 3, ph, pw)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1  # sigmoid head


def test_forward_train_mode_and_gray_head():
    net = nets.build(narrow_spec(out_channels=1))
    z = nets.make_input(net, 64, 64, torch.Generator().manual_seed(0))
    out = net(z)
    out.mean().backward()
    assert out.shape == (1, 1, 64, 64)
    assert net.levels[0].down.conv.weight.grad is not None


def test_make_input_is_seeded_and_small():
    net = nets.build(tiny_spec())
    a = nets.make_input(net, 16, 24, torch.Generator().manual_seed(3))
    b = nets.make_input(net, 16, 24, torch.Generator().manual_seed(3))
    c = nets.make_input(net, 16, 24, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 32, 16, 24) and a.min() >= 0 and a.max() < 0.1
    dd = nets.build(nets.preset("deep-decoder", k=5))
    assert nets.make_input(dd, 64, 96, torch.Generator()).shape == (1, 5, 2, 3)


def _dd_params(k: int) -> int:
    return 6 * (k * k + 2 * k) + 3 * k


def _brute_force_k(target: int) -> int:
    return min(range(1, 3000), key=lambda k: abs(_dd_params(k) - target))  # first k on ties


@pytest.mark.parametrize("target, k", [(100_224, 128), (619_200, 320), (2_217_831, 607), (0, 1), (1, 1)])
def test_decoder_k_for_params_examples(target, k):
    assert nets.decoder_k_for_params(target) == k == _brute_force_k(target)


@settings(max_examples=300, deadline=None)
@given(target=st.integers(0, 40_000_000))
def test_decoder_k_for_params_is_closest(target):
    k = nets.decoder_k_for_params(target)
    assert abs(_dd_params(k) - target) == abs(_dd_params(_brute_force_k(target)) - target)
    assert k == _brute_force_k(target)


def test_decoder_k_for_params_other_shapes():
    for blocks, out in ((4, 1), (6, 3), (8, 3)):
        def params(k):
            return blocks * (k * k + 2 * k) + out * k
        for target in (50, 12_345, 3_008_867):
            k = nets.decoder_k_for_params(target, blocks=blocks, out_channels=out)
            best = min(range(1, 3000), key=lambda c: abs(params(c) - target))
            assert abs(params(k) - target) == abs(params(best) - target)


# --- the registry and the declared interface, over every preset and family --------------------------

def _small(name: str) -> dict:
    """Every preset, narrowed where it is big, so the loop over all of them stays fast."""
    narrow = {"dip": {"down": [8] * 5, "up": [8] * 5}, "dip-inpaint": {"down": [8] * 5, "up": [8] * 5, "skip": [8] * 5},
              "oes": {"down": [8] * 6, "up": [8] * 6}, "deep-decoder": {"k": 8}}
    return nets.preset(name, **narrow.get(name, {}))


@pytest.mark.parametrize("name", list(nets.PRESETS))
def test_every_preset_builds_a_registered_family_that_runs_at_its_padded_size(name):
    spec = _small(name)
    net = nets.build(spec)
    assert isinstance(net, nets.Net) and type(net) is nets.FAMILIES.get(spec["kind"]) and net.spec == spec
    z = nets.make_input(net, *nets.padded_size(net, 5, 7), torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net.eval()(z)
    assert torch.isfinite(out).all()
    params = dict(net.named_parameters())
    assert set(net.input_convs()) <= set(nets.conv_weight_names(net)) <= set(params)
    assert net.compactable == (spec["kind"] == "skip")


def test_validate_builds_nothing_and_fails_as_build_does():
    torch.manual_seed(5)
    nets.validate(nets.preset("dip"))
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))  # meta device: no init draws, no weights
    for bad, error in (({"kind": "unet"}, ValueError), (nets.preset("dip", up=[8] * 4), ValueError),
                       ({"kind": "skip"}, KeyError), (nets.preset("dcgan-g", size=12), ValueError)):
        with pytest.raises(error):
            nets.build(bad)
        with pytest.raises(error):
            nets.validate(bad)


def test_estimate_bytes_is_declared_by_the_family():
    dip = nets.preset("dip")
    assert nets.estimate_bytes(dip, 256, 256, "fp32", checkpoint=True) < nets.estimate_bytes(dip, 256, 256, "fp32")
    assert nets.estimate_bytes(dip, 256, 256, "bf16") < nets.estimate_bytes(dip, 256, 256, "fp32")
    assert nets.estimate_bytes(dip, 512, 512, "fp32") > nets.estimate_bytes(dip, 256, 256, "fp32")
    with pytest.raises(LipError, match="no memory estimate for a 'gan' net"):
        nets.estimate_bytes(nets.preset("gan"), 32, 32, "fp32")


class Toy(nets.Net):
    """A one-conv net on a half-size code: a family that lives only in this test."""

    multiple, min_side = 2, 4

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.conv = nn.Conv2d(spec["width"], 3, 3, padding=1)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.spec["width"], height // 2, width // 2

    def input_convs(self) -> list[str]:
        return ["conv.weight"]

    @classmethod
    def activation_floats(cls, spec: dict, checkpoint: bool) -> float:
        return spec["width"] + 3

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(F.interpolate(z, scale_factor=2, mode="nearest")))


@pytest.fixture
def toy(monkeypatch):
    nets.FAMILIES.register("toy")(Toy)
    monkeypatch.setitem(nets.PRESETS, "toy", {"kind": "toy", "width": 4})
    yield
    nets.FAMILIES.unregister("toy")


def test_a_family_registered_in_a_test_is_a_preset_like_any_other(toy, rgb64_path):
    """One class plus one preset entry: build, geometry, tracing, the memory estimate and a restore."""
    net = nets.build(nets.preset("toy"))
    assert isinstance(net, Toy) and nets.padded_size(net, 3, 5) == (4, 6)
    assert nets.make_input(net, 4, 6, torch.Generator()).shape == (1, 4, 2, 3)
    assert nets.conv_weight_names(net) == ["conv.weight"]
    assert nets.estimate_bytes(nets.preset("toy"), 64, 64, "fp32") > 0
    settings = config.resolve("denoise", "fast", "fast", {"precision": "fp32", "net": "toy"})
    problem = load_problem(rgb64_path, "denoise", settings, simulate=True, seed=0)
    cfg = FitConfig(iters=3, lr=0.01, reg_noise=0.0, ema=0.0, early_stop=False, precision="fp32")
    result, report = restore(problem, dense_prior("toy"), cfg, torch.device("cpu"), 0)
    assert report["params"] == nets.count_params(net) == 4 * 3 * 9 + 3 and result.iterations == 3
    with pytest.raises(ValueError, match="known: .*toy"):
        nets.build({"kind": "nope"})


def _torch_count(net: nn.Module, x: torch.Tensor) -> float:
    """What torch's own FlopCounterMode counts, as iteration_gflop reports it (3 forward passes' worth)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.eval()(x)
    return 3 * counter.get_total_flops() / 1e9


@pytest.mark.parametrize("name", list(nets.PRESETS))
def test_iteration_gflop_is_what_torchs_flop_counter_counts(name):
    """lip counts conv and matmul FLOPs itself (torch's counter imports its compiler, ~2 s a process): the
    same number for every preset, and for a compacted net (F.conv2d on kept channels plus a folded matmul)."""
    from lipcli.masks import apply_masks
    from lipcli.nets.compact import compact
    from test_compact import _random_masks

    torch.manual_seed(0)
    net = nets.build(nets.preset(name))
    x = torch.rand((2, *net.input_shape(*nets.padded_size(net, 1, 1))))
    assert nets.iteration_gflop(net, x) == _torch_count(net, x) > 0
    if name == "dip-w16":  # compaction's cost grows with width; the counting does not
        masks = _random_masks(net, 0.5, 0, dead_filters=0.3)  # whole filters too: they compact away
        apply_masks(net, masks)
        small = compact(net, masks)
        assert nets.iteration_gflop(small, x) == _torch_count(small, x) < _torch_count(net, x)


def test_iteration_gflop_counts_conv_work_and_scales_with_width_and_area():
    """3x the forward conv FLOPs: 1/4 of the channels -> about 1/16 of the work; 2x the side -> 4x."""
    dense, narrow = (nets.build(nets.preset(n)) for n in ("dip", "dip-w32"))
    z = torch.rand(1, 32, 64, 64)
    g_dense, g_narrow = nets.iteration_gflop(dense, z), nets.iteration_gflop(narrow, z)
    assert 12 < g_dense / g_narrow < 16
    assert nets.iteration_gflop(dense, torch.rand(1, 32, 128, 128)) == pytest.approx(4 * g_dense, rel=1e-6)
    assert dense.training  # the count leaves the net as it found it
