"""End-to-end tests of `lip prune` through typer's CliRunner: JSON lines, the artifact it writes,
blindness to the clean image, resume, the stop rule and one-line errors (exit 2).

A narrow net from a YAML config (tests/prune_helpers.py), 10 iterations per round, one thread.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from lipcli import artifact, images, nets
from lipcli.cli import app
from lipcli.masks import ladder_kept, top_global
from lipcli.prune import imp as imp_mod
from lipcli.prune import scores
from lipcli.prune.run import methods

from prune_helpers import CLEAN_NAME, SPEC, FitSpy, nested, write_config, write_picture

INPUT_CONVS = {"levels.0.skip.conv.weight", "levels.0.down.conv.weight"}
TOTAL = sum(p.numel() for n, p in nets.build(SPEC).named_parameters()
            if n in nets.conv_weight_names(nets.build(SPEC)))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """A user's LIP_DEVICE, LIP_DEBUG or SOURCE_DATE_EPOCH must not change what these tests see."""
    for var in ("LIP_DEVICE", "LIP_DEBUG", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """img.png (clean 64x64), wide.png (clean 64x96), noisy.png + clean_ref.png, narrow.yaml."""
    write_picture(tmp_path / "img.png", 64, 64, seed=0)
    write_picture(tmp_path / "wide.png", 64, 96, seed=1)
    write_picture(tmp_path / "noisy.png", 64, 64, seed=2, noise_sigma=25)
    write_picture(tmp_path / CLEAN_NAME, 64, 64, seed=2)
    write_config(tmp_path)
    return tmp_path


def base(work: Path, iters: int = 10) -> list[str]:
    return ["--config", str(work / "narrow.yaml"), "--device", "cpu", "--threads", "1", "--iters", str(iters)]


def lip(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def ok(result) -> list[dict]:
    """Exit 0; every stdout line is a JSON object."""
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def error_line(result, code: int = 2) -> str:
    """The command failed with `code`; its last stderr line is the error; nothing on stdout."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("lip: error: "), result.stderr
    assert result.stdout == ""
    return lines[-1]


def one_line_error(result, code: int = 2) -> str:
    line = error_line(result, code)
    assert result.stderr.strip() == line, result.stderr  # the error alone: no header, no progress
    return line


def same_masks(a: artifact.Artifact, b: artifact.Artifact) -> bool:
    return (set(a.prune_round) == set(b.prune_round)
            and all(torch.equal(a.prune_round[n], b.prune_round[n]) for n in a.prune_round)
            and all(torch.equal(a.theta0[n], b.theta0[n]) for n in a.theta0))


# ------------------------------------------------------------------ successful runs

def test_simulate_json_writes_a_loadable_artifact(work):
    out = work / "X.safetensors"
    result = lip("prune", work / "img.png", "--simulate", *base(work), "--rounds", "2", "--json", "-o", out)
    lines = ok(result)
    rounds, results = [o for o in lines if o["type"] == "round"], [o for o in lines if o["type"] == "result"]
    assert len(lines) == 4 and len(results) == 1
    assert [r["round"] for r in rounds] == [0, 1, 2]
    # the fast preset (the CPU default) prunes 36% per round: round k is the paper's round 2k
    assert [r["kept"] for r in rounds] == [ladder_kept(TOTAL, 0.36, k) for k in range(3)]
    assert [r["kept"] for r in rounds] == [ladder_kept(TOTAL, 0.2, 2 * k) for k in range(3)]
    assert all(r["total"] == TOTAL and isinstance(r["loss"], float) for r in rounds)
    assert all(r["psnr_final"] > 5 for r in rounds)  # simulated: the clean input is the reference
    art = artifact.load(out)
    assert art.rounds == 2 and art.meta["method"] == "imp" and art.spec == SPEC
    assert art.meta["oracle"] is False and art.meta["search"]["fit"]["iters"] == 10
    assert results[0]["out"] == str(out) and results[0]["recommended_round"] == art.recommended_round
    assert [r["round"] for r in results[0]["rounds"]] == [0, 1, 2]
    assert art.counts(2) == (ladder_kept(TOTAL, 0.36, 2), TOTAL) and nested(art)
    assert f"wrote {out}" in result.stderr  # human text on stderr, only JSON on stdout


def test_channel_granularity_prunes_whole_filters_and_is_recorded(work):
    out = work / "C.safetensors"
    lines = ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=3), "--rounds", "2", "--rate", "0.5",
                   "--granularity", "channel", "--channel-score", "bn", "--json", "-o", out))
    art = artifact.load(out)
    assert art.granularity == "channel" and art.meta["search"]["channel_score"] == "bn" and nested(art)
    channels = [o["channels"] for o in lines if o["type"] == "round"]
    assert channels[1:] == [ladder_kept(channels[0], 0.5, k) for k in (1, 2)]
    assert all(bool((m.flatten(1).all(1) | ~m.flatten(1).any(1)).all()) for m in art.mask(2).values())
    said = lip("inspect", out).stderr  # what the file is, and the filters each round kept
    assert "imp  (whole filters: channel granularity, score bn)" in said
    assert all(f" {c:,} " in said for c in channels)


def test_inspect_says_a_rewound_theta0(work):
    out = work / "rw.safetensors"
    ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=8), "--rounds", "1", "--rewind", "0.25", "-o", out))
    assert "theta0 rewound: the weights after iteration 2" in lip("inspect", out).stderr


def test_channel_oes_learns_whole_filters_in_one_round(work):
    out = work / "COES.safetensors"
    lines = ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=3), "--rounds", "2", "--rate", "0.5",
                   "--granularity", "channel", "--method", "oes", "--json", "-o", out))
    art = artifact.load(out)
    assert art.granularity == "channel" and art.meta["method"] == "oes" and art.rounds == 1
    channels = [o["channels"] for o in lines if o["type"] == "round"]
    assert channels[-1] == ladder_kept(art.meta["rounds"][0]["channels"], 0.5, 2)  # 1 - 0.5^2 of the filters go
    assert all(bool((m.flatten(1).all(1) | ~m.flatten(1).any(1)).all()) for m in art.mask(1).values())


def test_oes_learns_its_mask_without_jitter_or_decay_and_records_that(work):
    """OES fits the logits by Adam and the KL term alone: --reg-noise was recorded but not read, and a config's
    weight decay shrank the logits (another mask)."""
    (work / "decay.yaml").write_text((work / "narrow.yaml").read_text() + "weight_decay: 0.2\n")
    masks, runs = {}, {}
    for name, extra in (("plain", []), ("jitter", ["--reg-noise", "0.5"]),
                        ("decay", ["--config", work / "decay.yaml"])):
        out = work / f"oes-{name}.safetensors"
        runs[name] = lip("prune", work / "img.png", "--simulate", *base(work, iters=4), *extra, "--method", "oes",
                         "--target-sparsity", "0.5", "-o", out)
        ok(runs[name])
        art = artifact.load(out)
        fit = art.meta["search"]["fit"]
        assert (fit["reg_noise"], fit["ema"], fit["early_stop"], "weight_decay" in fit) == (0.0, 0.0, False, False)
        masks[name] = art.mask(1)
    assert "--reg-noise: --method oes learns its mask without input jitter" in runs["jitter"].stderr
    assert "warning" not in runs["plain"].stderr + runs["decay"].stderr
    for name in ("jitter", "decay"):
        assert all(torch.equal(masks[name][k], m) for k, m in masks["plain"].items()), name


def test_the_paper_preset_draws_a_fresh_input_each_round_as_the_published_code(work):
    (work / "paper.yaml").write_text("preset: paper\n" + (work / "narrow.yaml").read_text())
    drawn = {}
    for config, flag in (("paper", None), ("paper", "--no-fresh-input"), ("narrow", None), ("narrow", "--fresh-input")):
        out = work / f"{config}{flag}.safetensors"
        ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=2), "--config", work / f"{config}.yaml",
               "--rounds", "1", *[flag] * bool(flag), "-o", out))
        drawn[config, flag] = artifact.load(out).meta["search"]["imp"]["fresh_input"]
    assert drawn == {("paper", None): True, ("paper", "--no-fresh-input"): False, ("narrow", None): False,
                     ("narrow", "--fresh-input"): True}


def test_a_finished_oes_search_is_rerun_not_called_stopped(work):
    """OES writes one round; the ladder's default 4 rounds made a finished file look stopped, and --resume redid it."""
    cmd = ["prune", work / "img.png", "--simulate", *base(work, iters=2), "--method", "oes", "-o", work / "o.safetensors"]
    ok(lip(*cmd))
    ok(lip(*cmd))


def test_the_bn_channel_score_on_a_net_without_it_is_refused_before_any_fit(work, monkeypatch):
    monkeypatch.setattr(imp_mod, "run", lambda *a, **k: pytest.fail("the search ran"))
    line = one_line_error(lip("prune", work / "img.png", "--simulate", *base(work), "--granularity", "channel",
                              "--channel-score", "bn", "--net", "deep-decoder", "-o", work / "bn.safetensors"))
    assert "needs a BatchNorm right after every pruned conv" in line


def test_keep_input_dense_flag(work):
    out = work / "dense.safetensors"
    ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=2), "--rounds", "1",
           "--keep-input-dense", "-o", out))
    art = artifact.load(out)
    assert not INPUT_CONVS & set(art.prune_round) and INPUT_CONVS <= set(art.theta0)


