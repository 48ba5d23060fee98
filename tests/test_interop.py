"""Masks from and for the official LIP and OES code (issue 15): `lip import-mask`, `lip export-mask`.

"Their" files are made here with torch's own pruning utilities on the published net's module layout
(tests/dip_replica.py), the way the LIP code saves them (the `*_mask` entries of a pruned state dict) and
the way OES does (one boolean per parameter of `model.parameters()`). Nets are tiny (3 levels, 8
channels) except where the preset must be recognised by itself.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from typer.testing import CliRunner

from lipcli import artifact, interop, nets
from lipcli.cli import app
from lipcli.errors import LipError
from dip_replica import dip_skip
from prune_helpers import make_mask, write_picture

SPEC = nets.preset("dip", down=[8] * 3, up=[8] * 3, skip=[4] * 3, in_channels=4)
OES = nets.preset("oes", down=[4, 8, 8], up=[4, 8, 8], skip=[0] * 3, in_channels=4)
YAML = "net: {preset: dip, down: [8, 8, 8], up: [8, 8, 8], skip: [4, 4, 4], in_channels: 4}\n"


def published(spec: dict, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return dip_skip(spec)


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def lip_round(model: nn.Module, path: Path, amount: float = 0.2) -> list[torch.Tensor]:
    """One LIP IMP round's mask file: global L1 pruning of every conv weight, then the `*_mask` entries of the
    state dict saved (as the LIP code's extract_mask + torch.save). Returns the masks, in module order."""
    prune.global_unstructured([(m, "weight") for m in convs(model)], pruning_method=prune.L1Unstructured,
                              amount=amount)
    torch.save({k: v for k, v in model.state_dict().items() if "mask" in k}, path)
    return [m.weight_mask.bool().clone() for m in convs(model)]


def oes_vector(spec: dict, path: Path, keep: float = 0.3, seed: int = 0) -> torch.Tensor:
    """An OES mask file: one boolean per parameter of the published net, in model.parameters() order."""
    n = sum(p.numel() for p in published(spec).parameters())
    flat = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < keep
    np.save(path, flat.numpy())
    return flat


def lip_cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


# ---------------------------------------------------------------- the order that matches names

@pytest.mark.parametrize("spec", [SPEC, nets.preset("dip-inpaint", down=[8] * 2, up=[8] * 2, skip=[8] * 2,
                                                    in_channels=4), OES], ids=["dip", "dip-inpaint", "oes"])
def test_lip_net_with_the_published_weights_matched_by_order_computes_the_same_image(spec):
    theirs, ours = published(spec), nets.build(spec)
    named = dict(ours.named_parameters())
    with torch.no_grad():
        for name, p in zip(nets.param_order(ours), theirs.parameters()):
            named[name].copy_(p)  # a wrong order fails here (shape) or below (values)
    z = torch.rand(1, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ours(z), theirs(z))


def test_oes_net_lists_the_published_parameters_in_the_same_order():
    """Same shapes in the same order (the masks' matching depends on nothing else)."""
    ours = nets.build(OES)
    shapes = {n: tuple(p.shape) for n, p in ours.named_parameters()}
    assert [shapes[n] for n in nets.param_order(ours)] == [tuple(p.shape) for p in published(OES).parameters()]


# ---------------------------------------------------------------- import

def test_lip_mask_files_import_as_the_rounds_of_one_artifact(tmp_path):
    theirs = published(SPEC)
    rounds = [lip_round(theirs, tmp_path / f"mask_prune_state_{k}.pt") for k in (1, 2)]
    art = interop.import_masks([tmp_path / "mask_prune_state_1.pt", tmp_path / "mask_prune_state_2.pt"], SPEC)
    names = nets.conv_weight_names(nets.build(SPEC))
    assert sorted(art.prune_round) == sorted(names) and art.rounds == 2 and art.recommended_round == 2
    for k, masks in enumerate(rounds, 1):
        assert all(torch.equal(art.mask(k)[n], m) for n, m in zip(names, masks))
    total = sum(m.numel() for m in rounds[0])
    assert art.counts(1) == (total - round(0.2 * total), total)
    assert art.meta["method"] == "imported" and art.meta["search"] == {"scope": "conv", "keep_input_dense": False}
    assert [f["file"] for f in art.meta["imported"]] == ["mask_prune_state_1.pt", "mask_prune_state_2.pt"]
    assert art.meta["seed"] == 0 and "init" not in art.meta
    torch.manual_seed(0)
    fresh = nets.build(SPEC)  # theta0: what `lip prune --seed 0` starts from
    assert all(torch.equal(art.theta0[n], p) for n, p in fresh.named_parameters())
    artifact.save(tmp_path / "lip.safetensors", art)
    assert artifact.load(tmp_path / "lip.safetensors").meta == art.meta
    artifact.save(tmp_path / "slim.safetensors", art, slim=True)  # theta0 regenerated from the seed
    assert all(torch.equal(artifact.load(tmp_path / "slim.safetensors").theta0[n], w) for n, w in art.theta0.items())


def test_a_pruned_state_dict_gives_masks_and_with_init_theta0(tmp_path):
    """A whole pruned state dict (weight_orig after bias, BN statistics), under "state_dict" with
    DataParallel's "module." prefix; --init on it takes the *_orig weights as theta0."""
    theirs = published(SPEC)
    masks = lip_round(theirs, tmp_path / "unused.pt")
    state = {"module." + k: v for k, v in theirs.state_dict().items()}
    assert list(state)[:3] == ["module.0.0.0.1.bias", "module.0.0.0.1.weight_orig", "module.0.0.0.1.weight_mask"]
    torch.save({"state_dict": state, "epoch": torch.tensor(3)}, tmp_path / "full.pt")
    art = interop.import_masks([tmp_path / "full.pt"], SPEC, init=tmp_path / "full.pt", keep_input_dense=True)
    net = nets.build(SPEC)
    names = nets.conv_weight_names(net)
    assert set(art.prune_round) == set(names) - set(net.input_convs())
    assert all(torch.equal(art.mask(1)[n], m) for n, m in zip(names, masks) if n in art.prune_round)
    theta = [p for m in theirs.modules() for p in _weight_then_bias(m)]  # the unpruned weights, in their order
    assert len(theta) == len(list(theirs.parameters())) == len(art.theta0)
    assert all(torch.equal(art.theta0[n], w) for n, w in zip(nets.param_order(net), theta))
    assert art.meta["init"]["file"] == "full.pt" and "seed" not in art.meta


def _weight_then_bias(module: nn.Module) -> list[torch.Tensor]:
    """A module's own parameters, weight first (a pruned conv lists bias, then weight_orig)."""
    own = dict(module.named_parameters(recurse=False))
    return [own[k] for k in ("weight_orig", "weight", "bias") if k in own]


def test_oes_vectors_import_over_every_parameter(tmp_path):
    flat = oes_vector(OES, tmp_path / "oes.npy")
    art = interop.import_masks([tmp_path / "oes.npy"], OES)
    net = nets.build(OES)
    order = nets.param_order(net)
    assert art.meta["search"]["scope"] == "all" and set(art.prune_round) == set(order)
    mask = art.mask(1)
    assert torch.equal(torch.cat([mask[n].flatten() for n in order]), flat)
    assert art.counts(1) == (int(flat.sum()), flat.numel())


def test_the_net_is_recognised_by_its_shapes(tmp_path):
    """Full-size files need no --net: an OES vector is the oes preset, LIP masks of a gray net dip with 1 channel."""
    oes_vector(nets.preset("oes"), tmp_path / "oes.npy", keep=0.05)
    assert interop.import_masks([tmp_path / "oes.npy"]).spec == nets.preset("oes")
    gray = published(nets.preset("dip", out_channels=1))
    for m in convs(gray):
        prune.l1_unstructured(m, "weight", amount=0.5)
    torch.save({k: v for k, v in gray.state_dict().items() if k.endswith("_mask")}, tmp_path / "gray.pt")
    assert interop.import_masks([tmp_path / "gray.pt"]).spec == nets.preset("dip", out_channels=1)


# ---------------------------------------------------------------- export: the way back

def test_export_is_what_torch_prune_applies_and_imports_back_bit_exact(tmp_path):
    art = artifact.load(make_mask(tmp_path / "A.safetensors", SPEC, rounds=3))
    assert interop.export(art, 2, tmp_path / "back.pt")[0] == len(art.prune_round)
    exported = torch.load(tmp_path / "back.pt", weights_only=True)
    names = nets.conv_weight_names(nets.build(SPEC))
    assert list(exported) == [f"{n}_mask" for n in names]  # the published Conv2d order
    theirs = published(SPEC)
    for module, mask in zip(convs(theirs), exported.values()):
        prune.custom_from_mask(module, "weight", mask)
    for module, name in zip(convs(theirs), names):
        assert torch.equal(module.weight_mask.bool(), art.mask(2)[name])
        assert torch.equal(module.weight == 0, ~art.mask(2)[name] | (module.weight_orig == 0))
    again = interop.import_masks([tmp_path / "back.pt"], SPEC)
    assert all(torch.equal(again.mask(1)[n], art.mask(2)[n]) for n in names)
    _, zeros = interop.export(art, 3, tmp_path / "back.npy")
    assert zeros == pytest.approx(1 - np.load(tmp_path / "back.npy").mean()) and zeros < art.sparsity(3)
    vector = interop.import_masks([tmp_path / "back.npy"], SPEC)  # every parameter, the others kept ...
    assert vector.meta["search"]["scope"] == "conv" and set(vector.prune_round) == set(names)  # ... so conv again
    assert all(torch.equal(vector.mask(1)[n], art.mask(3)[n]) for n in names)
    assert vector.counts(1) == art.counts(3)


# ---------------------------------------------------------------- refused, in one line

class Boom:
    """Unpickling this creates a folder: the refused file must leave no trace."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def _write(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind.replace(' ', '_')}.pt"
    masks = {k: v for k, v in _pruned_state(SPEC).items() if k.endswith("_mask")}
    if kind == "pickled code":
        torch.save({"x.weight_mask": torch.ones(2), "boom": Boom(str(tmp_path / "UNPICKLED"))}, path)
    elif kind == "plain pickle":
        path.write_bytes(pickle.dumps({"boom": Boom(str(tmp_path / "UNPICKLED"))}))
    elif kind == "object array":
        path = path.with_suffix(".npy")
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "2-D array":
        path = path.with_suffix(".npy")
        np.save(path, np.ones((3, 3), dtype=bool))
    elif kind == "short vector":
        path = path.with_suffix(".npy")
        np.save(path, np.ones(100, dtype=bool))
    elif kind == "not binary":
        torch.save({k: v * 0.5 for k, v in masks.items()}, path)
    elif kind == "no masks":
        torch.save({k: v for k, v in _pruned_state(SPEC).items() if not k.endswith("_mask")}, path)
    elif kind == "a list":
        torch.save(list(masks.values()), path)
    elif kind == "text":
        path.write_text("not a torch file\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "too few masks":
        torch.save(dict(list(masks.items())[:-1]), path)
    elif kind == "another net":
        torch.save({k: v for k, v in _pruned_state(nets.preset("dip", down=[8] * 3, up=[8] * 3, skip=[2] * 3,
                                                                      in_channels=4)).items() if k.endswith("_mask")},
                   path)
    else:
        raise AssertionError(kind)
    return path


def _pruned_state(spec: dict) -> dict[str, torch.Tensor]:
    theirs = published(spec)
    for m in convs(theirs):
        prune.l1_unstructured(m, "weight", amount=0.5)
    return theirs.state_dict()


@pytest.mark.parametrize("kind, fragment", [
    ("pickled code", "never unpickles code"),
    ("plain pickle", "never unpickles code"),
    ("object array", "not a plain numeric .npy array"),
    ("2-D array", "a flat vector of booleans"),
    ("short vector", "the vector has 100 entries, the net has"),
    ("not binary", "values other than 0 and 1"),
    ("no masks", "no *_mask entries"),
    ("a list", "not a dict of tensors"),
    ("text", "not a torch.save file, nor an .npy array"),
    ("empty", "the file is empty"),
    ("too few masks", "they must cover every conv weight (LIP: 16 here) or every parameter"),
    ("another net", "mask 1 of 16 (0.0.0.1.weight_mask) is 2x4x1x1, lip's conv weight 1 "
                    "(levels.0.skip.conv.weight) is 4x4x1x1"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, kind, fragment):
    path = _write(tmp_path, kind)
    with pytest.raises(LipError) as info:
        interop.import_masks([path], SPEC)
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "UNPICKLED").exists()


def test_rounds_out_of_order_or_of_different_scopes_are_refused(tmp_path):
    theirs = published(SPEC)
    for k in (1, 2):
        lip_round(theirs, tmp_path / f"r{k}.pt")
    with pytest.raises(LipError, match="r1.pt: keeps weights of .* that r2.pt pruned; give the files"):
        interop.import_masks([tmp_path / "r2.pt", tmp_path / "r1.pt"], SPEC)
    oes_vector(SPEC, tmp_path / "all.npy")
    with pytest.raises(LipError, match="mask different parameters"):
        interop.import_masks([tmp_path / "r1.pt", tmp_path / "all.npy"], SPEC)


def test_a_file_of_no_known_net_asks_for_net(tmp_path):
    oes_vector(SPEC, tmp_path / "tiny.npy")
    with pytest.raises(LipError, match="fits none of the nets dip, dip-inpaint, oes, deep-decoder"):
        interop.import_masks([tmp_path / "tiny.npy"])


# ---------------------------------------------------------------- the commands

def test_import_and_export_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "narrow.yaml").write_text(YAML)
    theirs = published(SPEC)
    lip_round(theirs, tmp_path / "m1.pt")
    lip_round(theirs, tmp_path / "m2.pt")
    result = lip_cli("import-mask", "m1.pt", "m2.pt", "--config", "narrow.yaml", "-o", "lip.safetensors", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[:2] == ["round 1: 20.00% of 6,056 conv weights pruned (m1.pt)",
                                              "round 2: 36.00% of 6,056 conv weights pruned (m2.pt)"]
    report = json.loads(result.stdout)
    assert report["scope"] == "conv" and [r["round"] for r in report["rounds"]] == [0, 1, 2]
    result = lip_cli("export-mask", "lip.safetensors", "--round", "1", "-o", "back.pt")
    assert result.exit_code == 0, result.output
    assert "round 1 (20.00% sparse), 16 mask tensors" in result.stderr
    assert all(torch.equal(a, b) for a, b in zip(torch.load("m1.pt", weights_only=True).values(),
                                                 torch.load("back.pt", weights_only=True).values()))
    write_picture(tmp_path / "img.png", 32, 32)
    restored = lip_cli("restore", "img.png", "--mask", "lip.safetensors", "--round", "1", "--iters", "2", "--device",
                       "cpu", "--threads", "1", "--precision", "fp32", "-o", "r.png", "--json")
    assert restored.exit_code == 0, restored.output  # an imported ticket restores like any other
    assert json.loads(restored.stdout.splitlines()[-1])["sparsity"] == pytest.approx(0.2, abs=1e-3)
    refused = lip_cli("export-mask", "lip.safetensors", "-o", "back.txt")
    assert refused.exit_code == 2 and refused.stderr.startswith("lip: error: back.txt: give OUT.pt")
