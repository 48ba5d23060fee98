"""`lip classify` (lipcli/classify.py): the DIP hourglass as a digit classifier and its tickets.

Tiny settings: an 8-channel 4-level hourglass (digits padded to 32x32), a few hundred digits, one epoch. The properties: the split is
stratified and disjoint, the classifier starts from the DIP's theta0, its head learns (well above
chance), a mask's pruned weights stay zero through training, and a classification ticket is an
ordinary lip artifact that `lip restore --mask` fits.
"""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lipcli import artifact, classify as cls, nets
from lipcli.cli import app
from lipcli.nets import PRESETS
from prune_helpers import make_mask, write_picture

CPU = torch.device("cpu")
SPEC = nets.preset("dip", down=[8] * 4, up=[8] * 4, skip=[4] * 4)  # 4 levels: digits padded to 32x32 only
TINY = cls.TrainConfig(epochs=1, batch=16, train=160, test=50)


def test_split_is_stratified_disjoint_and_the_same_for_every_seed():
    d = cls.digits(300, 100, 64)
    assert torch.bincount(d.y_test).tolist() == [10] * 10  # unlike rows 4500-4999 of the file: all 9s
    assert torch.bincount(d.y_train).tolist() == [30] * 10
    assert d.x_train.shape == (300, 1, 64, 64)
    train_rows = {tuple(x.flatten().tolist()) for x in d.x_train}
    assert not any(tuple(x.flatten().tolist()) in train_rows for x in d.x_test)
    assert torch.equal(cls.digits(300, 100, 64).x_test, d.x_test)


@pytest.mark.parametrize("head", cls.HEADS)
def test_classifier_starts_from_the_dip_theta0(head):
    theta0 = artifact.seeded_theta0(SPEC, 0)
    net = cls.classifier(SPEC, theta0, cls.TrainConfig(head=head))
    own = dict(net.named_parameters())
    inputs = set(net.input_convs())
    assert own["levels.0.down.conv.weight"].shape[1] == 1  # rebuilt for gray digits
    for name, t in own.items():
        if name in theta0 and name not in inputs:
            assert torch.equal(t, theta0[name]), name
    assert ("head.weight" in own) == (head == "flatten")
    names = cls.masked_names(net)
    assert not inputs & set(names) and ("head.weight" in names) == (head == "flatten")
    assert net(torch.rand(3, 1, 32, 32)).shape == (3, 10)


def test_the_head_trains_well_above_chance():
    report = cls.classify(SPEC, None, None, cls.TrainConfig(epochs=1, batch=16, train=160, test=100), CPU)
    assert report["accuracy"] > 0.4  # chance is 0.1; 10 SGD steps measured 0.70
    assert report["masked_params"] == 0 and report["sparsity"] == 0.0


def test_pruned_weights_stay_zero_through_training():
    theta0 = artifact.seeded_theta0(SPEC, 0)
    net = cls.classifier(SPEC, theta0, TINY)
    own = dict(net.named_parameters())
    gen = torch.Generator().manual_seed(1)
    masks = {n: torch.rand(own[n].shape, generator=gen) < 0.5 for n in cls.masked_names(net)}
    cls.train(net, cls.digits(TINY.train, TINY.test, 32), TINY, masks, CPU)
    for name, m in masks.items():
        assert not own[name][~m].any(), name
        assert own[name][m].ne(0).any(), name  # the kept ones trained


def test_a_denoising_mask_applies_to_the_shared_convs(tmp_path):
    path = make_mask(tmp_path / "m.safetensors", SPEC)  # every conv masked, the input convs too
    art = artifact.load(path)
    report = cls.classify(art.spec, art.theta0, art.mask(1), TINY, CPU)
    assert sorted(report["mask_layers_unused"]) == ["levels.0.down.conv.weight", "levels.0.skip.conv.weight"]
    assert 0.45 < report["sparsity"] < 0.55
    random = cls.classify(art.spec, art.theta0, art.mask(1), TINY, CPU, random=True)
    assert random["kept"] == report["kept"] and random["masked_params"] == report["masked_params"]


def test_classification_ticket_is_a_lip_artifact_restore_fits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(PRESETS, "dip-w8-test", SPEC)
    runner = CliRunner()
    args = ["--epochs", "1", "--batch", "16", "--train", "160", "--test", "50", "--threads", "1", "--device", "cpu"]
    r = runner.invoke(app, ["classify", "--net", "dip-w8-test", "--prune-rounds", "2", "-o", "t.safetensors",
                            "--json", *args])
    assert r.exit_code == 0, r.output
    rounds = [json.loads(line) for line in r.stdout.splitlines() if '"round"' in line]
    art = artifact.load(tmp_path / "t.safetensors")
    assert art.spec == SPEC and art.meta["task"] == "classify" and art.rounds == 2
    assert abs(art.sparsity(2) - (1 - 0.64 ** 2)) < 1e-3
    dip = nets.build(SPEC)
    assert set(art.prune_round) == set(nets.conv_weight_names(dip)) - set(dip.input_convs())
    # the session of round 1 is the ticket of round 1 trained from theta0: the same run, the same score
    again = runner.invoke(app, ["classify", "--mask", "t.safetensors", "--round", "1", "--json", *args])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["accuracy"] == rounds[1]["accuracy"]
    write_picture(tmp_path / "img.png", 64, 64)
    fit = runner.invoke(app, ["restore", "img.png", "--simulate", "--mask", "t.safetensors", "--iters", "2",
                              "--threads", "1", "--device", "cpu", "-o", "out.png", "--json"])
    assert fit.exit_code == 0, fit.output
    assert json.loads(fit.stdout)["sparsity"] == pytest.approx(art.sparsity(2))
    assert (tmp_path / "out.png").is_file()


def test_a_stopped_classification_search_says_what_it_kept(tmp_path, monkeypatch):
    """The artifact is rewritten every round: stopped, it holds a ticket whose last round is untrained, and
    classify has no --resume; the stop says both."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(PRESETS, "dip-w8-test", SPEC)
    real, calls = cls.train, []

    def train(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # round 1's session
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(cls, "train", train)
    args = ["--epochs", "1", "--batch", "16", "--train", "40", "--test", "20", "--threads", "1", "--device", "cpu"]
    r = CliRunner().invoke(app, ["classify", "--net", "dip-w8-test", "--prune-rounds", "2", "-o", "t.safetensors",
                                 *args])
    assert r.exit_code == 130, r.output
    assert "t.safetensors keeps the rounds found so far" in r.stderr and "starts it over" in r.stderr
    before = (tmp_path / "t.safetensors").read_bytes()
    monkeypatch.setattr(cls, "train", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))  # in round 0
    r = CliRunner().invoke(app, ["classify", "--net", "dip-w8-test", "--prune-rounds", "2", "-o", "t.safetensors",
                                 *args])
    assert r.exit_code == 130 and "stopped before the first round ended; nothing was written" in r.stderr, r.output
    assert "keeps" not in r.stderr and (tmp_path / "t.safetensors").read_bytes() == before
