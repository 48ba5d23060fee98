"""Channel (filter) granularity of `lip prune`: the channel <-> element mapping of masks.py, the
channel scores, channel IMP and random channels on the channel ladder, their artifacts, resume,
and restoring a channel ticket in its compacted form. Tiny net and 10 iterations per round
(tests/prune_helpers.py)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from lipcli import artifact, nets
from lipcli.errors import LipError
from lipcli.fit import FitConfig
from lipcli.masks import (channel_count, channel_sums, channels_alive, expand_channels, ladder_kept,
                          top_channels)
from lipcli.prune.channel_scores import CHANNEL_SCORES, bn_after
from lipcli.prune.oes_channels import ChannelGumbelMasked
from lipcli.prune.run import channel_score_for, methods
from lipcli.prune.scores import ScoreContext
from lipcli.prune.search import prunable_names
from lipcli.restore import Prior, restore

from prune_helpers import CPU, SPEC, nested, problem, request, run_search, spied_search, write_picture

RATE = 0.5


def channel_request(method: str = "imp", rounds: int = 3, score: str | None = None, **kw):
    req = request(method=method, rounds=rounds, rate=RATE, **kw)
    return replace(req, granularity="channel", channel_score=score)


def conv_channels() -> int:
    net = nets.build(SPEC)
    named = dict(net.named_parameters())
    return sum(named[n].shape[0] for n in prunable_names(net, "conv", False, "channel"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("channel_data")
    write_picture(folder / "img.png", 64, 64, seed=0)
    return folder


@pytest.fixture(scope="module")
def img_problem(data_dir):
    return problem(data_dir / "img.png")


@pytest.fixture(scope="module")
def cimp(data_dir, img_problem):
    """A 3-round channel IMP search (l1 score, seed 0), every session's fit recorded."""
    out = data_dir / "cimp.safetensors"
    _, spy = spied_search(channel_request(), [img_problem], out)
    return {"art": artifact.load(out), "calls": spy.calls, "path": out}


def whole_filters_only(masks: dict[str, torch.Tensor]) -> bool:
    """Every conv row is all kept or all pruned."""
    return all(bool((m.flatten(1).all(1) | ~m.flatten(1).any(1)).all()) for m in masks.values())


# ------------------------------------------------------------------ masks.py: the channel view

def test_channel_view_round_trips_and_reduces_per_row():
    within = {"a": torch.ones(4, 2, 3, 3, dtype=torch.bool), "b": torch.ones(3, 5, 1, 1, dtype=torch.bool)}
    within["a"][1, 0, 0, 0] = False  # a partly pruned row is still an alive channel
    within["a"][2] = False
    flags = channels_alive(within)
    assert flags["a"].tolist() == [True, True, False, True] and flags["b"].all()
    assert channel_count(within) == 6
    back = expand_channels(flags, within)
    assert all(torch.equal(back[n], within[n]) for n in within)  # never revives a pruned element
    scores = {"a": torch.arange(72.).view(4, 2, 3, 3), "b": torch.ones(3, 5, 1, 1)}
    sums = channel_sums(scores, within)
    assert sums["a"][0] == sum(range(18)) and sums["a"][1] == sum(range(18, 36)) - 18
    assert sums["a"][2] == 0 and sums["b"].tolist() == [5.0] * 3


def test_top_channels_is_exact_global_and_keeps_a_floor_per_tensor():
    alive = {"a": torch.ones(4, 2, 1, 1, dtype=torch.bool), "b": torch.ones(4, 2, 1, 1, dtype=torch.bool)}
    scores = {"a": torch.tensor([9., 8., 7., 6.]), "b": torch.tensor([1., 2., 3., 4.])}
    keep = top_channels(scores, alive, 3)
    assert channels_alive(keep)["a"].tolist() == [True, True, False, False]  # 2 best overall ...
    assert channels_alive(keep)["b"].tolist() == [False, False, False, True]  # ... + b's floor
    assert channel_count(keep) == 3 and whole_filters_only(keep)
    tiny = top_channels(scores, alive, 0)  # below the floors: one per tensor
    assert {n: int(f.sum()) for n, f in channels_alive(tiny).items()} == {"a": 1, "b": 1}


