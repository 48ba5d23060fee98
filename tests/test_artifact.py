"""Tests for lipcli.artifact: round trips, byte-stable saves, and refusing every kind of bad file."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from lipcli import artifact, nets
from lipcli.artifact import FINETUNED, ROUND, THETA0, Artifact
from lipcli.errors import LipError
from conftest import tiny_spec

ROUNDS = 4


def make_artifact(spec=None, rounds=ROUNDS, seed=0, **meta_fields) -> Artifact:
    """An artifact for `spec`: theta0 = a seeded init, prune rounds drawn at random over conv weights."""
    spec = spec or tiny_spec()
    torch.manual_seed(seed)
    net = nets.build(spec)
    theta0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    gen = torch.Generator().manual_seed(seed)
    prune_round = {n: torch.randint(0, rounds + 1, theta0[n].shape, generator=gen, dtype=torch.uint8)
                   for n in nets.conv_weight_names(net)}
    meta = artifact.new_meta(spec, rounds=[{"round": k + 1, "rate": 0.2} for k in range(rounds)],
                             method="test", **meta_fields)
    return Artifact(meta, theta0, prune_round)


def write_raw(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> Path:
    path.write_bytes(st_save(tensors, metadata=metadata))
    return path


def tensors_of(art: Artifact) -> dict[str, torch.Tensor]:
    t = {ROUND + n: r for n, r in art.prune_round.items()}
    t.update({THETA0 + n: w for n, w in art.theta0.items()})
    return t


def meta_json(art: Artifact, **changes) -> dict[str, str]:
    return {"lip": json.dumps({**art.meta, **changes})}


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(LipError) as info:
        artifact.load(path)
    msg = str(info.value)
    assert type(info.value) is LipError and info.value.exit_code == 2
    assert "\n" not in msg and str(path) in msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# ---------------------------------------------------------------- round trip

def test_round_trip(tmp_path):
    art = make_artifact(recommended_round=2)
    path = tmp_path / "mask.safetensors"
    artifact.save(path, art)
    back = artifact.load(path)
    assert back.meta == art.meta and back.spec == tiny_spec()
    assert back.rounds == ROUNDS and back.recommended_round == 2
    assert back.theta0.keys() == art.theta0.keys()
    assert all(torch.equal(back.theta0[n], art.theta0[n]) and back.theta0[n].dtype == torch.float32
               for n in art.theta0)
    assert all(torch.equal(back.prune_round[n], art.prune_round[n]) for n in art.prune_round)
    for k in range(ROUNDS + 1):
        assert back.counts(k) == art.counts(k)
        assert all(torch.equal(back.mask(k)[n], art.mask(k)[n]) for n in art.prune_round)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.safetensors"]  # no temp files left


def test_masks_are_nested_and_counts_exact():
    art = make_artifact()
    total = sum(r.numel() for r in art.prune_round.values())
    assert art.counts(0) == (total, total) and art.sparsity(0) == 0
    previous = art.mask(0)
    for k in range(1, ROUNDS + 1):
        mask = art.mask(k)
        for name, r in art.prune_round.items():
            assert mask[name].dtype == torch.bool
            assert not (mask[name] & ~previous[name]).any(), "a pruned weight came back"
            assert torch.equal(mask[name], (r == 0) | (r > k))
        kept = sum(int(((r == 0) | (r > k)).sum()) for r in art.prune_round.values())
        assert art.counts(k) == (kept, total)
        assert art.sparsity(k) == 1 - kept / total
        assert art.sparsity(k) > art.sparsity(k - 1)
        previous = mask
    assert art.counts(ROUNDS)[0] == sum(int((r == 0).sum()) for r in art.prune_round.values())
    with pytest.raises(LipError, match="rounds 0..4"):
        art.mask(ROUNDS + 1)
    with pytest.raises(LipError):
        art.mask(-1)


def test_round_for_sparsity_and_recommended_round():
    art = make_artifact()
    for k in range(ROUNDS + 1):
        assert art.round_for_sparsity(art.sparsity(k)) == k
    assert art.round_for_sparsity(0.0) == 0 and art.round_for_sparsity(0.9999) == ROUNDS
    assert art.recommended_round == ROUNDS  # defaults to the last round
    assert make_artifact(recommended_round=1).recommended_round == 1


def test_new_meta_fields():
    meta = artifact.new_meta(tiny_spec(), rounds=[], method="lip")
    assert meta["format"] == "lip-artifact" and meta["format_version"] == artifact.FORMAT_VERSION
    assert meta["spec"] == tiny_spec() and meta["method"] == "lip" and meta["rounds"] == []
    assert "tool_version" in meta and "+" not in meta["torch_version"]
    json.dumps(meta)


def test_saving_twice_gives_identical_bytes(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    art = make_artifact()
    artifact.save(a, art)
    artifact.save(b, art)
    assert a.read_bytes() == b.read_bytes()
    # Equal content built separately, and a load/save cycle, give the same bytes too.
    artifact.save(b, make_artifact())
    assert a.read_bytes() == b.read_bytes()
    artifact.save(b, artifact.load(a))
    assert a.read_bytes() == b.read_bytes()
    assert artifact.to_bytes(art) == a.read_bytes()


def test_save_overwrites_atomically_and_checks_folder(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")
    artifact.save(path, make_artifact())
    artifact.load(path)
    with pytest.raises(LipError, match="does not exist"):
        artifact.save(tmp_path / "missing" / "m.safetensors", make_artifact())


def test_non_float32_theta0_is_stored_as_float32(tmp_path):
    art = make_artifact()
    art.theta0 = {n: w.double() for n, w in art.theta0.items()}
    artifact.save(tmp_path / "m.safetensors", art)
    assert all(t.dtype == torch.float32 for t in artifact.load(tmp_path / "m.safetensors").theta0.values())


def test_deep_decoder_artifact_round_trip(tmp_path):
    art = make_artifact(spec=nets.preset("deep-decoder", k=8), rounds=2)
    artifact.save(tmp_path / "dd.safetensors", art)
    assert artifact.load(tmp_path / "dd.safetensors").counts(2) == art.counts(2)


# ---------------------------------------------------------------- refusing bad files

class _Boom:
    """Unpickling this creates a sentinel folder: proof that a file was unpickled."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return os.mkdir, (self.sentinel,)


