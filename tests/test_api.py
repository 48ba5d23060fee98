"""The Python API (issue 15, item 4): the README's notebook example runs, prints nothing and returns
results in the input's form; the commands go through the same functions and give the same bytes."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lipcli import api, images, library, nets
from lipcli.cli import app
from lipcli.errors import LipError

from prune_helpers import NARROW_YAML, picture, write_picture

README = Path(__file__).parent.parent / "README.md"
REAL_RESTORER, REAL_PRUNER = api.restorer, api.pruner


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Settings that make any API call take a moment: the narrow net, 3 iterations, one round, the CPU."""
    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    monkeypatch.chdir(tmp_path)
    return dict(config=str(tmp_path / "narrow.yaml"), device="cpu", iters=3)


def readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


def test_the_readme_example_runs_silently_and_keeps_the_input_form(tiny, monkeypatch, capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    # The example as written, with the tiny settings put into every call it makes.
    monkeypatch.setattr(api, "restorer", lambda **o: REAL_RESTORER(**{**o, **tiny}))
    monkeypatch.setattr(api, "pruner", lambda imgs, **o: REAL_PRUNER(imgs, **{**o, **tiny, "rounds": 1}))
    scan = (picture(32, 40, seed=1).transpose(1, 2, 0) * 4095).round().astype(np.uint16)  # a 12-bit scan
    np.save("noisy.npy", scan)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""
    out, ticket = scope["out"], scope["ticket"]
    assert out.image.shape == scan.shape and out.image.dtype == np.uint16
    assert ticket.rounds == 1 and 0.2 < ticket.sparsity(1) < 0.5
    assert out.report["mask"] == "(in memory)" and out.report["round"] == ticket.recommended_round
    assert out.report["sparsity"] == pytest.approx(ticket.sparsity(ticket.recommended_round))


@pytest.mark.parametrize("make", [
    lambda p: p,  # CxHxW float tensor
    lambda p: p[None],  # 1xCxHxW
    lambda p: p.numpy().transpose(1, 2, 0).copy(),  # HxWxC float32 in [0, 1]
    lambda p: (p[0].numpy() * 255).round().astype(np.uint8),  # HxW gray uint8
    lambda p: np.concatenate([p.numpy(), np.linspace(0, 1, 40, dtype=np.float32)[None, None].repeat(32, 1)])
    .transpose(1, 2, 0) * 100.0,  # HxWx4 RGBA with its own range
], ids=["CHW tensor", "NCHW tensor", "HWC float", "HW uint8", "RGBA wide range"])
def test_restore_returns_the_inputs_form(tiny, capsys, make):
    x = make(torch.from_numpy(picture(32, 40, seed=2)))
    out = api.restore(x, simulate=True, **tiny)
    assert type(out.image) is type(x) and tuple(out.image.shape) == tuple(x.shape) and out.image.dtype == x.dtype
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[2] == 4:
        np.testing.assert_allclose(out.image[..., 3], x[..., 3], rtol=1e-5, atol=1e-4)  # alpha untouched
    assert out.report["psnr_final"] > 0 and out.report["ssim_final"] is not None  # scored: simulated
    assert capsys.readouterr().out == ""


def test_restore_is_the_commands_path_byte_for_byte(tiny, tmp_path):
    write_picture(tmp_path / "noisy.png", 32, 40, seed=3, noise_sigma=25)
    result = CliRunner().invoke(app, ["restore", "noisy.png", "--config", tiny["config"], "--device", "cpu",
                                      "--threads", "1", "--iters", "3", "--json"])
    assert result.exit_code == 0, result.output
    cli_report = json.loads(result.stdout)
    out = api.restore(images.load_image("noisy.png"), **tiny)  # from an array-backed Image
    assert np.array_equal(images.to_array(images.load_image("noisy_restored.png")), out.image)
    assert {k: v for k, v in cli_report.items() if k not in ("output", "seconds")} == \
        {k: v for k, v in out.report.items() if k != "seconds"}


def test_the_commands_call_the_api(tiny, tmp_path, monkeypatch):
    calls: list[str] = []
    for cls, name in [(api.Restorer, "__call__"), (api.Pruner, "run")]:
        real = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, *a, _r=real, _n=name, **k: calls.append(_n) or _r(self, *a, **k))
    monkeypatch.setattr(api, "transfer_grid", lambda *a, _r=api.transfer_grid, **k: calls.append("grid") or _r(*a, **k))
    write_picture(tmp_path / "img.png", 32, 32)
    base = ["--config", tiny["config"], "--device", "cpu", "--threads", "1", "--iters", "2"]
    for args in (["restore", "img.png"], ["prune", "img.png", "--simulate", "--rounds", "1", "-o", "m.safetensors"],
                 ["transfer", "img.png", "--mask", "m.safetensors", "--rounds", "1", "--baselines", "none",
                  "--out", "res"]):
        result = CliRunner().invoke(app, [*args, *base])
        assert result.exit_code == 0, result.output
    assert calls == ["__call__", "run", "grid"]


