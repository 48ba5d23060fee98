"""`lip spectra`: FFT magnitude maps and difference maps (LIP Figs. 18-19) on tiny images."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import spectra
from lipcli.cli import app
from conftest import RGB64

H, W = 32, 48  # rows, columns: not square, so rows and columns cannot be mixed up


def sinusoid(ky: int, kx: int) -> np.ndarray:
    """(1,H,W) gray: 0.5 + 0.4 cos(2 pi (ky y / H + kx x / W)), ky cycles down, kx across."""
    y, x = np.mgrid[0:H, 0:W]
    return (0.5 + 0.4 * np.cos(2 * np.pi * (ky * y / H + kx * x / W)))[None]


def save(path: Path, pixels: np.ndarray) -> Path:
    arr = np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    PILImage.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(path)
    return path


def read(path: Path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im)


def lip(*args):
    result = CliRunner().invoke(app, ["spectra", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def peaks(fft_map: np.ndarray, n: int = 2) -> set[tuple[int, int]]:
    """The n largest entries of a map, the zero frequency (at the centre) and its window leakage left out."""
    m = fft_map.astype(np.float64).copy()
    m[H // 2 - 1:H // 2 + 2, W // 2 - 1:W // 2 + 2] = -np.inf
    flat = np.argsort(m, axis=None)[::-1][:n]
    return {tuple(int(i) for i in np.unravel_index(f, m.shape)) for f in flat}


@pytest.mark.parametrize("ky, kx", [(3, 5), (0, 7), (4, 0)])
def test_a_sinusoid_peaks_at_its_frequency(ky, kx):
    m = spectra.log_magnitude(sinusoid(ky, kx))
    assert m.shape == (H, W)
    # DC at (H//2, W//2): the pair of peaks sits at +-(ky, kx) from it
    assert peaks(m) == {(H // 2 + ky, W // 2 + kx), (H // 2 - ky, W // 2 - kx)}
    assert np.argmax(m) == np.ravel_multi_index((H // 2, W // 2), m.shape)  # the mean, 0.5, is the largest term


def test_identical_images_have_zero_difference_maps(tmp_path):
    img = sinusoid(3, 5) * np.linspace(0.5, 1, W)  # colour-free but not trivial
    maps = spectra.compute(["a", "b"], [img, img.copy()])
    assert not maps.fftdiff[0].any() and not maps.diff[0].any()
    assert maps.scale("diff") == maps.scale("fftdiff") == 0.0
    spectra.write(maps, tmp_path)
    for kind in ("diff", "fftdiff"):
        assert not read(tmp_path / f"{kind}_b.png").any()  # all black, not a division by zero
    assert read(tmp_path / "fft_a.png").max() == 255


def test_difference_maps_measure_what_differs():
    clean, noisy = sinusoid(3, 5), sinusoid(3, 5)
    noisy[0, 10:12, 20:30] += 0.1  # a bar of error
    d = spectra.difference(noisy, clean)
    assert np.allclose(d[10:12, 20:30], 0.1) and d.sum() == pytest.approx(0.1 * 20)
    colour = np.repeat(clean, 3, axis=0)
    assert not spectra.difference(colour, clean).any()  # gray against the same in colour: no difference


def test_cli_writes_every_map_on_shared_scales(tmp_path):
    clean = save(tmp_path / "clean.png", sinusoid(3, 5))
    blurred = save(tmp_path / "smooth.png", sinusoid(3, 5) * 0.5 + 0.25)
    rgb = np.asarray(PILImage.open(RGB64))[:H, :W].transpose(2, 0, 1) / 255.0
    other = save(tmp_path / "photo.png", rgb)
    out = tmp_path / "maps"
    r = lip(clean, blurred, other, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    names = {p.name for p in out.iterdir()}
    assert names == {"fft_clean.png", "fft_smooth.png", "fft_photo.png", "fftdiff_smooth.png", "fftdiff_photo.png",
                     "diff_smooth.png", "diff_photo.png", "spectra.png"}  # and no temporary files
    assert report["reference"] == "clean" and report["composite"] == str(out / "spectra.png")
    # each written map is its kind's values on the kind's one grey scale
    s, b = read(clean) / 255.0, read(blurred) / 255.0
    fft = spectra.gray8(spectra.log_magnitude(s[None]), report["scales"]["fft"])
    assert np.abs(read(out / "fft_clean.png").astype(int) - fft).max() <= 1
    assert read(out / "fft_clean.png")[H // 2 + 3, W // 2 + 5] == 255  # the sinusoid's frequency: bright
    diff = spectra.gray8(np.abs(b - s), report["scales"]["diff"])
    assert np.abs(read(out / "diff_smooth.png").astype(int) - diff).max() <= 1
    assert report["mean_abs_diff"]["smooth"] == pytest.approx(np.abs(b - s).mean(), abs=1e-6)
    composite = read(out / "spectra.png")
    assert composite.shape[0] > 3 * 3 * H and composite.shape[1] > 3 * 3 * W  # 3x3 tiles, each enlarged 3x


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    clean = save(tmp_path / "clean.png", sinusoid(3, 5))
    small = save(tmp_path / "small.png", sinusoid(3, 5)[:, :16, :16])
    (tmp_path / "sub").mkdir()
    twin = save(tmp_path / "sub" / "clean.png", sinusoid(1, 1))
    taken = tmp_path / "taken"
    taken.write_text("")
    for args, needle in (([clean, small, "-o", tmp_path / "m"], "the maps compare images of one size"),
                         ([clean, twin, "-o", tmp_path / "m"], "two images are named 'clean'"),
                         ([clean, clean.with_name("none.png"), "-o", tmp_path / "m"], "no such file"),
                         ([clean, "-o", taken], "exists and is not a folder")):
        r = lip(*args)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lip: error: ") and needle in lines[0], r.stderr
    assert not (tmp_path / "m").exists()


def test_images_of_no_fixed_range_are_compared_in_their_own_values(tmp_path):
    """A noisy float image leaves [0, 1] where its clean reference does not: lip's reader maps each such
    array by its own min..max, which gave a wrong mean error (0 for int16 images 500 apart); such images are
    compared as the values they hold."""
    rng = np.random.default_rng(0)
    clean = rng.random((16, 16)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "noisy.npy", noisy)
    np.save(tmp_path / "ref.npy", clean * 1000 + 10)
    np.save(tmp_path / "half.npy", (clean * 1000 + 10) * 0.5)
    ints = (clean * 3000 - 1000).astype(np.int16)  # signed integers are mapped by their own min..max too
    np.save(tmp_path / "i16.npy", ints)
    np.save(tmp_path / "i16shift.npy", ints + 500)
    for ref, other, expected in [("clean", "noisy", np.abs(noisy - clean).mean()),
                                 ("ref", "half", np.abs((clean * 1000 + 10) * 0.5 - (clean * 1000 + 10)).mean()),
                                 ("i16", "i16shift", 500.0)]:
        r = CliRunner().invoke(app, ["spectra", str(tmp_path / f"{ref}.npy"), str(tmp_path / f"{other}.npy"), "-o",
                                     str(tmp_path / ref), "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["mean_abs_diff"][other] == pytest.approx(expected, rel=1e-5)


def test_images_of_mixed_types_are_compared_in_the_references_units(tmp_path):
    """An 8-bit image and its int16 copy (the same numbers) do not differ, whichever is the reference; before,
    one was in fractions of 255 and the other in its own values (a mean difference of 126.5)."""
    u8 = np.random.default_rng(0).integers(10, 200, (16, 16), dtype=np.uint8)  # not spanning 0..255: exactly 0 too
    PILImage.fromarray(u8).save(tmp_path / "u8.png")
    np.save(tmp_path / "i16.npy", u8.astype(np.int16))
    for ref, other in [("u8.png", "i16.npy"), ("i16.npy", "u8.png")]:
        r = CliRunner().invoke(app, ["spectra", str(tmp_path / ref), str(tmp_path / other), "-o",
                                     str(tmp_path / ref.replace(".", "_")), "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.stdout)
        assert report["mean_abs_diff"][Path(other).stem] == 0 and report["scales"]["diff"] == 0  # black maps


def test_values_too_large_for_float64_sums_are_refused_in_one_line(tmp_path):
    huge = np.random.default_rng(0).uniform(0, 1, (16, 16)) * 1e308  # a span the reader takes
    np.save(tmp_path / "huge.npy", huge)
    np.save(tmp_path / "half.npy", huge / 2)
    r = CliRunner().invoke(app, ["spectra", str(tmp_path / "huge.npy"), str(tmp_path / "half.npy"), "-o",
                                 str(tmp_path / "m")])
    assert r.exit_code == 2 and r.stderr.strip().startswith("lip: error: ") and "scale the array down" in r.stderr
    assert "Warning" not in r.stderr and not (tmp_path / "m").exists()
