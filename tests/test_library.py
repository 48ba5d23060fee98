"""The shipped mask library: entries resolve by name everywhere an artifact is read, and every shipped
file is small, loads, and regenerates its initial weights bit for bit under this torch."""
from __future__ import annotations

import json

import pytest

from lipcli import api, artifact, config, library
from lipcli.errors import LipError
from lipcli.physics import TASKS
from test_artifact import channel_artifact
from prune_helpers import isolated_folder
from test_cli_restore import FAST, json_report, lip


@pytest.fixture
def shelf(tmp_path, monkeypatch):
    """A library of one slim channel ticket of the tiny net, in place of the shipped one."""
    monkeypatch.setattr(library, "FOLDER", tmp_path / "library")
    (tmp_path / "library").mkdir()
    artifact.save(tmp_path / "library" / "tiny-ch.safetensors", channel_artifact(), slim=True)
    (tmp_path / "library" / "index.yaml").write_text(
        "tiny-ch:\n  file: tiny-ch.safetensors\n  task: denoise\n  summary: a test ticket\n"
        "  made_by: the test\n  measured: {psnr_gap_db: 0.0}\n  fast: {iters: 7, es_patience: 40}\n")
    return tmp_path


def test_a_library_name_restores_like_its_file(shelf, workdir):
    by_name = json_report(lip("restore", "--simulate", workdir / "rgb.png", "--mask", "tiny-ch", "--round", "2",
                              "--iters", "3", "--json", "-o", workdir / "a.png", *FAST))
    by_path = json_report(lip("restore", "--simulate", workdir / "rgb.png", "--mask",
                              shelf / "library" / "tiny-ch.safetensors", "--round", "2", "--iters", "3", "--json",
                              "-o", workdir / "b.png", *FAST))
    assert by_name["psnr_final"] == by_path["psnr_final"] and by_name["sparsity"] == by_path["sparsity"] > 0
    assert (workdir / "a.png").read_bytes() == (workdir / "b.png").read_bytes()


def test_an_entry_is_fitted_with_its_own_settings_over_the_fast_preset_only(shelf, monkeypatch):
    """A narrow ticket may need a higher cap than the dense net: its entry's `fast` settings apply whenever the
    entry is the prior, by name or as the preset's default ticket, under the user's flags and config file."""
    def cfg(**options):
        return api.restorer(device="cpu", **options).cfg
    preset = config.preset("fast", "denoise")
    assert (cfg(mask="tiny-ch").iters, cfg(mask="tiny-ch").es_patience) == (7, 40)
    assert cfg(mask="tiny-ch", iters=5).iters == 5  # a flag wins
    (shelf / "my.yaml").write_text("iters: 9\n")
    assert cfg(mask="tiny-ch", config=str(shelf / "my.yaml")).iters == 9  # so does a config file
    assert cfg(mask="tiny-ch", config="paper").iters == config.preset("paper", "denoise")["iters"]
    assert cfg(mask=shelf / "library" / "tiny-ch.safetensors").iters == preset["iters"]  # a file: no entry
    monkeypatch.setattr(TASKS.get("denoise"), "fast_ticket", "tiny-ch")
    assert cfg().iters == 7  # the preset's default ticket
    assert cfg(dense=True).iters == cfg(prior="deep-decoder").iters == preset["iters"]  # not when another prior
    assert cfg(mask="tiny-ch", task="sr").iters == config.preset("fast", "sr")["iters"]  # nor on another task