# ------------------------------------------------------------------ channel scores

def test_l1_score_is_the_kept_l1_norm_over_sqrt_fan_in_and_bn_is_abs_gamma():
    torch.manual_seed(0)
    net = nets.build(SPEC)
    names = prunable_names(net, "conv", False, "channel")
    named = dict(net.named_parameters())
    alive = {n: torch.ones_like(named[n], dtype=torch.bool) for n in names}
    alive[names[0]][0, 0] = False
    l1 = CHANNEL_SCORES.get("l1")(net, names, ScoreContext(masks=alive))
    for n in names:
        w = named[n].detach().double() * alive[n]
        expect = w.abs().flatten(1).sum(1) / math.sqrt(w[0].numel())
        assert torch.allclose(l1[n], expect)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(-2, 2)
    bn = CHANNEL_SCORES.get("bn")(net, names, ScoreContext())
    norms = bn_after(net, names)
    assert norms["levels.0.down.conv.weight"] is net.levels[0].down.bn  # the norm reading the conv
    assert norms["levels.0.up.conv.weight"] is net.levels[0].up.bn  # not merge_bn, which runs before it
    assert all(torch.equal(bn[n], norms[n].weight.detach().abs().double()) for n in names)


def test_bn_score_needs_a_norm_after_every_conv():
    torch.manual_seed(0)
    net = nets.build(SPEC)
    with pytest.raises(LipError, match="head.weight"):
        bn_after(net, nets.conv_weight_names(net))  # the head has no BatchNorm after it


# ------------------------------------------------------------------ channel IMP

def test_channel_imp_prunes_whole_filters_on_the_channel_ladder(cimp):
    art, total = cimp["art"], conv_channels()
    assert art.granularity == "channel" and nested(art)
    assert art.meta["search"]["granularity"] == "channel" and art.meta["search"]["channel_score"] == "l1"
    for k in range(art.rounds + 1):
        keep = art.mask(k)
        assert whole_filters_only(keep)
        counts = {n: int(f.sum()) for n, f in channels_alive(keep).items()}
        assert min(counts.values()) >= 1  # no conv emptied
        assert channel_count(keep) == max(ladder_kept(total, RATE, k), len(counts))
        assert art.meta["rounds"][k]["channels"] == channel_count(keep)
    assert "head.weight" not in art.prune_round  # the head is never masked
    assert sorted(art.prune_round) == sorted(prunable_names(nets.build(SPEC), "conv", False, "channel"))


def test_channel_imp_prunes_the_lowest_l1_filters_of_the_trained_net(cimp):
    art, calls = cimp["art"], cimp["calls"]
    for k in (0, 1):
        trained, alive, keep = calls[k]["after"], art.mask(k), art.mask(k + 1)
        score = {n: (trained[n].double().abs() * alive[n]).flatten(1).sum(1) / math.sqrt(trained[n][0].numel())
                 for n in alive}
        kept_ch, alive_ch = channels_alive(keep), channels_alive(alive)
        kept, cut = [], []
        for n in alive:  # beyond each conv's floor (its best channel), the ranking is global
            others = kept_ch[n].clone()
            others[score[n].masked_fill(~alive_ch[n], -math.inf).argmax()] = False
            kept.append(score[n][others])
            cut.append(score[n][alive_ch[n] & ~kept_ch[n]])
        assert torch.cat(kept).min() >= torch.cat(cut).max()