def test_refuses_torch_save_without_unpickling(tmp_path):
    sentinel = tmp_path / "unpickled"
    path = tmp_path / "mask.safetensors"
    torch.save({"theta0": {"w": torch.zeros(2)}, "boom": _Boom(sentinel)}, path)
    refused(path, "pickle")
    assert not sentinel.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_refuses_raw_pickle_without_unpickling(tmp_path, protocol):
    sentinel = tmp_path / "unpickled"
    path = tmp_path / "mask.safetensors"
    path.write_bytes(pickle.dumps({"boom": _Boom(sentinel)}, protocol=protocol))
    refused(path)
    assert not sentinel.exists()


def test_a_header_length_ending_in_0x80_is_not_taken_for_a_pickle(tmp_path):
    """The first byte of a safetensors file is the header length's low byte; 0x80 is pickle's magic."""
    for pad in range(300):
        art = make_artifact(note="x" * pad)
        data = artifact.to_bytes(art)
        if data[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length ending in 0x80")
    path = tmp_path / "mask.safetensors"
    path.write_bytes(data)
    assert artifact.load(path).counts(1) == art.counts(1)


def test_refuses_missing_and_empty_files(tmp_path):
    refused(tmp_path / "nope.safetensors", "no such artifact")
    refused(tmp_path, "is a folder, not an artifact file")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    refused(tmp_path / "empty.safetensors", "not a valid safetensors")


@pytest.mark.parametrize("keep", [4, 8, 20, "half", -1])
def test_refuses_truncated_file(tmp_path, keep):
    data = artifact.to_bytes(make_artifact())
    cut = {"half": len(data) // 2}.get(keep, keep)
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:cut])
    refused(path, "not a valid safetensors")


def test_refuses_malformed_header(tmp_path):
    data = artifact.to_bytes(make_artifact())
    n = int.from_bytes(data[:8], "little")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:])  # not JSON, same length
    refused(path, "not a valid safetensors")
    path.write_bytes((10 ** 12).to_bytes(8, "little") + data[8:])  # absurd header length
    refused(path, "not a valid safetensors")
    path.write_bytes(b"random bytes that are not a safetensors file at all")
    refused(path, "not a valid safetensors")


