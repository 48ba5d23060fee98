"""`lip restore --ensemble N` (lipcli/ensemble.py): N seeded restores, averaged, and what it reports; one
input's members fitted at once by worker processes (lipcli/jobs.py) give the same image as one after the other."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import tiny_spec
from lipcli import api, config, jobs
from lipcli.cli import app
from lipcli.ensemble import load_member, restore_ensemble, save_member
from lipcli.errors import LipError
from lipcli.fit import FitConfig, FitResult, TargetResult
from lipcli.problem import load_problem
from lipcli.restore import Prior, restore
from prune_helpers import NARROW_YAML
from test_interrupt import _interruptible, env as interrupt_env, finish, wait_for
from test_jobs import machine  # noqa: F401  (a 4-core CPU, quiet)
from test_transfer_workers import _processes_mentioning

DATA = Path(__file__).parent / "data"

CPU = torch.device("cpu")
CFG = FitConfig(iters=12, es_window=4, es_patience=3, precision="fp32", seed=5)


def _problem(path):
    settings = config.resolve("denoise", "fast", "fast", {"precision": "fp32"})
    return load_problem(path, "denoise", settings, simulate=True, seed=0)


def test_the_ensemble_is_the_mean_of_seeded_restores(rgb64_path):
    problem, prior = _problem(rgb64_path), Prior(spec=tiny_spec())
    merged, report = restore_ensemble(problem, prior, CFG, CPU, seed=5, n=3)
    singles = [restore(problem, prior, replace(CFG, seed=s), CPU, s)[0].targets[0] for s in (5, 6, 7)]
    assert torch.equal(merged.targets[0].stopped, torch.stack([t.stopped for t in singles]).mean(0))
    assert torch.equal(merged.targets[0].final, torch.stack([t.final for t in singles]).mean(0))
    assert not torch.equal(singles[0].stopped, singles[1].stopped)  # the seed moves init, code and jitter
    assert [m["seed"] for m in report["members"]] == [5, 6, 7] and report["ensemble"] == 3
    assert [m["stopped_at"] for m in report["members"]] == [t.stopped_at for t in singles]
    assert report["iterations"] == merged.iterations == sum(m["iterations"] for m in report["members"])
    assert report["psnr_stopped"] == problem.scores(merged.targets[0].stopped)["psnr"]
    # Averaging never raises the squared error above the members' mean (Jensen; outputs lie in [0, 1]).
    mse = [10 ** (-m["psnr_stopped"] / 10) for m in report["members"]]
    assert 10 ** (-report["psnr_stopped"] / 10) <= sum(mse) / len(mse)
    assert report["oracle_best_psnr"] is None  # the oracle is one run's best iterate: per member only


def test_cli_ensemble_report_and_noise_estimate(workdir):
    out = workdir / "ens.png"
    result = CliRunner().invoke(app, ["restore", str(workdir / "rgb.png"), "--simulate", "--sigma", "50", "--json",
                                      "--ensemble", "2", "--iters", "6", "--config", "fast", "--precision", "fp32",
                                      "--prior", "deep-decoder", "--dd-k", "16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ensemble"] == 2 and len(report["members"]) == 2 and report["iterations"] == 12
    assert 0.85 <= report["sigma_estimated"] / 50 <= 1.05  # tests/test_noise_estimate.py's tolerance
    assert "their average" in result.stderr and "noise sigma ~" in result.stderr and out.exists()
    no_stop = CliRunner().invoke(app, ["restore", str(workdir / "rgb.png"), "--simulate", "--sigma", "50",
                                       "--ensemble", "2", "--iters", "6", "--config", "fast", "--precision", "fp32",
                                       "--prior", "deep-decoder", "--dd-k", "16", "--no-early-stop", "-o", str(out)])
    assert no_stop.exit_code == 0, no_stop.output  # what was written (the final iterates) is named first
    assert "psnr final iterates averaged" in no_stop.stderr and "(the rule's picks: stopped members" in no_stop.stderr


def test_cli_single_restore_reports_ensemble_1_and_no_sigma_for_sr(workdir):
    result = CliRunner().invoke(app, ["restore", str(workdir / "rgb.png"), "--simulate", "--task", "sr", "--json",
                                      "--iters", "3", "--config", "fast", "--precision", "fp32",
                                      "--prior", "deep-decoder", "--dd-k", "16", "-o", str(workdir / "sr.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ensemble"] == 1 and "members" not in report and report["sigma_estimated"] is None



def test_api_ensemble(rgb64_path):
    """The Python API takes the same option; a bad count is a one-line LipError."""
    done = api.restore(rgb64_path, simulate=True, ensemble=2, iters=3, prior="deep-decoder", dd_k=16,
                       precision="fp32", config="fast", device="cpu")
    assert done.report["ensemble"] == 2 and [m["seed"] for m in done.report["members"]] == [0, 1]
    with pytest.raises(LipError, match="--ensemble 0"):
        api.restorer(ensemble=0)


# ------------------------------------------------------------------ members at once (lipcli/jobs.py)

RUN = ["--simulate", "--config", "narrow.yaml", "--device", "cpu", "--threads", "1", "--seed", "3",
       "--ensemble", "2"]


@pytest.fixture
def members_folder(tmp_path: Path) -> Path:
    shutil.copy(DATA / "astronaut_64.png", tmp_path / "astro.png")
    shutil.copy(DATA / "cameraman_53x37.png", tmp_path / "camera.png")  # gray, odd size: a cropped output
    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    return tmp_path


def test_members_at_once_write_what_the_sequential_ensemble_writes(members_folder, monkeypatch):
    """Two 1-thread workers give the image, JSON and log events of the sequential ensemble on one thread."""
    monkeypatch.chdir(members_folder)
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    runs = {}
    for n in ("1", "2"):
        result = CliRunner().invoke(app, ["restore", "camera.png", *RUN, "--iters", "20", "--jobs", n, "--json",
                                          "--precision", "bf16",  # the CPU default: channels-last outputs
                                          "-o", f"out{n}.png", "--log", f"run{n}.log"])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        log = [json.loads(line) for line in (members_folder / f"run{n}.log").read_text().splitlines()]
        runs[n] = json.loads(result.stdout), log, result.stderr
    (seq, seq_log, seq_err), (par, par_log, par_err) = runs["1"], runs["2"]
    assert "2 ensemble members, 2 at once (1 thread each" in par_err and "at once" not in seq_err
    assert (members_folder / "out1.png").read_bytes() == (members_folder / "out2.png").read_bytes()
    untimed = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "time", "output", "members")}  # noqa: E731
    assert untimed(par) == untimed(seq)  # the average's scores to the last bit, stops, counts, threads
    assert [untimed(m) for m in par["members"]] == [untimed(m) for m in seq["members"]]
    assert [m["seed"] for m in par["members"]] == [3, 4] and [m["threads"] for m in par["members"]] == [1, 1]
    key = lambda e: json.dumps(untimed(e), sort_keys=True)  # noqa: E731
    assert sorted(map(key, par_log)) == sorted(map(key, seq_log))  # every member's steps, then the result
    assert sum(e["event"] == "step" for e in par_log) == par["iterations"]
    assert {e["total"] for e in par_log if e["event"] == "step"} == {20}  # each member's cap, as its display shows
    for seed in (3, 4):  # interleaved, each member's steps are told apart by its seed
        mine = [e["iteration"] for e in par_log if e["event"] == "step" and e["member_seed"] == seed]
        assert mine == list(range(1, len(mine) + 1)) and mine


def test_a_member_file_gives_back_the_fit_bit_for_bit(tmp_path):
    out = torch.rand(1, 3, 9, 7).to(memory_format=torch.channels_last)  # as a bf16 fit returns it
    fit = FitResult([TargetResult(final=out, stopped=out, stopped_at=4)], iterations=6, losses=[0.1, 1 / 3],
                    recoveries=1, seconds=2.5)  # stopped is final: one tensor
    save_member(tmp_path / "m.safetensors", fit, {"seed": 3, "psnr_final": None})
    back, report = load_member(tmp_path / "m.safetensors")
    assert torch.equal(back.targets[0].final, out) and torch.equal(back.targets[0].stopped, out)
    assert (back.targets[0].stopped_at, back.iterations, back.losses, back.recoveries, back.seconds) == (
        4, 6, [0.1, 1 / 3], 1, 2.5)
    assert report == {"seed": 3, "psnr_final": None}


def _lip(folder: Path, *args: str, tmp: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lipcli", "restore", "astro.png", *RUN, *args], cwd=folder,
                            env={**interrupt_env(), **({"TMPDIR": str(tmp)} if tmp else {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_keeps_the_members_states_and_the_same_command_continues_them(members_folder):
    """Stopped midway, the members at once leave only their states (lipcli/resume.py); run again, they
    continue to the image an unstopped ensemble writes, and member 0 is also the single restore's fit."""
    scratch = members_folder / "tmp"
    scratch.mkdir()
    fit = ["--iters", "200", "--no-early-stop", "--jobs", "2", "--json"]
    full = _lip(members_folder, *fit, "-o", "full.png")  # runs meanwhile
    proc = _lip(members_folder, *fit, "-o", "out.png", "--log", "run.log", tmp=scratch)
    log = members_folder / "run.log"

    def fitting() -> bool:  # both members in their loops (each logs its own iteration 1): each has a state to keep
        text = log.read_text() if log.exists() else ""
        return text.count('"iteration": 1,') >= 2 and len(text.splitlines()) >= 40

    wait_for(proc, fitting, "both members were fitting")
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-3:] == [
        "lip: stopped the 2 ensemble jobs; nothing was written",
        "lip: stopped; the fit's state is kept in out.png.lip-resume/. Run the same command again to continue it",
        "lip: interrupted"], err
    assert _processes_mentioning("out.png.lip-resume", members_folder) == []  # the parent waited for its workers
    states = members_folder / "out.png.lip-resume"
    assert sorted(p.name for p in states.iterdir()) == ["fit-3.safetensors", "fit-4.safetensors"]
    assert not (members_folder / "out.png").exists()
    # The members' temporary folder is not used (torch's compiler cache makes a folder in TMPDIR unless an
    # earlier test's process has set its location for the processes it starts).
    assert [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")] == []

    code, out, err = finish(_lip(members_folder, *fit, "-o", "out.png"))
    assert code == 0, err
    assert "2 saved fits in out.png.lip-resume/: the members that are the same fit continue from them" in err, err
    assert not states.exists()
    code, ref, err = finish(full)
    assert code == 0, err
    assert (members_folder / "out.png").read_bytes() == (members_folder / "full.png").read_bytes()
    assert json.loads(out)["psnr_stopped"] == json.loads(ref)["psnr_stopped"]


@pytest.mark.parametrize("want, threads, inputs, members, dev, expected", [
    (None, None, 1, 2, CPU, (2, 2)),             # one input: its members at once, the cores shared
    (None, None, 1, 6, CPU, (4, 1)),             # at most a worker per core, each fitting every 4th member
    (None, "1", 1, 2, CPU, (2, 1)),              # --threads is each worker's
    (1, None, 1, 2, CPU, None),                  # --jobs 1: one after the other
    (None, None, 2, 2, CPU, None),               # several inputs: --jobs shares out the images instead
    (None, None, 1, 1, CPU, None),               # no ensemble
    (2, None, 1, 2, torch.device("cuda"), None),  # a GPU: the members take turns on it
])
def test_plan_members(machine, want, threads, inputs, members, dev, expected):
    assert jobs.plan_members(want, threads, inputs, members, dev, lambda: 2**28, print) == expected


def test_a_bad_members_share_is_one_line(members_folder, monkeypatch):
    monkeypatch.chdir(members_folder)
    result = CliRunner().invoke(app, ["restore", "astro.png", *RUN, "--members", "2/2", str(members_folder)])
    assert result.exit_code == 2 and "--members '2/2': give i/n" in result.stderr, result.output