def interrupted_then_resumed(out, img_problem, slim: bool = False, score: str | None = None) -> artifact.Artifact:
    """A channel search stopped by Ctrl-C after round 1, then resumed to the end."""
    def stop(rec):
        if rec["round"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(channel_request(score=score), [img_problem], out, on_round=stop, slim=slim)
    run_search(channel_request(score=score), [img_problem], out, resume=True, slim=slim)
    return artifact.load(out)


def test_a_random_channel_search_resumes_to_the_uninterrupted_result(data_dir, img_problem):
    """The random score draws in the order the search lists its convs (forward); a file lists them by name, so a
    resumed search drew the same numbers for other layers until it took the search's own order back."""
    full = run_search(channel_request(score="random"), [img_problem], data_dir / "crand.safetensors")
    got = interrupted_then_resumed(data_dir / "crand_resume.safetensors", img_problem, score="random")
    assert all(torch.equal(got.prune_round[n], full.prune_round[n]) for n in full.prune_round)


def test_channel_imp_resumes_to_the_uninterrupted_result(cimp, data_dir, img_problem):
    out = data_dir / "cimp_resume.safetensors"
    got, ref = interrupted_then_resumed(out, img_problem), cimp["art"]
    assert all(torch.equal(got.prune_round[n], ref.prune_round[n]) for n in ref.prune_round)
    with pytest.raises(LipError, match="granularity"):  # an element search cannot resume it
        run_search(request(rounds=3, rate=RATE), [img_problem], out, resume=True)


def test_a_slim_channel_search_resumes_and_reads_back_as_the_full_artifact(cimp, data_dir, img_problem):
    """--slim: per-filter rounds and a regenerated theta0, every round's mask and weights unchanged."""
    out = data_dir / "cimp_slim.safetensors"
    got, ref = interrupted_then_resumed(out, img_problem, slim=True), cimp["art"]
    assert got.meta["format_version"] == artifact.SLIM_VERSION
    assert out.stat().st_size < cimp["path"].stat().st_size / 10  # the JSON header dominates a tiny net
    assert all(torch.equal(got.prune_round[n], ref.prune_round[n]) for n in ref.prune_round)
    assert all(torch.equal(got.theta0[n], ref.theta0[n]) for n in ref.theta0)


def test_channel_bn_imp_and_random_channels_follow_the_ladder_and_are_seeded(data_dir, img_problem):
    total = conv_channels()
    for method, score in (("imp", "bn"), ("random", None)):
        req = channel_request(method, score=score)
        art = run_search(req, [img_problem], data_dir / f"c_{method}.safetensors")
        again = run_search(req, [img_problem], data_dir / f"c2_{method}.safetensors")
        assert art.meta["search"]["channel_score"] == (score or method)
        assert all(torch.equal(art.prune_round[n], again.prune_round[n]) for n in art.prune_round)
        assert nested(art) and all(whole_filters_only(art.mask(k)) for k in range(4))
        assert [channel_count(art.mask(k)) for k in range(3)] == [ladder_kept(total, RATE, k)
                                                                   for k in range(3)]
    other = run_search(replace(channel_request("random"), seed=1), [img_problem], data_dir / "c3.safetensors")
    assert not all(torch.equal(art.prune_round[n], other.prune_round[n]) for n in art.prune_round)


def test_element_searches_record_no_granularity_and_read_as_element(data_dir, img_problem):
    art = run_search(request(method="random", rounds=1), [img_problem], data_dir / "elem.safetensors")
    assert "granularity" not in art.meta["search"] and "channel_score" not in art.meta["search"]
    assert art.granularity == "element" and "channels" not in art.meta["rounds"][1]


@pytest.mark.parametrize("method, granularity, score, needle", [
    ("random-layerwise", "channel", None, "--method"),
    ("imp", "channel", "nope", "channel score"),
    ("random", "channel", "bn", "--channel-score"),
    ("imp", "element", "l1", "--granularity channel"),
    ("imp", "rows", None, "--granularity"),
])
def test_bad_channel_settings_are_refused(method, granularity, score, needle):
    with pytest.raises(LipError, match=needle):
        channel_score_for(method, granularity, score)


def test_channel_granularity_needs_the_conv_scope():
    with pytest.raises(LipError, match="--scope conv"):
        prunable_names(nets.build(SPEC), "all", False, "channel")


# ------------------------------------------------------------------ channel OES (oes_channels.py)

def test_channel_oes_gates_whole_filters_with_one_logit_each():
    net = nets.build(SPEC)
    names = prunable_names(net, "conv", False, "channel")
    model = ChannelGumbelMasked(net, names, tau=0.2, seed=0)
    named = dict(net.named_parameters())
    assert [tuple(p.shape) for p in model.logits] == [(named[n].shape[0], 1, 1, 1) for n in names]
    assert all(s.shape == (named[n].shape[0],) for n, s in model.scores().items())
    assert "oes" in methods("channel") and channel_score_for("oes", "channel", None) == "oes"


@pytest.mark.parametrize("target", [0.5, "the floor"])
def test_channel_oes_keeps_exact_whole_filters_never_empties_a_layer_and_freezes_theta0(target, data_dir,
                                                                                       img_problem):
    """At a target as far as one filter per conv (below it, the search is refused: the bad-input matrix)."""
    if target == "the floor":
        target = 1 - len(prunable_names(nets.build(SPEC), "conv", False, "channel")) / conv_channels()
    req = replace(channel_request("oes", rounds=1), target_sparsity=target)
    art = run_search(req, [img_problem], data_dir / f"coes_{target}.safetensors")
    again = run_search(req, [img_problem], data_dir / f"coes2_{target}.safetensors")
    other = run_search(replace(req, seed=1), [img_problem], data_dir / f"coes3_{target}.safetensors")
    keep = art.mask(1)
    per_layer = {n: int(f.sum()) for n, f in channels_alive(keep).items()}
    assert whole_filters_only(keep) and min(per_layer.values()) >= 1  # the floor: no layer emptied
    assert sum(per_layer.values()) == max(round((1 - target) * conv_channels()), len(per_layer))
    assert art.meta["search"]["granularity"] == "channel" and art.rounds == 1
    assert all(torch.equal(art.prune_round[n], again.prune_round[n]) for n in art.prune_round)
    if target == 0.5:
        assert not all(torch.equal(art.prune_round[n], other.prune_round[n]) for n in art.prune_round)
    torch.manual_seed(0)
    init = dict(nets.build(SPEC).named_parameters())
    assert all(torch.equal(art.theta0[n], init[n].detach()) for n in art.theta0)  # OES learns no weight


# ------------------------------------------------------------------ the ticket restores compacted

def test_a_channel_ticket_restores_compacted_with_fewer_parameters(cimp, data_dir):
    art = cimp["art"]
    prior = Prior(art.spec, art.theta0, art.mask(art.rounds), compact=True)
    cfg = FitConfig(iters=5, early_stop=False, precision="fp32", seed=0)
    _, report = restore(problem(data_dir / "img.png"), prior, cfg, CPU, 0)
    c = report["compact"]
    assert c["fitted"] == "compact"
    assert c["params_after"] < c["params_before"] / 4
    assert c["channels_removed"] >= conv_channels() - channel_count(art.mask(art.rounds))


def test_l1_layer_scores_each_filter_against_its_own_layer():
    torch.manual_seed(0)
    net = nets.build(SPEC)
    names = nets.conv_weight_names(net)
    with torch.no_grad():  # one layer trained "louder" than the others: plain l1 would favour it wholesale
        dict(net.named_parameters())[names[3]].mul_(50)
    plain = CHANNEL_SCORES.get("l1")(net, names, ScoreContext())
    rel = CHANNEL_SCORES.get("l1-layer")(net, names, ScoreContext())
    assert plain[names[3]].min() > max(plain[n].max() for n in names if n != names[3])
    for n in names:
        assert torch.allclose(rel[n].mean(), torch.tensor(1.0, dtype=rel[n].dtype))
        assert torch.equal(rel[n].argsort(), plain[n].argsort())  # the order inside a layer is l1's


def test_a_score_of_trained_nets_only_is_no_one_shot_method():
    """At init every BatchNorm scale is 1: a one-shot `--method bn` mask was the layer order's, for any seed."""
    with pytest.raises(LipError, match="--method bn ranks filters by what training made of them"):
        channel_score_for("bn", "channel", None)
    assert channel_score_for("imp", "channel", "bn") == "bn"  # IMP's score after each round's training