def test_target_sparsity_sets_the_rounds_for_a_baseline(work):
    out = work / "rand.safetensors"
    lines = ok(lip("prune", work / "img.png", "--simulate", *base(work), "--method", "random",
                   "--target-sparsity", "0.5", "--rate", "0.2", "--json", "-o", out))
    art = artifact.load(out)
    assert art.rounds == 4  # 1-0.8^3 = 0.488 < 0.5 <= 0.59 = 1-0.8^4
    assert [o["round"] for o in lines if o["type"] == "round"] == [1, 2, 3, 4]
    assert art.counts(4) == (ladder_kept(TOTAL, 0.2, 4), TOTAL)


def test_random_layerwise_like_an_imp_artifact(work):
    like = work / "imp.safetensors"
    ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=2), "--rounds", "2", "-o", like))
    out = work / "rlw.safetensors"
    result = lip("prune", work / "img.png", "--simulate", *base(work), "--method", "random-layerwise",
                 "--like", like, "-o", out)
    ok(result)
    said = result.stderr
    a, b = artifact.load(like), artifact.load(out)
    assert b.rounds == 2 and "(denoise), 2 rounds," in said  # the start line named the preset's 4
    for k in range(3):
        assert {n: int(m.sum()) for n, m in a.mask(k).items()} == {n: int(m.sum()) for n, m in b.mask(k).items()}


