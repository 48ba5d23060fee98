"""The pruning engine (lipcli/prune): score functions against hand-computed values, IMP's ladder,
rewinding, resume and blindness, the init baselines, OES and the stop rule (selection: test_masks.py).

All searches use a narrow DIP (tests/prune_helpers.py) at 64x64 and 10 iterations per round.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lipcli import artifact, nets
from lipcli import restore as restore_mod
from lipcli.errors import LipError
from lipcli.fit import Target
from lipcli.masks import ladder_kept
from lipcli.physics import Identity
from lipcli.prune import imp as imp_mod
from lipcli.prune import scores
from lipcli.prune.oes import kl_bernoulli
from lipcli.prune.run import rounds_for
from lipcli.prune.search import prunable_names, recommend

from prune_helpers import (CPU, SPEC, FitSpy, fit_config, nested, params_of, problem, request, run_search,
                           spied_search, write_picture)

INPUT_CONVS = {"levels.0.skip.conv.weight", "levels.0.down.conv.weight"}


def conv_total(keep_input_dense: bool = False) -> int:
    net = nets.build(SPEC)
    named = dict(net.named_parameters())
    return sum(named[n].numel() for n in prunable_names(net, "conv", keep_input_dense))


# ------------------------------------------------------------------ shared data and searches

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prune_data")
    write_picture(folder / "img.png", 64, 64, seed=0)
    write_picture(folder / "wide.png", 64, 96, seed=1)
    return folder


@pytest.fixture(scope="module")
def img_problem(data_dir):
    return problem(data_dir / "img.png")


@pytest.fixture(scope="module")
def imp3(data_dir, img_problem):
    """A 3-round IMP search (seed 0), with every session's fit recorded by a spy."""
    out = data_dir / "imp3.safetensors"
    art, spy = spied_search(request(rounds=3), [img_problem], out)
    return {"art": art, "calls": spy.calls, "path": out, "loaded": artifact.load(out)}


# ------------------------------------------------------------------ run.py

def test_rounds_for_reaches_the_target_on_the_ladder():
    assert rounds_for(0.5, 0.2) == 4  # 1-0.8^3 = 0.488 < 0.5 <= 1-0.8^4 = 0.59
    assert rounds_for(0.36, 0.2) == 2  # exactly on the ladder: not one round more
    assert rounds_for(0.2, 0.2) == 1


# ------------------------------------------------------------------ scores.py on hand-checkable nets