def test_masks_save_load_and_transfer(tiny, tmp_path, capsys):
    clean = picture(32, 32, seed=4).transpose(1, 2, 0)
    ticket = api.prune([clean], simulate=True, rounds=2, **tiny)
    api.save_mask(tmp_path / "t.safetensors", ticket)
    again = api.load_mask(tmp_path / "t.safetensors")
    assert all(torch.equal(again.prune_round[n], ticket.prune_round[n]) for n in ticket.prune_round)
    rows = api.transfer([clean], [tmp_path / "t.safetensors"], rounds="1,2", **tiny)
    assert [(r["method"], r["round"], r["image"]) for r in rows] == \
        [("dense", 0, "image0"), ("mask", 1, "image0"), ("mask", 2, "image0")]
    assert rows[2]["sparsity"] == pytest.approx(ticket.sparsity(2))
    assert capsys.readouterr().out == ""


def test_a_search_option_the_method_does_not_read_is_refused_by_the_api_too(tiny):
    clean = picture(32, 32, seed=4).transpose(1, 2, 0)
    with pytest.raises(LipError, match=r"--rewind: --method snip does not read it \(only --method imp\)"):
        api.pruner([clean], simulate=True, method="snip", rewind=0.5, **tiny)


def test_a_misspelt_option_is_refused_not_ignored(tiny):
    x = np.moveaxis(picture(32, 32), 0, -1)
    with pytest.raises(LipError, match=r"unknown option 'iter' \(did you mean iters\?\)"):
        api.restore(x, iter=20)
    with pytest.raises(LipError, match=r"unknown option 'round' \(did you mean round_\?\)"):
        api.restore(x, round=1)
    with pytest.raises(LipError, match="unknown option 'rond'"):
        api.prune([x], rond=2)
    with pytest.raises(LipError, match=r"api.recoverer: unknown option 'measurments' \(did you mean measurements\?\)"):
        api.recoverer("mnist:3", simulate=True, measurments=300)


def test_a_task_option_no_task_of_the_grid_reads_is_refused(tmp_path):
    """Any task's setting, not only sigma and keep: a denoising grid would drop scale=2 in silence."""
    x = np.moveaxis(picture(32, 32), 0, -1)
    with pytest.raises(LipError, match=r"--scale: no task of the grid \(denoise\) reads it"):
        api.transfer_grid([x], ["dip-channel-house"], tasks="denoise", scale=2, device="cpu")
    with pytest.raises(LipError, match=r"--acceleration: no task of the grid \(sr4\) reads it"):
        api.transfer_grid([x], ["dip-channel-house"], tasks="sr4", acceleration=4, device="cpu")
    # the grid task's name sets the factor: a flag beside it would be overridden in silence
    with pytest.raises(LipError, match=r"--scale \(--tasks sr4 sets it\): a grid task's name gives its setting"):
        api.transfer_grid([x], ["dip-channel-house"], tasks="sr4,denoise", scale=2, device="cpu")


def test_a_grid_reads_the_other_task_flags_of_its_tasks():
    """MRI's and CS's own settings reach a grid's cells and are recorded with them (the row's degradation)."""
    x = np.moveaxis(picture(32, 32), 0, -1)
    grid = api.transfer_grid([x], [library.resolve(Path("dip-channel-house"))], tasks="mri4,cs1000,denoise",
                             mask_type="radial", outliers=20, solver="ls", sigma=15, device="cpu")
    assert grid.settings["mri4"]["mask_type"] == "radial" and grid.settings["mri4"]["acceleration"] == 4
    assert grid.settings["cs1000"]["outliers"] == 20 and grid.settings["cs1000"]["solver"] == "ls"
    assert grid.settings["denoise"]["sigma"] == 15


