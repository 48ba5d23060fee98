"""Scale-out (issue 15): `lip transfer --shard auto` inside a SLURM job array, and the cores a job takes.

SLURM is not needed: its array variables are set by hand, as docs/scale-out.md does to try the script.
Same tiny grid as test_transfer.py (13k-parameter hourglass, 64x64 image, 10 iterations).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lipcli import device
from lipcli.errors import LipError
from lipcli.config import slurm_shard
from lipcli.transfer.rows import read_rows
from prune_helpers import make_mask, write_picture
from test_transfer import RUN, grid_data, keys, lip, ok

ARRAY = {"SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_TASK_COUNT": "3",
         "SLURM_ARRAY_TASK_STEP": "1"}  # sbatch --array=1-3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return grid_data(tmp_path_factory.mktemp("scale-out"))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("LIP_DEVICE", "LIP_DEBUG", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("task, shard", [("1", (0, 3)), ("2", (1, 3)), ("3", (2, 3))])
def test_array_task_is_its_shard(task, shard):
    assert slurm_shard({**ARRAY, "SLURM_ARRAY_TASK_ID": task}) == shard
    assert slurm_shard({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0",
                        "SLURM_ARRAY_TASK_COUNT": "1"}) == (0, 1)  # older SLURM: no MAX or STEP


@pytest.mark.parametrize("env, fragment", [
    ({}, "SLURM_ARRAY_TASK_ID is not set"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": ""}, "SLURM_ARRAY_TASK_COUNT='' is not"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "x"}, "is not a whole number"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "4"}, "outside the array 1..3"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "0"}, "outside the array 1..3"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_MAX": "5"},
     "not consecutive"),
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MAX": "5"}, "use --array=1-3"),  # --array=1,3,5
    ({**ARRAY, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "0"}, "not consecutive"),
])
def test_missing_or_inconsistent_array_variables_are_refused(env, fragment):
    with pytest.raises(LipError, match="--shard auto") as info:
        slurm_shard(env)
    assert fragment in str(info.value)


def test_array_tasks_then_merge_cover_the_grid_once(data, tmp_path, monkeypatch):
    """Three array tasks (indices 1-3) write shards 0-2 of 3; --merge joins exactly the grid's cells,
    the same rows as `--shard i/3` written by hand."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1,3",
            "--baselines", "dense,random", *RUN]
    out = tmp_path / "array"
    for task in ("1", "2", "3"):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task)
        for var, value in ARRAY.items():
            monkeypatch.setenv(var, value)
        result = ok(lip(*grid, "--out", out, "--shard", "auto"))
        i = int(task) - 1
        assert f"(shard {i}/3)" in result.stderr and f"shard {i}/3 done" in result.stderr
    by_hand = tmp_path / "by-hand"
    ok(lip(*grid, "--out", by_hand, "--shard", "1/3"))
    name = "results.shard-1-of-3.jsonl"
    assert keys(read_rows(by_hand / name)) == keys(read_rows(out / name))
    merged = ok(lip("--merge", out, "--json"))
    rows = [json.loads(line) for line in merged.stdout.splitlines()]
    assert len(rows) == 5 and keys(rows) == keys(read_rows(out / "results.jsonl"))  # dense + 2 x (mask, random)


def test_shard_auto_outside_an_array_is_one_line_exit_2(data, tmp_path, monkeypatch):
    result = lip("--mask", data / "A.safetensors", data / "astro.png", "--out", tmp_path / "o", "--shard", "auto",
                 *RUN)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "lip: error: --shard auto: SLURM_ARRAY_TASK_ID is not set (run it as a SLURM job array, sbatch "
        "--array=0-N, or give --shard i/n)"]
    assert not (tmp_path / "o").exists()


def test_slurm_cpus_per_task_limits_the_threads(monkeypatch):
    """Array tasks on one node share it (jobs x threads = cores) even where SLURM sets no affinity."""
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(device, "_cgroup_quota", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert device.usable_cores() == 4
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "")  # set but empty: ignored
    assert device.usable_cores() == 16


