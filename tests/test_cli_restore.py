"""End-to-end tests of `lip restore` through typer's CliRunner: outputs, JSON, and one-line errors."""
from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import artifact, nets
from lipcli.cli import app
from test_artifact import make_artifact, meta_json, tensors_of, write_raw
from conftest import tiny_spec

# Tiny settings: the full 2.2M-parameter net costs ~40 ms per iteration at 64x64.
FAST = ["--config", "fast", "--precision", "fp32", "--device", "cpu"]
# A much cheaper dense prior for the tests that exercise plumbing rather than the DIP net.
CHEAP = ["--prior", "deep-decoder", "--dd-k", "16"]

DOCUMENTED_KEYS = {"input", "output", "task", "iterations", "stopped_at", "psnr_final", "psnr_stopped",
                   "ssim_final", "ssim_stopped", "oracle_best_psnr", "sparsity", "seconds"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """A user's LIP_DEVICE or LIP_DEBUG must not change what these tests see."""
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    monkeypatch.delenv("LIP_DEBUG", raising=False)


def lip(*args: str | Path):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def json_report(result) -> dict:
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object per input, nothing else on stdout
    return json.loads(lines[0])


def read(path: Path) -> tuple[str, tuple[int, int], np.ndarray]:
    with PILImage.open(path) as im:
        return im.mode, im.size, np.asarray(im)


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ---------------------------------------------------------------- successful runs

def test_simulate_json_report_and_output(workdir):
    out = workdir / "restored.png"
    result = lip("restore", workdir / "rgb.png", "--simulate", "--json", "--iters", "30", *FAST, "-o", out)
    report = json_report(result)
    assert DOCUMENTED_KEYS <= report.keys()
    assert report["input"] == str(workdir / "rgb.png") and report["output"] == str(out) and report["task"] == "denoise"
    assert report["iterations"] == 30 and report["stopped_at"] == 30  # window 100 > 30: never fired
    for key in ("psnr_final", "psnr_stopped", "ssim_final", "ssim_stopped", "oracle_best_psnr"):
        assert isinstance(report[key], float), key
    assert report["oracle_best_psnr"] >= report["psnr_final"]
    # The fast preset's denoising prior is the shipped channel ticket, fitted compacted.
    assert report["mask"] == "dip-channel-house" and report["round"] == 2
    assert report["sparsity"] > 0.7 and report["params"] == 2_217_831 and report["params_fitted"] < 600_000
    assert report["compact"]["fitted"] == "compact" and report["gflop_per_iter"] > 0
    assert report["seconds"] > 0 and report["precision"] == "fp32" and report["device"] == "cpu"
    assert read(out)[:2] == ("RGB", (64, 64))
    # Human text went to stderr: the summary line names input and output.
    assert "rgb.png ->" in result.stderr and str(out) in result.stderr


@pytest.mark.parametrize("how", [["--dense"], ["--net", "dip"], ["--config", "paper", "--precision", "fp32"],
                                 ["--task", "sr", "--scale", "2"]])
def test_the_dense_net_is_one_flag_away(workdir, how):
    """--dense, an explicit --net, the paper preset, and tasks without a measured ticket fit the dense net."""
    args = [*FAST, *how] if how[0] != "--config" else ["--device", "cpu", *how]
    report = json_report(lip("restore", workdir / "rgb.png", "--simulate", "--json", "--iters", "2", *args,
                             "-o", workdir / "o.png"))
    assert report["sparsity"] == 0.0 and report["params_fitted"] == 2_217_831 and "mask" not in report


def test_a_net_named_in_a_yaml_config_is_the_prior(workdir):
    """A config file that names a net asks for that net, as --net does, not for the preset's ticket."""
    (workdir / "w32.yaml").write_text("net: dip-w32\n")
    report = json_report(lip("restore", workdir / "rgb.png", "--simulate", "--json", "--iters", "2", "--device",
                             "cpu", "--config", workdir / "w32.yaml", "-o", workdir / "o.png"))
    assert "mask" not in report and report["params_fitted"] == 152_199


def test_dense_with_a_mask_is_refused(workdir):
    result = lip("restore", workdir / "rgb.png", "--dense", "--mask", "dip-channel-house", *FAST)
    assert result.exit_code == 2 and "--dense" in result.output


def test_gray_odd_size_stays_gray(workdir):
    out = workdir / "gray_out.png"
    report = json_report(lip("restore", workdir / "gray.png", "--simulate", "--json", "--iters", "8",
                             *FAST, "-o", out))
    assert report["iterations"] == 8
    assert read(out)[:2] == ("L", (53, 37))


def test_a_one_channel_net_fits_a_gray_image_as_its_three_equal_channels(workdir):
    """Its output is viewed as the gray image's three channels: no torch broadcast warning, still gray."""
    (workdir / "gray1.yaml").write_text("net: {preset: dip-w16, out_channels: 1}\n")
    out = workdir / "gray1_out.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lip("restore", workdir / "gray.png", "--simulate", "--json", "--iters", "4", "--device", "cpu",
                     "--precision", "fp32", "--config", workdir / "gray1.yaml", "-o", out)
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if "size" in str(w.message)], [str(w.message) for w in caught]
    assert read(out)[:2] == ("L", (53, 37))


