"""lipcli/masks.py: what a mask means. Masks of a round from prune rounds, counting, applying masks
to weights and gradients, and exact top-k selection (exact counts, ties by position, dead stay dead).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lipcli.masks import (MaskedParams, apply_masks, from_rounds, kept_by_round, kept_count, ladder_kept,
                          mask_sparsity, record_round, top_global, top_per_layer, total_count)


def _rounds() -> dict[str, torch.Tensor]:
    return {"a": torch.tensor([[0, 1], [2, 3]], dtype=torch.uint8), "b": torch.tensor([0, 0, 3, 1], dtype=torch.uint8)}


def test_masks_from_rounds_are_nested_and_counted_exactly():
    r = _rounds()
    assert from_rounds(r, 0)["a"].all() and from_rounds(r, 0)["b"].all()
    assert from_rounds(r, 1)["a"].tolist() == [[True, False], [True, True]]
    assert from_rounds(r, 3)["b"].tolist() == [True, True, False, False]
    for k in range(3):
        before, after = from_rounds(r, k), from_rounds(r, k + 1)
        assert all(not (after[n] & ~before[n]).any() for n in r)  # nested: nothing revives
    assert [kept_count(from_rounds(r, k)) for k in range(4)] == [8, 6, 5, 3]
    assert kept_by_round(r, 3) == {"a": [4, 3, 2, 1], "b": [4, 3, 3, 2]}
    assert total_count(from_rounds(r, 2)) == 8
    assert mask_sparsity(from_rounds(r, 3)) == 1 - 3 / 8
    assert mask_sparsity(None) == 0.0 and mask_sparsity({}) == 0.0


def test_record_round_marks_only_the_newly_pruned():
    r = _rounds()
    before = from_rounds(r, 3)
    after = {"a": before["a"].clone(), "b": torch.tensor([True, False, False, False])}
    record_round(r, before, after, 4)
    assert r["b"].tolist() == [0, 4, 3, 1] and torch.equal(r["a"], _rounds()["a"])


def test_kept_count_over_a_net_counts_unmasked_parameters_whole():
    net = nn.Linear(3, 2)  # weight 2x3, bias 2
    keep = {"weight": torch.tensor([[True, False, False], [True, True, False]])}
    assert kept_count(keep) == 3
    assert kept_count(keep, over=dict(net.named_parameters())) == 3 + 2


def test_masked_params_zero_weights_and_only_existing_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    keep = {"0.weight": torch.rand(3, 4) > 0.5, "1.weight": torch.rand(2, 3) > 0.5}
    masked = MaskedParams(net, keep)
    assert masked and not MaskedParams(net, None)
    masked.zero_weights()
    assert all((p.detach()[~keep[n]] == 0).all() for n, p in net.named_parameters() if n in keep)
    net[1].weight.requires_grad_(False)  # no gradient at all: skipped, not created
    net(torch.randn(5, 4)).sum().backward()
    masked.zero_grads()
    assert (net[0].weight.grad[~keep["0.weight"]] == 0).all() and net[1].weight.grad is None
    apply_masks(net, None)  # no masks: nothing to do


def test_ladder_kept():
    assert [ladder_kept(1000, 0.2, k) for k in range(4)] == [1000, 800, 640, 512]
    assert ladder_kept(12408, 0.2, 5) == round(12408 * 0.8 ** 5)


def test_top_global_keeps_exactly_n_across_tensors():
    gen = torch.Generator().manual_seed(0)
    s = {"a": torch.randn(5, 7, generator=gen), "b": torch.randn(13, generator=gen)}
    alive = {n: torch.ones_like(v, dtype=torch.bool) for n, v in s.items()}
    for n_keep in (0, 1, 17, 48):
        keep = top_global(s, alive, n_keep)
        assert sum(int(m.sum()) for m in keep.values()) == n_keep
        assert {n: m.shape for n, m in keep.items()} == {n: v.shape for n, v in s.items()}
    keep = top_global(s, alive, 10)
    flat = torch.cat([s["a"].flatten(), s["b"]])
    kept = torch.cat([keep["a"].flatten(), keep["b"]])
    assert flat[kept].min() > flat[~kept].max()  # the global top 10, not per tensor


def test_top_global_ties_are_broken_by_position_deterministically():
    s = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}  # all scores equal
    alive = {"a": torch.ones(2, 3, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}
    first = top_global(s, alive, 7)
    assert first["a"].all() and first["b"].tolist() == [True, False, False, False]
    for _ in range(3):
        again = top_global(s, alive, 7)
        assert all(torch.equal(first[n], again[n]) for n in s)
    # partial ties: the top score wins, then equal scores in position order
    s2 = {"a": torch.tensor([1.0, 1.0, 2.0, 1.0, 0.5])}
    keep = top_global(s2, {"a": torch.ones(5, dtype=torch.bool)}, 3)
    assert keep["a"].tolist() == [True, True, True, False, False]


def test_top_global_never_revives_dead_elements():
    s = {"a": torch.tensor([9.0, 8.0, 1.0, 0.5]), "b": torch.tensor([7.0, 0.1, 0.7])}
    alive = {"a": torch.tensor([False, True, True, True]), "b": torch.tensor([False, True, True])}
    keep = top_global(s, alive, 3)
    assert keep["a"].tolist() == [False, True, True, False]
    assert keep["b"].tolist() == [False, False, True]
    everything = top_global(s, alive, 5)  # all alive ones, still none of the dead
    assert all(not (everything[n] & ~alive[n]).any() for n in s)
    assert sum(int(m.sum()) for m in everything.values()) == 5
    with pytest.raises(ValueError):
        top_global(s, alive, 6)


def test_top_global_never_revives_dead_elements_even_with_nan_scores():
    s = {"a": torch.tensor([5.0, float("nan"), 1.0]), "b": torch.tensor([-float("inf")])}
    alive = {"a": torch.tensor([False, True, True]), "b": torch.tensor([True])}
    keep = top_global(s, alive, 3)
    assert keep["a"].tolist() == [False, True, True] and keep["b"].tolist() == [True]


def test_top_per_layer_exact_counts():
    gen = torch.Generator().manual_seed(1)
    s = {"a": torch.rand(4, 5, generator=gen), "b": torch.rand(9, generator=gen), "c": torch.rand(3, generator=gen)}
    alive = {n: torch.rand(v.shape, generator=gen) > 0.3 for n, v in s.items()}
    counts = {"a": 5, "b": int(alive["b"].sum()) - 1, "c": 0}
    keep = top_per_layer(s, alive, counts)
    for n in s:
        assert int(keep[n].sum()) == counts[n]
        assert not (keep[n] & ~alive[n]).any()
        if counts[n]:
            assert s[n][keep[n]].min() >= s[n][alive[n] & ~keep[n]].max()