def test_a_file_or_folder_named_like_the_presets_ticket_does_not_replace_it(shelf, workdir, monkeypatch):
    """The default prior is the library's file whatever the working folder holds (a folder of that name
    does not hide an explicit --mask NAME either: it could not be a mask)."""
    monkeypatch.setattr(TASKS.get("denoise"), "fast_ticket", "tiny-ch")
    monkeypatch.chdir(workdir)
    args = ("restore", "--simulate", "rgb.png", "--iters", "3", "--json", *FAST)
    same = lambda report: {k: v for k, v in report.items() if k not in ("output", "seconds")}  # noqa: E731
    expected = same(json_report(lip(*args, "-o", "a.png")))
    assert expected["mask"] == "tiny-ch" and expected["iterations"] == 3
    (workdir / "tiny-ch").mkdir()
    assert same(json_report(lip(*args, "-o", "b.png", "--mask", "tiny-ch"))) == expected
    (workdir / "tiny-ch").rmdir()
    (workdir / "tiny-ch").write_bytes(b"a user's file of that name")
    assert same(json_report(lip(*args, "-o", "c.png"))) == expected
    assert (workdir / "a.png").read_bytes() == (workdir / "b.png").read_bytes() == (workdir / "c.png").read_bytes()
    clash = lip(*args, "-o", "d.png", "--mask", "tiny-ch")  # named explicitly: which one? refused, as for samples
    assert clash.exit_code == 2 and "tiny-ch names both a mask in lip's library" in clash.output
    assert not (workdir / "d.png").exists()


def test_a_library_mask_fitted_for_another_task_says_so(shelf, workdir):
    """Its measured settings are skipped there (they were tuned for its own task): said once, before the fit."""
    result = lip("restore", "--simulate", workdir / "rgb.png", "--task", "sr", "--scale", "2", "--mask", "tiny-ch",
                 "--iters", "2", *FAST, "-o", workdir / "sr.png")
    assert result.exit_code == 0, result.output
    assert "lip: note: tiny-ch is the library's denoise mask: fitted for sr, without the settings" in result.output


def test_schedules_follow_the_estimated_noise_level(shelf, workdir):
    """An entry may ask for more input jitter, a longer stop window, a looser gate at high noise and a longer cap
    at low noise: each is read off its schedule at the observation's blind noise estimate (per image: the Restorer
    is set up before any image), reported, and a flag still wins."""
    index = shelf / "library" / "index.yaml"
    jitter, window, gate = {25: 0.01, 50: 0.05}, {0: 20, 37.5: 40}, {0: 1.05, 52.5: 1.2}
    white, cap = {0: 0.03, 20: 0, 37.5: 0.04, 52.5: 0.045}, {0: 4, 12.5: 3}
    entry = (f"fast: {{iters: {cap}, reg_noise: {jitter}, es_window: {window}, es_gate: {gate}, "
             f"es_white: {white}}}")
    index.write_text(index.read_text().replace("fast: {iters: 7, es_patience: 40}", entry))

    def run(*extra):
        return json_report(lip("restore", "--simulate", workdir / "rgb.png", "--mask", "tiny-ch", "--round", "2",
                               "--json", "-o", workdir / "a.png", *extra, *FAST))
    low, high, higher = run("--sigma", "10"), run("--sigma", "45"), run("--sigma", "90")
    for r in (low, high, higher):
        assert r["reg_noise"] == pytest.approx(config.at_level("reg_noise", jitter, r["sigma_estimated"]))
    assert 37.5 < high["sigma_estimated"] < 52.5 < higher["sigma_estimated"]
    assert low["sigma_estimated"] < 12.5 < high["sigma_estimated"]
    assert (low["iterations"], high["iterations"], higher["iterations"]) == (4, 3, 3)  # no stop in 4 (window 20)
    assert (low["reg_noise"], low["es_window"], low["es_gate"], low["es_white"]) == (0.01, 20, 1.05, 0.03)
    assert high["reg_noise"] > 0.03 and (high["es_window"], high["es_gate"], high["es_white"]) == (40, 1.05, 0.04)
    assert (higher["reg_noise"], higher["es_window"], higher["es_gate"], higher["es_white"]) == (0.05, 40, 1.2, 0.045)
    flagged = run("--sigma", "90", "--reg-noise", "0.02", "--es-window", "30", "--es-gate", "1.1",
                  "--es-white", "0.05", "--iters", "2")
    assert [flagged[k] for k in ("reg_noise", "es_window", "es_gate", "es_white", "iterations")] == [0.02, 30, 1.1,
                                                                                                    0.05, 2]
    listed = " ".join(lip("masks").output.split())  # the listing reads each schedule as it is applied
    assert "reg_noise 0.01 at sigma 25 -> 0.05 at sigma 50 (linear between" in listed
    assert "es_window 20, 40 above sigma 37.5" in listed and "es_gate 1.05, 1.2 above sigma 52.5" in listed
    assert "es_white 0.03, 0 above sigma 20, 0.04 above sigma 37.5, 0.045 above sigma 52.5" in listed
    assert "iters 4, 3 above sigma 12.5" in listed
    shown = lip("restore", "--simulate", workdir / "rgb.png", "--mask", "tiny-ch", "--round", "2", "--sigma", "45",
                "-o", workdir / "a.png", *FAST).output
    assert "rgb.png: 3/3 " in shown  # the progress counts to the cap at the image's noise level (the first: 4)


