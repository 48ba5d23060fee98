"""GAN IMP on the shipped generator: exact sparsity ladder, nested masks, exact rewind, artifact round-trip."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lipcli import artifact, gan, generators, inspect as insp
from lipcli.errors import LipError
from lipcli.prune import gan_imp

ROUNDS = 3


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    spec = artifact.load(gan.GENERATOR).spec
    return gan.load_data("mnist", spec)[:200]


def _search(method: str, data: torch.Tensor, out, **settings) -> artifact.Artifact:
    s = gan_imp.GanImpSettings(rounds=ROUNDS, epochs=1, ratio=0.02, method=method, **settings)
    traj = gan_imp.start(gan.GENERATOR, s)
    return gan_imp.run(traj, data, s, out)


def _check_ladder(art: artifact.Artifact) -> None:
    total = sum(r.numel() for r in art.prune_round.values())
    assert art.counts(0) == (total, total)
    prev = art.mask(0)
    for k in range(1, ROUNDS + 1):
        kept, tot = art.counts(k)
        assert tot == total
        assert kept == round(total * 0.8 ** k)
        cur = art.mask(k)
        assert set(cur) == set(prev)
        for n in cur:  # nested: nothing pruned earlier comes back
            assert not (cur[n] & ~prev[n]).any()
        prev = cur


def test_gan_imp_ladder_rewind_roundtrip(data, tmp_path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "gan_imp.safetensors"
    art = _search("imp", data, out)
    assert art.prune_round, "the search wrote no masks"
    _check_ladder(art)

    dense = artifact.load(gan.GENERATOR).theta0
    for k in range(ROUNDS + 1):
        net, _, used = generators.at_round(art, k, "rewound")
        assert used == "rewound"
        params = dict(net.named_parameters())
        masks = art.mask(k)
        for name, p in params.items():
            w0 = dense[name]
            if name in masks:
                keep = masks[name]
                assert torch.equal(p.detach()[keep], w0[keep]), f"{name} round {k}: kept weights not rewound"
                assert (p.detach()[~keep] == 0).all(), f"{name} round {k}: pruned weights not zero"
            else:  # unmasked (linear first layer, critic) stay dense at the pretrained weights
                assert torch.equal(p.detach(), w0), name

    loaded = artifact.load(out)
    assert loaded.spec == art.spec
    assert set(loaded.theta0) == set(art.theta0)
    for n in art.theta0:
        assert torch.equal(loaded.theta0[n], art.theta0[n])
    assert set(loaded.prune_round) == set(art.prune_round)
    for n in art.prune_round:
        assert torch.equal(loaded.prune_round[n], art.prune_round[n])
    for k in range(ROUNDS + 1):
        assert loaded.counts(k) == art.counts(k)


def test_gan_random_follows_ladder(data, tmp_path) -> None:
    torch.set_num_threads(1)
    art = _search("random", data, tmp_path / "gan_random.safetensors")
    _check_ladder(art)
    _check_ladder(artifact.load(tmp_path / "gan_random.safetensors"))


def test_gan_random_fine_tuned_as_lips_code_keeps_the_trained_generators(data, tmp_path) -> None:
    """LIP's random rows are fine-tuned every round, as IMP's; lip's are not unless asked (--fine-tune-random)."""
    torch.set_num_threads(1)
    plain = _search("random", data, tmp_path / "r.safetensors")
    tuned = _search("random", data, tmp_path / "rt.safetensors", fine_tune_random=True)
    assert not plain.finetuned and sorted(tuned.finetuned) == list(range(1, ROUNDS + 1))
    assert insp.summary(tuned)["finetuned_rounds"] == list(range(1, ROUNDS + 1))  # what `lip inspect` says
    assert insp.summary(plain)["finetuned_rounds"] == []
    assert all(torch.equal(tuned.mask(k)[n], plain.mask(k)[n]) for k in range(ROUNDS + 1) for n in plain.prune_round)
    with pytest.raises(LipError, match="--fine-tune-random is for --method random"):
        gan_imp.GanImpSettings(method="imp", fine_tune_random=True)


def test_a_stopped_gan_search_continues_only_with_its_own_settings(data, tmp_path) -> None:
    torch.set_num_threads(1)
    s = gan_imp.GanImpSettings(rounds=ROUNDS, method="random")
    out = tmp_path / "stopped.safetensors"

    def stop(rec: dict) -> None:
        if rec["round"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        gan_imp.run(gan_imp.start(gan.GENERATOR, s), data, s, out, on_round=stop)
    with pytest.raises(LipError, match="holds this search, stopped (after|during) round"):
        gan_imp.refuse_restart(out, s)  # the same command again does not start it over
    with pytest.raises(LipError, match=r"settings differ \(saved -> now: rate 0.2 -> 0.3\)"):
        gan_imp.resumed(out, replace(s, rate=0.3))
    with pytest.raises(LipError, match=r"saved -> now: fine_tune_random False -> True\)"):  # the flag's name
        gan_imp.resumed(out, replace(s, fine_tune_random=True))
    old = artifact.load(out)  # as written before the setting took its flag's name
    old.meta["settings"]["train_random"] = old.meta["settings"].pop("fine_tune_random")
    artifact.save(out, old)
    resumed = gan_imp.resumed(out, s)
    assert list(resumed.prune_round) == list(gan_imp.start(gan.GENERATOR, s).prune_round)  # the search's order
    done = gan_imp.run(resumed, data, s, out)
    _check_ladder(done)
    gan_imp.refuse_restart(out, s)  # done (its last round untrained, as GAN IMP leaves it): rerun, not "stopped"
    full = gan_imp.run(gan_imp.start(gan.GENERATOR, s), data, s, tmp_path / "full.safetensors")
    assert all(torch.equal(done.prune_round[n], full.prune_round[n]) for n in full.prune_round)


def test_a_resumed_search_knows_its_generator_by_its_weights_not_its_path(tmp_path, monkeypatch) -> None:
    """--resume with --generator: the same generator by another path is accepted (it was compared as a string),
    another generator at the recorded path is refused."""
    import shutil
    s = gan_imp.GanImpSettings(rounds=1, method="random")
    shutil.copy(gan.GENERATOR, tmp_path / "g.safetensors")
    monkeypatch.chdir(tmp_path)
    traj = gan_imp.start(Path("g.safetensors"), s)
    assert gan_imp.same_generator(traj, Path("./g.safetensors"))
    assert gan_imp.same_generator(traj, tmp_path / "g.safetensors")
    other = artifact.load(gan.GENERATOR)
    name = next(iter(traj.theta0))
    other.theta0[name] = other.theta0[name] + 1
    artifact.save(tmp_path / "g.safetensors", other)
    assert not gan_imp.same_generator(traj, Path("g.safetensors"))


def test_the_default_data_beside_a_folder_named_mnist_is_said_not_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert gan.check_data_name("mnist", typed=False) is None  # nothing to confuse it with
    (tmp_path / "mnist").mkdir()
    assert "not the folder ./mnist here" in gan.check_data_name("mnist", typed=False)
    assert gan.check_data_name("./mnist", typed=True) is None
    with pytest.raises(LipError, match="--data ./mnist for the folder"):
        gan.check_data_name("mnist", typed=True)
