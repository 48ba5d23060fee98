"""Files as users have them (a fresh-eyes pass over `lip restore`'s inputs and outputs, 2026-12-04): damaged
headers, TIFF variants (a page offset past the end, a (1, H, W) plane, signed 8-bit, 0 = white, LZW without
imagecodecs), values too large to scale, constant arrays, 0/1 and .npy inpainting masks, pipes as inputs or
configs, and outputs that are stdout under another name. Each either works or is one line and exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from lipcli import files
from lipcli.errors import LipError
from lipcli.images import Image, from_array, load_binary_mask, load_image, reference_units, save_image, to_array


def lip_cli(*args: str, cwd: Path, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    """The real `lip` process (stdout, pipes and file descriptors are what is tested)."""
    return subprocess.run([sys.executable, "-m", "lipcli", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
                          text=False, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    lines = [line for line in err.splitlines() if not line.startswith("lip: ") or "error" in line]
    assert result.returncode == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_damaged_npy_header_is_a_corrupt_file(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b'\x93NUMPY\x01\x00\x10\x00{"descr": garbage}\n')
    with pytest.raises(LipError, match="truncated or corrupt"):
        load_image(tmp_path / "bad.npy")


def test_a_tiff_whose_page_is_past_the_end_is_a_corrupt_file(tmp_path, capfd):
    tifffile.imwrite(tmp_path / "g.tif", np.zeros((8, 8), np.uint16))
    data = bytearray((tmp_path / "g.tif").read_bytes())
    data[4:8] = b"\xff\xff\xff\x7f"
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    with pytest.raises(LipError, match="truncated or corrupt"):
        load_image(tmp_path / "bad.tif")
    assert capfd.readouterr().err == ""  # tifffile's own complaint is not printed beside lip's line


def test_tiff_variants_read_as_they_look(tmp_path):
    plane = np.arange(8 * 6, dtype=np.uint16).reshape(1, 8, 6) * 1000
    tifffile.imwrite(tmp_path / "plane.tif", plane)
    assert load_image(tmp_path / "plane.tif").pixels.shape == (1, 8, 6)  # one plane, not a stack
    tifffile.imwrite(tmp_path / "row.tif", plane[0, :1])
    assert load_image(tmp_path / "row.tif").pixels.shape == (1, 1, 6)
    signed = np.arange(-24, 24, dtype=np.int8).reshape(6, 8)
    tifffile.imwrite(tmp_path / "i8.tif", signed)
    img = load_image(tmp_path / "i8.tif")
    assert img.stored.dtype == "int8" and np.array_equal(to_array(img), signed)  # not read as uint8
    white = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000
    tifffile.imwrite(tmp_path / "w.tif", white, photometric="miniswhite")
    img = load_image(tmp_path / "w.tif")
    assert img.pixels[0, 0, 0] == 1.0 and img.pixels[0, -1, -1] < img.pixels[0, 0, 0]  # 0 is white
    save_image(tmp_path / "out.tif", img.pixels, stored=img.stored)  # written 0 = black: looks the same
    back = tifffile.TiffFile(tmp_path / "out.tif")
    assert back.pages[0].photometric == 1  # MINISBLACK (tifffile 2022.5 names it only tifffile.TIFF.PHOTOMETRIC)
    assert np.array_equal(back.asarray(), 65535 - white)


def test_an_lzw_gray_tiff_reads_without_imagecodecs(tmp_path):
    gray = np.random.default_rng(0).integers(0, 65536, (9, 7), dtype=np.uint16)
    PILImage.fromarray(gray).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    img = load_image(tmp_path / "lzw.tif")
    assert img.stored.dtype == "uint16" and np.array_equal(to_array(img), gray)


def test_values_too_large_to_scale_are_refused_and_constants_come_back_as_themselves():
    with pytest.raises(LipError, match="more than lip can scale"):
        from_array(np.array([[1e308, -1e308], [0.0, 1.0]]))
    for value, dtype in ((5.0, np.float32), (1e38, np.float32), (1e300, np.float64), (-3, np.int64)):
        img = from_array(np.full((4, 4), value, dtype))
        assert np.isfinite(img.pixels).all()
        noisy = np.clip(img.pixels + np.random.default_rng(0).normal(0, 0.1, img.pixels.shape), 0, 1)
        back = to_array(Image(noisy.astype(np.float32), None, img.stored, "x"))
        assert np.all(back == np.asarray(value, dtype))  # inside the input's range: the constant itself


def test_a_constant_input_is_scored_as_the_constant_it_writes():
    """Its every output is written as that value, so against itself it scores as identical (PSNR 5.9 dB was
    reported for a file equal to its reference)."""
    img = from_array(np.full((4, 4), 1000, np.int32))
    ref, a, b = reference_units(img, img.stored)
    assert (a, b) == (0.0, 0.0) and np.all(ref == 0)


def test_inpainting_masks_of_zeros_and_ones(tmp_path):
    m = np.ones((6, 5), np.uint8)
    m[1:3] = 0
    PILImage.fromarray(m).save(tmp_path / "m01.png")
    np.save(tmp_path / "m.npy", m.astype(bool))
    np.save(tmp_path / "m1.npy", m[..., None].astype(np.float32))
    for name in ("m01.png", "m.npy", "m1.npy"):
        assert np.array_equal(load_binary_mask(tmp_path / name, 6, 5), m == 1), name
    np.save(tmp_path / "gray.npy", m * 0.5)
    with pytest.raises(LipError, match=r"values other than 0 and 1 \(0.5\)"):
        load_binary_mask(tmp_path / "gray.npy", 6, 5)


def test_pipes_and_stdin_are_refused_as_inputs_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for given, why in (("fifo", "pipe or device"), ("-", "does not read stdin"), ("/dev/null", "pipe or device")):
        line = one_line_error(lip_cli("restore", given, "--iters", "2", cwd=tmp_path))
        assert why in line, line


def test_a_config_from_a_pipe_is_read_once(tmp_path):
    save_image(tmp_path / "x.png", np.random.default_rng(0).random((3, 12, 12), dtype=np.float32))
    r, w = os.pipe()
    os.write(w, b"iters: 2\n")
    os.close(w)
    result = subprocess.run([sys.executable, "-m", "lipcli", "restore", "x.png", "--config", f"/dev/fd/{r}",
                             "-o", "/dev/null"], cwd=tmp_path, pass_fds=(r,), capture_output=True, timeout=120)
    os.close(r)
    assert result.returncode == 0, result.stderr.decode()
    assert b"2 iterations" in result.stderr


@pytest.mark.parametrize("extra", [["--json"], ["--log", "/dev/stdout", "-o", "-"]])
def test_stdout_under_another_name_is_still_stdout(tmp_path, extra):
    save_image(tmp_path / "x.png", np.random.default_rng(0).random((3, 12, 12), dtype=np.float32))
    args = ["restore", "x.png", "--iters", "2", *(["-o", "/dev/stdout"] if "-o" not in extra else []), *extra]
    line = one_line_error(lip_cli(*args, cwd=tmp_path))
    assert "stdout" in line
    assert not files.reaches_stdout(os.devnull)


def test_closed_stdout_and_empty_output_are_one_line(tmp_path):
    save_image(tmp_path / "x.png", np.random.default_rng(0).random((3, 12, 12), dtype=np.float32))
    closed = subprocess.run([sys.executable, "-m", "lipcli", "restore", "x.png", "--iters", "2", "-o", "-"],
                            cwd=tmp_path, stdout=None, stderr=subprocess.PIPE, timeout=120,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 2 and b"stdout is closed" in closed.stderr, closed.stderr
    assert "empty" in one_line_error(lip_cli("restore", "x.png", "--iters", "2", "-o", "", cwd=tmp_path))
    assert not (tmp_path / "x_restored.png").exists()
    (tmp_path / "f.png").write_bytes(b"")
    assert "is a file, not a folder" in one_line_error(lip_cli("restore", "x.png", "--iters", "2", "-o",
                                                               "f.png/y.png", cwd=tmp_path))
    assert "--seed" in one_line_error(lip_cli("restore", "x.png", "--seed", str(2**64), cwd=tmp_path))


def _restored_psnr(tmp_path: Path, noisy: str, clean: str, out: str) -> float:
    """`lip restore NOISY --clean CLEAN` (a narrow net, 10 iterations): its reported final PSNR."""
    import json

    from typer.testing import CliRunner

    from lipcli.cli import app
    from prune_helpers import NARROW_YAML

    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    result = CliRunner().invoke(app, ["restore", str(tmp_path / noisy), "--clean", str(tmp_path / clean), "--config",
                                      str(tmp_path / "narrow.yaml"), "--iters", "10", "--device", "cpu",
                                      "--threads", "1", "--json", "-o", str(tmp_path / out)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["psnr_final"]


def test_a_reference_is_compared_as_the_values_it_holds(tmp_path):
    """--clean was mapped to [0, 1] by its own type or min..max, apart from the input: a noisy float image spread
    past [0, 1] scored 7 dB off its written file, and one reference as a PNG and as a float 0..255 .npy gave
    two scores. Scores are now the written file's against the reference's values."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    clean = (0.5 + 0.4 * np.sin(xx / 5) * np.cos(yy / 7)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.15, clean.shape)).astype(np.float32)
    assert noisy.min() < 0 and noisy.max() > 1
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "clean.tif", clean)
    reported = _restored_psnr(tmp_path, "noisy.tif", "clean.tif", "out.tif")
    out = tifffile.imread(tmp_path / "out.tif").astype(np.float64)
    assert reported == pytest.approx(10 * np.log10(1 / np.mean((out.clip(0, 1) - clean) ** 2)), abs=0.01)
    PILImage.fromarray((noisy.clip(0, 1) * 255).round().astype(np.uint8)).save(tmp_path / "noisy8.png")
    PILImage.fromarray((clean * 255).round().astype(np.uint8)).save(tmp_path / "clean8.png")
    np.save(tmp_path / "clean255.npy", (clean * 255).round().astype(np.float64))
    assert _restored_psnr(tmp_path, "noisy8.png", "clean8.png", "a.png") == \
        pytest.approx(_restored_psnr(tmp_path, "noisy8.png", "clean255.npy", "b.png"), abs=1e-6)