def test_array_tasks_may_create_the_results_folder_at_once(tmp_path, monkeypatch):
    """Tasks starting together race to create --out: the loser finds the folder made and goes on."""
    from lipcli import files

    out = tmp_path / "res"
    real_mkdir = type(out).mkdir

    def raced(self, *args, **kwargs):
        real_mkdir(self)  # another task made it first
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(out), "mkdir", raced)
    files.make_folder(out, "--out")
    assert out.is_dir()


def test_the_results_folder_made_between_two_looks_is_used(tmp_path, monkeypatch):
    """The other window (CI saw it): absent at the first look, made by another task before the second."""
    from lipcli import files

    out = tmp_path / "res"
    real_is_dir = type(out).is_dir
    looks = []

    def first_look_misses(self):
        looks.append(self)
        if self == out and len(looks) == 1:
            out.mkdir()  # the other task wins here
            return False
        return real_is_dir(self)

    monkeypatch.setattr(type(out), "is_dir", first_look_misses)
    files.make_folder(out, "--out")
    assert real_is_dir(out)


# ---------------------------------------------------------------- the scripts of docs/scale-out.md, run by hand

DOCS = Path(__file__).parent.parent / "docs"
TINY = ["--tasks", "denoise", "--rounds", "1", "--seeds", "1", "--baselines", "dense", "--config", "fast",
        "--iters", "10", "--precision", "fp32", "--device", "cpu"]


def shell_folder(tmp_path: Path) -> dict[str, str]:
    """masks/ticket.safetensors (= m.safetensors), images/{a,b}.png and a `lip` on PATH that runs this tree."""
    (tmp_path / "masks").mkdir()
    make_mask(tmp_path / "masks" / "ticket.safetensors")
    shutil.copy(tmp_path / "masks" / "ticket.safetensors", tmp_path / "m.safetensors")
    (tmp_path / "images").mkdir()
    for name, seed in (("a.png", 1), ("b.png", 2)):
        write_picture(tmp_path / "images" / name, 64, 64, seed=seed)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lip").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lipcli "$@"\n')
    (bin_dir / "lip").chmod(0o755)
    root = str(Path(__file__).parent.parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def merged_keys(folder: Path) -> list[str]:
    rows = read_rows(folder / "results.jsonl")
    return keys(rows) if (folder / "summary.csv").is_file() else []


def test_the_doc_shows_the_sbatch_script():
    script = [line for line in (DOCS / "transfer-array.sbatch").read_text().splitlines() if not line.startswith("# ")]
    doc = (DOCS / "scale-out.md").read_text()
    assert "```bash\n" + "\n".join(script) + "\n```" in doc


def test_the_sbatch_script_runs_as_an_array_by_hand(tmp_path):
    """docs/transfer-array.sbatch under bash, as SLURM starts tasks 0 and 1 of --array=0-1 (at once), then --merge."""
    env = shell_folder(tmp_path)
    tasks = [subprocess.Popen(["bash", str(DOCS / "transfer-array.sbatch"), *TINY], cwd=tmp_path, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**env, "SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_MIN": "0",
                                   "SLURM_ARRAY_TASK_MAX": "1", "SLURM_ARRAY_TASK_COUNT": "2",
                                   "SLURM_CPUS_PER_TASK": "1"})
             for task in ("0", "1")]
    for task, proc in enumerate(tasks):
        stderr = proc.communicate(timeout=300)[1]
        assert proc.returncode == 0, stderr
        assert f"shard {task}/2 done" in stderr
    ok(lip("--merge", tmp_path / "results"))
    assert len(merged_keys(tmp_path / "results")) == 4  # 2 images x (dense, the mask's round 1)


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
def test_the_gnu_parallel_line_runs(tmp_path):
    """The doc's CPU one-liner, verbatim but for --iters 10 and the tiny grid's options."""
    doc = (DOCS / "scale-out.md").read_text()
    line = next(s for s in doc.splitlines() if s.startswith("parallel -j 2"))
    line = line.replace("--threads 1", "--threads 1 " + " ".join(TINY))
    done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=shell_folder(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(merged_keys(tmp_path / "results")) == 4
