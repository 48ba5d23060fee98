"""What a transfer grid runs: its options parsed, the mask artifacts, and the cells in a fixed order.

A grid is mask x round x image x task x seed, plus baselines; every run is one `Cell`. The order of
`Grid.cells()` is part of the file format: `--shard i/n` takes every n-th cell, so it must not change.
`Grid.identity` is what an existing row must match to count as a cell's result on resume.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import artifact, config, files, images as images_io, library, nets
from ..errors import LipError
from ..fit import FitConfig
from ..physics import TASKS, task_variants
from ..restore import check_dip_mask
from .experiments import IMPEDANCE_TARGETS
from .rows import Key

BASELINES = ("dense", "random", "deep-decoder")
EXPERIMENTS = ("grid", "impedance", "spectrum")


def task_operator(task: str) -> tuple[str, dict[str, Any]]:
    """The problem task and fixed settings of a grid task: a registered task's variant (sr4 = sr with
    scale 4); the impedance targets are tasks of their own that fit through denoise's operator."""
    if task in IMPEDANCE_TARGETS:
        return "denoise", {}
    entry, extra = task_variants()[task]
    return entry.name, extra


# ------------------------------------------------------------------ parsing the options

def parse_tasks(text: str) -> list[str]:
    names, variants = _csv_items(text), task_variants()
    for name in names:
        if name not in variants:
            hint = TASKS.get(name).variant_hint if name in TASKS else ""
            raise LipError(f"unknown task {name!r}{f' ({hint})' if hint else ''}: use {', '.join(variants)}")
    if not names:
        raise LipError("--tasks is empty: give e.g. denoise,inpaint,sr4")
    return names


def check_experiment(name: str) -> str:
    if name not in EXPERIMENTS:
        raise LipError(f"unknown --experiment {name!r}: use {', '.join(EXPERIMENTS)}")
    return name


def parse_baselines(text: str) -> list[str]:
    names = [] if text.strip().lower() == "none" else _csv_items(text)
    for name in names:
        if name.lower() == "none":
            raise LipError(f"--baselines {text}: 'none' stands alone (it means no baseline); drop it or the others")
        if name not in BASELINES:
            raise LipError(f"unknown baseline {name!r}: use {', '.join(BASELINES)} or none")
    return names


def _csv_items(text: str) -> list[str]:
    return list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


@dataclass
class MaskSource:
    """One mask artifact of the grid, named by its file stem."""

    label: str
    path: Path
    art: artifact.Artifact
    sha256: str
    total_params: int  # of the whole net, masked or not

    @classmethod
    def load(cls, path: Path) -> "MaskSource":
        path = library.resolve(Path(path))  # a shipped mask by name, as restore takes it
        art = check_dip_mask(artifact.load(path), path)
        digest = files.sha256_of(path)
        return cls(Path(path).stem, Path(path), art, digest, nets.count_params(nets.skeleton(art.spec)))

    @property
    def method(self) -> str | None:
        return self.art.meta.get("method")

    def nonzero(self, round_: int) -> int:
        """Parameters the masked net can use: kept masked entries plus every unmasked parameter."""
        kept, masked = self.art.counts(round_)
        return kept + self.total_params - masked


def load_masks(paths: list[Path]) -> list[MaskSource]:
    if not paths:
        raise LipError("give at least one --mask A.safetensors")
    masks = [MaskSource.load(p) for p in paths]
    labels = [m.label for m in masks]
    for label in labels:
        if labels.count(label) > 1:
            raise LipError(f"two masks are named {label!r}; rows are labelled by file name, so rename one")
    return masks


def parse_rounds(masks: list[MaskSource], rounds: str | None, sparsities: str | None) -> dict[str, list[int]]:
    """Rounds per mask: all pruned rounds, the recommended one, a list, or the rounds nearest sparsities."""
    if rounds is not None and sparsities is not None:
        raise LipError("give --rounds or --sparsities, not both")
    out: dict[str, list[int]] = {}
    for m in masks:
        top = m.art.rounds
        if sparsities is not None:
            wanted = [_number(s, "--sparsities") for s in _csv_items(sparsities)]
            if not wanted or any(not 0 <= s < 1 for s in wanted):
                raise LipError(f"--sparsities {sparsities!r}: give fractions in [0, 1), e.g. 0.5,0.8,0.9")
            chosen = [m.art.round_for_sparsity(s) for s in wanted]
        elif rounds is None or rounds.strip() == "all":
            chosen = list(range(1, top + 1))
        elif rounds.strip() == "recommended":
            chosen = [m.art.recommended_round]
        else:
            chosen = [int(_number(s, "--rounds")) for s in _csv_items(rounds)]
            for k in chosen:
                if not (k == int(k) and 0 <= k <= top):
                    raise LipError(f"round {k} is not in {m.path.name} (it has rounds 0..{top})")
        if not chosen:
            raise LipError(f"{m.path.name} has no pruned rounds to evaluate")
        out[m.label] = sorted(set(chosen))
    return out


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LipError(f"{option}: {text!r} is not a number (use all, recommended or e.g. 3,6,9)") from None
    if option == "--rounds" and value != int(value):
        raise LipError(f"--rounds: {text!r} is not a whole round number")
    return value


