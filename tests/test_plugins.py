"""One new file is enough (issue 11): a task (operator), a net family with its preset and a pruning score,
each registered inside this test and nowhere else, work through `lip restore`, `lip prune` and
`lip transfer`, and every command's `--help` lists them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from lipcli import artifact, nets
from lipcli.cli import app
from lipcli.physics import TASKS, Flag, LinearPhysics, Task, register_task
from lipcli.prune import scores
from conftest import RGB64

FAST = ["--iters", "3", "--threads", "1", "--device", "cpu", "--precision", "fp32", "--seed", "0"]


class Darken(LinearPhysics):
    """A(x) = gain * x: a toy degradation."""

    name = "darken"

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "gain": self.gain}


class DarkenTask(Task):
    name = "darken"
    options = {"gain": 0.5}
    flags = {"gain": Flag("Darkening factor [0.5]")}  # --gain on restore, prune and transfer

    def build(self, settings, height, width, gray, inpaint_mask, seed) -> Darken:
        return Darken(float(settings["gain"]))

    def degradation(self, settings, inpaint_mask) -> dict[str, Any]:
        return {"gain": float(settings["gain"])}


class Tiny(nets.Net):
    """Two 3x3 convs on a full-size code: a toy family."""

    def __init__(self, spec: dict) -> None:
        super().__init__(spec)
        self.conv1 = nn.Conv2d(spec["width"], spec["width"], 3, padding=1)
        self.conv2 = nn.Conv2d(spec["width"], 3, 3, padding=1)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.spec["width"], height, width

    def input_convs(self) -> list[str]:
        return ["conv1.weight"]

    @classmethod
    def activation_floats(cls, spec: dict, checkpoint: bool) -> float:
        return 2 * spec["width"] + 3

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv2(F.leaky_relu(self.conv1(z), 0.2)))


def last_first(net: nn.Module, names: list[str], ctx: scores.ScoreContext) -> dict[str, torch.Tensor]:
    """Keep the last entries of every tensor: a toy score."""
    named = dict(net.named_parameters())
    return {n: torch.arange(named[n].numel(), dtype=torch.float64).view(named[n].shape) for n in names}


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    register_task(DarkenTask())
    nets.FAMILIES.register("tiny")(Tiny)
    monkeypatch.setitem(nets.PRESETS, "tiny", {"kind": "tiny", "width": 8})
    scores.register("last-first")(last_first)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    TASKS.unregister("darken")
    nets.FAMILIES.unregister("tiny")
    scores.SCORES.unregister("last-first")


def lip(*args: Any) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_lists_what_was_registered(plugins):
    for command in ("restore", "prune"):
        text = lip(command, "--help")
        assert "darken" in text and "tiny" in text
    assert "last-first" in lip("prune", "--help")
    assert "darken" in lip("transfer", "--help")
    for command in ("restore", "prune", "transfer"):  # the task's own flag, registered after the CLI's import
        assert "--gain <float>" in lip(command, "--help") and "Darkening factor [0.5]" in lip(command, "--help")


def test_restore_prune_and_transfer_take_them(plugins: Path):
    row = json.loads(lip("restore", RGB64, "--simulate", "--task", "darken", "--net", "tiny", *FAST,
                         "-o", "out.png", "--json"))
    assert row["operator"] == {"name": "darken", "gain": 0.5} and row["params"] == 8 * 8 * 9 + 8 + 8 * 3 * 9 + 3
    row = json.loads(lip("restore", RGB64, "--simulate", "--task", "darken", "--gain", "0.25", "--net", "tiny",
                         *FAST, "-o", "out.png", "--json"))
    assert row["operator"] == {"name": "darken", "gain": 0.25}
    assert (plugins / "out.png").is_file()

    lip("prune", RGB64, "--simulate", "--task", "darken", "--net", "tiny", "--method", "last-first",
        "--rounds", "2", *FAST, "-o", "t.safetensors")
    art = artifact.load(plugins / "t.safetensors")
    assert art.meta["method"] == "last-first" and art.spec["kind"] == "tiny" and art.rounds == 2

    lip("transfer", RGB64, "--mask", "t.safetensors", "--tasks", "darken,denoise", "--rounds", "2",
        "--baselines", "dense,random", *FAST, "--out", "res")
    rows = [json.loads(line) for line in (plugins / "res" / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["method"]) for r in rows} == {(t, m) for t in ("darken", "denoise")
                                                        for m in ("dense", "mask", "random")}
    assert all(r["settings"]["degradation"] == {"gain": 0.5} for r in rows if r["task"] == "darken")
    result = CliRunner().invoke(app, ["restore", str(RGB64), "--simulate", "--gain", "0.25", *FAST])
    assert result.exit_code == 2 and "--gain applies to --task darken, not --task denoise" in result.stderr


def test_a_flag_for_a_setting_the_task_does_not_read_is_refused_at_registration():
    stray = type("Stray", (DarkenTask,), {"name": "stray", "flags": {"gian": Flag("typo of gain")}})()
    with pytest.raises(ValueError, match="task 'stray' declares flags for settings it does not read: gian"):
        register_task(stray)
    assert "stray" not in TASKS