def test_a_score_registered_here_is_a_method_of_lip_prune(work):
    """A new pruning score is one registered function: the ladder driver and --method take it as it is."""

    @scores.register("toy-last-first")
    def last_first(net, names, ctx):  # keep the last elements of every tensor: a hand-checkable score
        named = dict(net.named_parameters())
        return {n: torch.arange(named[n].numel(), dtype=torch.float64).view(named[n].shape) for n in names}

    try:
        assert "toy-last-first" in methods()
        out = work / "toy.safetensors"
        ok(lip("prune", work / "img.png", "--simulate", *base(work), "--method", "toy-last-first",
               "--rounds", "2", "-o", out))
        art = artifact.load(out)
        assert art.meta["method"] == "toy-last-first" and art.counts(2) == (ladder_kept(TOTAL, 0.36, 2), TOTAL)
        assert nested(art)
        net = nets.build(SPEC)
        names = nets.conv_weight_names(net)  # the search's order: ties across tensors go by position
        want = top_global(last_first(net, names, scores.ScoreContext()), art.mask(0), ladder_kept(TOTAL, 0.36, 2))
        assert all(torch.equal(art.mask(2)[n], want[n]) for n in art.prune_round)
    finally:
        scores.SCORES.unregister("toy-last-first")
    assert "toy-last-first" not in methods()
    assert "use one of" in one_line_error(lip("prune", work / "img.png", "--simulate", *base(work),
                                              "--method", "toy-last-first"))


def test_fitting_flags_given_to_a_score_at_initialisation_are_said_to_be_unread(work):
    """magnitude fits nothing: --iters and --lr are named in a warning (not refused: one set of flags may loop
    over methods), and the masks are those of a run without them; IMP reads them and says nothing."""
    runs = {}
    for name, extra in (("with", ["--iters", "7", "--lr", "0.5"]), ("without", [])):
        out = work / f"{name}.safetensors"
        result = lip("prune", work / "img.png", "--simulate", "--config", work / "narrow.yaml", "--device", "cpu",
                     "--threads", "1", "--method", "magnitude", "--rounds", "2", *extra, "-o", out)
        assert result.exit_code == 0, result.output
        runs[name] = (result.stderr, artifact.load(out))
    assert "--iters, --lr: --method magnitude scores the net at initialisation and fits nothing" in runs["with"][0]
    assert "warning" not in runs["without"][0]
    assert same_masks(runs["with"][1], runs["without"][1])
    result = lip("prune", work / "img.png", "--simulate", *base(work, 2), "--rounds", "1", "-o", work / "i.safetensors")
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_two_images_of_different_sizes(work):
    out = work / "multi.safetensors"
    lines = ok(lip("prune", work / "img.png", work / "wide.png", "--simulate", *base(work, iters=3),
                   "--rounds", "1", "--json", "-o", out))
    assert [o["round"] for o in lines if o["type"] == "round"] == [0, 1]
    meta = artifact.load(out).meta
    assert [(i["height"], i["width"]) for i in meta["images"]] == [(64, 64), (64, 96)]
    assert all(isinstance(r["loss"], float) for r in meta["rounds"])