def test_refuses_wrong_dtypes(tmp_path):
    art = make_artifact()
    tensors = tensors_of(art)
    name = next(iter(art.theta0))
    bad = dict(tensors, **{THETA0 + name: art.theta0[name].half()})
    refused(write_raw(tmp_path / "a.safetensors", bad, meta_json(art)), "dtype", "float32")
    rname = next(iter(art.prune_round))
    bad = dict(tensors, **{ROUND + rname: art.prune_round[rname].long()})
    refused(write_raw(tmp_path / "b.safetensors", bad, meta_json(art)), "dtype", "uint8")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_refuses_non_finite_weights(tmp_path, value):
    """A damaged weight is named as damage at load, not later as a fit that 'diverged' (exit 1)."""
    art = make_artifact()
    name = next(iter(art.theta0))
    bad_w = art.theta0[name].clone()
    bad_w.view(-1)[0] = value
    bad = dict(tensors_of(art), **{THETA0 + name: bad_w})
    refused(write_raw(tmp_path / "a.safetensors", bad, meta_json(art)), THETA0 + name, "non-finite", "damaged")


def test_refuses_missing_and_extra_keys(tmp_path):
    art = make_artifact()
    tensors = tensors_of(art)
    missing = dict(tensors)
    del missing[THETA0 + "head.weight"]
    refused(write_raw(tmp_path / "a.safetensors", missing, meta_json(art)), "missing head.weight")
    extra = dict(tensors, **{THETA0 + "levels.9.down.conv.weight": torch.zeros(3)})
    refused(write_raw(tmp_path / "b.safetensors", extra, meta_json(art)), "unknown parameter")
    extra = dict(tensors, **{ROUND + "levels.9.down.conv.weight": torch.zeros(3, dtype=torch.uint8)})
    refused(write_raw(tmp_path / "c.safetensors", extra, meta_json(art)), "unknown parameter")
    stray = dict(tensors, **{"optimizer/state": torch.zeros(3)})
    refused(write_raw(tmp_path / "d.safetensors", stray, meta_json(art)), "unexpected tensor")
    total = sum(r.numel() for r in art.prune_round.values())  # as lip prune records it in every round
    counted = meta_json(art, rounds=[{**r, "total": total} for r in art.meta["rounds"]])
    assert artifact.load(write_raw(tmp_path / "e.safetensors", tensors, counted)).rounds == art.rounds
    no_mask = dict(tensors)
    del no_mask[next(k for k in tensors if k.startswith(ROUND))]  # that layer would be fitted dense
    refused(write_raw(tmp_path / "e.safetensors", no_mask, counted), "a mask tensor is missing")


def test_refuses_another_nets_shapes(tmp_path):
    """Tensors of a wider net (same parameter names) under this net's spec."""
    ours, theirs = make_artifact(tiny_spec()), make_artifact(tiny_spec(down=[12] * 3, up=[12] * 3))
    refused(write_raw(tmp_path / "a.safetensors", tensors_of(theirs), meta_json(ours)), "has shape",
            "the net needs")
    # Correct theta0 but a prune_round tensor of the wrong shape.
    tensors = dict(tensors_of(ours), **{ROUND + "head.weight": torch.zeros(3, 8, 1, 2, dtype=torch.uint8)})
    refused(write_raw(tmp_path / "b.safetensors", tensors, meta_json(ours)), "head.weight has shape")
    # And an artifact of a different net altogether.
    dd = make_artifact(nets.preset("deep-decoder", k=8))
    refused(write_raw(tmp_path / "c.safetensors", tensors_of(dd), meta_json(ours)), "does not match")


def test_refuses_future_format_version(tmp_path):
    art = make_artifact()
    future = artifact.NEWEST_VERSION + 1
    path = write_raw(tmp_path / "a.safetensors", tensors_of(art), meta_json(art, format_version=future))
    refused(path, f"format version {future}", "upgrade lip")
    path = write_raw(tmp_path / "b.safetensors", tensors_of(art), meta_json(art, format_version="1"))
    refused(path, "format version")
    meta = dict(art.meta)
    del meta["format_version"]
    refused(write_raw(tmp_path / "c.safetensors", tensors_of(art), {"lip": json.dumps(meta)}),
            "format version")


@pytest.mark.parametrize("version", [0, -1, True])
def test_refuses_impossible_format_version(tmp_path, version):
    art = make_artifact()
    refused(write_raw(tmp_path / "a.safetensors", tensors_of(art), meta_json(art, format_version=version)),
            "format version")


