"""Tests for the channels-last layout of a fit: a level's concat and the input jitter stay channels-last
(lipcli/nets/base.py `concat`, lipcli/fit.py `jittered`), with the values torch.cat and an NCHW draw give."""
from __future__ import annotations

import torch

from lipcli import nets
from lipcli.fit import jittered
from lipcli.nets.base import concat, is_channels_last
from lipcli.nets.compact import compact

CL = torch.channels_last


def test_one_channel_skip_joins_a_channels_last_map_channels_last():
    g = torch.Generator().manual_seed(0)
    skip = torch.rand((2, 1, 6, 5), generator=g)  # NCHW-contiguous, as a one-channel conv output comes
    deep = torch.rand((2, 4, 6, 5), generator=g).contiguous(memory_format=CL)
    for parts in ([skip, deep], [deep, skip]):
        out = concat(parts)
        assert is_channels_last(out) and not is_channels_last(torch.cat(parts, dim=1))
        assert torch.equal(out, torch.cat(parts, dim=1))


def test_concat_leaves_nchw_maps_and_strided_one_channel_views_alone():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand((1, 1, 4, 4), generator=g), torch.rand((1, 3, 4, 4), generator=g)
    assert concat([a, b]).is_contiguous() and torch.equal(concat([a, b]), torch.cat([a, b], dim=1))
    big = torch.rand((1, 3, 4, 4), generator=g).contiguous(memory_format=CL)
    view = big[:, 1:2]  # one channel of a channels-last map: not NCHW memory, so not restrided
    assert torch.equal(concat([view, big]), torch.cat([view, big], dim=1))


def test_compacted_ticket_runs_channels_last_through_its_merges():
    """A ticket whose skip branches keep one filter: every merged map is channels-last, and the output is the
    one torch.cat gives."""
    spec = nets.preset("dip-w32")
    torch.manual_seed(0)
    net = nets.build(spec)
    masks = {}
    for name, p in net.named_parameters():
        if ".skip.conv.weight" in name:
            m = torch.zeros_like(p)
            m[0] = 1
            masks[name] = m
    small = compact(net, masks).to(memory_format=CL)
    z = (torch.rand((1, spec["in_channels"], 64, 64)) * 0.1).contiguous(memory_format=CL)
    merged = []
    hooks = [lv.merge_bn.register_forward_pre_hook(lambda m, x: merged.append(x[0])) for lv in small.levels]
    out = small(z)
    for h in hooks:
        h.remove()
    assert merged and all(is_channels_last(x) for x in merged if x.shape[-1] > 1)
    with torch.no_grad():
        torch.testing.assert_close(out, small(z.contiguous()).contiguous(memory_format=CL), rtol=1e-5, atol=1e-6)


def test_jitter_is_drawn_in_z_layout():
    z = torch.rand((1, 8, 16, 16)) * 0.1
    # NCHW z: the draw lip always made
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(jittered(z, 0.5, g1), z + torch.randn(z.shape, generator=g2) * 0.5)
    # channels-last z: the same stream laid out channels-last, and the result stays channels-last
    zc = z.contiguous(memory_format=CL)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    out = jittered(zc, 0.5, g1)
    assert is_channels_last(out)
    noise = torch.randn((1, 16, 16, 8), generator=g2).permute(0, 3, 1, 2) * 0.5
    assert torch.equal(out, zc + noise)
    d = (out - zc).flatten()
    assert abs(float(d.mean())) < 0.05 and abs(float(d.std()) - 0.5) < 0.03
