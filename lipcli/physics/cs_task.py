"""Compressive sensing as a restoration task: `--task cs` of restore, prune and transfer (grid tasks
cs1000, cs2000, cs4000: m measurements), with the operators of cs.py.

The problem is the one `lip cs` builds, through the same functions (measurements.py): `--simulate`
measures a clean image with the seeded operator `--operator` names (or `--matrix A.npy`), with m
measurements, noise 0.01 and k outliers; without it, measurements y.npy are read with the operator that
made them (`--operator operator.yaml`, or `--matrix A.npy --shape H,W[,C]`). A gray image is measured as
one channel; the net's three channels stand for it by their mean (the operator averages them, and
scores and the written image are of that mean).

Median-of-Means (the default solver, as `lip cs`'s): the fit's loss is the MOM of the per-measurement
squared errors (`MedianOfMeans`), so a minority of corrupted measurements never reaches the gradient,
whatever prior is fitted (dense, masked, deep decoder); `solver: ls` fits their plain mean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import seeds
from ..errors import LipError
from ..images import resolve
from .base import LinearPhysics
from .cs import operator_help
from .measurements import DEFAULTS, check_flags, check_source, flag_operator, parse_shape, read_measurements
from .base import array_hash
from .task import SIMULATED, Flag, Measured, Task, register_task

SOLVERS = ("ls", "mom")
MOM_SEED = 500_009  # the partitions are part of the objective: the same for every run seed


def mom(rows: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """Median of means of per-row values (m,): rows are randomly permuted and split into
    max(1, m // batch_size) near-equal batches; the mean of the batch whose mean is the median
    (for an even count the upper one, sorted index n // 2, as Jalal et al.'s and LIP's code take it) is returned,
    differentiably. One batch = the plain mean."""
    m = rows.shape[-1]
    n_batches = max(1, m // batch_size)
    perm = torch.randperm(m, generator=gen).to(rows.device)
    means = torch.stack([b.mean() for b in torch.tensor_split(rows[perm], n_batches)])
    idx = torch.argsort(means.detach(), stable=True)[n_batches // 2]
    return means[idx]


class MedianOfMeans(LinearPhysics):
    """`op` with the loss mom(per-row squared errors) (MOM minimisation, Lecue & Lerasle 2020): each call
    permutes the rows (seeded) into batches of `batch_size` and returns the median batch's mean. Same
    scale as the plain mean squared error (one batch = exactly that). A, its adjoint and the noise are op's."""

    def __init__(self, op: LinearPhysics, batch_size: int) -> None:
        super().__init__(op.noise_model)
        self.op, self.batch_size, self.name = op, batch_size, op.name
        self.gen = seeds.generator(MOM_SEED)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.A(x)

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.op(x, generator)  # the measurements op simulates (CS draws its noise apart from its matrix)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.A_adjoint(y)

    def input_shape(self, y_shape: torch.Size) -> tuple[int, ...]:
        return self.op.input_shape(y_shape)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mom(self.op.row_losses(x, y).mean(dim=0), self.batch_size, self.gen)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.op.output_size(height, width)

    def loss_settings(self) -> dict[str, Any]:
        return {"mom_batch": self.batch_size}

    def params(self) -> dict[str, Any]:
        return {**self.op.params(), "loss": "mom", "mom_batch": self.batch_size}

    def warning(self, y: torch.Tensor) -> str | None:
        """Half its batches or more may hold an outlier: the median batch is then likely corrupted (known for
        simulated measurements only, whose outliers the operator counts)."""
        corrupted = getattr(self.op, "k", 0)
        n_batches = max(1, y.shape[-1] // self.batch_size)
        if corrupted and 2 * corrupted >= n_batches:
            return (f"{corrupted} outliers and only {n_batches} MOM batches; the median batch is likely corrupted "
                    "(use fewer measurements per batch, --mom-batch)")
        return None

    def generators(self) -> list[torch.Generator]:
        return [self.gen]


def _fitted(op: LinearPhysics, settings: dict[str, Any]) -> LinearPhysics:
    """`op` with the loss the solver fits: the median of means (mom) or the plain mean (ls)."""
    solver, mom_batch = str(settings["solver"]), int(settings["mom_batch"])
    if solver not in SOLVERS:
        raise LipError(f"unknown --solver {solver!r}: use {' or '.join(SOLVERS)}")
    if mom_batch < 1:
        raise LipError(f"--mom-batch {mom_batch} must be >= 1")
    if solver == "mom":
        check_batches(op.m, mom_batch)
    return MedianOfMeans(op, mom_batch) if solver == "mom" else op


def check_batches(m: int, batch: int) -> None:
    """Median-of-Means needs two batches or more: of one batch it is the plain mean (least squares), which a
    report would still call mom."""
    if m // batch < 2:
        raise LipError(f"--mom-batch {batch} makes one batch of the {m} measurements, whose median is their mean: "
                       f"least squares; give --mom-batch {m // 2} or less, or --solver ls" if m >= 2 else
                       f"{m} measurement cannot be split into Median-of-Means batches: use --solver ls")


class CSTask(Task):
    name = "cs"
    # None: what `lip cs` uses when the flag is not given (measurements.DEFAULTS); given with measurements
    # from files, they are refused (the operator sets them).
    options = {"measurements": None, "outliers": None, "noise": None, "outlier_value": None, "operator": "auto",
               "matrix": None, "shape": None, "solver": "mom", "mom_batch": 20}
    flags = {
        "measurements": Flag(f"CS, simulated ({SIMULATED}): number of measurements m [200]", int, short="-m", min=1),
        "outliers": Flag(f"CS, simulated ({SIMULATED}): corrupted measurements k (the paper: 2% of m) [0]", int,
                         min=0),
        "operator": Flag(lambda: f"CS: {operator_help()} [auto]", str),
        "matrix": Flag("CS: measurement matrix A.npy, float (m, n), n = H*W*C", Path, grid=False),
        "shape": Flag("CS: H,W[,C] of the image measured by --matrix", str, grid=False),
        "solver": Flag("CS: mom (Median-of-Means loss, robust to outliers) | ls (least squares) [mom]", str),
        "mom_batch": Flag("CS: measurements per Median-of-Means batch (--solver mom) [20]", int, min=1),
    }
    numbers = {"noise": Flag("", float, min=0), "outlier_value": Flag("", float)}
    fitting = {"iters": 1500, "reg_noise": 1 / 30, "ema": 0.0}  # CS-DIP as `lip cs --prior dip` fits it
    fast_iters = 1500
    variant_hint = "give the measurements: cs1000, cs2000 or cs4000"

    def check_flags(self, given: dict[str, Any], simulate: bool, inpaint_mask: Path | None) -> None:
        super().check_flags(given, simulate, inpaint_mask)
        solver = given.get("solver") or self.options["solver"]
        if given.get("mom_batch") is not None and solver != "mom":
            raise LipError(f"--mom-batch sets the median-of-means batches; --solver {solver} has none: drop it")

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> LinearPhysics:
        """Measure a clean image (--simulate; real measurements come through `read_observation`)."""
        flags = self._flags(settings, simulate=True)
        op = flag_operator((1 if gray else 3, height, width), simulate=True, seed=seed, **flags)
        return _fitted(op, settings)

    def read_observation(self, source: Any, settings: dict[str, Any]) -> Measured:
        """Measurements y: a float (m,) .npy file, with --matrix A.npy --shape H,W[,C] or --operator FILE."""
        if not isinstance(source, (str, Path)):
            raise LipError("--task cs reads measurements y from a .npy file (add --simulate to measure an image)")
        path = resolve(source)
        flags = self._flags(settings, simulate=False)
        check_source(path, operator=flags["operator"], matrix=flags["matrix"], command="--task cs")
        shape = parse_shape(str(settings["shape"])) if settings["shape"] else None
        op, y, _ = read_measurements(path, shape, operator=flags["operator"], matrix=flags["matrix"], seed=0)
        return Measured(op=_fitted(op, settings), y=y, name=path.stem, sha256=array_hash(y.numpy()),
                        gray=op.shape[0] == 1)

    def _flags(self, settings: dict[str, Any], simulate: bool) -> dict[str, Any]:
        """The operator flags of the settings, checked together as `lip cs` checks them."""
        matrix = Path(settings["matrix"]) if settings["matrix"] else None
        given = {k: settings[k] for k in DEFAULTS}
        check_flags(simulate=simulate, operator=str(settings["operator"]), matrix=matrix,
                    shape=settings["shape"], given=given)
        return {"operator": str(settings["operator"]), "matrix": matrix, "given": given}

    def variants(self) -> dict[str, dict[str, Any]]:
        return {f"cs{m}": {"measurements": m} for m in (1000, 2000, 4000)}

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        values = {k: DEFAULTS[k] if settings[k] is None else settings[k] for k in DEFAULTS}
        matrix = str(settings["matrix"]) if settings["matrix"] else None
        return {**values, "operator": str(settings["operator"]), "matrix": matrix, "solver": settings["solver"],
                "mom_batch": int(settings["mom_batch"])}


register_task(CSTask())
