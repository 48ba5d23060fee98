"""`lip transfer`: restore a grid (mask x round x image x task x seed, plus baselines) and report it.

Every run is one grid *cell* and gives one JSON row, appended to a JSONL file as soon as it finishes;
a re-run skips the cells already there (so a killed grid resumes), `--shard i/n` runs every n-th
cell into its own file, and `merge` joins the shards. From the rows come a summary CSV (mean and
std over seeds), PSNR-vs-sparsity plots (LIP Fig. 3-5), PSNR/loss-vs-iteration curves (Fig. 11),
and two experiments: *impedance* (fit clean / noisy / pixel-shuffled / white-noise images through
the identity, LIP Fig. 10 and DIP Fig. 2) and *spectrum* (which frequencies a restore keeps).

Images are clean ground truth (simulate mode): each cell degrades them, seeded by the cell's seed,
so every prior at one seed sees the same observation. Nothing here prints; the CLI renders.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from . import artifact, images as images_io, nets, plot
from .errors import LipError
from .jsonsafe import finite
from .files import atomic_path
from .fit import DivergenceError, FitConfig, Step
from .masks import Masks, from_rounds, top_global
from .physics import Identity
from .problem import Problem, load_problem
from .prune import scores
from .restore import Prior, masked_prior, restore

TASKS = {"denoise": ("denoise", {}), "inpaint": ("inpaint", {}), "sr2": ("sr", {"scale": 2}),
         "sr4": ("sr", {"scale": 4}), "sr8": ("sr", {"scale": 8})}
BASELINES = ("dense", "random", "deep-decoder")
METHOD_ORDER = ("dense", "mask", "random", "deep-decoder")  # dense first: the reference, first colour
IMPEDANCE_TARGETS = ("clean", "noisy", "shuffled", "noise")
EXPERIMENTS = ("grid", "impedance", "spectrum")
STATS = ("psnr_final", "psnr_stopped", "ssim_final", "ssim_stopped", "oracle_best_psnr")
PLOT_METRICS = {"stopped": ("psnr_stopped", "auto-stopped"), "final": ("psnr_final", "final iterate"),
                "oracle": ("oracle_best_psnr", "oracle best, reads the clean image")}
CURVE_POINTS = 200  # curves are stored at about this many iterations per run
LOW_RADIUS = 1 / 8  # low-frequency disk, as a fraction of the Nyquist frequency
RADIAL_BINS = 16
MAX_PIXELS = 64_000_000

Key = tuple[str, Any, int, str, str, int]


# ------------------------------------------------------------------ parsing the grid

def parse_tasks(text: str) -> list[str]:
    names = _csv_items(text)
    for name in names:
        if name not in TASKS:
            hint = " (give the factor: sr2, sr4 or sr8)" if name == "sr" else ""
            raise LipError(f"unknown task {name!r}{hint}: use {', '.join(TASKS)}")
    if not names:
        raise LipError("--tasks is empty: give e.g. denoise,inpaint,sr4")
    return names


def parse_baselines(text: str) -> list[str]:
    names = [] if text.strip().lower() == "none" else _csv_items(text)
    for name in names:
        if name not in BASELINES:
            raise LipError(f"unknown baseline {name!r}: use {', '.join(BASELINES)} or none")
    return names


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not int(m[1]) < int(m[2]):
        raise LipError(f"--shard {text!r}: give i/n with 0 <= i < n, e.g. 0/2 and 1/2")
    return int(m[1]), int(m[2])


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
        art = artifact.load(path)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(Path(path).stem, Path(path), art, digest, nets.count_params(nets.build(art.spec)))

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
    image: Path
    task: str
    seed: int

    @property
    def image_name(self) -> str:
        return images_io.resolve(self.image).name

    @property
    def key(self) -> Key:
        return (self.method, self.mask, self.round, self.image_name, self.task, self.seed)


def row_key(row: dict[str, Any]) -> Key:
    return (row["method"], row["mask"], row["round"], row["image"], row["task"], row["seed"])


@dataclass
class Grid:
    """Everything that defines the runs; `settings`/`configs` are per task (from the presets)."""

    masks: list[MaskSource]
    rounds: dict[str, list[int]]
    images: list[Path]
    tasks: list[str]
    seeds: list[int]
    baselines: list[str]
    init: str
    settings: dict[str, dict[str, Any]]
    configs: dict[str, FitConfig]
    inpaint_mask: Path | None = None
    experiment: str = "grid"
    _by_label: dict[str, MaskSource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.init not in ("artifact", "fresh"):
            raise LipError(f"unknown --init {self.init!r}: use artifact (keep theta0) or fresh (new weights)")
        names = [images_io.resolve(p).name for p in self.images]
        for name in names:
            if names.count(name) > 1:
                raise LipError(f"two images are named {name!r}; rows are keyed by file name, so rename one")
        self._by_label = {m.label: m for m in self.masks}

    @property
    def stem(self) -> str:
        """File stem of this grid's rows: the impedance experiment keeps its own file."""
        return "impedance" if self.experiment == "impedance" else "results"

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

    def identity(self, cell: Cell) -> dict[str, Any]:
        """What must match for an existing row to count as this cell's result (checked on resume)."""
        s, cfg = self.settings[cell.task], self.configs[cell.task]
        base = "denoise" if cell.task in IMPEDANCE_TARGETS else TASKS[cell.task][0]
        degradation = {"denoise": {"sigma": float(s["sigma"])},
                       "inpaint": {"keep": float(s["keep"]),
                                   "mask": str(self.inpaint_mask) if self.inpaint_mask else None},
                       "sr": {"scale": int(s["scale"])}}[base]
        fit = {k: v for k, v in asdict(cfg).items() if k not in ("seed", "metric_every")}
        ident = {"init": self.init, "fit": fit, "degradation": degradation,
                 "mask_sha256": self._by_label[cell.mask].sha256 if cell.mask else None}
        return json.loads(json.dumps(ident))  # the form it has after a JSONL round trip

    def problem(self, cell: Cell) -> Problem:
        if cell.task in IMPEDANCE_TARGETS:
            return impedance_problem(cell.image, cell.task, self.settings[cell.task], cell.seed)
        base, _ = TASKS[cell.task]
        return load_problem(cell.image, base, self.settings[cell.task], simulate=True, seed=cell.seed,
                            inpaint_mask=self.inpaint_mask, max_pixels=MAX_PIXELS)

    def prior(self, cell: Cell) -> tuple[Prior, dict[str, Any]]:
        """The cell's prior, and the row fields that describe it (sparsity, sizes, matched k)."""
        m = self._by_label[cell.mask] if cell.mask else None
        theta0 = m.art.theta0 if m is not None and self.init == "artifact" else None
        if cell.method == "dense":
            return Prior(m.art.spec, theta0, None), {"sparsity": 0.0, "nonzero_params": m.total_params}
        kept, _ = m.art.counts(cell.round)
        info = {"sparsity": m.art.sparsity(cell.round), "kept": kept, "nonzero_params": m.nonzero(cell.round)}
        if cell.method == "mask":
            return masked_prior(m.path, cell.round, None, self.init), {**info, "mask_method": m.method}
        if cell.method == "random":
            return Prior(m.art.spec, theta0, random_masks(m, kept, cell.seed)), info
        if cell.method == "deep-decoder":
            k = nets.decoder_k_for_params(m.nonzero(cell.round))
            spec = nets.preset("deep-decoder", k=k)
            return Prior(spec, None, None), {**info, "dd_k": k, "matched_params": m.nonzero(cell.round),
                                             "nonzero_params": nets.count_params(nets.build(spec))}
        raise LipError(f"unknown method {cell.method!r}")