def test_lip_cs_from_python(capsys):
    """`lip cs`'s engine is api.recoverer: the problem is checked and visible before the solve, nothing printed."""
    job = api.recoverer("mnist:3", simulate=True, measurements=100, iters=5, restarts=1, device="cpu")
    assert job.problem.shape == (1, 32, 32) and job.steps == 5 and job.warning is None
    crowded = api.recoverer("mnist:3", simulate=True, measurements=100, outliers=40, device="cpu")
    assert "the median batch is likely corrupted" in crowded.warning  # said before a solve that would fail
    done: list[int] = []
    got = job(on_step=lambda n, loss: done.append(n))
    assert done == [1, 2, 3, 4, 5] and got.image.shape == (1, 1, 32, 32)
    assert got.report["psnr"] is not None and got.report["restarts"] == 1
    assert capsys.readouterr().out == ""
    with pytest.raises(LipError, match="unknown --prior"):
        api.recoverer("mnist:3", simulate=True, prior="gan")


def test_an_unreachable_noise_gate_never_stops_a_denoising_fit(tiny):
    """The gate only holds minima back: with a floor no fit reaches the run goes to its last iteration;
    with the gate off the same short fit stops at its variance minimum."""
    x = np.moveaxis(picture(32, 32), 0, -1)
    common = dict(tiny, iters=40, es_window=4, es_patience=3, sigma=50, ema=0.0)
    gated = api.restore(x, simulate=True, es_gate=1e-6, **common).report
    plain = api.restore(x, simulate=True, es_gate=0.0, **common).report
    assert gated["iterations"] == gated["stopped_at"] == 40
    assert plain["iterations"] < 40


def test_a_restorers_saved_state_stays_until_the_caller_discards_it(tiny, tmp_path):
    """`state=FOLDER` keeps the fit's state after the call (the caller has not stored the image yet);
    `Restored.discard_state()` removes it."""
    from lipcli.resume import saved_fits

    write_picture(tmp_path / "noisy.png", 32, 40, seed=3, noise_sigma=25)
    folder = tmp_path / "out.png.lip-resume"
    out = api.restorer(**tiny, resume_every=0.001)("noisy.png", state=folder)  # saved as it goes
    assert saved_fits(folder) and out.state == folder
    out.discard_state()
    assert not folder.exists()


def test_a_call_leaves_the_callers_random_stream_as_it_was(tiny):
    """Nets draw their initial weights from their seed on a fork of torch's stream (nets.seeded): a script that
    draws noise, restores, and draws again used to get the same noise after every restore (it was reseeded)."""
    x = np.moveaxis(picture(32, 32), 0, -1)
    torch.manual_seed(1234)
    expected = (torch.rand(4), torch.rand(4))
    ticket = api.prune([x], simulate=True, rounds=1, **tiny)
    api.save_mask("m.safetensors", ticket)
    for call in (lambda: api.restore(x, **tiny), lambda: api.prune([x], simulate=True, rounds=1, **tiny),
                 lambda: api.transfer([x], ["m.safetensors"], baselines="random", rounds="1", **tiny),
                 lambda: api.recoverer("mnist:3", simulate=True, measurements=100, iters=2, device="cpu")()):
        torch.manual_seed(1234)
        first = torch.rand(4)
        call()
        assert torch.initial_seed() == 1234
        assert torch.equal(first, expected[0]) and torch.equal(torch.rand(4), expected[1])


def test_threads_calling_at_once_get_what_one_call_at_a_time_gets(tiny):
    """Nets draw from torch's one process-wide stream: two threads' draws interleaved into wrong weights (and a
    shipped ticket's regenerated theta0 into a false 'the file is damaged')."""
    x, quick = np.moveaxis(picture(32, 32), 0, -1), dict(device="cpu", iters=3)  # the default prior: the ticket
    alone = api.restore(x, **quick).image
    got: dict[int, np.ndarray] = {}
    workers = [threading.Thread(target=lambda k=k: got.__setitem__(k, api.restore(x, **quick).image)) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(np.array_equal(got[k], alone) for k in range(2))


def test_seeded_draws_take_turns():
    """A thread inside `seeded` keeps its stream until it leaves: another thread's seeded draw waits."""
    inside, go, out = threading.Event(), threading.Event(), {}

    def first() -> None:
        with nets.seeded(1):
            inside.set()
            go.wait(10)
            out[1] = torch.rand(3)

    def second() -> None:
        with nets.seeded(2):
            out[2] = torch.rand(3)

    a = threading.Thread(target=first)
    a.start()
    inside.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.3)
    assert b.is_alive() and 2 not in out  # waiting for the first to finish its draw
    go.set()
    a.join()
    b.join()
    for seed in (1, 2):
        assert torch.equal(out[seed], torch.rand(3, generator=torch.Generator().manual_seed(seed)))


