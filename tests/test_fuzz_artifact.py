"""Fuzzing the artifact loader: random bytes and mutated valid files (byte flips, truncations, header
and metadata edits) either load as a fully valid artifact or are refused with a LipError.

"Fully valid" means what every reader relies on: the spec builds, theta0 holds float32 tensors of
exactly the net's parameters and shapes, every mask is uint8 of its parameter's shape, and every
round a mask refers to is recorded. Anything else raised (KeyError, RuntimeError, ...) fails.

Bounded for CI: a small net (4 channels), 150 examples per strategy, derandomized so every run tries
the same inputs. LIP_FUZZ_RANDOM=1 draws new ones, LIP_FUZZ_EXAMPLES=N changes the budget.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lipcli import artifact, inspect, nets
from lipcli.artifact import Artifact
from lipcli.cli import inspect as cli_inspect
from lipcli.errors import LipError

SPEC = nets.preset("dip", down=[4] * 5, up=[4] * 5, skip=[2] * 5)
ROUNDS = 3
FUZZ = settings(max_examples=int(os.environ.get("LIP_FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=not os.environ.get("LIP_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_bytes() -> bytes:
    torch.manual_seed(0)
    net = nets.build(SPEC)
    theta0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    gen = torch.Generator().manual_seed(0)
    prune_round = {n: torch.randint(0, ROUNDS + 1, theta0[n].shape, generator=gen, dtype=torch.uint8)
                   for n in nets.conv_weight_names(net)}
    meta = artifact.new_meta(SPEC, rounds=[{"round": k, "loss": 0.1} for k in range(ROUNDS + 1)],
                             method="imp", recommended_round=2, created="2024-01-01T00:00:00Z")
    return artifact.to_bytes(Artifact(meta, theta0, prune_round))


VALID = _valid_bytes()
HEADER_LEN = int.from_bytes(VALID[:8], "little")
HEADER = json.loads(VALID[8:8 + HEADER_LEN])
DATA = VALID[8 + HEADER_LEN:]
TENSOR_KEYS = sorted(k for k in HEADER if k != "__metadata__")
META = json.loads(HEADER["__metadata__"]["lip"])


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "a.safetensors"


def check(path: Path, data: bytes) -> None:
    """The property: a LipError, or an artifact that is valid throughout."""
    path.write_bytes(data)
    try:
        art = artifact.load(path)
    except LipError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    with torch.device("meta"):
        net = nets.build(art.spec)
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    assert set(art.theta0) == set(shapes)
    assert set(art.prune_round) <= set(shapes)
    for name, t in art.theta0.items():
        assert t.dtype == torch.float32 and tuple(t.shape) == shapes[name], name
    for name, r in art.prune_round.items():
        assert r.dtype == torch.uint8 and tuple(r.shape) == shapes[name], name
    for k in range(art.rounds + 1):  # every reader's view works
        art.mask(k)
        assert 0 <= art.sparsity(k) <= 1
    assert 0 <= art.recommended_round <= art.rounds
    summary = inspect.summary(art)  # and what `lip inspect` makes of its metadata
    cli_inspect._info_rows("a.safetensors", summary)
    cli_inspect._rounds_table(summary)


def test_the_valid_file_loads(path):
    check(path, VALID)
    assert artifact.load(path).rounds == ROUNDS


def _serialise(header: dict, data: bytes = DATA) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return len(text).to_bytes(8, "little") + text + data


@FUZZ
@given(st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=512).map(lambda b: len(b).to_bytes(8, "little") + b),  # a plausible length
    st.binary(max_size=512).map(lambda b: b"\x80\x04" + b),  # looks like a pickle
))
def test_random_bytes(path, data):
    check(path, data)


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.integers(0, 8 + HEADER_LEN - 1), st.integers(0, len(VALID) - 1)),
                          st.integers(1, 255)), min_size=1, max_size=8))
def test_byte_flips(path, flips):
    data = bytearray(VALID)
    for pos, xor in flips:
        data[pos] ^= xor
    check(path, bytes(data))


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.binary(max_size=16))
def test_truncations(path, cut, tail):
    check(path, VALID[:cut] + tail)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2 ** 40) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
DTYPES = st.sampled_from(["F32", "F16", "BF16", "F64", "U8", "I8", "I64", "BOOL", "U16", "XYZ", ""])
META_KEYS = st.sampled_from(["format", "format_version", "spec", "rounds", "recommended_round", "method", "search",
                             "settings", "operator", "images"])
SPEC_KEYS = st.sampled_from(sorted(SPEC) + ["kind", "extra"])


@st.composite
def header_edit(draw) -> bytes:
    header = json.loads(json.dumps(HEADER))
    meta = json.loads(json.dumps(META))
    key = draw(st.sampled_from(TENSOR_KEYS))
    what = draw(st.sampled_from(["dtype", "shape", "offsets", "drop", "rename", "swap prefix", "meta",
                                 "spec", "spec list", "rounds", "round field", "raw metadata", "no metadata"]))
    if what == "dtype":
        header[key]["dtype"] = draw(DTYPES)
    elif what == "shape":
        header[key]["shape"] = draw(st.lists(st.integers(0, 40), max_size=5))
    elif what == "offsets":
        header[key]["data_offsets"] = draw(st.lists(st.integers(-1, len(DATA) + 8), min_size=0, max_size=3))
    elif what == "drop":
        del header[key]
    elif what == "rename":
        header[draw(st.text(min_size=1, max_size=30))] = header.pop(key)
    elif what == "swap prefix":
        a, b = artifact.ROUND, artifact.THETA0
        header[b + key[len(a):] if key.startswith(a) else a + key[len(b):]] = header.pop(key)
    elif what == "meta":
        meta[draw(META_KEYS)] = draw(JSON_VALUES)
    elif what == "spec":
        meta["spec"][draw(SPEC_KEYS)] = draw(JSON_VALUES)
    elif what == "spec list":  # channel lists of other lengths and sizes, up to absurd widths
        field = draw(st.sampled_from(["down", "up", "skip"]))
        meta["spec"][field] = draw(st.lists(st.integers(-1, 10 ** 7), max_size=7))
    elif what == "round field":  # what a round records besides its number (inspect formats them)
        meta["rounds"][draw(st.integers(0, ROUNDS))][draw(st.sampled_from(["loss", "psnr_final"]))] = \
            draw(JSON_VALUES)
    elif what == "rounds":
        meta["rounds"] = draw(st.lists(st.fixed_dictionaries({"round": st.integers(-1, 300)}), max_size=5))
        meta["recommended_round"] = draw(st.none() | st.integers(-1, 300))
    if what == "raw metadata":
        header["__metadata__"] = {"lip": draw(st.text(max_size=60))}
    elif what == "no metadata":
        del header["__metadata__"]
    else:
        header["__metadata__"] = {"lip": json.dumps(meta)}
    return _serialise(header)


@FUZZ
@given(header_edit())
def test_header_and_metadata_edits(path, data):
    check(path, data)