def random_masks(m: MaskSource, kept: int, seed: int) -> Masks:
    """A random global unstructured mask over the artifact's masked parameters keeping exactly `kept`.

    One seeded score draw per seed, in the net's parameter order, so the random masks of a seed are
    nested across rounds and the same for every artifact of one net."""
    net = nets.build(m.art.spec)
    names = [n for n, _ in net.named_parameters() if n in m.art.prune_round]  # not the file's order
    drawn = scores.random(net, names, scores.ScoreContext(gen=torch.Generator().manual_seed(seed)))
    return top_global(drawn, from_rounds({n: m.art.prune_round[n] for n in names}, 0), kept)


def impedance_problem(path: Path, target: str, settings: dict[str, Any], seed: int) -> Problem:
    """Fit a clean, noisy, pixel-shuffled or U(0,1) noise image through the identity operator."""
    p = load_problem(path, "denoise", settings, simulate=True, seed=seed, max_pixels=MAX_PIXELS)
    clean, gen = p.clean, torch.Generator().manual_seed(seed)
    if target == "clean":
        y = clean
    elif target == "noisy":
        y = p.y
    elif target == "shuffled":  # same pixel values (and histogram), positions permuted
        h, w = clean.shape[-2:]
        y = clean.reshape(1, 3, h * w)[..., torch.randperm(h * w, generator=gen)].reshape(clean.shape)
    else:
        y = torch.rand(clean.shape, generator=gen)
    return replace(p, y=y, op=Identity(), clean=y)