class TwoConv(nn.Module):
    """z -> 1x1 conv (body) -> [activation] -> 1x1 conv (head); no biases, no BN."""

    def __init__(self, cin: int = 3, cmid: int = 4, cout: int = 2, act: str | None = None, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Conv2d(cin, cmid, 1, bias=False)
        self.head = nn.Conv2d(cmid, cout, 1, bias=False)
        self.act = act

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.body(z)
        if self.act == "tanh":
            x = torch.tanh(x)
        return self.head(x)


class OneConv(nn.Module):
    def __init__(self, cin: int = 3, cout: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)


def linear_target(cin: int = 3, cout: int = 2, h: int = 3, w: int = 4, seed: int = 0) -> Target:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(1, cin, h, w, generator=gen)
    y = torch.randn(1, cout, h, w, generator=gen)
    return Target(z=z, op=Identity(), y=y, size=(h, w))


def test_magnitude_is_abs_weight_and_random_is_seeded():
    net = nets.build(SPEC)
    names = prunable_names(net, "conv", False)
    named = dict(net.named_parameters())
    mag = scores.magnitude(net, names, scores.ScoreContext())
    assert all(torch.equal(mag[n], named[n].detach().abs()) for n in names)
    a = scores.random(net, names, scores.ScoreContext(gen=torch.Generator().manual_seed(3)))
    b = scores.random(net, names, scores.ScoreContext(gen=torch.Generator().manual_seed(3)))
    c = scores.random(net, names, scores.ScoreContext(gen=torch.Generator().manual_seed(4)))
    assert all(torch.equal(a[n], b[n]) for n in names)
    assert not all(torch.equal(a[n], c[n]) for n in names)
    assert all(a[n].shape == named[n].shape and a[n].min() >= 0 and a[n].max() < 1 for n in names)


def test_the_random_baseline_keeps_the_count_nested_and_ignores_the_order_of_the_names():
    """One builder for every random baseline (transfer's and classify's): a mask file lists its tensors in
    alphabetical order, the net in its own; the draw must not depend on which one the caller holds."""
    net = nets.build(SPEC)
    names = prunable_names(net, "conv", False)
    total = sum(dict(net.named_parameters())[n].numel() for n in names)
    small, large = (scores.random_mask(net, names, k, seed=5) for k in (total // 10, total // 2))
    assert sum(int(m.sum()) for m in small.values()) == total // 10
    assert all(bool((small[n] <= large[n]).all()) for n in names)  # nested across kept counts
    shuffled = scores.random_mask(net, sorted(names, reverse=True), total // 2, seed=5)
    assert all(torch.equal(shuffled[n], large[n]) for n in names)


def test_snip_matches_the_hand_gradient_of_a_linear_model():
    net, t = OneConv(), linear_target()
    got = scores.snip(net, ["head.weight"], scores.ScoreContext(targets=[t]))["head.weight"]
    w = net.head.weight.detach().double()[:, :, 0, 0]  # (cout, cin)
    z, y = t.z.double()[0].flatten(1), t.y.double()[0].flatten(1)  # (cin, P), (cout, P)
    n = y.numel()
    grad = 2 / n * (w @ z - y) @ z.T  # d mean((Wz - y)^2) / dW
    expected = (w * grad).abs()
    torch.testing.assert_close(got[:, :, 0, 0].double(), expected, rtol=1e-5, atol=1e-7)


def test_snip_matches_autograd_on_the_narrow_dip(img_problem):
    torch.manual_seed(0)
    net = nets.build(SPEC)
    t = img_problem.target(net, torch.Generator().manual_seed(0), CPU)
    names = prunable_names(net, "conv", False)
    got = scores.snip(net, names, scores.ScoreContext(targets=[t]))
    out = net(t.z)[..., :64, :64]
    params = [dict(net.named_parameters())[n] for n in names]
    grads = torch.autograd.grad(((out - t.y) ** 2).mean(), params)
    for n, p, g in zip(names, params, grads):
        torch.testing.assert_close(got[n], (p * g).detach().abs(), rtol=1e-4, atol=1e-9)


def test_grasp_matches_the_hand_hessian_product_of_a_linear_model():
    net, t = OneConv(), linear_target()
    got = scores.grasp(net, ["head.weight"], scores.ScoreContext(targets=[t]))["head.weight"]
    got = got[:, :, 0, 0].double()
    w = net.head.weight.detach().double()[:, :, 0, 0]
    z, y = t.z.double()[0].flatten(1), t.y.double()[0].flatten(1)
    n = y.numel()
    g = 2 / n * (w @ z - y) @ z.T
    hg = 2 / n * g @ (z @ z.T)  # the loss is quadratic in W: H = 2/n (I (x) Z Z^T)
    torch.testing.assert_close(got, w * hg, rtol=1e-4, atol=1e-7)
    assert (got < 0).any() or (got > 0).any()  # signed: not an absolute value


def test_grasp_matches_autograd_hvp_on_a_nonlinear_two_layer_net():
    net, t = TwoConv(act="tanh"), linear_target()
    names = ["body.weight", "head.weight"]
    got = scores.grasp(net, names, scores.ScoreContext(targets=[t]))
    base = {n: p.detach().clone() for n, p in net.named_parameters()}

    def loss(*ws):
        out = functional_call(net, dict(zip(names, ws)), (t.z,))
        return ((out - t.y) ** 2).mean()

    ws = tuple(base[n] for n in names)
    wr = [w.clone().requires_grad_() for w in ws]
    g = torch.autograd.grad(loss(*wr), wr)
    _, hg = torch.autograd.functional.hvp(loss, ws, tuple(x.detach() for x in g))
    for n, w, h in zip(names, ws, hg):
        torch.testing.assert_close(got[n], w * h, rtol=1e-4, atol=1e-8)


def synflow_hand(w1: torch.Tensor, w2: torch.Tensor, pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two bias-free 1x1 convs, ones input: R = pixels * sum_{o,m,i} |w2[o,m]| |w1[m,i]|."""
    a1, a2 = w1.abs(), w2.abs()
    s1 = a1 * pixels * a2.sum(0)[:, None]  # dR/d|w1[m,i]| = pixels * sum_o |w2[o,m]|
    s2 = a2 * pixels * a1.sum(1)[None, :]  # dR/d|w2[o,m]| = pixels * sum_i |w1[m,i]|
    return s1, s2


def test_synflow_matches_the_path_sum_of_a_linear_chain():
    net = TwoConv(cin=3, cmid=4, cout=2)
    before = params_of(net)
    names = ["body.weight", "head.weight"]
    alive = {n: torch.ones_like(p, dtype=torch.bool) for n, p in net.named_parameters()}
    got = scores.synflow(net, names, scores.ScoreContext(masks=alive, input_shape=(3, 2, 5)))
    w1, w2 = before["body.weight"].double()[:, :, 0, 0], before["head.weight"].double()[:, :, 0, 0]
    s1, s2 = synflow_hand(w1, w2, pixels=10)
    torch.testing.assert_close(got["body.weight"][:, :, 0, 0].double(), s1, rtol=1e-6, atol=0)
    torch.testing.assert_close(got["head.weight"][:, :, 0, 0].double(), s2, rtol=1e-6, atol=0)
    assert all(torch.equal(before[n], p.detach()) for n, p in net.named_parameters())  # caller's net untouched

    # under a mask: pruned elements score 0 and the path sums only count surviving weights
    m1 = torch.ones_like(alive["body.weight"])
    m1[1, :] = False
    m1[0, 2] = False
    masks = {"body.weight": m1, "head.weight": alive["head.weight"]}
    got = scores.synflow(net, names, scores.ScoreContext(masks=masks, input_shape=(3, 2, 5)))
    s1, s2 = synflow_hand(w1 * m1[:, :, 0, 0], w2, pixels=10)
    torch.testing.assert_close(got["body.weight"][:, :, 0, 0].double(), s1, rtol=1e-6, atol=0)
    torch.testing.assert_close(got["head.weight"][:, :, 0, 0].double(), s2, rtol=1e-6, atol=0)
    assert (got["body.weight"][~m1] == 0).all()
    assert (got["head.weight"][:, 1] == 0).all()  # unit 1 lost all its inputs: no flow through it


def test_synflow_on_the_narrow_dip_is_finite_and_zero_where_masked():
    torch.manual_seed(0)
    net = nets.build(SPEC)
    names = prunable_names(net, "conv", False)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=gen) > 0.5 for n, p in net.named_parameters() if n in names}
    shape = net.input_shape(net.min_side, net.min_side)
    got = scores.synflow(net, names, scores.ScoreContext(masks=masks, input_shape=shape))
    for n in names:
        assert torch.isfinite(got[n]).all() and (got[n] >= 0).all()
        assert (got[n][~masks[n]] == 0).all()
        assert (got[n][masks[n]] > 0).any()


# ------------------------------------------------------------------ IMP

def test_prunable_names_scopes_and_input_convs():
    net = nets.build(SPEC)
    conv = prunable_names(net, "conv", False)
    assert conv == nets.conv_weight_names(net) and INPUT_CONVS <= set(conv)
    assert set(prunable_names(net, "conv", True)) == set(conv) - INPUT_CONVS
    everything = prunable_names(net, "all", False)
    assert set(everything) == {n for n, _ in net.named_parameters()}
    with pytest.raises(LipError):
        prunable_names(net, "bn", False)


def test_imp_sparsity_ladder_is_exact(imp3):
    art = imp3["loaded"]
    total = conv_total()
    assert art.rounds == 3 and len(art.meta["rounds"]) == 4
    for k in range(4):
        kept, n = art.counts(k)
        assert n == total
        assert kept == ladder_kept(total, 0.2, k)
        assert abs(art.sparsity(k) - (1 - 0.8 ** k)) <= 1 / total  # within one weight
        rec = art.meta["rounds"][k]
        assert rec["round"] == k and rec["kept"] == kept and rec["total"] == total
        assert rec["sparsity"] == pytest.approx(1 - kept / total, abs=1e-12)
        assert math.isfinite(rec["loss"])
    assert set(art.prune_round) == set(nets.conv_weight_names(nets.build(SPEC)))
    assert art.meta["method"] == "imp" and art.meta["oracle"] is False


def test_imp_masks_are_nested_and_prune_the_smallest_trained_weights(imp3):
    art, calls = imp3["loaded"], imp3["calls"]
    assert nested(art)
    for k in range(3):
        alive, keep = art.mask(k), art.mask(k + 1)
        trained = calls[k]["after"]
        kept = torch.cat([trained[n].abs()[keep[n]] for n in keep])
        cut = torch.cat([trained[n].abs()[alive[n] & ~keep[n]] for n in keep])
        assert cut.numel() == art.counts(k)[0] - art.counts(k + 1)[0]
        assert kept.min() >= cut.max()  # global magnitude ranking of session k's trained weights


def test_imp_sessions_start_at_theta0_and_keep_pruned_weights_zero(imp3):
    art, calls = imp3["loaded"], imp3["calls"]
    assert len(calls) == 4
    for k, call in enumerate(calls):
        # rewound: every parameter (survivors included) starts exactly at theta0
        assert set(call["entry"]) == set(art.theta0)
        assert all(torch.equal(call["entry"][n], art.theta0[n]) for n in art.theta0)
        masks = call["masks"]
        assert set(masks) == set(art.prune_round)
        assert all(torch.equal(masks[n].cpu(), art.mask(k)[n]) for n in masks)
        for n, m in masks.items():  # after the session's fit, pruned weights are exactly zero
            assert (call["after"][n][~m] == 0).all()
            if k:
                assert (call["after"][n][m] != art.theta0[n][m]).any()  # survivors did train
    # the input code is the same in every session (no --fresh-input)
    assert all(torch.equal(c["targets"][0].z, calls[0]["targets"][0].z) for c in calls)


def test_restore_with_an_imp_mask_keeps_pruned_weights_zero(imp3, img_problem, monkeypatch):
    art = imp3["loaded"]
    prior = restore_mod.masked_prior(imp3["path"], 3, None, "artifact")
    spy = FitSpy(restore_mod.fit)
    monkeypatch.setattr(restore_mod, "fit", spy)
    result, report = restore_mod.restore(img_problem, prior, fit_config(), CPU, 0)
    (call,) = spy.calls
    assert all(torch.equal(call["entry"][n], art.theta0[n]) for n in art.theta0)
    for n, m in art.mask(3).items():
        assert (call["after"][n][~m] == 0).all()
        assert (call["after"][n][m] != 0).all()
    assert report["sparsity"] == pytest.approx(1 - 0.8 ** 3, abs=1 / conv_total())


def test_imp_keep_input_dense_leaves_the_z_convs_unmasked(data_dir, img_problem, monkeypatch):
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    art = run_search(request(rounds=1, keep_input_dense=True), [img_problem], data_dir / "dense_in.safetensors")
    assert not INPUT_CONVS & set(art.prune_round)
    assert set(art.prune_round) == set(nets.conv_weight_names(nets.build(SPEC))) - INPUT_CONVS
    total = conv_total(keep_input_dense=True)
    assert art.counts(1) == (ladder_kept(total, 0.2, 1), total)  # sparsity over what is masked
    assert INPUT_CONVS <= set(art.theta0)
    for call in spy.calls:
        assert not INPUT_CONVS & set(call["masks"])
        assert all((call["after"][n] != 0).all() for n in INPUT_CONVS)


def test_imp_rewind_stores_the_weights_after_half_of_session_0(data_dir, img_problem, monkeypatch):
    spy = FitSpy(imp_mod.fit, grab_at=(5,))
    monkeypatch.setattr(imp_mod, "fit", spy)
    art = run_search(request(rounds=1, rewind=0.5), [img_problem], data_dir / "rewind.safetensors")
    first, second = spy.calls
    half = first["snaps"][5]
    assert art.meta["rewind_iteration"] == 5
    assert all(torch.equal(art.theta0[n], half[n]) for n in half)
    assert not all(torch.equal(first["entry"][n], half[n]) for n in half)  # not the init
    assert all(torch.equal(second["entry"][n], half[n]) for n in half)  # session 1 rewinds there
    assert torch.equal(artifact.load(data_dir / "rewind.safetensors").theta0["head.weight"], half["head.weight"])


def test_mask_distance_counts_changed_prune_decisions():
    a = torch.tensor([1, 1, 0, 0, 0], dtype=torch.bool)
    assert imp_mod.mask_distance(a, a) == 0
    assert imp_mod.mask_distance(a, torch.tensor([0, 1, 1, 0, 0], dtype=torch.bool)) == 0.5
    assert imp_mod.mask_distance(a, torch.tensor([0, 0, 1, 1, 0], dtype=torch.bool)) == 1


def test_imp_early_bird_ends_sessions_once_the_mask_settles(data_dir, img_problem, monkeypatch):
    """A threshold of 1 ends every pruning session at its second check; the ladder stays exact and
    nested, the mask is the magnitude ranking where the session stopped; the last session, which has no next mask
    to settle, trains as long as the one before it (so the round losses compare at one budget)."""
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    art = run_search(request(rounds=2, iters=30, early_bird=1.0, early_bird_every=4), [img_problem],
                     data_dir / "early_bird.safetensors")
    assert [r["iterations"] for r in art.meta["rounds"]] == [8, 8, 8]
    assert [c["result"].iterations for c in spy.calls] == [8, 8, 8]
    assert nested(art) and art.counts(2)[0] == ladder_kept(conv_total(), 0.2, 2)
    trained, alive, keep = spy.calls[0]["after"], art.mask(0), art.mask(1)
    kept = torch.cat([trained[n].abs()[keep[n]] for n in keep])
    cut = torch.cat([trained[n].abs()[alive[n] & ~keep[n]] for n in keep])
    assert kept.min() >= cut.max()


def test_imp_early_bird_off_runs_every_iteration(imp3):
    assert [r["iterations"] for r in imp3["loaded"].meta["rounds"]] == [10, 10, 10, 10]


def test_imp_fresh_input_draws_a_new_code_each_session(data_dir, img_problem, monkeypatch):
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    run_search(request(rounds=1, fresh_input=True, iters=2), [img_problem], data_dir / "fresh.safetensors")
    a, b = (c["targets"][0].z for c in spy.calls)
    assert a.shape == b.shape and not torch.equal(a, b)


def test_imp_two_images_of_different_sizes(data_dir, img_problem, monkeypatch):
    wide = problem(data_dir / "wide.png")
    assert wide.size == (64, 96)
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    art = run_search(request(rounds=2), [img_problem, wide], data_dir / "multi.safetensors")
    losses = [r["loss"] for r in art.meta["rounds"]]
    assert [r["round"] for r in art.meta["rounds"]] == [0, 1, 2]
    assert len(losses) == 3 and all(isinstance(v, float) and math.isfinite(v) for v in losses)
    assert all("psnr_final" in r for r in art.meta["rounds"])  # simulated: clean refs report PSNR
    assert [(i["height"], i["width"]) for i in art.meta["images"]] == [(64, 64), (64, 96)]
    assert art.counts(2)[0] == ladder_kept(conv_total(), 0.2, 2) and nested(art)
    for call in spy.calls:  # one z per image, at each image's size
        t64, t96 = call["targets"]
        assert t64.z.shape == (1, 32, 64, 64) and t96.z.shape == (1, 32, 64, 96)
        assert t64.size == (64, 64) and t96.size == (64, 96)


def test_imp_shared_input_gives_one_code_for_same_size_images(data_dir, img_problem, monkeypatch):
    other = problem(write_picture(data_dir / "other.png", 64, 64, seed=5))
    spy = FitSpy(imp_mod.fit)
    monkeypatch.setattr(imp_mod, "fit", spy)
    run_search(request(rounds=0, iters=2, shared_input=True), [img_problem, other], data_dir / "shared.safetensors")
    a, b = spy.calls[0]["targets"]
    assert torch.equal(a.z, b.z) and not torch.equal(a.y, b.y)


# ------------------------------------------------------------------ stop rule

@pytest.mark.parametrize("losses, rises, expected", [
    ([5, 4, 3, 3.5, 4, 4.5], 2, 2),
    ([5, 4, 3, 3.5, 4, 4.5], 3, 2),
    ([5, 4, 3, 3.5, 4, 4.5], 1, 2),
    ([5, 4, 3, 3.5, 3.4, 4, 4.5], 2, 4),
    ([5, 4, 3, 3.5, 3.4, 4, 4.5], 3, None),
    ([5, 4, 3, 3.5, 4, 3.9, 4.5], 3, None),
    ([5, 4, 3, 2, 1], 2, None),  # no rise
    ([5, 4, 3, 3, 3], 2, None),  # flat is not a rise
    ([5, 6, 7], 2, 0),
    ([5, 6], 2, None),  # too short to see two rises
    ([5, 4, 3, 3.5, 4, None], 2, 2),  # an untrained last round does not matter
    ([5, None, 3, 3.5, 4], 2, 2),
    ([5, 6, None, 7, 8], 2, None),  # a window with a missing loss never counts
    ([5, 6, None, 7, 8, 9], 2, 3),
    ([], 2, None),
])
def test_recommend(losses, rises, expected):
    assert recommend(losses, rises) == expected


SCRIPT = [5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]


@pytest.mark.parametrize("stop", [True, False])
def test_imp_stop_rule_with_scripted_losses(data_dir, img_problem, monkeypatch, stop):
    spy = FitSpy(imp_mod.fit, script=SCRIPT)
    monkeypatch.setattr(imp_mod, "fit", spy)
    out = data_dir / f"stop_{stop}.safetensors"
    art = run_search(request(rounds=8, iters=1, rises=2, stop_on_rises=stop), [img_problem], out)
    saved = artifact.load(out)
    losses = [r["loss"] for r in saved.meta["rounds"] if r["loss"] is not None]
    if stop:
        assert len(spy.calls) == 5  # sessions 0..4: round 4 shows the second rise
        assert losses == SCRIPT[:5]
        assert saved.meta.get("stopped_by_rule") is True
        before = out.read_bytes()  # resumed, a search the rule ended trains nothing more (it trained one more round)
        assert run_search(request(rounds=8, iters=1, rises=2, stop_on_rises=stop), [img_problem], out,
                          resume=True).recommended_round == 2
        assert len(spy.calls) == 5 and out.read_bytes() == before
    else:
        assert len(spy.calls) == 9 and losses == SCRIPT
        assert "stopped_by_rule" not in saved.meta
    assert art.recommended_round == saved.recommended_round == 2


# ------------------------------------------------------------------ resume

@pytest.mark.parametrize("where", ["after_round_1", "inside_session_2"])
def test_imp_resume_gives_the_uninterrupted_result(imp3, data_dir, img_problem, monkeypatch, where):
    out = data_dir / f"resume_{where}.safetensors"
    req = request(rounds=3)
    if where == "after_round_1":
        def on_round(rec):
            if rec["round"] == 1:
                raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            run_search(req, [img_problem], out, on_round=on_round)
        expect_losses = 2  # a round is reported once it is saved: rounds 0 and 1 are kept
    else:
        spy = FitSpy(imp_mod.fit, interrupt_at=(2, 3))
        with monkeypatch.context() as mp:
            mp.setattr(imp_mod, "fit", spy)
            with pytest.raises(KeyboardInterrupt):
                run_search(req, [img_problem], out)
        expect_losses = 2
    partial = artifact.load(out)
    assert sum(r["loss"] is not None for r in partial.meta["rounds"]) == expect_losses
    assert partial.rounds == expect_losses  # the next round's mask was saved before the interruption

    resumed = run_search(req, [img_problem], out, resume=True)
    ref, final = imp3["loaded"], artifact.load(out)
    for got in (resumed, final):
        assert set(got.prune_round) == set(ref.prune_round)
        assert all(torch.equal(got.prune_round[n], ref.prune_round[n]) for n in ref.prune_round)
        assert all(torch.equal(got.theta0[n], ref.theta0[n]) for n in ref.theta0)
    assert [r["loss"] for r in final.meta["rounds"]] == [r["loss"] for r in ref.meta["rounds"]]


def test_resume_with_other_settings_is_refused(imp3, img_problem, data_dir):
    copy = data_dir / "resume_other.safetensors"
    copy.write_bytes(imp3["path"].read_bytes())
    with pytest.raises(LipError, match="rate"):
        run_search(request(rounds=3, rate=0.3), [img_problem], copy, resume=True)
    assert copy.read_bytes() == imp3["path"].read_bytes()


# ------------------------------------------------------------------ baselines on the ladder

@pytest.mark.parametrize("method", scores.SCORES.names())  # every registered score, on the ladder driver
def test_baselines_follow_the_ladder_exactly(method, data_dir, img_problem):
    out = data_dir / f"{method}.safetensors"
    returned = run_search(request(method=method, rounds=3), [img_problem], out)
    art = artifact.load(out)
    assert all(torch.equal(returned.prune_round[n], art.prune_round[n]) for n in art.prune_round)
    total = conv_total()
    assert art.rounds == 3 and art.meta["method"] == method
    assert [r["round"] for r in art.meta["rounds"]] == [0, 1, 2, 3]
    for k in range(4):
        assert art.counts(k) == (ladder_kept(total, 0.2, k), total)
        assert art.meta["rounds"][k]["kept"] == ladder_kept(total, 0.2, k)
    assert nested(art)
    if method == "magnitude":  # one-shot magnitude at init: round k = the largest |theta0|
        for k in (1, 3):
            keep = art.mask(k)
            kept = torch.cat([art.theta0[n].abs()[keep[n]] for n in keep])
            cut = torch.cat([art.theta0[n].abs()[~keep[n]] for n in keep])
            assert kept.min() >= cut.max()


def test_random_baseline_is_seeded(data_dir, img_problem):
    a = run_search(request(method="random", rounds=2, seed=1), [img_problem], data_dir / "r1.safetensors")
    b = run_search(request(method="random", rounds=2, seed=1), [img_problem], data_dir / "r2.safetensors")
    c = run_search(request(method="random", rounds=2, seed=2), [img_problem], data_dir / "r3.safetensors")
    assert all(torch.equal(a.prune_round[n], b.prune_round[n]) for n in a.prune_round)
    assert not all(torch.equal(a.prune_round[n], c.prune_round[n]) for n in a.prune_round)


def test_random_layerwise_copies_per_layer_counts_of_an_imp_artifact(imp3, data_dir, img_problem):
    like = imp3["loaded"]
    out = data_dir / "rlw.safetensors"
    run_search(request(method="random-layerwise", rounds=1, like=imp3["path"]), [img_problem], out)
    art = artifact.load(out)
    assert art.rounds == like.rounds == 3  # the rounds come from --like
    for k in range(like.rounds + 1):
        theirs, ours = like.mask(k), art.mask(k)
        assert {n: int(m.sum()) for n, m in ours.items()} == {n: int(m.sum()) for n, m in theirs.items()}
    assert nested(art)
    assert not all(torch.equal(art.mask(3)[n], like.mask(3)[n]) for n in like.prune_round)  # random, not a copy


def test_random_layerwise_leaves_dense_what_its_like_leaves_dense(imp3, data_dir, img_problem):
    """A channel ticket never masks the head: as --like it was refused ("check --scope / --net"), which no flag
    could mend."""
    like = imp3["loaded"]
    last = list(like.prune_round)[-1]
    headless = data_dir / "headless.safetensors"
    artifact.save(headless, replace(like, prune_round={n: r for n, r in like.prune_round.items() if n != last},
                                    meta={**like.meta, "rounds": [{"round": r["round"]} for r in like.meta["rounds"]]}))
    art = run_search(request(method="random-layerwise", rounds=1, like=headless), [img_problem],
                     data_dir / "rlw-headless.safetensors")
    assert set(art.prune_round) == set(like.prune_round) - {last}


def test_random_layerwise_needs_like(data_dir, img_problem):
    with pytest.raises(LipError, match="--like"):
        run_search(request(method="random-layerwise", rounds=1), [img_problem], data_dir / "nolike.safetensors")


# ------------------------------------------------------------------ OES

def kl_closed_form(logits: torch.Tensor, rho: float) -> torch.Tensor:
    p = torch.sigmoid(logits.double())
    return (p * torch.log(p / rho) + (1 - p) * torch.log((1 - p) / (1 - rho))).sum()


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.9])
def test_kl_bernoulli_matches_the_closed_form(rho):
    logits = torch.tensor([-6.0, -2.0, -0.3, 0.0, 0.7, 1.5, 4.0], dtype=torch.float64)
    torch.testing.assert_close(kl_bernoulli(logits, rho), kl_closed_form(logits, rho), rtol=1e-6, atol=1e-9)
    at_rho = torch.full((10,), math.log(rho / (1 - rho)), dtype=torch.float64)
    assert abs(float(kl_bernoulli(at_rho, rho))) < 1e-5  # KL(rho || rho) = 0
    f32 = logits.float()
    torch.testing.assert_close(kl_bernoulli(f32, rho).double(), kl_closed_form(f32, rho), rtol=1e-5, atol=1e-6)


def test_kl_bernoulli_is_exact_in_float64():
    rho = 0.2
    logits = torch.tensor([-6.0, -2.0, -0.3, 0.0, 0.7, 1.5, 4.0], dtype=torch.float64)
    torch.testing.assert_close(kl_bernoulli(logits, rho), kl_closed_form(logits, rho), rtol=1e-12, atol=1e-14)
    at_rho = torch.full((1000,), math.log(rho / (1 - rho)), dtype=torch.float64)
    assert float(kl_bernoulli(at_rho, rho)) >= -1e-12


@pytest.mark.parametrize("target", [None, 0.5])
def test_oes_keeps_exactly_rho_n_and_masks_bn_with_scope_all(target, data_dir, img_problem):
    out = data_dir / f"oes_{target}.safetensors"
    run_search(request(method="oes", rounds=2, scope="all", target_sparsity=target), [img_problem], out)
    art = artifact.load(out)
    net = nets.build(SPEC)
    total = nets.count_params(net)
    rho = 0.8 ** 2 if target is None else 1 - target
    assert art.counts(1) == (round(rho * total), total)
    assert art.counts(0) == (total, total)
    assert set(art.prune_round) == {n for n, _ in net.named_parameters()}
    bn_weights = {f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert bn_weights and bn_weights <= set(art.prune_round)
    rec = art.meta["rounds"][1]
    assert rec["kept"] == round(rho * total) and math.isfinite(rec["loss"])
    # theta0 is the frozen init: OES learns a mask, never the weights
    torch.manual_seed(0)
    init = nets.build(SPEC)
    assert all(torch.equal(art.theta0[n], p.detach()) for n, p in init.named_parameters())


# ------------------------------------------------------------------ reproducible artifacts

def _without_seconds(meta: dict) -> dict:
    return {**meta, "rounds": [{k: v for k, v in r.items() if k != "seconds"} for r in meta["rounds"]]}


def test_reruns_give_the_same_artifact_up_to_timings(data_dir, img_problem, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    a = run_search(request(rounds=1, iters=3), [img_problem], data_dir / "rep_a.safetensors")
    b = run_search(request(rounds=1, iters=3), [img_problem], data_dir / "rep_b.safetensors")
    assert a.meta["created"] == b.meta["created"] == "1970-01-01T00:00:00Z"
    assert _without_seconds(a.meta) == _without_seconds(b.meta)
    assert all(torch.equal(a.prune_round[n], b.prune_round[n]) for n in a.prune_round)
    assert all(torch.equal(a.theta0[n], b.theta0[n]) for n in a.theta0)


def test_reruns_are_byte_identical_with_source_date_epoch(data_dir, img_problem, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    a, b = data_dir / "byte_a.safetensors", data_dir / "byte_b.safetensors"
    run_search(request(rounds=1, iters=3), [img_problem], a)
    run_search(request(rounds=1, iters=3), [img_problem], b)
    assert a.read_bytes() == b.read_bytes()


def test_an_artifact_records_the_size_of_the_image_as_read(tmp_path):
    """A real SR input's size, not the restored one's (an 8x8 file was recorded as 32x32)."""
    from lipcli import config
    from lipcli.problem import load_problem, provenance
    import numpy as np
    from PIL import Image
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 8, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    settings = {**config.resolve("sr", "fast", "fast", {}), "scale": 4}
    problem = load_problem(tmp_path / "small.png", "sr", settings, simulate=False, seed=0)
    assert problem.size == (64, 32)
    assert [(i["height"], i["width"]) for i in provenance([problem])["images"]] == [(16, 8)]


@pytest.mark.parametrize("method", ["random", "synflow"])
def test_a_stopped_one_shot_search_keeps_its_rounds_and_resumes_to_the_same_masks(method, data_dir, img_problem):
    """A stopped synflow search (40-65 s a round at 100 re-scorings) threw its finished rounds away: the artifact was
    written once, at the end."""
    req = request(method=method, rounds=3, synflow_iters=3)
    full = run_search(req, [img_problem], data_dir / f"{method}-full.safetensors")
    out = data_dir / f"{method}-stopped.safetensors"

    def stop(rec: dict) -> None:
        if rec["round"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_search(req, [img_problem], out, on_round=stop)
    assert artifact.load(out).rounds == 1
    done = run_search(req, [img_problem], out, resume=True)
    assert done.rounds == 3 and all(torch.equal(done.prune_round[n], full.prune_round[n]) for n in full.prune_round)