def test_refuses_metadata_that_is_not_json(tmp_path):
    art = make_artifact()
    refused(write_raw(tmp_path / "a.safetensors", tensors_of(art), {"lip": "{not json"}), "not valid JSON")


def test_refuses_files_without_lip_metadata(tmp_path):
    art = make_artifact()
    refused(write_raw(tmp_path / "a.safetensors", tensors_of(art), None), "no lip metadata")
    refused(write_raw(tmp_path / "b.safetensors", tensors_of(art), {"format": "pt"}), "no lip metadata")


def test_refuses_wrong_format_tag(tmp_path):
    art = make_artifact()
    refused(write_raw(tmp_path / "a.safetensors", tensors_of(art), meta_json(art, format="other")),
            "wrong format tag")
    refused(write_raw(tmp_path / "b.safetensors", tensors_of(art), {"lip": "[1, 2]"}), "wrong format tag")


def test_refuses_invalid_spec(tmp_path):
    art = make_artifact()
    for i, spec in enumerate([{"kind": "unet"}, {**tiny_spec(), "up": [8] * 2}, {"kind": "skip"}]):
        path = write_raw(tmp_path / f"{i}.safetensors", tensors_of(art), meta_json(art, spec=spec))
        refused(path, "net spec is invalid")
    meta = dict(art.meta)
    del meta["spec"]
    refused(write_raw(tmp_path / "x.safetensors", tensors_of(art), {"lip": json.dumps(meta)}),
            "net spec is invalid")


def test_refuses_rounds_beyond_the_record(tmp_path):
    art = make_artifact()
    path = write_raw(tmp_path / "a.safetensors", tensors_of(art),
                     meta_json(art, rounds=art.meta["rounds"][:2]))
    refused(path, "round 4", "only 2 rounds")


_BAD_META = {
    "spec is a string": {"spec": "dip"},
    "spec is null": {"spec": None},
    "negative channel count": {"spec": {**tiny_spec(), "down": [-1, 8, 8]}},
    "rounds is a number": {"rounds": 4},
    "rounds is null": {"rounds": None},
    "rounds entries without round numbers": {"rounds": [{}, {}]},
    "recommended_round not a number": {"recommended_round": "best"},
    "recommended_round out of range": {"recommended_round": 99},
}


@pytest.mark.parametrize("case", sorted(_BAD_META))
def test_refuses_hostile_metadata(tmp_path, case):
    art = make_artifact()
    path = write_raw(tmp_path / "a.safetensors", tensors_of(art), meta_json(art, **_BAD_META[case]))
    refused(path)


def channel_artifact(seed=0) -> Artifact:
    """A seeded artifact whose rounds prune whole filters, as a channel search writes them."""
    art = make_artifact(seed=seed)
    art.meta["seed"] = seed  # what a search records: theta0 is then its seeded draw
    gen = torch.Generator().manual_seed(1)
    for n, r in art.prune_round.items():
        per_filter = torch.randint(0, ROUNDS + 1, (r.shape[0],) + (1,) * (r.dim() - 1), generator=gen)
        art.prune_round[n] = per_filter.to(torch.uint8).expand(r.shape).clone()
    return art


def test_slim_file_is_small_and_loads_to_the_same_artifact(tmp_path):
    """Rounds kept once per filter, theta0 regenerated from the seed: same masks and weights, bit for bit."""
    art = channel_artifact()
    artifact.save(tmp_path / "full.safetensors", art)
    artifact.save(tmp_path / "slim.safetensors", art, slim=True)
    full, slim = (artifact.load(tmp_path / f"{k}.safetensors") for k in ("full", "slim"))
    assert full.meta["format_version"] == artifact.FORMAT_VERSION == 1
    assert slim.meta["format_version"] == artifact.SLIM_VERSION and "theta0_sha256" in slim.meta
    assert (tmp_path / "slim.safetensors").stat().st_size < (tmp_path / "full.safetensors").stat().st_size / 10
    for k in range(ROUNDS + 1):
        assert all(torch.equal(a, b) for a, b in zip(full.mask(k).values(), slim.mask(k).values()))
    assert full.theta0.keys() == slim.theta0.keys()
    assert all(torch.equal(full.theta0[n], slim.theta0[n]) for n in full.theta0)


