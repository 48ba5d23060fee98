"""Figures for papers (issue 15): the charts of `lip inspect --plot` and `lip transfer` as PDF or SVG through
matplotlib (the optional `plot` extra), with axis labels and legends; PNG stays the Pillow default.

Tests that draw PDF/SVG skip when matplotlib is not installed; the refusal without it is tested always
(matplotlib made invisible).
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipcli import plot, plot_vector
from lipcli.cli import app
from lipcli.errors import LipError
from test_transfer import RUN, grid_data

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib (the plot extra) is not installed")
SERIES = {"dense (reference)": [(0.0, 28.1), (90.0, 28.1)], "IMP A": [(20.0, 28.3), (50.0, float("nan")),
                                                                   (80.0, 27.9)]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return grid_data(tmp_path_factory.mktemp("figures"))


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib as if it were not installed: not found, and not importable."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def svg_texts(path: Path) -> list[str]:
    """The text of an SVG's <text> elements (svg.fonttype none keeps text as text)."""
    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())


def lip(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@needs_mpl
@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_line_and_bar_charts_as_vector_files(tmp_path, fmt):
    line = plot.line_chart(SERIES, tmp_path / f"line.{fmt}", "PSNR vs sparsity", "sparsity (%)", "PSNR (dB)")
    bars = plot.bar_chart(["0", "1", "2"], {"round 1": [0.2, 0.3, 0.4], "round 2": [0.5, 0.6, 0.7]},
                          tmp_path / f"bars.{fmt}", "Layer-wise sparsity", "layer index", "sparsity", ylim=(0, 1))
    for path in (line, bars):
        data = path.read_bytes()
        assert data.startswith(b"%PDF-" if fmt == "pdf" else b"<?xml")
        if fmt == "pdf":
            assert b"/FontFile2" in data  # TrueType embedded (Type 42), not Type 3 glyph procedures
    if fmt == "svg":
        assert {"PSNR vs sparsity", "sparsity (%)", "PSNR (dB)", "dense (reference)", "IMP A"} <= set(svg_texts(line))
        assert {"Layer-wise sparsity", "layer index", "sparsity", "round 1", "round 2"} <= set(svg_texts(bars))


@needs_mpl
@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_vector_files_are_byte_reproducible(tmp_path, fmt):
    a = plot.line_chart(SERIES, tmp_path / f"a.{fmt}", "t", "x", "y").read_bytes()
    b = plot.line_chart(SERIES, tmp_path / f"b.{fmt}", "t", "x", "y").read_bytes()
    assert a == b


@needs_mpl
def test_inspect_plot_svg_names_layers_rounds_and_axes(data, tmp_path):
    dest = tmp_path / "layers.svg"
    result = lip("inspect", data / "A.safetensors", "--plot", dest, "--plot-rounds", "1,2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plot"] == str(dest)
    texts = svg_texts(dest)
    assert "layer index (forward order)" in texts and "sparsity" in texts
    assert any(t.startswith("round 1: ") for t in texts) and any(t.startswith("round 2: ") for t in texts)


@needs_mpl
def test_transfer_writes_every_plot_in_each_format(data, tmp_path):
    out = tmp_path / "res"
    result = lip("transfer", "--mask", data / "A.safetensors", data / "astro.png", "--rounds", "1",
                 "--baselines", "dense", "--out", out, "--curves", "--plot-format", "png,svg", *RUN)
    assert result.exit_code == 0, result.output
    stems = ["psnr_vs_sparsity_denoise", "curves_psnr_denoise", "curves_loss_denoise"]
    for stem in stems:
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.svg").is_file()
    assert "sparsity (%)" in svg_texts(out / "psnr_vs_sparsity_denoise.svg")
    assert "iteration" in svg_texts(out / "curves_loss_denoise.svg")
    merged = lip("transfer", "--merge", out, "--plot-format", "pdf")  # the merge chooses its formats too
    assert merged.exit_code == 0, merged.output
    assert (out / "psnr_vs_sparsity_denoise.pdf").read_bytes().startswith(b"%PDF-")


def test_pdf_without_matplotlib_is_refused_before_any_work(data, tmp_path, no_matplotlib):
    with pytest.raises(LipError, match=r"need matplotlib: pip install 'matplotlib>=3.7'"):
        plot.check_format(tmp_path / "x.pdf")
    plot.check_format(tmp_path / "x.png")  # the default needs nothing
    with pytest.raises(LipError, match="need matplotlib"):  # a direct call fails as clearly
        plot.line_chart(SERIES, tmp_path / "x.svg", "t", "x", "y")
    result = lip("transfer", "--mask", data / "A.safetensors", data / "astro.png", "--out", tmp_path / "res",
                 "--plot-format", "pdf", *RUN)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"lip: error: --plot-format pdf: {plot_vector.NO_MATPLOTLIB}"]
    assert not (tmp_path / "res").exists()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text, fragment", [("jpg", "use png, pdf or svg"), ("", "use png, pdf or svg"),
                                            ("png,eps", "use png, pdf or svg")])
def test_unknown_plot_format_is_refused(text, fragment):
    with pytest.raises(LipError, match=fragment):
        plot.parse_formats(text)


def test_plot_formats_are_parsed_once_each():
    assert plot.parse_formats("png") == ["png"]
    if HAVE_MPL:
        assert plot.parse_formats(" PNG, .pdf,png ") == ["png", "pdf"]
