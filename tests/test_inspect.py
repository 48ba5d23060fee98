"""Tests for `lip inspect`: per-layer tables, summaries, mask overlap, CSV/JSON output and the plots."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import artifact, inspect as insp, nets, plot
from lipcli.artifact import Artifact
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.masks import ladder_kept, record_round, top_global
from lipcli.prune import scores
from lipcli.prune.search import Trajectory, prunable_names

SPEC = nets.preset("dip", down=[8] * 5, up=[8] * 5)


def make(rounds: int = 5, scope: str = "conv", seed: int = 0, rate: float = 0.2, method: str = "imp",
         recommended: int | None = 3, spec: dict | None = None, by: str = "magnitude") -> Artifact:
    """A nested trajectory: round k keeps round(N * (1-rate)^k) of the scored weights."""
    torch.manual_seed(seed)
    net = nets.build(spec or SPEC)
    names = prunable_names(net, scope, False)
    traj = Trajectory.start(net, names, method=method, task="denoise",
                            operator={"name": "denoise", "sigma": 25.0},
                            images=[{"name": "x.png", "sha256": "0f" * 32, "height": 64, "width": 64}],
                            seed=seed, oracle=False)
    total = sum(traj.prune_round[n].numel() for n in names)
    if by == "magnitude":
        s = scores.magnitude(net, names, scores.ScoreContext())
    else:
        gen = torch.Generator().manual_seed(seed + 1)
        s = {n: torch.rand(traj.prune_round[n].shape, generator=gen) for n in names}
    traj.record(0, 0.0, loss=0.02)
    for k in range(1, rounds + 1):
        alive = traj.masks(k - 1)
        keep = top_global(s, alive, ladder_kept(total, rate, k))
        record_round(traj.prune_round, alive, keep, k)
        traj.record(k, 0.0, loss=0.02 + 0.001 * (k - 2) ** 2)
    return traj.to_artifact(None if recommended is None else min(recommended, rounds))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    out = {}
    for name, art in {"a": make(), "b": make(seed=1, by="random", method="random"),
                      "c": make(rounds=8, rate=0.3, seed=2), "oes": make(rounds=1, scope="all", method="oes",
                                                                       recommended=1)}.items():
        out[name] = root / f"{name}.safetensors"
        artifact.save(out[name], art)
    return out


def lip(*args: str | Path):
    result = CliRunner().invoke(app, ["inspect", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def refused(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lip: error: "), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


# ---------------------------------------------------------------- pure functions

@pytest.mark.parametrize("scope", ["conv", "all"])
def test_layer_kept_counts_sum_to_artifact_totals(scope):
    art = make(rounds=4, scope=scope, recommended=2 if scope == "conv" else 4)
    for k in range(art.rounds + 1):
        rows = insp.layer_table(art, k)
        kept, total = art.counts(k)
        assert sum(r["kept"] for r in rows) == kept
        assert sum(r["params"] for r in rows) == total
        for r in rows:
            mask = art.mask(k)[r["name"]]
            assert r["kept"] == int(mask.sum()) and r["params"] == mask.numel()
            assert list(mask.shape) == r["shape"]
            assert r["sparsity"] == pytest.approx(1 - r["kept"] / r["params"])
    assert [r["index"] for r in rows] == list(range(len(rows)))
    default = insp.layer_table(art)  # the recommended round
    assert sum(r["kept"] for r in default) == art.counts(art.recommended_round)[0]


def test_layers_come_in_forward_order():
    art = make()
    net = nets.build(SPEC)
    names = [r["name"] for r in insp.layer_table(art)]
    assert names == nets.conv_weight_names(net)  # the traced forward order of the convs
    assert set(insp.forward_names(make(rounds=1, scope="all"))) == {n for n, _ in net.named_parameters()}


def test_round_out_of_range_is_refused():
    art = make(rounds=3)
    for bad in (-1, 4):
        with pytest.raises(LipError, match="out of range"):
            insp.layer_table(art, bad)


def test_summary_describes_the_artifact():
    art = make(rounds=5)
    s = insp.summary(art)
    assert s["method"] == "imp" and s["task"] == "denoise" and s["seed"] == 0 and s["oracle"] is False
    assert s["operator"] == {"name": "denoise", "sigma": 25.0}
    assert s["images"][0]["sha256"] == "0f" * 32
    assert s["spec"] == SPEC and s["scope"] == "conv"
    assert s["tool_version"] and s["created"]
    assert s["recommended_round"] == 3 and s["n_rounds"] == 5
    assert [r["round"] for r in s["rounds"]] == list(range(6))
    assert [r["recommended"] for r in s["rounds"]] == [k == 3 for k in range(6)]
    for r in s["rounds"]:
        assert (r["kept"], r["total"]) == art.counts(r["round"])
        k = r["round"]
        assert r["loss"] == pytest.approx(0.02 if k == 0 else 0.02 + 0.001 * (k - 2) ** 2)
    t = s["totals"]
    assert t["net_params"] == nets.count_params(nets.build(SPEC))
    assert t["masked_tensors"] == len(art.prune_round) and t["kept"] == art.counts(3)[0]
    assert len(t["dense_tensors"]) == t["net_tensors"] - t["masked_tensors"]
    json.dumps(s)  # all of it is JSON-able
    oes = insp.summary(make(rounds=1, scope="all", recommended=1))
    assert oes["scope"] == "all" and oes["totals"]["dense_tensors"] == []


def test_overlap_with_itself_is_one():
    art = make()
    for k in range(art.rounds + 1):
        ov = insp.compare([art, art], [k, k])
        assert ov["overall"]["jaccard"] == 1.0 and ov["overall"]["fraction_a_in_b"] == 1.0
        for row in ov["layers"]:
            assert row["jaccard"] == 1.0
            assert row["fraction_a_in_b"] in (1.0, None)  # None: the layer is fully pruned
    ov = insp.compare([art, art], [None, None])
    assert (ov["round_a"], ov["round_b"]) == (3, 3)


def test_overlap_counts_match_brute_force():
    a, b = make(), make(seed=1, by="random")
    ov = insp.compare([a, b], [2, 4])
    ma, mb = a.mask(2), b.mask(4)
    inter = sum(int((ma[n] & mb[n]).sum()) for n in ma)
    union = sum(int((ma[n] | mb[n]).sum()) for n in ma)
    o = ov["overall"]
    assert (o["intersection"], o["union"]) == (inter, union)
    assert o["jaccard"] == pytest.approx(inter / union)
    assert o["fraction_a_in_b"] == pytest.approx(inter / a.counts(2)[0])
    assert o["kept_a"] == a.counts(2)[0] and o["kept_b"] == b.counts(4)[0]
    assert 0 < o["jaccard"] < 1 and o["chance_fraction_a_in_b"] == pytest.approx(1 - b.sparsity(4))
    assert sum(r["intersection"] for r in ov["layers"]) == inter


def test_overlap_matches_sparsity_when_no_round_given():
    a, c = make(rounds=5, rate=0.2), make(rounds=8, rate=0.3, seed=2)
    ov = insp.compare([a, c], [4, None])
    target = a.sparsity(4)
    assert ov["round_b"] == c.round_for_sparsity(target)
    assert all(abs(c.sparsity(ov["round_b"]) - target) <= abs(c.sparsity(k) - target) + 1e-12
               for k in range(c.rounds + 1))
    assert insp.compare([a, c], [4, 1])["round_b"] == 1  # an explicit round wins


def test_overlap_is_over_the_tensors_both_masks_cover_and_refuses_other_shapes():
    """A conv mask beside one over every parameter (or a channel ticket, whose head is dense) was refused with
    advice no flag could follow; they are compared over what both mask, the rest named."""
    conv, every = make(), make(rounds=1, scope="all", recommended=1)
    ov = insp.compare([conv, every], [None, None])
    assert {r["name"] for r in ov["layers"]} == set(conv.prune_round)
    assert ov["left_out"] == sorted(set(every.prune_round) - set(conv.prune_round)) != []
    assert ov["overall"]["params"] == sum(m.numel() for m in conv.prune_round.values())
    assert insp.compare([conv, make(seed=1)], [None, None])["left_out"] == []
    wide = make(spec=nets.preset("dip", down=[8] * 5, up=[12] * 5))
    with pytest.raises(LipError, match="differ in shape"):
        insp.compare([make(), wide], [None, None])


def test_three_masks_side_by_side():
    """LIP Fig. 7: three masks' per-layer sparsity together, each exact, and each pair's overlap with A."""
    a, b, c = make(), make(seed=1, by="random", method="random"), make(rounds=8, rate=0.3, seed=2)
    ov = insp.compare([a, b, c], [2, 4, None])
    assert (ov["round_a"], ov["round_b"], ov["round_c"]) == (2, 4, c.round_for_sparsity(a.sparsity(2)))
    masks = {"a": a.mask(2), "b": b.mask(4), "c": c.mask(ov["round_c"])}
    assert [r["name"] for r in ov["layers"]] == insp.forward_names(a)
    for row in ov["layers"]:
        for t, m in masks.items():
            kept = int(m[row["name"]].sum())
            assert row[f"kept_{t}"] == kept
            assert row[f"sparsity_{t}"] == pytest.approx(1 - kept / m[row["name"]].numel())
        for t in "bc":
            inter = int((masks["a"][row["name"]] & masks[t][row["name"]]).sum())
            assert row[f"intersection_a_{t}"] == inter
    for t in "bc":  # each pair is what comparing A with that mask alone gives
        alone = insp.compare([a, {"b": b, "c": c}[t]], [2, ov[f"round_{t}"]])["overall"]
        assert ov["overall"][f"jaccard_a_{t}"] == alone["jaccard"]
        assert ov["overall"][f"fraction_a_in_{t}"] == alone["fraction_a_in_b"]
        assert ov["overall"][f"chance_jaccard_a_{t}"] == alone["chance_jaccard"]
    assert ov["overall"]["sparsity_c"] == pytest.approx(c.sparsity(ov["round_c"]))


def test_parse_other_rounds():
    assert insp.parse_other_rounds(None, 2) == [None, None]
    assert insp.parse_other_rounds("2", 1) == [2]
    assert insp.parse_other_rounds("2, -", 2) == [2, None]
    for bad in ("2", "2,x", ""):
        with pytest.raises(LipError, match="--round-b"):
            insp.parse_other_rounds(bad, 2 if bad != "" else 1)


def test_default_plot_rounds_are_spread():
    assert insp.default_plot_rounds(make(rounds=16, rate=0.1)) == [1, 6, 11, 16]
    assert insp.default_plot_rounds(make(rounds=3)) == [1, 2, 3]
    assert insp.default_plot_rounds(make(rounds=1, recommended=1)) == [1]


# ---------------------------------------------------------------- plots

def assert_png(path: Path, min_width: int = 300) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 1000
    with PILImage.open(path) as im:
        assert im.format == "PNG"
        px = np.asarray(im.convert("RGB"))
    assert px.shape[1] >= min_width and px.shape[0] >= 200
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 4  # not a blank / single-colour image
    assert not list(path.parent.glob(".*.part*"))  # atomic write left no temporary file
    return px


def test_plot_sparsity_draws_one_colour_per_round(tmp_path):
    art = make(rounds=5)
    out = insp.plot_sparsity(art, [1, 3, 5], tmp_path / "bars.png")
    px = assert_png(out)
    colours = {tuple(int(c[1:][i:i + 2], 16) for i in (0, 2, 4)) for c in plot.PALETTE[:3]}
    present = {tuple(v) for v in px.reshape(-1, 3)}
    assert colours <= present  # every round's bar colour appears


def test_plot_of_masks_covering_other_tensors_draws_the_shared_ones(tmp_path):
    """A mask over every parameter first, a conv mask beside it (as an element mask beside a channel ticket, whose
    head is dense): the plot looked B's layers up by A's names and failed with an internal error."""
    every, conv = make(rounds=1, scope="all", recommended=1), make()
    assert set(every.prune_round) > set(conv.prune_round)
    assert_png(insp.plot_sparsity(every, [1], tmp_path / "bars.png", others=[("B", conv, 3)]))


def test_line_chart_and_bar_chart_are_generic(tmp_path):
    series = {"IMP": [(0.2 * k, 30 - k) for k in range(5)], "random": [(0.1, 29.0), (0.5, float("nan")),
                                                                    (0.9, 25.0)]}
    assert_png(plot.line_chart(series, tmp_path / "lines.png", "PSNR vs sparsity", "sparsity", "PSNR (dB)"))
    assert_png(plot.bar_chart(["a", "b"], {"x": [1.0, -2.0]}, tmp_path / "neg.png", "t", "x", "y"))
    with pytest.raises(ValueError):
        plot.bar_chart(["a", "b"], {"x": [1.0]}, tmp_path / "bad.png", "t", "x", "y")
    assert plot.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


# ---------------------------------------------------------------- CLI

def test_cli_human_output(files):
    r = lip(files["a"])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""  # human output is on stderr
    for text in ("imp", "denoise", "recommended", "levels.0.down.conv.weight", "Layers at round 3"):
        assert text in r.stderr


def test_cli_blind_search_reads_sigma_not_given():
    """The shipped denoising ticket was searched on a real noisy photo, whose noise level nobody gave."""
    r = lip("dip-channel-house")
    assert r.exit_code == 0, r.output
    assert "operator denoise sigma not given" in r.stderr


def test_cli_json_single(files):
    r = lip(files["a"], "--round", "2", "--json")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    d = json.loads(lines[0])
    art = artifact.load(files["a"])
    assert d["type"] == "inspect" and d["round"] == 2
    assert sum(x["kept"] for x in d["layers"]) == art.counts(2)[0]
    assert d["summary"]["recommended_round"] == 3 and d["summary"]["method"] == "imp"
    assert d["sparsity"] == pytest.approx(art.sparsity(2))


def test_cli_json_overlap_matched(files):
    r = lip(files["a"], files["c"], "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    a, c = artifact.load(files["a"]), artifact.load(files["c"])
    assert d["type"] == "overlap" and d["round_a"] == 3
    assert d["round_b"] == c.round_for_sparsity(a.sparsity(3))
    assert 0 <= d["overall"]["jaccard"] <= 1 and len(d["layers"]) == len(a.prune_round)
    same = json.loads(lip(files["a"], files["a"], "--json", "--round", "4").stdout)
    assert same["overall"]["jaccard"] == 1.0 and same["overall"]["fraction_a_in_b"] == 1.0


def test_cli_overlap_human(files):
    r = lip(files["a"], files["b"], "--round", "2", "--round-b", "2")
    assert r.exit_code == 0, r.output
    assert "jaccard" in r.stderr and "overall" in r.stderr


def test_cli_csv_file_and_stdout(files, tmp_path):
    dest = tmp_path / "layers.csv"
    r = lip(files["a"], "--csv", dest)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(dest.read_text().splitlines()))
    art = artifact.load(files["a"])
    assert len(rows) == len(art.prune_round)
    assert list(rows[0]) == ["index", "name", "shape", "params", "kept", "sparsity"]
    assert sum(int(x["kept"]) for x in rows) == art.counts(3)[0]
    r = lip(files["a"], "--csv", "-", "--round", "1")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert sum(int(x["kept"]) for x in rows) == art.counts(1)[0]
    r = lip(files["a"], files["b"], "--csv", "-")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert "jaccard" in rows[0] and "fraction_a_in_b" in rows[0]


def test_cli_plot_writes_a_png(files, tmp_path):
    dest = tmp_path / "sparsity.png"
    r = lip(files["a"], "--plot", dest, "--plot-rounds", "1,3,5", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["plot"] == str(dest) and d["plot_rounds"] == [1, 3, 5]
    assert_png(dest)
    pair = tmp_path / "pair.png"
    assert lip(files["a"], files["b"], "--plot", pair).exit_code == 0
    assert_png(pair)


def test_cli_three_masks_table_csv_and_plot(files, tmp_path):
    a, b, c = (artifact.load(files[k]) for k in "abc")
    r = lip(files["a"], files["b"], files["c"], "--round-b", "2,-")
    assert r.exit_code == 0, r.output
    assert "[matched to A's sparsity]" in r.stderr
    for text in ("sparsity A", "sparsity B", "sparsity C", "jaccard A-B", "jaccard A-C", "overall A-B",
                 "overall A-C"):
        assert text in r.stderr
    dest, chart = tmp_path / "three.csv", tmp_path / "three.png"
    r = lip(files["a"], files["b"], files["c"], "--json", "--csv", dest, "--plot", chart)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [d[t]["artifact"] for t in "abc"] == [str(files[t]) for t in "abc"]
    assert d["round_b_chosen"] == d["round_c_chosen"] == "matched sparsity"
    rows = list(csv.DictReader(dest.read_text().splitlines()))
    assert len(rows) == len(a.prune_round)
    for t, art in zip("abc", (a, b, c)):  # every mask's per-layer sparsity, exact
        mask = art.mask(d[f"round_{t}"])
        for row in rows:
            assert int(row[f"kept_{t}"]) == int(mask[row["name"]].sum())
    px = assert_png(chart)
    colours = {tuple(int(h[1:][i:i + 2], 16) for i in (0, 2, 4)) for h in plot.PALETTE[:3]}
    assert colours <= {tuple(v) for v in px.reshape(-1, 3)}  # a bar colour per mask
    refused(lip(files["a"], files["b"], files["c"], "--round-b", "2"), "--round-b", "2 masks after A")


def test_cli_oes_scope_all(files, tmp_path):
    dest = tmp_path / "oes.png"
    r = lip(files["oes"], "--json", "--plot", dest)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    art = artifact.load(files["oes"])
    names = [x["name"] for x in d["layers"]]
    assert any(".bn." in n for n in names) and any(n.endswith(".bias") for n in names)
    assert sum(x["kept"] for x in d["layers"]) == art.counts(1)[0]
    assert d["summary"]["scope"] == "all" and d["plot_rounds"] == [1]
    assert_png(dest)


@pytest.mark.parametrize("args, fragment", [
    (["a"] * 27, "or 2 to 26 to compare"),
    (["a", "b", "c", "--round-b", "1,x"], "use round numbers"),
    (["a", "b", "c", "--plot", "x.png", "--plot-rounds", "1"], "applies to one artifact"),
    (["a", "--round", "6"], "--round 6 is out of range"),
    (["a", "b", "--round-b", "9"], "--round-b 9 is out of range"),
    (["a", "--round-b", "1"], "give two artifacts"),
    (["a", "--plot", "/no/such/folder/x.png"], "does not exist"),
    (["a", "--plot", "x.jpg"], "ending in .png"),
    (["a", "--plot", "x.png", "--plot-rounds", "1,x"], "not a round number"),
    (["a", "--plot", "x.png", "--plot-rounds", "7"], "out of range"),
    (["a", "--json", "--csv", "-"], "both write to stdout"),
    (["missing"], "no such artifact"),
])
def test_cli_bad_input_is_one_line(files, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    resolved = [str(files[a]) if a in files else str(tmp_path / f"{a}.safetensors") if a == "missing" else a
                for a in args]
    refused(lip(*resolved), fragment)
    assert not list(tmp_path.glob("*.png"))