def pending(cells: list[Cell], rows: list[dict[str, Any]], grid: Grid, where: str) -> list[Cell]:
    """Cells without a row yet; a row made with other settings is an error, never silently reused."""
    done = {row_key(r): r for r in rows}
    todo = []
    for cell in cells:
        row = done.get(cell.key)
        if row is None:
            todo.append(cell)
            continue
        old, new = row.get("settings") or {}, grid.identity(cell)
        if old != new:
            raise LipError(f"{where} already holds {describe(cell)} made with different settings "
                           f"({', '.join(_differences(old, new))}); use another --out, or the settings "
                           "it was made with")
    return todo


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ, e.g. fit.iters."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            short = len(repr(a)) + len(repr(b)) < 40
            out.append(f"{prefix}{k} {a!r} -> {b!r}" if short else f"{prefix}{k}")
    return out


def shard_of(cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    if shard is None:
        return cells
    i, n = shard
    return [c for index, c in enumerate(cells) if index % n == i]


def rows_name(stem: str, shard: tuple[int, int] | None) -> str:
    return f"{stem}.jsonl" if shard is None else f"{stem}.shard-{shard[0]}-of-{shard[1]}.jsonl"


def describe(cell: Cell) -> str:
    prior = {"dense": "dense", "mask": f"{cell.mask} round {cell.round}"}.get(
        cell.method, f"{cell.method} {cell.mask} round {cell.round}")
    return f"{prior} on {cell.image_name} ({cell.task}, seed {cell.seed})"


# ------------------------------------------------------------------ running cells

def run_cell(grid: Grid, cell: Cell, dev: torch.device,
             callbacks: Iterable[Callable[[Step], None]] = ()) -> dict[str, Any]:
    """Fit one cell with restore's engine and return its JSON-able row.

    A fit that diverges beyond rollback still gives a row (scored at its last good iterate, with
    `diverged` set), so one bad cell neither stops the grid nor is retried forever on resume.
    """
    problem = grid.problem(cell)
    prior, info = grid.prior(cell)
    cfg = replace(grid.configs[cell.task], seed=cell.seed)
    diverged = None
    try:
        result, report = restore(problem, prior, cfg, dev, cell.seed, callbacks)
        params = report["params"]
    except DivergenceError as exc:
        result, diverged, params = exc.result, str(exc), nets.count_params(nets.build(prior.spec))
    tr = result.targets[0]
    ran = tr.final.numel() > 0
    final, stopped = (problem.scores(tr.final), problem.scores(tr.stopped)) if ran else ({}, {})
    row: dict[str, Any] = {
        "method": cell.method, "mask": cell.mask, "round": cell.round, "image": cell.image_name,
        "task": cell.task, "seed": cell.seed, "init": "fresh" if cell.method == "deep-decoder" else grid.init,
        **info, "params": params, "metric": problem.metric_name,
        "psnr_final": final.get("psnr"), "psnr_stopped": stopped.get("psnr"),
        "ssim_final": final.get("ssim"), "ssim_stopped": stopped.get("ssim"),
        "oracle_best_psnr": tr.oracle_best, "oracle_best_iter": tr.oracle_best_iter,
        "iterations": result.iterations, "stopped_at": tr.stopped_at,
        "final_loss": result.losses[-1] if result.losses else None, "diverged": diverged,
        "recoveries": result.recoveries, "seconds": round(result.seconds, 3), "operator": problem.op.params(),
        "device": str(dev), "settings": grid.identity(cell),
    }
    if grid.experiment != "impedance" and ran:  # cheap; kept so --experiment spectrum works on any grid
        row["spectrum"] = spectrum(tr.stopped, problem.clean)
    stride = max(1, math.ceil(cfg.iters / CURVE_POINTS))
    row["curve_psnr"] = [[it, _r(v)] for it, v in tr.curve if it % stride == 0 or it == result.iterations]
    row["curve_loss"] = [[i + 1, _r(v, 7)] for i, v in enumerate(result.losses)
                         if (i + 1) % stride == 0 or i + 1 == result.iterations]
    return finite(row)


def run_cells(grid: Grid, cells: list[Cell], dev: torch.device, path: Path,
              on_step: Callable[[Cell, Step], None], on_row: Callable[[Cell, dict[str, Any]], None]) -> None:
    """Run cells in order, appending each row to `path` the moment it is done."""
    for cell in cells:
        row = run_cell(grid, cell, dev, [lambda step, c=cell: on_step(c, step)])
        append_row(path, row)
        on_row(cell, row)


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


# ------------------------------------------------------------------ rows on disk

def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; an unfinished last line (a write cut short by a kill) is ignored."""
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LipError(f"cannot read {path}: {exc}") from None
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError
            row_key(row)
        except (ValueError, KeyError):
            if i == len(lines) - 1:  # no newline after it: cut short; append_row drops it
                continue
            raise LipError(f"{path}: line {i + 1} is not a transfer row (the file is damaged; "
                           "delete that line to re-run its cell)") from None
        rows.append(row)
    return rows


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one line and flush it to disk; first end an unterminated last line left by a kill
    (dropped if cut short, as read_rows ignores it; kept if it is a whole row)."""
    with open(path, "ab+") as f:
        f.seek(0)
        data = f.read()
        if data and not data.endswith(b"\n"):
            start = data.rfind(b"\n") + 1
            try:
                json.loads(data[start:])
                f.write(b"\n")
            except ValueError:
                f.truncate(start)
        f.write((json.dumps(row) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def merge(folder: Path, stem: str) -> list[dict[str, Any]]:
    """Join `stem`.jsonl and its shard files into `stem`.jsonl (rows de-duplicated by key)."""
    def shard_index(p: Path) -> tuple[int, int]:
        m = re.search(r"shard-(\d+)-of-(\d+)", p.name)
        return (int(m[2]), int(m[1])) if m else (0, 0)

    sources = [folder / f"{stem}.jsonl"] + sorted(folder.glob(f"{stem}.shard-*-of-*.jsonl"), key=shard_index)
    rows: dict[Key, dict[str, Any]] = {}
    for source in sources:
        for row in read_rows(source):
            old = rows.setdefault(row_key(row), row)
            if old.get("settings") != row.get("settings"):
                raise LipError(f"{source.name} and an earlier file hold the same run ({row['method']} "
                               f"{row['mask']} round {row['round']}, {row['image']}, {row['task']}, "
                               f"seed {row['seed']}) made with different settings; merge them separately")
    merged = list(rows.values())
    if merged:
        write_rows(folder / f"{stem}.jsonl", merged)
    return merged


# ------------------------------------------------------------------ summary

def label(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A legend name: the mask file (and method); baselines name their mask only when it is ambiguous."""
    method, mask = row["method"], row.get("mask")
    if method == "mask":
        return f"{mask} ({row['mask_method']})" if row.get("mask_method") else str(mask)
    name = {"dense": "dense", "random": "random mask", "deep-decoder": "deep decoder"}[method]
    if len({r.get("mask") for r in rows if r["method"] == method}) > 1:
        name += f" ~{mask}"
    return name


def method_order(row: dict[str, Any]) -> tuple:
    m = row["method"]
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), str(row.get("mask")), row["round"])


def mean_of(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.fmean(vals) if vals else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per method/mask/round/task/image (std blank for one seed)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["mask"], r["round"], r["task"], r["image"]), []).append(r)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    out = []
    for (method, mask, round_, task, image), rs in groups.items():
        first = rs[0]
        s = {"task": task, "image": image, "method": method, "mask": mask, "label": label(first, rows),
             "round": round_, "sparsity": first.get("sparsity"), "nonzero_params": first.get("nonzero_params"),
             "metric": first.get("metric"), "seeds": len(rs), "diverged": sum(bool(r.get("diverged")) for r in rs)}
        for stat in STATS:
            vals = [float(r[stat]) for r in rs if r.get(stat) is not None]
            s[f"{stat}_mean"] = statistics.fmean(vals) if vals else None
            s[f"{stat}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(s)
    out.sort(key=lambda s: (tasks.index(s["task"]), s["image"], method_order(s)))
    return out


def write_csv(path: Path, records: list[dict[str, Any]], columns: list[str]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for rec in records:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else "" if v is None else v)
                    for k, v in rec.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


SUMMARY_COLUMNS = (["task", "image", "method", "mask", "label", "round", "sparsity", "nonzero_params", "metric",
                    "seeds", "diverged"] + [f"{s}_{x}" for s in STATS for x in ("mean", "std")])


# ------------------------------------------------------------------ plots

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _tasks(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["task"] for r in rows))


def _by_label(rows: list[dict[str, Any]], every: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=method_order):
        out.setdefault(label(r, every), []).append(r)
    return out


def _extent(rows: list[dict[str, Any]]) -> str:
    n_img, n_seed = len({r["image"] for r in rows}), len({r["seed"] for r in rows})
    return f"{n_img} image{'s' * (n_img > 1)} x {n_seed} seed{'s' * (n_seed > 1)}"


def _metric_name(rows: list[dict[str, Any]]) -> str:
    return "PSNR-Y" if any(r.get("metric") == "psnr_y" for r in rows) else "PSNR"


def plot_sparsity(rows: list[dict[str, Any]], folder: Path, metric: str = "stopped") -> list[Path]:
    """Per task, PSNR against sparsity (%), one line per method/mask, dense as a horizontal reference."""
    column, what = PLOT_METRICS[metric]
    paths = []
    for task in _tasks(rows):
        trows = [r for r in rows if r["task"] == task]
        points: dict[str, list[tuple[float, float]]] = {}
        reference = set()
        for name, rs in _by_label(trows, rows).items():
            rounds = {k: [r for r in rs if r["round"] == k] for k in dict.fromkeys(r["round"] for r in rs)}
            means = [(100 * at[0]["sparsity"], mean_of(r.get(column) for r in at)) for at in rounds.values()]
            if rs[0]["method"] == "dense":
                name += " (reference)"
                reference.add(name)
            points[name] = sorted((x, v) for x, v in means if v is not None)
        right = max((x for pts in points.values() for x, _ in pts), default=0.0)
        series = {name: [(0.0, pts[0][1]), (right, pts[0][1])] if name in reference and right > 0 else pts
                  for name, pts in points.items() if pts}  # dense: its 0 % point drawn across
        if not series:
            continue
        path = folder / f"psnr_vs_sparsity_{_slug(task)}.png"
        plot.line_chart(series, path, f"{task}: {_metric_name(trows)} ({what}) vs sparsity, "
                        f"mean of {_extent(trows)}", "sparsity (%)", f"{_metric_name(trows)} (dB), {what}",
                        xlim=(0.0, min(100.0, right + 5)))
        paths.append(path)
    return paths


def focus_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each method/mask at its sparsest evaluated round (dense as is): what curves and spectra show."""
    top: dict[tuple, int] = {}
    for r in rows:
        key = (r["method"], r["mask"])
        top[key] = max(top.get(key, r["round"]), r["round"])
    return [r for r in rows if r["round"] == top[(r["method"], r["mask"])]]


def mean_curve(curves: list[list[list[float]]], log: bool = False) -> list[tuple[float, float]]:
    """Mean over runs at the iterations every run reached (early-stopped runs end the curve)."""
    maps = [{int(it): v for it, v in c if v is not None and (not log or v > 0)} for c in curves if c]
    if not maps:
        return []
    common = sorted(set.intersection(*(set(m) for m in maps)))
    return [(it, statistics.fmean(math.log10(m[it]) if log else m[it] for m in maps)) for it in common]


def _curve_label(name: str, rs: list[dict[str, Any]]) -> str:
    return name if rs[0]["method"] == "dense" else f"{name}, {100 * rs[0]['sparsity']:.1f}%"


def plot_curves(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Per task, PSNR and log10 loss against iteration, one line per method/mask at its sparsest round."""
    paths = []
    for task in _tasks(rows):
        trows = focus_rows([r for r in rows if r["task"] == task])
        groups = _by_label(trows, rows)
        for kind, key, ylabel, log in (("psnr", "curve_psnr", f"{_metric_name(trows)} (dB) vs clean", False),
                                       ("loss", "curve_loss", "log10 training loss (MSE)", True)):
            series = {_curve_label(n, rs): mean_curve([r.get(key) for r in rs], log) for n, rs in groups.items()}
            series = {n: pts for n, pts in series.items() if pts}
            if not series:
                continue
            path = folder / f"curves_{kind}_{_slug(task)}.png"
            what = "PSNR" if kind == "psnr" else "loss"
            plot.line_chart(series, path, f"{task}: {what} during fitting, sparsest round per method, "
                            f"mean of {_extent(trows)}", "iteration", ylabel, markers=False)
            paths.append(path)
    return paths


# ------------------------------------------------------------------ experiments

def spectrum(restored: torch.Tensor, clean: torch.Tensor) -> dict[str, Any]:
    """How much of the clean image's spectral energy a restore keeps, below and above a low disk.

    Both images are Hann-windowed first (the wrap-around edge of a non-periodic image would add
    false high frequencies); energy is |FFT|^2 summed over channels, DC left out. Energy ratios are
    restored/clean: 1 = as much as the clean image, < 1 = smoothed away, > 1 = extra (noise,
    artefacts). The magnitude error is sum ||F_r| - |F_c|| / sum |F_c| over a band. Frequencies are
    radii as a fraction of Nyquist: the low disk has radius LOW_RADIUS, RADIAL_BINS rings cover 0..1
    (corners beyond Nyquist count as high frequencies but lie in no ring).
    """
    h, w = clean.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))
    fr, fc = (torch.fft.fft2(x.detach().double().cpu() * window).abs() for x in (restored, clean))
    er, ec = fr.pow(2).sum(dim=(0, 1)), fc.pow(2).sum(dim=(0, 1))
    diff, mag = (fr - fc).abs().sum(dim=(0, 1)), fc.sum(dim=(0, 1))
    rho = torch.sqrt(torch.fft.fftfreq(h, dtype=torch.float64)[:, None] ** 2
                     + torch.fft.fftfreq(w, dtype=torch.float64)[None, :] ** 2) / 0.5
    ac = rho > 0

    def ratio(num: torch.Tensor, den: torch.Tensor, sel: torch.Tensor) -> float | None:
        d = float(den[sel].sum())
        return float(num[sel].sum()) / d if d > 0 else None

    low, high = ac & (rho <= LOW_RADIUS), rho > LOW_RADIUS
    edges = torch.linspace(0, 1, RADIAL_BINS + 1, dtype=torch.float64)
    rings = [ratio(er, ec, ac & (rho > a) & (rho <= b)) for a, b in zip(edges[:-1], edges[1:])]
    return finite({"low_energy_ratio": ratio(er, ec, low), "high_energy_ratio": ratio(er, ec, high),
                    "low_magnitude_error": ratio(diff, mag, low), "high_magnitude_error": ratio(diff, mag, high),
                    "radial_energy_ratio": [_r(v, 6) for v in rings]})


SPECTRUM_COLUMNS = ["task", "image", "seed", "method", "mask", "label", "round", "sparsity", "low_energy_ratio",
                    "high_energy_ratio", "low_magnitude_error", "high_magnitude_error"]


def write_spectrum(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """spectrum.csv (one line per run) and, per task, the radial energy ratio per method (sparsest round)."""
    rows = [r for r in rows if r.get("spectrum")]
    if not rows:
        return []
    tasks = _tasks(rows)
    records = [{**{k: r.get(k) for k in SPECTRUM_COLUMNS}, "label": label(r, rows),
                **{k: v for k, v in r["spectrum"].items() if k != "radial_energy_ratio"}}
               for r in sorted(rows, key=lambda r: (tasks.index(r["task"]), r["image"], r["seed"], method_order(r)))]
    paths = [write_csv(folder / "spectrum.csv", records, SPECTRUM_COLUMNS)]
    centres = [(i + 0.5) / RADIAL_BINS for i in range(RADIAL_BINS)]
    for task in tasks:
        trows = focus_rows([r for r in rows if r["task"] == task])
        series = {}
        for name, rs in _by_label(trows, rows).items():
            rings = [[r["spectrum"]["radial_energy_ratio"][i] for r in rs] for i in range(RADIAL_BINS)]
            logs = [mean_of(math.log10(v) for v in ring if v) for ring in rings]
            series[_curve_label(name, rs)] = [(c, math.nan if y is None else y) for c, y in zip(centres, logs)]
        path = folder / f"spectrum_{_slug(task)}.png"
        plot.line_chart(series, path, f"{task}: spectral energy kept (auto-stopped), sparsest round per method",
                        "frequency (fraction of Nyquist)", "log10 energy ratio restored/clean (0 = same)")
        paths.append(path)
    return paths


TARGET_NAMES = {"clean": "clean image", "noisy": "noisy image", "shuffled": "pixel-shuffled image",
                "noise": "U(0,1) noise image"}


def plot_impedance(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per prior and image: log10 loss against iteration for the four targets (mean over seeds)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=method_order):
        groups.setdefault((r["method"], r["mask"], r["round"], r["image"]), []).append(r)
    paths = []
    for (method, _, round_, image), rs in groups.items():
        series = {TARGET_NAMES[t]: mean_curve([r.get("curve_loss") for r in rs if r["task"] == t], log=True)
                  for t in IMPEDANCE_TARGETS}
        series = {name: pts for name, pts in series.items() if pts}
        if not series:
            continue
        name = label(rs[0], rows)
        where = "" if method == "dense" else f", round {round_} ({100 * rs[0]['sparsity']:.1f}% sparse)"
        seeds = len({r["seed"] for r in rs})
        path = folder / f"impedance_{_slug(name)}_r{round_}_{_slug(Path(image).stem)}.png"
        plot.line_chart(series, path, f"Impedance: {name}{where}, {image}"
                        + (f", mean of {seeds} seeds" if seeds > 1 else ""),
                        "iteration", "log10 training loss (MSE)", markers=False)
        paths.append(path)
    return paths


def write_outputs(folder: Path, results: list[dict[str, Any]], impedance: list[dict[str, Any]],
                  curves: bool, spectra: bool, metric: str) -> tuple[list[dict[str, Any]], list[Path]]:
    """Summary CSV and every plot the rows support; returns the summary and the files written."""
    written: list[Path] = []
    summary = summarise(results) if results else []
    if results:
        written.append(write_csv(folder / "summary.csv", summary, SUMMARY_COLUMNS))
        written += plot_sparsity(results, folder, metric)
        if curves:
            written += plot_curves(results, folder)
        if spectra:
            written += write_spectrum(results, folder)
    if impedance:
        written += plot_impedance(impedance, folder)
    return summary, written
