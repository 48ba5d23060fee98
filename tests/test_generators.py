"""Where a generator comes from and which weights a round uses: an external state dict + spec loads to the
same function as the net that wrote it; GAN IMP keeps each round's fine-tuned G, sparse under its mask;
the artifact carries both weight sets; `lip cs --weights` chooses between them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from lipcli import api, artifact, gan, generators, nets
from lipcli import inspect as inspect_mod
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.gan import GanConfig, new_gan, train
from lipcli.resume import Keeper
from lipcli.prune import gan_imp

ROUNDS = 2
TINY = nets.gan_spec(nz=8, ngf=4, ndf=4, channels=1, size=8)  # 8x8 images, ~2k parameters


def _export(net: torch.nn.Module, spec: dict, folder: Path, suffix: str = ".yaml") -> tuple[Path, Path]:
    """Write a net as someone else's code would: a plain safetensors state dict and a spec file."""
    weights, spec_file = folder / "g.safetensors", folder / f"g{suffix}"
    save_file({n: p.detach().contiguous() for n, p in net.named_parameters()}, weights)
    spec_file.write_text(yaml.safe_dump(spec) if suffix == ".yaml" else json.dumps(spec))
    return weights, spec_file


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_external_generator_gives_bit_identical_images(tmp_path, suffix):
    torch.manual_seed(3)
    mine = nets.build(TINY["g"]).eval()
    weights, spec_file = _export(mine, TINY["g"], tmp_path, suffix)
    g, masks, used = generators.load(weights, spec_file=spec_file)
    assert masks == {} and used == "rewound" and g.spec == TINY["g"]
    z = torch.randn((5, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(g(z), mine(z))
    art = generators.read(weights, spec_file)  # provenance: the files it came from, by content
    assert art.meta["method"] == "external" and art.meta["external"]["file"] == "g.safetensors"


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[artifact.Artifact, Path]:
    """GAN IMP for two rounds on an external tiny bundle (G and critic), fine-tuned on random 8x8 images."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("gan")
    torch.manual_seed(0)
    weights, spec_file = _export(nets.build(TINY), TINY, folder)
    data = torch.rand((64, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    s = gan_imp.GanImpSettings(rounds=ROUNDS, epochs=1, ratio=1.0, batch=16)
    out = folder / "imp.safetensors"
    art = gan_imp.run(gan_imp.start(weights, s, spec_file=spec_file), data, s, out)
    return art, out


def test_finetuned_weights_differ_from_rewound_and_respect_the_mask(searched):
    art, _ = searched
    assert sorted(art.finetuned) == list(range(1, ROUNDS + 1))
    g_names = {n for n in art.theta0 if n.startswith("g.")}
    for k in range(1, ROUNDS + 1):
        tuned, keep = art.finetuned[k], art.mask(k)
        assert set(tuned) == g_names  # the whole generator, none of the critic
        for n, m in keep.items():
            assert (tuned[n][~m] == 0).all(), f"{n} round {k}: a pruned weight is not exactly 0"
            assert not torch.equal(tuned[n][m], art.theta0[n][m]), f"{n} round {k}: the kept weights were not tuned"
        ft, _, used_ft = generators.at_round(art, k, "finetuned")
        rw, _, used_rw = generators.at_round(art, k, "rewound")
        assert (used_ft, used_rw) == ("finetuned", "rewound")
        assert generators.at_round(art, k)[2] == "finetuned"  # auto: what the paper evaluates, when present
        ft_params, rw_params = dict(ft.named_parameters()), dict(rw.named_parameters())
        for n in art.theta0:
            expect = tuned[n] if n in tuned else art.theta0[n]  # the critic stays pretrained
            if n in keep:
                expect, rewound = expect * keep[n], art.theta0[n] * keep[n]
                assert torch.equal(rw_params[n].detach(), rewound)
            assert torch.equal(ft_params[n].detach(), expect), n
        z = torch.randn((3, 8), generator=torch.Generator().manual_seed(k))
        with torch.no_grad():
            assert not torch.equal(ft(z), rw(z))
    assert generators.at_round(art, 0)[2] == "rewound"  # round 0 is the pretrained net
    with pytest.raises(LipError, match="rounds 1, 2 have them"):
        generators.at_round(art, 0, "finetuned")


def test_artifact_round_trips_both_weight_sets(searched):
    art, out = searched
    back = artifact.load(out)
    assert back.meta["format_version"] == artifact.FINETUNED_VERSION
    assert back.meta["generator_external"]["spec_file"] == "g.yaml"
    assert all(torch.equal(back.theta0[n], t) for n, t in art.theta0.items())
    assert back.finetuned.keys() == art.finetuned.keys()
    for k, weights in art.finetuned.items():
        assert all(torch.equal(back.finetuned[k][n], t) for n, t in weights.items())
    for k in range(ROUNDS + 1):
        assert all(torch.equal(a, b) for a, b in zip(back.mask(k).values(), art.mask(k).values()))


def test_untrained_random_baseline_has_no_finetuned_weights(tmp_path):
    torch.manual_seed(0)
    weights, spec_file = _export(nets.build(TINY), TINY, tmp_path)
    s = gan_imp.GanImpSettings(rounds=1, method="random")
    art = gan_imp.run(gan_imp.start(weights, s, spec_file=spec_file), torch.rand((8, 1, 8, 8)), s,
                      tmp_path / "r.safetensors")
    assert art.finetuned == {} and generators.at_round(art, 1)[2] == "rewound"
    assert artifact.load(tmp_path / "r.safetensors").meta["format_version"] == artifact.FORMAT_VERSION


def test_cs_reports_and_uses_the_chosen_weights(searched, tmp_path):
    _, out = searched
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    reports = {}
    for weights in ("rewound", "finetuned", "auto"):
        dest = tmp_path / f"{weights}.png"
        r = CliRunner().invoke(app, ["cs", str(tmp_path / "x.png"), "--simulate", "-m", "40", "--mask", str(out),
                                     "--round", "2", "--weights", weights, "--iters", "20", "--restarts", "1",
                                     "--device", "cpu", "--threads", "1", "-o", str(dest), "--json"])
        assert r.exit_code == 0, r.output
        reports[weights] = json.loads(r.stdout)
        reports[weights]["bytes"] = dest.read_bytes()
    assert [reports[w]["weights"] for w in ("rewound", "finetuned", "auto")] == ["rewound", "finetuned", "finetuned"]
    assert reports["auto"]["bytes"] == reports["finetuned"]["bytes"] != reports["rewound"]["bytes"]
    r = CliRunner().invoke(app, ["cs", str(tmp_path / "x.png"), "--simulate", "-m", "40", "--mask", str(out),
                                 "--iters", "20", "--restarts", "1", "--device", "cpu", "--threads", "1", "-o",
                                 str(tmp_path / "rec.png"), "--json"])  # no --round: the recommended one, as restore
    assert r.exit_code == 0, r.output
    searched_art, report = artifact.load(out), json.loads(r.stdout)
    recommended = searched_art.recommended_round
    assert recommended > 0 and (report["round"], report["sparsity"]) == (recommended,
                                                                          searched_art.sparsity(recommended))


def _digits(folder: Path, n: int = 4) -> Path:
    """`n` random 8x8 gray PNGs: training data for a tiny generator."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_train_generator_records_how_it_was_made(tmp_path, monkeypatch):
    """The artifact `lip train-generator` writes: the trained bundle and exactly these metadata."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    data, out = _digits(tmp_path / "data"), tmp_path / "g.safetensors"
    r = CliRunner().invoke(app, ["train-generator", "--data", str(data), "--epochs", "2", "--batch", "2", "--nz", "4",
                                 "--ngf", "4", "--ndf", "4", "--size", "8", "--seed", "1", "--device", "cpu",
                                 "--threads", "1", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout.splitlines()[-1])
    art = generators.read(out)
    meta = art.meta
    assert set(meta) == {"format", "format_version", "spec", "tool_version", "torch_version", "method", "command",
                         "data", "train_images", "held_out", "train_config", "epochs_done", "history",
                         "output_range", "latent", "created"}
    assert meta["spec"] == nets.gan_spec(nz=4, ngf=4, ndf=4, channels=1, size=8)
    assert meta["command"] == result["command"] == (
        f"lip train-generator --data {data} --epochs 2 --batch 2 --lr 0.0002 --nz 4 --ngf 4 --ndf 4 --size 8 "
        f"--channels 1 --seed 1 --out {out}")
    assert (meta["method"], meta["data"], meta["train_images"], meta["held_out"]) == ("gan-train", str(data), 4, None)
    assert meta["train_config"] == {"epochs": 2, "batch": 2, "lr": 2e-4, "beta1": 0.0, "beta2": 0.99,
                                    "gp_weight": 10.0, "drift": 1e-3, "n_critic": 1, "seed": 1}
    assert meta["epochs_done"] == 2 and [h["epoch"] for h in meta["history"]] == [1, 2]
    assert all(set(h) == {"epoch", "d_loss", "g_loss", "wasserstein"} for h in meta["history"])
    assert (meta["output_range"], meta["latent"], meta["created"]) == ([0, 1], "N(0, I_nz)", "1970-01-01T00:00:00Z")
    assert art.prune_round == {} and set(art.theta0) == {n for n, _ in nets.build(meta["spec"]).named_parameters()}
    assert (tmp_path / "g_samples.png").is_file()
    assert generators.unfinished(art) is None


def test_a_generator_whose_training_was_stopped_is_said_to_be_unfinished_where_it_is_used(tmp_path):
    """train-generator writes the generator after every epoch, so a stopped run leaves one at --out: `lip cs`
    warns before it fits it, and `lip inspect` says so."""
    art = generators.read(gan.GENERATOR)
    art.meta.update(epochs_done=1, train_config={**(art.meta.get("train_config") or {}), "epochs": 3})
    artifact.save(tmp_path / "p.safetensors", art)
    note = "trained 1 of its 3 epochs (its training was stopped; the same train-generator command continues it)"
    assert generators.unfinished(generators.read(tmp_path / "p.safetensors")) == note
    assert inspect_mod.summary(artifact.load(tmp_path / "p.safetensors"))["unfinished"] == note
    job = api.recoverer("mnist:3", simulate=True, generator=tmp_path / "p.safetensors", iters=1, device="cpu")
    assert job.warning == f"the generator {tmp_path / 'p.safetensors'} is {note}"
    assert api.recoverer("mnist:3", simulate=True, iters=1, device="cpu").warning is None  # the bundled one


def test_prune_prior_gan_takes_every_flag_it_reads(tmp_path):
    """Every flag GAN pruning reads passes the check that refuses the DIP search's flags."""
    torch.manual_seed(0)
    weights, spec_file = _export(nets.build(TINY), TINY, tmp_path)
    out = tmp_path / "imp.safetensors"
    r = CliRunner().invoke(app, ["prune", "--prior", "gan", "--method", "imp", "--rounds", "1", "--rate", "0.5",
                                 "--generator", str(weights), "--generator-spec", str(spec_file), "--data",
                                 str(_digits(tmp_path / "data")), "--epochs", "1", "--ratio", "1", "--seed", "2",
                                 "--threads", "1", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    art = artifact.load(out)
    assert art.rounds == 1 and art.meta["settings"]["seed"] == 2 and art.meta["settings"]["rate"] == 0.5
    result = json.loads(r.stdout.splitlines()[-1])  # what the human line says (the method), and the round to use
    assert (result["method"], result["recommended_round"]) == ("imp", art.recommended_round)
    shown = json.loads(CliRunner().invoke(app, ["inspect", str(out), "--json"]).stdout)
    assert shown["summary"]["seed"] == 2  # a GAN search records it among its settings


def test_generator_training_stopped_mid_epoch_continues_to_the_same_weights(tmp_path):
    """gan.train with a Keeper: stopped between batches of the second epoch and run again, it continues from
    the saved state (weights, both Adams, the data order, the epoch's sums) to the uninterrupted run's
    weights and history, bit for bit; a lowered epoch count past the saved state starts over."""
    spec = nets.gan_spec(nz=4, ngf=4, ndf=4, channels=1, size=8)
    data = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    cfg = GanConfig(epochs=3, batch=4, seed=5)
    reference = new_gan(spec, 1)
    full = train(reference, data, cfg)

    class Stop(Exception):
        pass

    def stop_at(step: int) -> None:
        if step == 5:  # the second batch of epoch 2 (3 batches per epoch)
            raise Stop

    lines: list[str] = []
    state = tmp_path / "g.safetensors.lip-resume" / "fit-5.safetensors"
    keeper = Keeper(state, 0.0, lines.append, where=lambda st: f"epoch {st['epoch']}, batch {st['count']}")
    gan = new_gan(spec, 1)
    with pytest.raises(Stop):
        train(gan, data, cfg, on_step=stop_at, keeper=keeper)
    assert state.is_file()

    gan, seen = new_gan(spec, 1), []
    keeper = Keeper(state, 0.0, lines.append, where=lambda st: f"epoch {st['epoch']}, batch {st['count']}")
    resumed = train(gan, data, cfg, keeper=keeper, on_epoch=lambda h: seen.append(h[-1].epoch))
    assert lines[-1].endswith("at epoch 2, batch 1") and keeper.resumed_from == 4
    assert seen == [2, 3]  # the finished epoch is not trained again
    assert [h.record() for h in resumed] == [h.record() for h in full]
    for (name, a), b in zip(gan.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name

    keeper = Keeper(state, 0.0, lines.append,  # the state is now at epoch 3: one epoch asked for lies before it
                    cap_named=lambda cap: f"{cap // 3} epoch(s)")  # as lip train-generator names it (it said 3)
    train(new_gan(spec, 1), data, GanConfig(epochs=1, batch=4, seed=5), keeper=keeper)
    assert "past this run's cap of 1 epoch(s): starting over" in lines[-1] and keeper.resumed_from is None
