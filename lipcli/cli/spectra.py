"""`lip spectra`: FFT magnitude maps of images and their difference maps against a reference (LIP Figs. 18-19).

A command of its own rather than a `restore` option: the figures compare several restores (the paper's
LIP, SNIP and random subnetworks; or the observation and one restore) with the clean image, and those come
from separate runs. Working on image files, it draws them for any restores, by lip or not, without refitting.
"""
from __future__ import annotations

from pathlib import Path

import typer

from .. import files, images as images_io, spectra
from ..errors import LipError
from .options import json_flag
from .render import emit_json, err, guarded

ReportJson = json_flag("Print what was written, the grey scales and the mean pixel errors as one JSON object on "
                       "stdout", panel=None)


@guarded
def spectra_cmd(
    images: list[Path] = typer.Argument(..., help="The reference (the clean image) first, then images of the same "
                                        "size to compare with it: the noisy observation, restores by different "
                                        "priors, ...", show_default=False),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the maps (created): fft_NAME.png for every "
                             "image, fftdiff_NAME.png and diff_NAME.png for every image after the reference",
                             show_default=False),
    composite: bool = typer.Option(True, "--composite/--no-composite", help="Also write spectra.png: every map "
                                   "in one figure, a row per kind, a column per image"),
    json_: ReportJson = False,
) -> None:
    """Draw FFT magnitude maps of images and difference maps against the first (LIP Figs. 18-19).

    Each image's log-magnitude FFT map; against the first, the FFT difference and pixel error maps (one
    grey scale per kind; DC at the centre, high frequencies at the borders)."""
    if out == "":  # a Path would read it as "."
        raise LipError("-o is empty (an unset shell variable?): give a folder")
    folder = Path(out)
    images_io.check_readable(images)
    names, pixels = spectra.load(images)
    spectra.check_outputs(names, folder, composite)
    files.make_folder(folder, "output folder")
    report = spectra.write(spectra.compute(names, pixels), folder, composite)
    if json_:
        emit_json(report)
        return
    count = sum(len(kinds) for kinds in report["maps"].values())
    err.print(f"wrote {count} maps to {folder}" + (f", and all of them in {report['composite']}" if composite else ""),
              markup=False, soft_wrap=True)
    scales = ", ".join(f"{kind} {value:.3g}" for kind, value in report["scales"].items())
    err.print(f"grey scales (the value shown white): {scales}", markup=False, soft_wrap=True)
    for name, error in report["mean_abs_diff"].items():
        err.print(f"{name}: mean |image - {report['reference']}| = {error:.4f}", markup=False, soft_wrap=True)
