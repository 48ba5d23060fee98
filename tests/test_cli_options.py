"""The CLI's shared options: a registry-backed choice reads the registry when used, not at import.

(No `from __future__ import annotations`: the toy command's annotation refers to a local registry.)
"""

from typing import Annotated

import pytest
import torch
import typer
from typer.testing import CliRunner

from lipcli import config
from lipcli.cli.options import registry_option
from lipcli.errors import LipError
from lipcli.registry import Registry


def _toy_app(reg: Registry) -> typer.Typer:
    app = typer.Typer(add_completion=False, rich_markup_mode=None)

    @app.command()
    def run(kind: Annotated[str, registry_option(reg, help="Kind: {names}")] = "a") -> None:
        typer.echo(f"chose {kind}")

    return app


def test_an_entry_registered_after_the_app_is_listed_and_accepted():
    reg: Registry = Registry("toy")
    reg.register("a")(object())
    app = _toy_app(reg)
    reg.register("late")(object())  # e.g. a plug-in, or a test, after the CLI was imported
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "<a|late>" in help_text and "Kind: a | late" in help_text
    result = CliRunner().invoke(app, ["--kind", "late"])
    assert result.exit_code == 0 and "chose late" in result.output


def test_an_unknown_name_is_a_usage_error_listing_the_choices():
    reg: Registry = Registry("toy")
    reg.register("a")(object())
    result = CliRunner().invoke(_toy_app(reg), ["--kind", "zz"])
    assert result.exit_code == 2
    assert "unknown toy 'zz': use one of a" in result.output


def test_resolve_settings_checks_the_net_without_building_weights():
    settings = config.resolve_settings("denoise", "fast", torch.device("cpu"), {"net": "dip"})
    assert settings["net"] == "dip"
    with pytest.raises(LipError, match="invalid net 'resnet'"):
        config.resolve_settings("denoise", "fast", torch.device("cpu"), {"net": "resnet"})


def test_lr_must_be_positive_everywhere():
    for lr in (0.0, -1.0):
        with pytest.raises(LipError, match=f"--lr {lr} must be positive"):
            config.check_lr(lr)


def test_lip_task_choices_read_the_task_registry():
    from lipcli.cli import app
    from lipcli.physics import TASKS
    from lipcli.physics.denoise import DenoiseTask

    TASKS.register("toy-blur")(type("ToyBlur", (DenoiseTask,), {"name": "toy-blur"})())
    try:
        help_text = CliRunner().invoke(app, ["restore", "--help"]).output
        assert "<denoise|inpaint|mri|sr|cs|toy-blur>" in help_text
    finally:
        TASKS.unregister("toy-blur")
    result = CliRunner().invoke(app, ["restore", "x.png", "--task", "toy-blur"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["lip: error: Invalid value for '--task': unknown task 'toy-blur': use one "
                                          "of denoise, inpaint, mri, sr, cs (see lip restore --help)"]