def test_a_schedule_is_linear_for_the_jitter_a_switch_for_the_stop_and_flat_beyond_its_points():
    schedule = {50: 0.05, "25": 1 / 30}  # a YAML file may give the levels in any order, as numbers or strings
    assert config.at_level("reg_noise", 0.02, 40) == 0.02
    assert config.at_level("reg_noise", schedule, None) == config.at_level("reg_noise", schedule, 10) == 1 / 30
    assert config.at_level("reg_noise", schedule, 37.5) == pytest.approx((1 / 30 + 0.05) / 2)
    assert config.at_level("reg_noise", schedule, 80) == 0.05
    window = {0: 200, 37.5: 400}  # as measured: 400 where the estimate reads above 37.5
    assert [config.at_level("es_window", window, s) for s in (None, 20, 37.5, 37.6, 80)] == [200, 200, 200, 400, 400]
    gate = {0: 1.05, 52.5: 1.2}  # the stop's knobs switch, even a real-valued one
    assert [config.at_level("es_gate", gate, s) for s in (None, 50, 52.5, 53, 80)] == [1.05, 1.05, 1.05, 1.2, 1.2]
    assert isinstance(config.at_level("es_window", {0: 200, 50: 300.0}, 60), int)
    for key, bad in [("reg_noise", {}), ("reg_noise", {25: -0.1}), ("reg_noise", {"x": 0.1}), ("reg_noise", -1),
                     ("es_window", {0: 200, 40: 1}), ("es_window", {0: 200.5}), ("es_window", 1)]:
        with pytest.raises(LipError, match=key.replace("_", "-")):
            config.at_level(key, bad, 20)


def test_a_search_asks_for_one_number_where_a_config_gives_a_schedule_of_iterations(tmp_path):
    """A config's `iters` is also a search's per round; a schedule over noise levels is a restore's, so a search
    given one says what to write instead (not the bare `--iters` error of a flag nobody passed)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("iters: {0: 500, 12.5: 300}\n")
    with pytest.raises(LipError, match=r"schedule over noise levels .*search_iters: N in the config"):
        api.pruner(["sample:house-noisy"], config=str(cfg), device="cpu")
    cfg.write_text("iters: {0: 500, 12.5: 300}\nsearch_iters: 7\n")
    assert api.pruner(["sample:house-noisy"], config=str(cfg), device="cpu", rounds=1)


def test_a_preset_fits_its_ticket_only_where_it_was_measured(shelf, monkeypatch):
    """An entry's `only` settings bound where a preset may fit it by default (an SR x4 ticket: not at x2)."""
    index = shelf / "library" / "index.yaml"
    index.write_text(index.read_text() + "  only: {sigma: 50}\n")
    monkeypatch.setattr(TASKS.get("denoise"), "fast_ticket", "tiny-ch")
    assert config.resolve("denoise", None, "fast", {"sigma": 50})["ticket"] == "tiny-ch"
    assert config.resolve("denoise", None, "fast", {"sigma": 15})["ticket"] is None
    assert config.resolve("denoise", None, "fast", {"sigma": 15, "ticket": "tiny-ch"})["ticket"] == "tiny-ch"
    assert api.restorer(device="cpu", sigma=15, simulate=True).prior.masks is None  # the dense net
    assert api.restorer(device="cpu", sigma=50, simulate=True).prior.masks is not None
    monkeypatch.chdir(shelf)
    (shelf / "tiny-ch").write_text("a user's file of that name")  # does not hide the preset's ticket
    assert config.resolve("denoise", None, "fast", {"sigma": 50})["ticket"] == "tiny-ch"