# ------------------------------------------------------------------ the grid and its cells

@dataclass(frozen=True)
class Cell:
    """One run: a prior (method, mask, round) on one image, task and seed."""

    method: str  # mask | dense | random | deep-decoder
    mask: str | None
    round: int
    image: images_io.Source  # a file, or a named Image (the Python API)
    task: str
    seed: int

    @property
    def image_name(self) -> str:
        return images_io.source_name(self.image)

    @property
    def key(self) -> Key:
        return (self.method, self.mask, self.round, self.image_name, self.task, self.seed)

    def describe(self) -> str:
        prior = {"dense": "dense", "mask": f"{self.mask} round {self.round}"}.get(
            self.method, f"{self.method} {self.mask} round {self.round}")
        return f"{prior} on {self.image_name} ({self.task}, seed {self.seed})"


@dataclass
class Grid:
    """Everything that defines the runs; `settings`/`configs` are per task (from the presets)."""

    masks: list[MaskSource]
    rounds: dict[str, list[int]]
    images: list[images_io.Source]
    tasks: list[str]
    seeds: list[int]
    baselines: list[str]
    init: str
    settings: dict[str, dict[str, Any]]
    configs: dict[str, FitConfig]
    inpaint_mask: Path | None = None
    experiment: str = "grid"
    _by_label: dict[str, MaskSource] = field(init=False, repr=False)
    _pixels: dict[str, str] = field(init=False, repr=False)  # image name -> pixel hash: rows are keyed by name

    def __post_init__(self) -> None:
        config.check_init(self.init)
        images_io.check_given_once(self.images, "image")
        names = [images_io.source_name(p) for p in self.images]
        for name in names:
            if names.count(name) > 1:
                raise LipError(f"two images are named {name!r}; rows are keyed by file name, so rename one")
        self._by_label = {m.label: m for m in self.masks}
        self._pixels = {name: images_io.pixel_hash(images_io.as_image(p)) for name, p in zip(names, self.images)}

    @property
    def stem(self) -> str:
        """File stem of this grid's rows: the impedance experiment keeps its own file."""
        return "impedance" if self.experiment == "impedance" else "results"

    def mask(self, label: str) -> MaskSource:
        return self._by_label[label]

    def priors(self) -> list[tuple[str, str | None, int]]:
        """(method, mask, round) in a fixed order; the dense net runs once per distinct net spec."""
        out, specs = [], set()
        for m in self.masks:
            spec = json.dumps(m.art.spec, sort_keys=True)
            if "dense" in self.baselines and spec not in specs:
                out.append(("dense", m.label, 0))
            specs.add(spec)
            for k in self.rounds[m.label]:
                out.append(("mask", m.label, k))
                out += [(b, m.label, k) for b in ("random", "deep-decoder") if b in self.baselines]
        return out

    def cells(self) -> list[Cell]:
        """Deterministic order: task, image, seed, then prior (all priors of one problem together)."""
        return [Cell(method, mask, k, image, task, seed)
                for task in self.tasks for image in self.images for seed in self.seeds
                for method, mask, k in self.priors()]

    def config(self, cell: Cell) -> FitConfig:
        """The cell's fit: its task's, with the deep decoder fitted as Heckel & Hand fit it (no input jitter, no
        output average: anchors-spec d; DIP's jitter cost it ~0.8 dB) at the grid's iterations and stop."""
        cfg = replace(self.configs[cell.task], seed=cell.seed)
        return replace(cfg, reg_noise=0.0, ema=0.0) if cell.method == "deep-decoder" else cfg

    def identity(self, cell: Cell) -> dict[str, Any]:
        """What must match for an existing row to count as this cell's result (checked on resume)."""
        s, cfg = self.settings[cell.task], self.config(cell)
        degradation = TASKS.get(task_operator(cell.task)[0]).degradation(s, self.inpaint_mask)
        fit = {k: v for k, v in cfg.recorded().items() if k not in ("seed", "metric_every")}
        ident = {"init": self.init, "fit": fit, "degradation": degradation,
                 "mask_sha256": self.mask(cell.mask).sha256 if cell.mask else None,
                 "image_sha256": self._pixels[cell.image_name]}
        return json.loads(json.dumps(ident))  # the form it has after a JSONL round trip
