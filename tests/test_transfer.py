"""`lip transfer`: the grid, its JSONL rows (resume, shards, merge), summary, plots and experiments.

Tiny throughout: masks are made here for an 8-channel, 5-level hourglass (13k parameters) with
random scores on the ladder (kept halves each round), images are the 64x64 astronaut crop, and every
run fits 10 iterations in fp32 on the CPU.
"""
from __future__ import annotations

import csv
import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import api, artifact, nets
from lipcli import restore as restore_mod
from lipcli.cli import app
from lipcli.errors import LipError, LipRuntimeError
from lipcli.transfer import rows as rows_mod, run as transfer_run
from lipcli.transfer.experiments import IMPEDANCE_TARGETS, RADIAL_BINS, spectrum
from lipcli.config import shard_of
from lipcli.transfer.grid import Cell, Grid, MaskSource
from lipcli.transfer.report import OUTPUT_NAME
from lipcli.transfer.rows import append_row, exclusive, joined, missing_shards, read_rows, row_key
from conftest import RGB64
from prune_helpers import make_mask

SPEC = nets.preset("dip", down=[8] * 5, up=[8] * 5, skip=[4] * 5)
RUN = ["--iters", "10", "--precision", "fp32", "--device", "cpu", "--config", "fast"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    monkeypatch.delenv("LIP_DEBUG", raising=False)


def grid_data(folder: Path) -> Path:
    """The tiny grid's inputs: mask artifact A and a 64x64 RGB image."""
    make_mask(folder / "A.safetensors")
    shutil.copy(RGB64, folder / "astro.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return grid_data(tmp_path_factory.mktemp("transfer"))


def lip(*args):
    result = CliRunner().invoke(app, ["transfer", *[str(a) for a in args]])
    assert "Traceback" not in result.output
    return result


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def keys(rows):
    return sorted(map(json.dumps, map(row_key, rows)))


def check_png(path: Path) -> None:
    with PILImage.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.size > 0 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # axes, text and lines: not one colour


class FitCounter:
    """Wraps restore's `fit` to count calls."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


# ---------------------------------------------------------------- the grid and its outputs

def test_grid_rows_summary_plots_and_json(data, tmp_path):
    out = tmp_path / "res"
    result = ok(lip("--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise,sr4",
                    "--rounds", "1,2", "--baselines", "dense,random,deep-decoder", "--out", out, "--json",
                    "--curves", "--experiment", "spectrum", *RUN))
    rows = read_rows(out / "results.jsonl")
    # 2 tasks x (dense + 2 rounds x (mask, random, deep decoder)) x 1 image x 1 seed
    assert len(rows) == 14 and len(set(keys(rows))) == 14
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert keys(printed) == keys(rows)
    for r in rows:
        assert r["iterations"] == 10 and r["image"] == "astro.png" and r["seed"] == 0
        assert isinstance(r["psnr_stopped"], float) and isinstance(r["oracle_best_psnr"], float)
        assert r["oracle_best_psnr"] >= r["psnr_final"] - 1e-9
        assert len(r["curve_loss"]) == 10 and r["spectrum"]["low_energy_ratio"] > 0
        # SSIM beside PSNR at the same iterations, ending at the final iterate's SSIM
        assert [it for it, _ in r["curve_ssim"]] == [it for it, _ in r["curve_psnr"]] == list(range(1, 11))
        assert r["curve_ssim"][-1][1] == pytest.approx(r["ssim_final"], abs=1e-6)
    by = {(r["method"], r["round"], r["task"]): r for r in rows}
    art = artifact.load(data / "A.safetensors")
    for k in (1, 2):
        mask_row = by["mask", k, "denoise"]
        assert mask_row["sparsity"] == pytest.approx(art.sparsity(k))
        assert by["random", k, "denoise"]["kept"] == mask_row["kept"] == art.counts(k)[0]
        dd = by["deep-decoder", k, "denoise"]
        assert dd["dd_k"] == nets.decoder_k_for_params(mask_row["nonzero_params"])
        assert dd["params"] == nets.count_params(nets.build(nets.preset("deep-decoder", k=dd["dd_k"])))
        # fitted as Heckel & Hand fit it (DIP's input jitter cost it ~0.8 dB), the masks as DIP
        assert (dd["settings"]["fit"]["reg_noise"], dd["settings"]["fit"]["ema"]) == (0.0, 0.0)
        assert mask_row["settings"]["fit"]["reg_noise"] > 0
    assert by["dense", 0, "sr4"]["metric"] == "psnr_y" and by["dense", 0, "sr4"]["sparsity"] == 0

    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 14
    assert {"psnr_stopped_mean", "psnr_stopped_std", "oracle_best_psnr_mean", "ssim_final_mean"} <= summary[0].keys()
    assert {s["label"] for s in summary} == {"A (imp)", "dense", "random mask", "deep decoder"}
    with open(out / "spectrum.csv") as f:
        assert len(list(csv.DictReader(f))) == 14
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{kind}_{t}.png" for t in ("denoise", "sr4") for kind in
                          ("psnr_vs_sparsity", "curves_psnr", "curves_ssim", "curves_loss", "spectrum"))
    for name in pngs:
        check_png(out / name)
    # every file written is one `check_outputs` guards before the fits (its name list is kept by hand)
    assert all(OUTPUT_NAME.fullmatch(p.name) for p in out.iterdir()), sorted(p.name for p in out.iterdir())
    assert "Transfer summary" in result.stderr and "wrote" in result.stderr


def test_rows_of_another_picture_of_the_same_name_are_never_taken(data, tmp_path):
    """Rows are keyed by file name; each records its image's pixels, so another x.png is refused, not reused."""
    for side in ("one", "two"):
        (tmp_path / side).mkdir()
    shutil.copy(data / "astro.png", tmp_path / "one" / "x.png")
    PILImage.open(data / "astro.png").transpose(PILImage.Transpose.FLIP_TOP_BOTTOM).save(tmp_path / "two" / "x.png")
    grid = ["--mask", data / "A.safetensors", "--rounds", "1", "--baselines", "none", "--out", tmp_path / "res", *RUN]
    ok(lip(tmp_path / "one" / "x.png", *grid))
    refused = lip(tmp_path / "two" / "x.png", *grid)
    assert refused.exit_code == 2 and "holds runs on another picture named x.png" in refused.stderr
    assert "1 already in" in ok(lip(tmp_path / "one" / "x.png", *grid)).stderr


def test_a_grid_stopped_before_its_first_row_leaves_no_out_folder(data, tmp_path, monkeypatch):
    """The rows file's lock was let go after the command's clean-up, so the new --out kept its empty rows file."""
    def stop(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(transfer_run, "append_row", stop)
    for extra in ([], ["--shard", "0/2"]):
        stopped = lip("--mask", data / "A.safetensors", data / "astro.png", "--rounds", "1", "--baselines", "none",
                      *RUN, "--iters", "3", "--out", tmp_path / "res", *extra)
        assert stopped.exit_code == 130 and not (tmp_path / "res").exists(), stopped.output


def test_a_shard_with_no_run_leaves_an_empty_file_so_the_merge_is_complete(data, tmp_path):
    """More shards than runs (a SLURM array larger than the grid): the shard without a run wrote nothing, and every
    merge then said its file was missing."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--rounds", "1", "--baselines", "none", *RUN,
            "--iters", "3", "--out", tmp_path]
    for i in (0, 1):
        ok(lip(*grid, "--shard", f"{i}/2"))
    assert (tmp_path / "results.shard-1-of-2.jsonl").read_bytes() == b""
    merged = ok(lip("--merge", tmp_path))
    assert "no file for shard" not in merged.stderr and len(read_rows(tmp_path / "results.jsonl")) == 1


def test_kill_after_first_row_then_resume_skips_it(data, tmp_path, monkeypatch):
    out = tmp_path / "res"
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise,inpaint", "--rounds", "1,2",
            "--baselines", "none", "--out", out, "--precision", "fp32", "--device", "cpu", "--config", "fast"]
    real_append = append_row

    def append_then_die(path, row):
        real_append(path, row)
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(transfer_run, "append_row", append_then_die)
        killed = lip(*grid, "--iters", "10")
    assert killed.exit_code == 130
    first = read_rows(out / "results.jsonl")
    assert len(first) == 1
    with open(out / "results.jsonl", "a") as f:  # a line cut short by a kill mid-write
        f.write('{"method": "mask", "mask": "A", "rou')

    counter = FitCounter(restore_mod.fit)
    monkeypatch.setattr(restore_mod, "fit", counter)
    ok(lip(*grid, "--iters", "10"))
    rows = read_rows(out / "results.jsonl")
    assert counter.calls == 3 and len(rows) == 4 and len(set(keys(rows))) == 4
    assert rows[0] == first[0]
    again = ok(lip(*grid, "--iters", "10", "--json"))
    assert counter.calls == 3 and "4 already in" in again.stderr  # nothing left to run
    assert keys(json.loads(line) for line in again.stdout.splitlines()) == keys(rows)  # --json: the whole grid

    changed = lip(*grid, "--iters", "11")  # not the same runs: refuse to mix them
    assert changed.exit_code == 2 and "fit.iters 10 -> 11" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1


def test_shards_then_merge_equal_the_unsharded_grid(data, tmp_path):
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1,3",
            "--baselines", "dense,random", *RUN]
    ok(lip(*grid, "--out", tmp_path / "whole"))
    shards = tmp_path / "shards"
    for i in (0, 1):
        result = ok(lip(*grid, "--out", shards, "--shard", f"{i}/2"))
        assert "--merge" in result.stderr
    assert not (shards / "summary.csv").exists()
    parts = [read_rows(shards / f"results.shard-{i}-of-2.jsonl") for i in (0, 1)]
    assert len(parts[0]) == 3 and len(parts[1]) == 2  # cells 0,2,4 and 1,3
    merged = ok(lip("--merge", shards, "--json"))
    whole = read_rows(tmp_path / "whole" / "results.jsonl")
    assert keys(read_rows(shards / "results.jsonl")) == keys(whole)
    assert keys(json.loads(line) for line in merged.stdout.splitlines()) == keys(whole)
    assert (shards / "summary.csv").is_file()
    check_png(shards / "psnr_vs_sparsity_denoise.png")
    again = ok(lip("--merge", shards))  # merging again changes nothing
    assert keys(read_rows(shards / "results.jsonl")) == keys(whole) and "note" not in again.stderr
    (shards / "results.shard-1-of-2.jsonl").unlink()  # a shard not copied back: said, not silent
    assert "no file for shard 1/2" in ok(lip("--merge", shards)).stderr


def test_a_merge_refuses_shards_made_with_other_settings(data, tmp_path):
    """docs/scale-out.md: shards run with other flags (or under a GPU node's default preset) would fill one table
    with runs that do not compare; the merge says which setting differs."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1",
            "--baselines", "dense", *RUN[2:], "--out", tmp_path]
    ok(lip(*grid, "--iters", "10", "--shard", "0/2"))
    ok(lip(*grid, "--iters", "5", "--shard", "1/2"))
    merged = lip("--merge", tmp_path)
    assert merged.exit_code == 2
    assert "hold denoise runs made with different settings (fit.iters 10 -> 5)" in merged.stderr
    assert not (tmp_path / "summary.csv").exists()


def test_a_grid_refuses_rows_of_an_inpainting_mask_whose_pixels_changed(data, tmp_path):
    """A mask file of the same name, other holes: its rows were fitted on another observation, so they are
    not this grid's (they were reused, and the summary reported them)."""
    holes = np.zeros((64, 64), np.uint8)
    holes[:, ::2] = 255
    PILImage.fromarray(holes).save(tmp_path / "h.png")
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "inpaint", "--inpaint-mask",
            tmp_path / "h.png", "--rounds", "1", "--baselines", "dense", *RUN, "--out", tmp_path / "out"]
    ok(lip(*grid))
    assert len(read_rows(tmp_path / "out" / "results.jsonl")[0]["settings"]["degradation"]["mask_file_sha256"]) == 64
    (tmp_path / "elsewhere").mkdir()  # the same file under another path (a shard's machine): its rows are reused
    (tmp_path / "elsewhere" / "h.png").write_bytes((tmp_path / "h.png").read_bytes())
    moved = [tmp_path / "elsewhere" / "h.png" if a == tmp_path / "h.png" else a for a in grid]
    assert "0 to run" in ok(lip(*moved)).stderr
    PILImage.fromarray(np.roll(holes, 1, axis=1)).save(tmp_path / "h.png")
    again = lip(*grid)
    assert again.exit_code == 2 and "different settings (degradation.mask_file_sha256)" in again.stderr


def test_missing_shards_are_named_per_count(tmp_path):
    for name in ("results.shard-0-of-3.jsonl", "results.shard-2-of-3.jsonl", "results.shard-1-of-2.jsonl",
                 "impedance.shard-0-of-2.jsonl", "results.shard-x-of-2.jsonl"):
        (tmp_path / name).touch()
    assert missing_shards(tmp_path, "results") == ["0/2", "1/3"]
    assert missing_shards(tmp_path, "impedance") == ["1/2"]


def test_impedance_experiment(data, tmp_path):
    out = tmp_path / "imp"
    ok(lip("--mask", data / "A.safetensors", data / "astro.png", "--experiment", "impedance", "--rounds", "2",
           "--out", out, *RUN))
    rows = read_rows(out / "impedance.jsonl")
    assert sorted((r["method"], r["task"]) for r in rows) == sorted(
        (m, t) for m in ("dense", "mask") for t in IMPEDANCE_TARGETS)
    for r in rows:
        assert r["operator"] == {"name": "identity"} and len(r["curve_loss"]) == 10
    assert not (out / "results.jsonl").exists()
    pngs = sorted(out.glob("impedance_*.png"))
    assert [p.name for p in pngs] == ["impedance_A-imp_r2_astro.png", "impedance_dense_r0_astro.png"]
    for p in pngs:
        check_png(p)


# ---------------------------------------------------------------- pure parts

def test_append_ends_an_unterminated_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    row = {"method": "dense", "mask": "A", "round": 0, "image": "x.png", "task": "denoise", "seed": 0}
    path.write_text(json.dumps(row))  # whole, but its newline never written: kept
    append_row(path, {**row, "seed": 1})
    assert [r["seed"] for r in read_rows(path)] == [0, 1]
    with open(path, "a") as f:
        f.write('{"method": "mask", "ma')  # cut short: ignored, then dropped
    assert [r["seed"] for r in read_rows(path)] == [0, 1]
    append_row(path, {**row, "seed": 2})
    assert [r["seed"] for r in read_rows(path)] == [0, 1, 2]
    path.write_text("not json\n" + json.dumps(row) + "\n")
    with pytest.raises(LipError, match="line 1 is not a transfer row"):
        read_rows(path)


def test_a_row_that_cannot_be_written_is_taken_back_and_said_in_one_line(tmp_path, monkeypatch):
    """A full disk while appending a row was an internal error that left a cut line in the file."""
    path = tmp_path / "rows.jsonl"
    row = {"method": "dense", "mask": "A", "round": 0, "image": "x.png", "task": "denoise", "seed": 0}
    append_row(path, row)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(rows_mod.os, "fsync", full)  # the line was written, then the disk said it was full
    with pytest.raises(LipRuntimeError, match=r"cannot write .*rows.jsonl: the disk is full"):
        append_row(path, {**row, "seed": 1})
    assert path.read_bytes() == before


@pytest.mark.parametrize("target", [50, 1_000, 13_071, 100_224, 2_217_831])
def test_deep_decoder_k_is_the_closest_size(target):
    def size(k):
        return nets.count_params(nets.build(nets.preset("deep-decoder", k=k)))

    k = nets.decoder_k_for_params(target)
    best = min(range(1, 700), key=lambda c: abs(6 * (c * c + 2 * c) + 3 * c - target))
    assert abs(size(k) - target) == abs(size(best) - target)


def test_deep_decoder_baseline_matches_the_masks_nonzero_count(data):
    m = MaskSource.load(data / "A.safetensors")
    kept, masked = m.art.counts(2)
    assert m.nonzero(2) == kept + nets.count_params(nets.build(SPEC)) - masked
    grid = Grid([m], {"A": [2]}, [data / "astro.png"], ["denoise"], [0], ["deep-decoder"], "artifact",
                         {}, {})
    prior, info = transfer_run.cell_prior(grid, Cell("deep-decoder", "A", 2, data / "astro.png", "denoise", 0))
    assert prior.spec["k"] == info["dd_k"] == nets.decoder_k_for_params(m.nonzero(2))
    assert info["matched_params"] == m.nonzero(2)


def test_random_baseline_keeps_the_same_count_and_is_seeded(data):
    m = MaskSource.load(data / "A.safetensors")
    kept = m.art.counts(2)[0]
    a, b, c = (transfer_run.random_masks(m, kept, s) for s in (0, 0, 1))
    assert sum(int(x.sum()) for x in a.values()) == kept
    assert all(torch.equal(a[n], b[n]) for n in a) and not all(torch.equal(a[n], c[n]) for n in a)


def test_cells_are_ordered_and_sharded_deterministically(data):
    m = MaskSource.load(data / "A.safetensors")
    grid = Grid([m], {"A": [1, 2]}, [data / "astro.png"], ["denoise", "sr4"], [0, 1], ["dense"],
                         "fresh", {}, {})
    cells = grid.cells()
    assert len(cells) == 2 * 2 * 3 and cells == grid.cells()
    shards = [shard_of(cells, (i, 3)) for i in range(3)]
    assert sorted(c.key for s in shards for c in s) == sorted(c.key for c in cells)


def test_spectrum_of_a_perfect_and_a_blurred_restore(rgb64):
    same = spectrum(rgb64, rgb64)
    assert same["low_energy_ratio"] == pytest.approx(1) and same["high_energy_ratio"] == pytest.approx(1)
    assert same["high_magnitude_error"] == pytest.approx(0, abs=1e-9)
    blurred = torch.nn.functional.avg_pool2d(rgb64, 3, stride=1, padding=1, count_include_pad=False)
    s = spectrum(blurred, rgb64)
    assert s["high_energy_ratio"] < 0.7 and s["low_energy_ratio"] > 0.99
    assert max(s["radial_energy_ratio"][-6:]) < 0.1 < s["radial_energy_ratio"][0]  # a 3x3 box filter
    assert len(s["radial_energy_ratio"]) == RADIAL_BINS


# ---------------------------------------------------------------- bad input: one line, exit 2

@pytest.mark.parametrize("extra, fragment", [
    (["--tasks", "sr3"], "unknown task 'sr3'"),
    (["--tasks", "sr"], "sr2, sr4 or sr8"),
    (["--rounds", "9"], "round 9 is not in A.safetensors"),
    (["--rounds", "x"], "is not a number"),
    (["--rounds", "1", "--sparsities", "0.5"], "not both"),
    (["--sparsities", "1.5"], "[0, 1)"),
    (["--baselines", "dense,lasso"], "unknown baseline 'lasso'"),
    (["--init", "warm"], "unknown --init"),
    (["--shard", "2/2"], "--shard"),
    (["--seeds", "0"], "--seeds 0"),
    (["--experiment", "fourier"], "unknown --experiment"),
    (["--experiment", "impedance", "--tasks", "denoise"], "drop --tasks"),
    (["--merge", "."], "--merge FOLDER only joins"),
])
def test_bad_input_is_one_line_exit_2(data, tmp_path, extra, fragment):
    result = lip("--mask", data / "A.safetensors", data / "astro.png", "--out", tmp_path / "o", *extra, *RUN)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lip: error:") and fragment in lines[0], result.stderr
    assert not list(tmp_path.glob("o/*"))


@pytest.mark.parametrize("args, fragment", [
    (["astro.png", "--out", "o"], "at least one --mask"),
    (["--mask", "A.safetensors", "--out", "o"], "at least one clean image"),
    (["--mask", "A.safetensors", "astro.png"], "--out"),
    (["--mask", "missing.safetensors", "astro.png", "--out", "o"], "no such artifact"),
    (["--mask", "A.safetensors", "nothere.png", "--out", "o"], "no such file"),
    (["--mask", "A.safetensors", "astro.png", "astro.png", "--out", "o"], "astro.png is given twice"),
    (["--merge", "empty"], "no results.jsonl"),
    (["--merge", "empty", "--iters", "5"], "drop --iters"),  # it fits nothing: the flag would be ignored
])
def test_bad_paths_are_one_line_exit_2(data, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(data)
    (data / "empty").mkdir(exist_ok=True)
    result = lip(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_rows_that_another_run_wrote_into_the_folder_are_joined_as_a_merge_joins_them(data, tmp_path):
    """Two runs started into one --out at once both pass the start's settings check and both append: the summary
    counted each run twice (seeds=2 for a one-seed grid), or averaged runs of 150 and 200 iterations as seeds."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1",
            "--baselines", "dense", *RUN, "--out", tmp_path]
    ok(lip(*grid, "--iters", "5"))
    path = tmp_path / "results.jsonl"
    rows = read_rows(path)
    with open(path, "a") as f:  # the same command's second copy appended the same runs
        f.writelines(json.dumps(r) + "\n" for r in rows)
    ok(lip(*grid, "--iters", "5"))
    with open(tmp_path / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 2 and all(s["seeds"] == "1" for s in summary)
    changed = [{**r, "settings": {**r["settings"], "fit": {**r["settings"]["fit"], "iters": 6}}} for r in rows]
    with open(path, "a") as f:  # a run with other settings started beside it
        f.writelines(json.dumps(r) + "\n" for r in changed)
    with pytest.raises(LipError, match=r"results.jsonl holds the same run .* different settings; merge them "
                                        r"separately \(two runs into one --out folder\?\)"):
        joined([path])  # what the run summarises (here its start refuses first: the rows were there)


def test_a_second_run_into_the_rows_file_another_run_writes_is_refused(data, tmp_path):
    """Two copies of one grid started into one --out both ran every cell (the summary de-duplicated the rows)."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1",
            "--baselines", "dense", *RUN, "--iters", "5", "--out", tmp_path]
    busy = "is being written by another lip run right now: wait for it to end"
    for held, args in (("results.jsonl", []), ("results.shard-1-of-2.jsonl", ["--shard", "1/2"]),
                       ("results.shard-0-of-2.jsonl", ["--device", "cpu,cpu"]),  # workers: refused before they start
                       ("results.jsonl", ["--device", "cpu,cpu"])):  # whose parent merges into it at the end
        with exclusive(tmp_path / held):  # another run is appending to it
            result = lip(*grid, *args)
            assert result.exit_code == 2 and f"{held} {busy}" in result.output, result.output
            assert not list(tmp_path.glob("*.log"))  # no worker started (a second parent overwrote the logs)
    with exclusive(tmp_path / "results.jsonl"):  # a merge would replace the table under the run appending to it
        result = lip("--merge", tmp_path)
        assert result.exit_code == 2 and "results.jsonl is being written by another lip run right now: wait for it " \
            "to end, then merge" in result.output, result.output
    with exclusive(tmp_path / "results.jsonl"), pytest.raises(LipError, match=busy):
        api.transfer([data / "astro.png"], [data / "A.safetensors"], out=tmp_path, device="cpu", iters=5)
    with exclusive(tmp_path / "results.shard-1-of-2.jsonl"):
        ok(lip(*grid, "--shard", "0/2"))  # shards write files of their own
    assert [p.name for p in tmp_path.glob("*.jsonl")] == ["results.shard-0-of-2.jsonl"]  # the locks left no file
    ok(lip(*grid))


def test_shards_skip_the_runs_the_folder_already_holds(data, tmp_path, monkeypatch):
    """A stopped plain run continued with --device a,b (workers run shards) redid every finished run."""
    grid = ["--mask", data / "A.safetensors", data / "astro.png", "--tasks", "denoise", "--rounds", "1",
            "--baselines", "dense", *RUN, "--iters", "5", "--out", tmp_path]
    ok(lip(*grid))
    counter = FitCounter(restore_mod.fit)
    monkeypatch.setattr(restore_mod, "fit", counter)
    for i in (0, 1):
        err = ok(lip(*grid, "--shard", f"{i}/2")).stderr
        assert "0 to run" in err
        # the status names the file that holds the rows, not the shard's file, which nothing wrote
        shard_file = tmp_path / f"results.shard-{i}-of-2.jsonl"
        assert shard_file.read_bytes() == b"" and shard_file.name not in err and "results.jsonl" in err  # done
    assert counter.calls == 0
    merged = ok(lip("--merge", tmp_path, "--json"))
    assert len(merged.stdout.splitlines()) == 2