def test_a_library_entry_by_name_runs_to_its_own_cap(shelf, workdir):
    rep = json_report(lip("restore", "--simulate", workdir / "rgb.png", "--mask", "tiny-ch", "--round", "2",
                          "--no-early-stop", "--json", "-o", workdir / "a.png", *FAST))
    assert rep["iterations"] == 7


def test_masks_lists_the_library_and_unknown_names_say_what_exists(shelf, workdir):
    listed = lip("masks", "--json")
    assert listed.exit_code == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["tiny-ch"] and rows[0]["measured"] == {"psnr_gap_db": 0.0}
    assert rows[0]["fast"] == {"iters": 7, "es_patience": 40}
    shown = lip("masks")
    assert shown.exit_code == 0 and "tiny-ch (denoise)" in shown.output and "psnr_gap_db: 0.0" in shown.output
    assert "fitted with: iters 7, es_patience 40" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 100  # wrapped sentences, not a wide table
    bad = lip("restore", workdir / "rgb.png", "--mask", "no-such-mask", *FAST)
    assert bad.exit_code == 2 and "tiny-ch" in bad.output and "no such artifact" in bad.output


@pytest.mark.parametrize("entry", library.entries(), ids=lambda e: e.name)
def test_every_shipped_mask_is_small_and_loads_exactly(entry):
    assert entry.path.stat().st_size <= 2 * 2**20
    art = artifact.load(entry.name)  # regenerates theta0 and checks its hash: fails if torch drew otherwise
    assert art.theta0 and art.meta["format_version"] == artifact.SLIM_VERSION
    assert entry.task == art.meta["task"]
    assert set(entry.fast) | set(entry.only) <= config.known_keys()  # settings a config file could set


def test_every_preset_ticket_is_a_library_entry_for_its_task():
    """A preset's ticket missing from the index would quietly give way to the dense net (`default_for`)."""
    found = {e.name: e for e in library.entries()}
    tickets = {name: TASKS.get(name).fast_ticket for name in TASKS}
    assert all(t in found and found[t].task == task for task, t in tickets.items() if t is not None) and tickets["denoise"]


def test_the_default_ticket_runs_longer_where_the_noise_is_low(tmp_path, monkeypatch):
    """At sigma 10 the ticket still climbs at 3000 iterations: its entry's cap is 5000 where the blind estimate
    reads 12.5 or below and 3000 above (RESULTS-cap-low-noise.md); --iters still wins."""
    isolated_folder(tmp_path, monkeypatch)
    caps = library.fast_settings("dip-channel-house", "fast", "denoise", named=True)["iters"]
    assert [config.at_level("iters", caps, s) for s in (None, 10, 12.5, 15, 25)] == [5000, 5000, 5000, 3000, 3000]
    for sigma, cap in ((10, 5000), (25, 3000)):
        job = api.restorer(device="cpu", simulate=True, sigma=sigma)
        problem = job.problem("img.png")
        assert (problem.noise_sigma() <= 12.5) == (cap == 5000)
        assert job.config(problem).iters == cap
    flagged = api.restorer(device="cpu", simulate=True, sigma=10, iters=7)
    assert flagged.config(flagged.problem("img.png")).iters == 7