# ------------------------------------------------------------------ blindness and oracle

def test_blind_search_never_reads_the_clean_image(work, monkeypatch):
    real, opened = images.load_image, []

    def guarded(path, **kw):
        opened.append(Path(path).name)
        if Path(path).name == CLEAN_NAME:
            raise AssertionError("the blind search read the clean image")
        return real(path, **kw)

    blind, seen = work / "blind.safetensors", work / "seen.safetensors"
    args = ["prune", work / "noisy.png", *base(work), "--rounds", "2", "--json"]
    with monkeypatch.context() as mp:
        mp.setattr(images, "load_image", guarded)
        blind_lines = ok(lip(*args, "-o", blind))
    assert opened == ["noisy.png"]
    seen_lines = ok(lip(*args, "--clean", work / CLEAN_NAME, "-o", seen))

    a, b = artifact.load(blind), artifact.load(seen)
    assert same_masks(a, b)  # the clean image only changes the report
    assert [r["loss"] for r in a.meta["rounds"]] == [r["loss"] for r in b.meta["rounds"]]
    assert all("psnr_final" not in r for r in a.meta["rounds"])
    assert all(r["psnr_final"] > 10 for r in b.meta["rounds"])
    assert [o.get("psnr_final") for o in blind_lines if o["type"] == "round"] == [None] * 3
    assert len([o for o in seen_lines if o["type"] == "round"]) == 3
    assert a.meta["oracle"] is False and b.meta["oracle"] is False


def test_oracle_target_is_recorded(work):
    out = work / "oracle.safetensors"
    ok(lip("prune", work / "noisy.png", *base(work, iters=3), "--rounds", "1",
           "--oracle-target", work / CLEAN_NAME, "-o", out))
    art = artifact.load(out)
    assert art.meta["oracle"] is True and art.meta["search"]["imp"]["oracle"] is True
    assert all("psnr_final" not in r for r in art.meta["rounds"])  # fitting the clean image: no report


# ------------------------------------------------------------------ stop rule and resume

def test_stop_when_loss_rises_ends_the_search(work, monkeypatch):
    script = [5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]
    spy = FitSpy(imp_mod.fit, script=script)
    monkeypatch.setattr(imp_mod, "fit", spy)
    out = work / "stop.safetensors"
    lines = ok(lip("prune", work / "img.png", "--simulate", *base(work, iters=1), "--rounds", "8",
                   "--stop-when-loss-rises", "2", "--json", "-o", out))
    assert len(spy.calls) == 5
    assert [o["loss"] for o in lines if o["type"] == "round"] == script[:5]
    (result,) = [o for o in lines if o["type"] == "result"]
    art = artifact.load(out)
    assert result["recommended_round"] == art.recommended_round == 2
    assert art.meta["stopped_by_rule"] is True


@pytest.mark.parametrize("session, rounds_kept, where", [(1, 1, "during round 1"), (2, 2, "during round 2")])
def test_interrupted_search_resumes_to_the_uninterrupted_result(work, monkeypatch, session, rounds_kept, where):
    """Stopped in the last round's training too: its mask is recorded, untrained, and a plain re-run started over."""
    args = ["prune", work / "img.png", "--simulate", *base(work), "--rounds", "2"]
    full, part = work / "full.safetensors", work / "part.safetensors"
    ok(lip(*args, "-o", full))
    with monkeypatch.context() as mp:
        mp.setattr(imp_mod, "fit", FitSpy(imp_mod.fit, interrupt_at=(session, 4)))  # inside that session
        stopped = lip(*args, "-o", part)
    assert stopped.exit_code == 130, stopped.output
    assert f"--resume {part}" in stopped.stderr
    assert artifact.load(part).rounds == rounds_kept
    before = part.read_bytes()
    again = lip(*args, "-o", part)  # the same command again: refused, not started over
    assert again.exit_code == 2 and f"stopped {where} of 2: add --resume {part}" in again.stderr
    assert part.read_bytes() == before
    ok(lip(*args, "--resume", part))
    assert same_masks(artifact.load(full), artifact.load(part))
    assert ([r["loss"] for r in artifact.load(full).meta["rounds"]]
            == [r["loss"] for r in artifact.load(part).meta["rounds"]])