def test_a_sample_restored_into_a_folder_is_named_after_the_sample(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    result = lip("restore", "sample:house", "--iters", "2", *FAST, *CHEAP, "-o", "out/")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (workdir / "out").iterdir()] == ["house.png"]  # not "sample:house.png"


def test_a_sparsity_far_from_every_round_says_which_round_it_fits(workdir):
    result = lip("restore", workdir / "rgb.png", "--mask", "dip-channel-house", "--sparsity", "0.99", "--iters", "2",
                 *FAST, "-o", workdir / "s.png")
    assert result.exit_code == 0, result.output
    assert "--sparsity 0.99: the closest round of dip-channel-house is round 4, 94.2% sparse" in result.stderr


def test_rgba_odd_size_keeps_alpha(workdir):
    out = workdir / "rgba_out.png"
    json_report(lip("restore", workdir / "rgba.png", "--simulate", "--json", "--iters", "8", *FAST, "-o", out))
    mode, size, pixels = read(out)
    _, _, original = read(workdir / "rgba.png")
    assert (mode, size) == ("RGBA", (53, 37))
    assert np.array_equal(pixels[..., 3], original[..., 3])
    assert not np.array_equal(pixels[..., 0], pixels[..., 1])  # still colour


def test_a_jpeg_output_of_a_transparent_input_says_that_alpha_is_not_kept(workdir):
    out = workdir / "rgba_out.jpg"
    result = lip("restore", workdir / "rgba.png", "--simulate", "--iters", "4", *FAST, "-o", out)
    assert result.exit_code == 0, result.output
    assert read(out)[0] == "RGB" and "will not keep all of rgba.png: transparency (JPEG has none)" in result.stderr


def test_real_input_without_clean_has_null_scores(workdir):
    report = json_report(lip("restore", workdir / "gray.png", "--json", "--iters", "5", *FAST, *CHEAP))
    for key in ("psnr_final", "psnr_stopped", "ssim_final", "ssim_stopped", "oracle_best_psnr",
                "oracle_best_iter"):
        assert report[key] is None, key
    default_out = workdir / "gray_restored.png"  # beside the input by default
    assert report["output"] == str(default_out)
    assert read(default_out)[:2] == ("L", (53, 37))


def test_the_report_says_whether_the_rule_or_the_cap_ended_the_fit(workdir):
    """`auto_stopped`: a fit the rule ended, against one that ran to --iters and returns its last iterate."""
    quick = ["--ema", "0", "--es-gate", "0", "--es-window", "2", "--es-patience", "1"]  # fires within a few steps
    ruled = lip("restore", workdir / "rgb.png", "--json", "--iters", "60", *quick, *FAST, *CHEAP,
                "-o", workdir / "a.png")
    capped = lip("restore", workdir / "rgb.png", "--json", "--iters", "2", *FAST, *CHEAP, "-o", workdir / "b.png")
    a, b = json_report(ruled), json_report(capped)
    assert a["auto_stopped"] and a["stopped_at"] < 60 and f"auto-stop at {a['stopped_at']}" in ruled.stderr
    assert not b["auto_stopped"] and b["stopped_at"] == 2 and "no automatic stop before the cap" in capped.stderr
    assert a["operator"] == {"name": "denoise", "sigma": None}  # a real observation's noise level is not known
    pair = lip("restore", workdir / "rgb.png", "--json", "--iters", "2", "--ensemble", "2", "--jobs", "1", *FAST,
               *CHEAP, "-o", workdir / "c.png")
    assert not json_report(pair)["auto_stopped"] and "no automatic stop before the cap" in pair.stderr


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(workdir):
    before = (workdir / "rgb.png").read_bytes()
    result = lip("restore", workdir / "rgb.png", "-o", workdir / "rgb.png", "--iters", "2", *FAST, *CHEAP)
    assert result.exit_code == 2 and "one of this run's inputs" in result.stderr
    assert (workdir / "rgb.png").read_bytes() == before


