"""The `lip` command line: parse options, call the engine, render results. No algorithms here.

One module per command (`restore`, `prune` with `prune_gan`, `transfer`, `cs`, `gan` for train-generator,
`inspect`, `spectra`, `library` for `masks`, `interop` for import-mask and export-mask, `classify`); shared options in
`options.py`, everything the user sees in `render.py`. This file makes the app and mounts each command
explicitly, so no command module imports the app back.
"""
from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .. import VERSION_LINE
from . import classify, cs, gan, inspect, interop, library, prune, restore, spectra, transfer
from .options import KeepArgs

# Click's usage error as typer uses it (typer >= 0.28 vendors its own click, older ones import click).
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageError(_UsageError):  # type: ignore[misc, valid-type]
    """A usage error (bad option value, unknown option, missing argument) as one `lip: error:` line.

    Click prints the usage, a hint and the error on four lines; lip's errors are one line everywhere.
    """

    def show(self, file: Any = None) -> None:
        where = "lip"
        if self.ctx is not None:
            root = self.ctx.find_root().info_name or ""
            where += self.ctx.command_path[len(root):]
        typer.echo(f"lip: error: {self.format_message()} (see {where} --help)", file=file or sys.stderr)


def _one_line(exc: Any) -> Any:
    if isinstance(exc, _OneLineUsageError) or type(exc).__name__ == "NoArgsIsHelpError":
        return exc  # `lip` alone prints the help
    return _OneLineUsageError(exc.format_message(), exc.ctx)


class _Group(TyperGroup):
    """The root command: parsing errors of it and of every subcommand become one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            raise _one_line(exc) from None


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  rich_markup_mode=None,
                  help="Lottery image priors: restore images with (sparse) Deep Image Priors.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(VERSION_LINE)
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit",
                                       is_eager=True, callback=_print_version)) -> None:
    """Lottery image priors: find sparse Deep Image Prior subnetworks once, reuse them everywhere."""


app.command("restore", cls=KeepArgs)(restore.restore_cmd)
app.command("prune")(prune.prune_cmd)
app.command("inspect")(inspect.inspect_cmd)
app.command("spectra")(spectra.spectra_cmd)
app.command("masks")(library.masks_cmd)
app.command("transfer", cls=KeepArgs)(transfer.transfer_cmd)
app.command("cs")(cs.cs_cmd)
app.command("train-generator")(gan.train_generator_cmd)
app.command("import-mask")(interop.import_mask_cmd)
app.command("export-mask")(interop.export_mask_cmd)
app.command("classify")(classify.classify_cmd)


def main() -> None:
    app()