def test_resume_with_different_settings_exits_2(work):
    out = work / "r.safetensors"
    args = ["prune", work / "img.png", "--simulate", *base(work, iters=2), "--rounds", "1"]
    ok(lip(*args, "-o", out))
    before = out.read_bytes()
    line = error_line(lip(*args, "--rate", "0.3", "--resume", out))
    assert "rate 0.36 -> 0.3" in line and "--resume" in line
    line = error_line(lip(*args, "--sigma", "50", "--resume", out))  # the simulated degradation is the search's too
    assert "the degradation differs" in line and "sigma 25.0 -> 50.0" in line
    assert out.read_bytes() == before
    write_picture(work / "img.png", 64, 64, seed=9)  # the very file given, changed: it was "searched on other
    line = error_line(lip(*args, "--resume", out))  # images (img.png)", with the advice to rerun the same command
    assert "img.png changed since the search began (other pixels)" in line


def test_resume_refuses_an_inpainting_mask_whose_pixels_changed(work):
    """One file name, another mask with the same observed fraction: the artifact records the mask's pixel
    hash, so a resumed search cannot mix rounds found on two observations."""
    holes = np.zeros((64, 64), np.uint8)
    holes[:, ::2] = 255
    Image.fromarray(holes).save(work / "h.png")
    out = work / "m.safetensors"
    args = ["prune", work / "img.png", "--task", "inpaint", "--inpaint-mask", work / "h.png", *base(work, iters=2),
            "--rounds", "1"]
    ok(lip(*args, "-o", out))
    assert len(artifact.load(out).meta["operator"]["mask_sha256"]) == 64
    Image.fromarray(np.roll(holes, 1, axis=1)).save(work / "h.png")  # every hole moved, half observed still
    line = error_line(lip(*args, "--resume", out))
    assert "the degradation differs" in line and "mask_sha256" in line


def test_resume_of_a_missing_file_exits_2(work):
    line = error_line(lip("prune", work / "img.png", "--simulate", *base(work), "--resume",
                          work / "nothing.safetensors"))
    assert "nothing.safetensors" in line


@pytest.mark.parametrize("case", ["resume-mismatch", "resume-missing", "scope", "like-missing"])
def test_errors_found_by_the_search_are_one_line_too(work, case):
    args = ["prune", work / "img.png", "--simulate", *base(work, iters=2), "--rounds", "1"]
    out = work / "r.safetensors"
    if case == "resume-mismatch":
        ok(lip(*args, "-o", out))
        result = lip(*args, "--rate", "0.3", "--resume", out)
    elif case == "resume-missing":
        result = lip(*args, "--resume", work / "nothing.safetensors")
    elif case == "scope":
        result = lip(*args, "--scope", "bn", "-o", out)
    else:
        result = lip(*args, "--method", "random-layerwise", "-o", out)
    one_line_error(result)


# ------------------------------------------------------------------ bad input: exit 2, one line

@pytest.mark.parametrize("extra, needle", [
    (["--method", "bogus"], "--method"),
    (["--rate", "1.5"], "--rate"),
    (["--rate", "0"], "--rate"),
    (["--target-sparsity", "1.0"], "--target-sparsity"),
    (["--target-sparsity", "0"], "--target-sparsity"),
    (["--rewind", "1.0"], "--rewind"),
    (["--granularity", "rows"], "--granularity"),
    (["--channel-score", "l1"], "--channel-score"),
    (["--granularity", "channel", "--method", "synflow"], "--method"),
])
def test_bad_options_exit_2_with_one_line(work, extra, needle):
    out = work / "bad.safetensors"
    line = one_line_error(lip("prune", work / "img.png", "--simulate", *base(work), *extra, "-o", out))
    assert needle in line
    assert not out.exists()


def test_shared_input_needs_one_size(work):
    out = work / "shared.safetensors"
    line = one_line_error(lip("prune", work / "img.png", work / "wide.png", "--simulate", *base(work),
                              "--shared-input", "-o", out))
    assert "--shared-input" in line
    assert not out.exists()



def test_oracle_target_with_simulate_names_the_right_flag(work):
    line = one_line_error(lip("prune", work / "img.png", "--simulate", *base(work), "--oracle-target",
                              work / CLEAN_NAME, "-o", work / "o.safetensors"))
    assert "--oracle-target" in line


def test_a_flag_a_one_shot_method_does_not_read_is_not_recorded(work):
    """--iters beside --method random is said to be unread; it was recorded all the same, and a --resume
    without it was refused as other settings."""
    out = work / "rand.safetensors"
    first = lip("prune", work / "img.png", "--simulate", *base(work), "--method", "random", "--rounds", "2",
                "--iters", "20", "-o", out)
    ok(first)
    assert "--iters" in first.stderr and "not read" in first.stderr
    ok(lip("prune", work / "img.png", "--simulate", *base(work), "--method", "random", "--rounds", "2",
           "--resume", out))