def test_one_after_the_other_a_refused_input_does_not_stop_the_others(workdir):
    (workdir / "broken.png").write_bytes((workdir / "rgb.png").read_bytes()[:100])
    result = lip("restore", workdir / "rgb.png", workdir / "broken.png", workdir / "gray.png", "--jobs", "1",
                 "--iters", "2", *FAST, *CHEAP, "-o", workdir / "outs")
    assert result.exit_code == 2
    assert sorted(p.name for p in (workdir / "outs").iterdir()) == ["gray.png", "rgb.png"]
    lines = result.stderr.splitlines()
    said = [k for k, line in enumerate(lines) if line.startswith("lip: broken.png will not be restored: cannot read")]
    first = next(k for k, line in enumerate(lines) if "rgb.png ->" in line)
    assert said and said[0] < first  # read ahead: said before the first fit, once
    assert not any("broken.png not restored" in line for line in lines)
    assert lines[-1].startswith("lip: error: cannot read") and "broken.png" in lines[-1]


def test_real_input_with_clean_is_scored(workdir):
    noisy = np.asarray(PILImage.open(workdir / "rgb.png")).astype(float)
    noisy += np.random.default_rng(0).normal(0, 25, noisy.shape)
    PILImage.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(workdir / "noisy.png")
    report = json_report(lip("restore", workdir / "noisy.png", "--clean", workdir / "rgb.png", "--json",
                             "--iters", "5", *FAST, *CHEAP, "-o", workdir / "out.png"))
    assert isinstance(report["psnr_final"], float) and isinstance(report["oracle_best_psnr"], float)
    assert report["oracle_best_iter"] in range(1, 6)


def test_sr_real_input_is_upscaled(workdir):
    small = PILImage.open(workdir / "rgb.png").resize((32, 32), PILImage.BICUBIC)
    small.save(workdir / "small.png")
    report = json_report(lip("restore", workdir / "small.png", "--task", "sr", "--scale", "2", "--json",
                             "--iters", "3", *FAST, *CHEAP, "-o", workdir / "big.png"))
    assert report["task"] == "sr" and report["operator"]["scale"] == 2
    assert read(workdir / "big.png")[:2] == ("RGB", (64, 64))


def test_inpaint_with_mask_file(workdir):
    keep = np.full((37, 53), 255, np.uint8)
    keep[10:20, 10:30] = 0
    PILImage.fromarray(keep).save(workdir / "mask.png")
    report = json_report(lip("restore", workdir / "gray.png", "--task", "inpaint", "--inpaint-mask",
                             workdir / "mask.png", "--json", "--iters", "3", *FAST, *CHEAP,
                             "-o", workdir / "filled.png"))
    assert report["task"] == "inpaint" and report["operator"]["mask"] == "mask.png"
    assert read(workdir / "filled.png")[:2] == ("L", (53, 37))


def test_masked_prior_from_artifact(workdir):
    art = make_artifact(tiny_spec(), rounds=3, recommended_round=2)
    path = workdir / "ticket.safetensors"
    artifact.save(path, art)
    base = ["restore", workdir / "rgb.png", "--mask", path, "--simulate", "--json", "--iters", "4", *FAST,
            "-o", workdir / "out.png"]
    report = json_report(lip(*base))
    assert report["round"] == 2 and report["init"] == "artifact" and report["method"] == "test"
    assert report["sparsity"] == pytest.approx(art.sparsity(2))
    assert report["params"] == nets.count_params(nets.build(tiny_spec()))
    assert json_report(lip(*base, "--round", "0"))["sparsity"] == 0.0
    chosen = json_report(lip(*base, "--sparsity", str(art.sparsity(3)), "--init", "fresh"))
    assert chosen["round"] == 3 and chosen["init"] == "fresh"


