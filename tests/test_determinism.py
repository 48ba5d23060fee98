"""Determinism on the CPU: with the same seed, thread count and precision, `lip prune` writes byte-identical
artifacts (SOURCE_DATE_EPOCH pins their `created` time) and `lip restore` writes identical PNGs; the
artifact records what reproducing it takes (seed, threads, precision, versions)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lipcli import __version__, artifact, seeds
from lipcli.cli import app
from prune_helpers import isolated_folder

EPOCH = "1700000000"  # 2023-11-14T22:13:20Z


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    isolated_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    return tmp_path


def lip(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def prune(out: str, precision: str = "fp32", seed: int = 0) -> bytes:
    lip("prune", "img.png", "--simulate", "--config", "narrow.yaml", "--rounds", "2", "--iters", "10",
        "--threads", "1", "--device", "cpu", "--precision", precision, "--seed", str(seed), "-o", out)
    return Path(out).read_bytes()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_prune_writes_byte_identical_artifacts(work, precision):
    first, second = prune("a.safetensors", precision), prune("b.safetensors", precision)
    assert first == second
    assert prune("c.safetensors", precision, seed=1) != first  # the comparison is not vacuous


def test_the_artifact_records_how_to_reproduce_it(work):
    prune("a.safetensors")
    meta = artifact.load(work / "a.safetensors").meta
    assert meta["seed"] == 0 and meta["threads"] == 1 and meta["device"] == "cpu"
    assert meta["search"]["fit"]["precision"] == "fp32" and meta["search"]["seed"] == 0
    assert meta["search"]["fit"]["iters"] == 10 and meta["search"]["rounds"] == 2
    assert meta["tool_version"] == __version__
    assert meta["torch_version"] == torch.__version__.split("+")[0]
    assert meta["created"] == "2023-11-14T22:13:20Z"  # from SOURCE_DATE_EPOCH
    assert [i["sha256"] for i in meta["images"]] and meta["images"][0]["name"] == "img.png"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_restore_writes_identical_pngs(work, precision):
    def restore(out: str, seed: int = 0) -> bytes:
        report = lip("restore", "img.png", "--simulate", "--config", "narrow.yaml", "--iters", "20",
                     "--threads", "1", "--device", "cpu", "--precision", precision, "--seed", str(seed),
                     "--json", "-o", out)
        assert json.loads(report)["precision"] == precision
        return Path(out).read_bytes()

    first = restore("a.png")
    assert restore("b.png") == first
    assert restore("c.png", seed=1) != first


def test_the_largest_seed_runs_everywhere_and_small_seeds_draw_as_before(work):
    """Streams derived as seed * 100_003 + k (IMP's inputs, GAN restarts) outgrow the seed's range: the largest
    `--seed` runs in lip prune and lip cs (it was an internal error there, after writing files), and a small seed's
    derived streams draw as torch's own generator at that seed."""
    top = str(seeds.MAX)
    prune("top.safetensors", seed=seeds.MAX)
    lip("prune", "img.png", "--simulate", "--config", "narrow.yaml", "--granularity", "channel", "--rounds", "1",
        "--iters", "4", "--threads", "1", "--device", "cpu", "--seed", top, "-o", "ch.safetensors")
    lip("cs", "mnist:3", "--simulate", "-m", "40", "--iters", "2", "--restarts", "2", "--threads", "1",
        "--seed", top, "-o", "cs.png")
    lip("restore", "img.png", "--simulate", "--config", "narrow.yaml", "--iters", "3", "--sgld", "0.01",
        "--threads", "1", "--device", "cpu", "--seed", top, "-o", "r.png")
    assert torch.equal(torch.rand(4, generator=seeds.generator(123 * 100_003 + 5)),
                       torch.rand(4, generator=torch.Generator().manual_seed(123 * 100_003 + 5)))


def test_seeds_stop_where_the_cpu_generator_would_repeat_them(work):
    """A CPU generator reads 32 bits of a seed: --seed 2**32 would draw what --seed 0 draws, so it is refused; the
    streams offset from a run's seed (SGLD's noise, --init fresh's weights) differ from it in those 32 bits."""
    assert torch.equal(torch.rand(4, generator=torch.Generator().manual_seed(2**32)),
                       torch.rand(4, generator=torch.Generator().manual_seed(0)))  # why: torch's own aliasing
    result = CliRunner().invoke(app, ["restore", "img.png", "--seed", str(2**32)])
    assert result.exit_code == 2 and "--seed" in result.output
    for offset in (seeds.SGLD, seeds.FRESH_INIT, seeds.CS_NOISE, seeds.CS_LATENT):
        assert seeds.valid(7 + offset) != 7 and not torch.equal(torch.rand(4, generator=seeds.generator(7 + offset)),
                                                                torch.rand(4, generator=seeds.generator(7)))