def test_slim_keeps_theta0_that_is_not_the_seeded_draw(tmp_path):
    """Rewound or imported weights cannot be regenerated: they stay in the file."""
    art = channel_artifact()
    name = next(iter(art.theta0))
    art.theta0[name] = art.theta0[name] + 1
    artifact.save(tmp_path / "a.safetensors", art, slim=True)
    back = artifact.load(tmp_path / "a.safetensors")
    assert "theta0_sha256" not in back.meta and torch.equal(back.theta0[name], art.theta0[name])


def test_slim_file_refuses_a_theta0_it_cannot_regenerate(tmp_path):
    """A torch that draws different initial weights is refused with the reason, never used silently."""
    art = channel_artifact()
    artifact.save(tmp_path / "a.safetensors", art, slim=True)
    slim = artifact.load(tmp_path / "a.safetensors")
    tensors = {ROUND + n: artifact._narrowest(r) for n, r in slim.prune_round.items()}
    path = write_raw(tmp_path / "b.safetensors", tensors, meta_json(slim, theta0_sha256="0" * 64,
                                                                    torch_version="1.0.0"))
    refused(path, "regenerated from seed 0", "draws different ones")
    path = write_raw(tmp_path / "b.safetensors", tensors, meta_json(slim, theta0_sha256="0" * 64))
    refused(path, "regenerated from seed 0 by the torch that wrote it", "the file is damaged")
    bad = {**tensors, ROUND + next(iter(slim.prune_round)): torch.zeros(2, 2, dtype=torch.uint8)}
    refused(write_raw(tmp_path / "c.safetensors", bad, meta_json(slim)), "does not broadcast")


# ---------------------------------------------------------------- fine-tuned weights (format version 3)

def tuned_artifact() -> Artifact:
    """make_artifact plus trained weights for rounds 1 and 3: theta0 shifted, zero where the round pruned."""
    art = make_artifact()
    for k in (1, 3):
        keep = art.mask(k)
        art.finetuned[k] = {n: (w + 0.5 * k) * keep[n] if n in keep else w + 0.5 * k for n, w in art.theta0.items()
                            if n in keep or n.endswith(".bias")}
    return art


def test_finetuned_round_trip_and_old_files_unchanged(tmp_path):
    art = tuned_artifact()
    artifact.save(tmp_path / "a.safetensors", art)
    back = artifact.load(tmp_path / "a.safetensors")
    assert back.meta["format_version"] == artifact.FINETUNED_VERSION
    assert back.finetuned.keys() == {1, 3}
    for k, weights in art.finetuned.items():
        assert back.finetuned[k].keys() == weights.keys()
        assert all(torch.equal(back.finetuned[k][n], w) for n, w in weights.items())
    assert artifact.to_bytes(back) == artifact.to_bytes(art)  # byte-stable with the new tensors too
    # a file without them is written exactly as before (version 1) and reads with none
    plain = make_artifact()
    artifact.save(tmp_path / "p.safetensors", plain)
    old = artifact.load(tmp_path / "p.safetensors")
    assert old.meta["format_version"] == artifact.FORMAT_VERSION and old.finetuned == {}


@pytest.mark.parametrize("case, fragment", [
    ("round beyond the record", "round 9"),
    ("unknown parameter", "unknown parameter"),
    ("wrong shape", "has shape"),
    ("nonzero where pruned", "nonzero where round 1 pruned"),
    ("bad round key", "finetuned/<round>/<param>"),
    ("float64", "expected float32"),
])
def test_refuses_bad_finetuned_weights(tmp_path, case, fragment):
    art = tuned_artifact()
    tensors = tensors_of(art)
    name = next(iter(art.prune_round))
    w = art.finetuned[1][name].clone()
    key = f"{FINETUNED}1/{name}"
    if case == "round beyond the record":
        tensors[f"{FINETUNED}9/{name}"] = w
    elif case == "unknown parameter":
        tensors[f"{FINETUNED}1/levels.7.conv.weight"] = w
    elif case == "wrong shape":
        tensors[key] = w.flatten()
    elif case == "nonzero where pruned":
        tensors[key] = torch.where(art.mask(1)[name], w, torch.ones_like(w))
    elif case == "bad round key":
        tensors[f"{FINETUNED}01/{name}"] = w
    else:
        tensors[key] = w.double()
    refused(write_raw(tmp_path / "a.safetensors", tensors, meta_json(art, format_version=3)), fragment)