def test_fresh_weights_are_not_the_tickets_own_draw(workdir):
    """The ticket's theta0 is the draw at its search's seed, 0 by default as restore's: --init fresh took the
    same draw there, so the LIP-vs-OES comparison (keep theta0 or not) compared a run with itself."""
    art = make_artifact(tiny_spec(), rounds=2, seed=0)  # theta0 = nets.build(spec, 0)
    artifact.save(workdir / "ticket.safetensors", art)
    outs = {}
    for init in ("artifact", "fresh", "fresh"):
        out = workdir / f"{init}{len(outs)}.png"
        lip("restore", workdir / "rgb.png", "--mask", workdir / "ticket.safetensors", "--init", init, "--iters", "3",
            "--seed", "0", *FAST, "-o", out)
        outs[out.name] = out.read_bytes()
    assert outs["artifact0.png"] != outs["fresh1.png"] and outs["fresh1.png"] == outs["fresh2.png"]


def test_several_inputs_into_a_folder(workdir):
    result = lip("restore", workdir / "rgb.png", workdir / "gray.png", "--json", "--iters", "2", *FAST,
                 *CHEAP, "-o", workdir / "outs")
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"] for r in reports] == [str(workdir / "rgb.png"), str(workdir / "gray.png")]
    assert sorted(p.name for p in (workdir / "outs").iterdir()) == ["gray.png", "rgb.png"]


def test_an_output_ending_in_a_slash_is_a_folder_even_for_one_input(workdir):
    result = lip("restore", workdir / "rgb.png", "--iters", "2", *FAST, *CHEAP, "-o", f"{workdir / 'new'}/")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (workdir / "new").iterdir()] == ["rgb.png"]


def test_two_inputs_whose_default_outputs_coincide_are_refused_before_any_work(workdir):
    PILImage.open(workdir / "rgb.png").convert("RGB").save(workdir / "rgb.jpg")
    result = lip("restore", workdir / "rgb.png", workdir / "rgb.jpg", "--iters", "2", *FAST, *CHEAP)
    assert result.exit_code == 2 and "would both be written to" in result.stderr
    assert not (workdir / "rgb_restored.png").exists()


# ---------------------------------------------------------------- one-line errors