def test_paths_as_str_a_shipped_mask_by_name_and_a_new_results_folder(tiny, tmp_path):
    """What a script passes: an inpainting mask as a str, a Path as lip cs's source, a shipped mask by name to a
    transfer grid (as restore takes it; the CLI failed the same way) and an `out` folder not made yet."""
    x = np.moveaxis(picture(32, 32), 0, -1)
    holes = tmp_path / "holes.png"
    images.save_image(holes, (np.random.default_rng(0).random((1, 32, 32)) > 0.3).astype(np.float32))
    assert api.restore(x, task="inpaint", inpaint_mask=str(holes), **tiny).report["task"] == "inpaint"
    rows = api.transfer([x], ["dip-channel-house"], rounds="1", baselines="none", out=tmp_path / "new", **tiny)
    assert rows[0]["mask"] == "dip-channel-house" and (tmp_path / "new" / "results.jsonl").is_file()
    write_picture(tmp_path / "digit.png", 32, 32)
    assert api.recoverer(tmp_path / "digit.png", simulate=True, measurements=50, device="cpu").problem.name == "digit"


@pytest.mark.parametrize("call, message", [
    (lambda x, t: api.restore([x]), r"not list \(one image per call"),
    (lambda x, t: api.restore(x, clean=[x]), "not list"),
    (lambda x, t: api.restore(x, mask=np.zeros(3)), "mask is a mask file"),
    (lambda x, t: api.restore(x, seed=1.5), r"--seed 1.5 must be a whole number"),
    (lambda x, t: api.restore(x, seed=2**70), "--seed 1180591620717411303424 must be"),
    (lambda x, t: api.restore(x, ensemble=1.5), "--ensemble 1.5 must be a whole number from 1"),
    (lambda x, t: api.restore(x, mask=t, round_="1"), "--round '1' must be"),
    (lambda x, t: api.restore(x, mask=t, rounds=1), r"unknown option 'rounds' \(did you mean round_\?\)"),
    (lambda x, t: api.restore(torch.rand(32, 32, 3)), r"shape \(32, 32, 3\): give a tensor CxHxW.*x.permute"),
    (lambda x, t: api.prune([x], iters=0), "--iters 0 must be a whole number of 1 or more"),
    (lambda x, t: api.recoverer("mnist:3", simulate=True, seed=None), "--seed None must be"),
    (lambda x, t: api.transfer_grid([x], [t]), "write the artifact first"),
    (lambda x, t: api.save_mask("m.safetensors", np.zeros(3)), "not ndarray"),
    (lambda x, t: api.restore(x, task="inpaint", inpaint_mask=np.ones((32, 32))), "inpaint_mask takes a file's path"),
    (lambda x, t: api.restore(x, device=0), "device=0: give a device name"),
    (lambda x, t: api.restore(x, prior="deep-decoder", dd_k=0), "--dd-k 0 must be a whole number from 1"),
    (lambda x, t: api.restore(x, dense="no"), "--dense 'no' must be True or False"),
    (lambda x, t: api.restore(x, mask=t, sparsity="0.3"), "--sparsity '0.3' must be a number"),
    (lambda x, t: api.recoverer(x, simulate=True, prior="dip"), "source takes y.npy, an image file or mnist:K"),
    (lambda x, t: api.recoverer("mnist:3", simulate=True, measurements=100.5), "--measurements 100.5 must be"),
    (lambda x, t: api.transfer_grid([x], ["dip-channel-house"], iters="x"), "--iters 'x' must be a whole number"),
], ids=["image list", "clean list", "mask array", "float seed", "huge seed", "float ensemble", "str round",
        "search option", "HWC tensor", "zero iters", "None seed", "transfer artifact", "save array",
        "inpaint mask array", "int device", "zero dd_k", "str bool", "str sparsity", "array cs source",
        "float measurements", "str iters in a grid"])
def test_a_wrong_type_is_a_one_line_error(tiny, call, message):
    x = np.moveaxis(picture(32, 32), 0, -1)
    ticket = api.load_mask("dip-channel-house")
    with pytest.raises(LipError, match=message):
        call(x, ticket)


def test_lip_leaves_tifffiles_logger_to_the_program_and_reads_a_bfloat16_tensor(tiny):
    import logging
    log = logging.getLogger("tifffile")
    assert (log.propagate, log.handlers, log.disabled) == (True, [], False)
    out = api.restore(torch.rand(3, 32, 32).bfloat16(), **tiny).image
    assert out.dtype == torch.float32 and out.shape == (3, 32, 32)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_torch_device_is_checked_as_its_name_is():
    """torch.device('cuda') skipped the check and failed mid-fit with torch's AssertionError."""
    with pytest.raises(LipError, match="no CUDA GPU"):
        api.restore(np.zeros((16, 16), np.float32), device=torch.device("cuda"))