def test_a_float_reference_of_its_own_range_sets_the_peak_not_the_noisy_input(tmp_path):
    """A noisy float 0..255 image against its float 0..255 reference was scored in the input's min..max: the peak
    was how far the noise reached (1.9 dB too high at sigma 25). It is the reference's span now."""
    rng = np.random.default_rng(0)
    clean = (rng.random((32, 32)) * 200 + 20).astype(np.float32)
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "noisy.npy", (clean + rng.normal(0, 25, clean.shape)).astype(np.float32))
    reported = _restored_psnr(tmp_path, "noisy.npy", "clean.npy", "out.npy")
    out = np.load(tmp_path / "out.npy").astype(np.float64)
    span = float(clean.max() - clean.min())
    assert reported == pytest.approx(10 * np.log10(span ** 2 / np.mean((out - clean) ** 2)), abs=0.01)


def test_a_float_image_of_tiny_values_is_warned_about(tmp_path):
    """Floats inside [0, 1] are read as they are: an image of values ~1e-6 was fitted as flat and came back as
    unrelated values ~1e4 larger, without a word."""
    np.save(tmp_path / "tiny.npy", (np.random.default_rng(0).random((24, 24)) * 1e-6).astype(np.float32))
    np.save(tmp_path / "fine.npy", np.random.default_rng(0).random((24, 24)).astype(np.float32))
    for name, warned in (("tiny.npy", True), ("fine.npy", False)):
        result = lip_cli("restore", name, "--iters", "2", "--threads", "1", "--net", "dip-w16", cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        assert ("less than 1/255 of the [0, 1]" in result.stderr.decode()) == warned