def _bad_case(workdir: Path, case: str) -> list:
    """Arguments for a restore that must be refused (files it needs are created here)."""
    rgb, out = workdir / "rgb.png", workdir / "out.png"
    if case == "missing file":
        return [workdir / "nope.png", "-o", out]
    if case == "not an image":
        (workdir / "text.png").write_text("this is not a PNG\n")
        return [workdir / "text.png", "-o", out]
    if case == "empty file":
        (workdir / "empty.png").write_bytes(b"")
        return [workdir / "empty.png", "-o", out]
    if case == "inpaint mask of another size":
        PILImage.fromarray(np.full((10, 12), 255, np.uint8)).save(workdir / "mask.png")
        return [rgb, "--task", "inpaint", "--inpaint-mask", workdir / "mask.png", "-o", out]
    if case == "gray inpaint mask":
        PILImage.fromarray(np.full((64, 64), 128, np.uint8)).save(workdir / "mask.png")
        return [rgb, "--task", "inpaint", "--inpaint-mask", workdir / "mask.png", "-o", out]
    if case == "inpaint without mask":
        return [rgb, "--task", "inpaint", "-o", out]
    if case == "corrupted mask artifact":
        data = artifact.to_bytes(make_artifact())
        (workdir / "m.safetensors").write_bytes(data[: len(data) // 2])
        return [rgb, "--mask", workdir / "m.safetensors", "-o", out]
    if case == "mask artifact for another net":
        ours, theirs = make_artifact(tiny_spec()), make_artifact(tiny_spec(down=[12] * 3, up=[12] * 3))
        write_raw(workdir / "m.safetensors", tensors_of(theirs), meta_json(ours))
        return [rgb, "--mask", workdir / "m.safetensors", "-o", out]
    if case == "pickled mask":
        torch.save({"levels.0.down.conv.weight": torch.ones(3)}, workdir / "m.pt")
        return [rgb, "--mask", workdir / "m.pt", "-o", out]
    if case == "round not in artifact":
        artifact.save(workdir / "m.safetensors", make_artifact())
        return [rgb, "--mask", workdir / "m.safetensors", "--round", "99", "-o", out]
    if case == "unknown device":
        return [rgb, "--device", "banana", "-o", out]
    if case == "unsupported device":
        return [rgb, "--device", "meta", "-o", out]
    if case == "cuda on this machine":
        return [rgb, "--device", "cuda", "-o", out]
    if case == "sr scale 3":
        return [rgb, "--task", "sr", "--scale", "3", "-o", out]
    if case == "sr simulate odd size":
        return [workdir / "gray.png", "--task", "sr", "--scale", "4", "--simulate", "-o", out]
    if case == "sigma out of range":
        return [rgb, "--simulate", "--sigma", "300", "-o", out]
    if case == "unknown task":
        return [rgb, "--task", "deblur", "-o", out]
    if case == "unknown precision":
        return [rgb, "--precision", "fp64", "-o", out]
    if case == "clean of another size":
        return [rgb, "--clean", workdir / "gray.png", "-o", out]
    if case == "clean with simulate":
        return [rgb, "--simulate", "--clean", rgb, "-o", out]
    if case == "output into a missing folder":
        return [rgb, "-o", workdir / "missing" / "out.png"]
    if case == "output folder in a missing folder":
        return [rgb, workdir / "gray.png", "-o", workdir / "missing" / "sub"]
    raise AssertionError(case)


BAD_CASES = [
    "missing file", "not an image", "empty file", "inpaint mask of another size", "gray inpaint mask",
    "inpaint without mask", "corrupted mask artifact", "mask artifact for another net", "pickled mask",
    "round not in artifact", "unknown device", "unsupported device", "cuda on this machine", "sr scale 3",
    "sr simulate odd size", "sigma out of range", "unknown task", "unknown precision",
    "clean of another size", "clean with simulate", "output into a missing folder",
    "output folder in a missing folder",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(workdir, case):
    if case == "cuda on this machine" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = _bad_case(workdir, case)
    before = listing(workdir)
    # The case's own options come last, so they override these defaults.
    result = lip("restore", "--json", "--iters", "2", "--config", "fast", "--precision", "fp32", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lip: error: ") and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert listing(workdir) == before, "a refused run wrote files"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_two_inputs_with_the_same_name_are_refused(workdir):
    (workdir / "a").mkdir()
    shutil.copy(workdir / "rgb.png", workdir / "a" / "rgb.png")
    before = listing(workdir)
    result = lip("restore", workdir / "rgb.png", workdir / "a" / "rgb.png", "-o", workdir / "outs", *FAST)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "a/rgb.png would both be written to" in result.stderr
    # The output folder may have been created, but no image was written.
    assert {p for p in listing(workdir) - before if p.endswith(".png")} == set()


def test_an_internal_error_is_one_line_exit_1(workdir, monkeypatch):
    from lipcli import api

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug\nsecond line")

    monkeypatch.setattr(api, "fit_prior", broken)
    result = lip("restore", workdir / "rgb.png", "--iters", "1", *FAST, *CHEAP, "-o", workdir / "o.png")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("lip: internal error: ZeroDivisionError: simulated bug")
    assert "second line" not in result.stderr and not (workdir / "o.png").exists()


def test_a_stopped_batch_says_to_continue_with_skip_existing(workdir, monkeypatch):
    """Stopped at its second input, a batch has written the first: the plain command would fit it again."""
    from lipcli import api
    real, calls = api.fit_prior, []

    def stopped_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "fit_prior", stopped_second)
    result = lip("restore", workdir / "rgb.png", workdir / "gray.png", "--jobs", "1", "--iters", "2", *FAST, *CHEAP,
                 "-o", workdir / "outs")
    assert result.exit_code == 130 and (workdir / "outs" / "rgb.png").is_file()
    assert "so the same command with --skip-existing starts over" in result.stderr


def test_a_signal_after_the_fit_waits_until_the_image_is_written(workdir, monkeypatch):
    """Ctrl-C between the last iteration and the write used to discard the finished fit (no state is saved
    then): it now waits until the image is written and reported, then stops."""
    import signal
    from lipcli.problem import Problem
    real = Problem.picture

    def picture_then_ctrl_c(self, *args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # as if it came now, after the fit
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Problem, "picture", picture_then_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a runner in the background ignores it
    try:
        result = lip("restore", workdir / "rgb.png", "--iters", "2", "--json", *FAST, *CHEAP, "-o", workdir / "o.png")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 130 and (workdir / "o.png").is_file()
    assert json.loads(result.stdout)["output"] == str(workdir / "o.png")  # reported too
    assert f"lip: stopped after {workdir / 'o.png'} was written" in result.stderr
    assert not (workdir / "o.png.lip-resume").exists()


def test_divergence_exits_1_with_one_line(workdir, monkeypatch):
    from lipcli import api
    from lipcli.fit import DivergenceError, FitResult

    def diverging(*args, **kwargs):
        raise DivergenceError("the fit diverged 6 times in a row", FitResult([], 0, [], 6, 0.0))

    monkeypatch.setattr(api, "fit_prior", diverging)
    result = lip("restore", workdir / "rgb.png", "--iters", "1", *FAST, *CHEAP, "-o", workdir / "o.png")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "lip: error: the fit diverged 6 times in a row"
    assert not (workdir / "o.png").exists()


def test_a_failed_write_keeps_the_fits_state_and_the_same_command_continues_from_it(workdir, monkeypatch):
    """A write that fails after the fit (a full disk) keeps the fit's saved state beside the output (saved
    every millisecond here), and the same command continues from it to the image an unfailed run writes, then
    removes it."""
    args = ["restore", workdir / "rgb.png", "--simulate", "--json", "--iters", "6", "--resume-every", "0.001", *FAST,
            *CHEAP]
    json_report(lip(*args, "-o", workdir / "ref.png"))
    out, state = workdir / "out.png", workdir / "out.png.lip-resume"
    real_save = PILImage.Image.save

    def full_disk(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(PILImage.Image, "save", full_disk)
    failed = lip(*args, "-o", out)
    monkeypatch.setattr(PILImage.Image, "save", real_save)
    assert failed.exit_code == 1 and "disk is full" in failed.stderr, failed.output
    assert "the image was not written; the fit's state is kept in" in failed.stderr
    assert (state / "fit-0.safetensors").is_file() and not out.exists()

    again = lip(*args, "-o", out)
    assert json_report(again)["resumed_from"] > 0
    assert out.read_bytes() == (workdir / "ref.png").read_bytes() and not state.exists()


def test_version_flag():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and "lip 0.1.0" in result.output


def test_a_refused_input_errs_alone_on_a_busy_machine(tmp_path, monkeypatch):
    """The busy-machine note waits until the input is read: an input refused then (a mask of another size, a
    factor the operator lacks) prints its one error line alone; a run that goes ahead still says the note."""
    from lipcli import device
    monkeypatch.setattr(device, "usable_cores", lambda: 4)
    monkeypatch.setattr(device, "busy_cores", lambda: 3.0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    rng = np.random.default_rng(0)
    PILImage.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    PILImage.fromarray((rng.random((16, 16)) > 0.5).astype(np.uint8) * 255).save(tmp_path / "mask.png")
    for refused in (["--task", "inpaint", "--inpaint-mask", tmp_path / "mask.png"], ["--task", "sr", "--scale", "3"]):
        r = lip("restore", tmp_path / "in.png", *refused, *FAST, *CHEAP, "--iters", "2", "-o", tmp_path / "out.png")
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("lip: error: "), r.stderr
    r = lip("restore", tmp_path / "in.png", *FAST, *CHEAP, "--iters", "2", "-o", tmp_path / "out.png")
    assert r.exit_code == 0 and r.stderr.count("this machine is busy") == 1, r.stderr
    assert set(listing(tmp_path)) == {"in.png", "mask.png", "out.png"}
