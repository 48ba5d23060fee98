"""Builders shared by the `lip prune` tests: a narrow net, procedural images, one-call searches,
and a spy that records what every IMP session's fit started from and ended with.

Everything is tiny: an 8-channel, 5-level DIP hourglass (13k parameters, 12,408 of them in conv
weights) at 64x64, fitted for 10 iterations per round, so a 3-round search takes well under a second.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from lipcli import artifact, config, images, nets
from lipcli.fit import FitConfig, Step
from lipcli.masks import ladder_kept, record_round, top_global
from lipcli.problem import Problem, load_problem, provenance
from lipcli.prune import imp as imp_mod
from lipcli.prune import scores
from lipcli.prune.imp import ImpSettings
from lipcli.prune.run import SearchRequest, search
from lipcli.prune.search import Trajectory

torch.set_num_threads(1)  # bit-reproducible searches (resume is compared with torch.equal)

NET = {"preset": "dip", "down": [8] * 5, "up": [8] * 5, "skip": [4] * 5}
SPEC = nets.resolve_spec(NET)
CPU = torch.device("cpu")
ITERS = 10
CLEAN_NAME = "clean_ref.png"
NARROW_YAML = ("net: {preset: dip, down: [8, 8, 8, 8, 8], up: [8, 8, 8, 8, 8], skip: [4, 4, 4, 4, 4]}\n"
               "precision: fp32\n")


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A (3,H,W) float32 test picture in [0,1]: smooth waves, a ramp and a few flat squares (edges)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    chans = []
    for _ in range(3):
        fy, fx = rng.uniform(1.5, 5.0, size=2)
        chans.append(0.5 + 0.25 * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6.3))
                     + 0.2 * (xx - yy))
    img = np.stack(chans)
    for _ in range(4):
        h, w = rng.integers(6, 20, size=2)
        top, left = rng.integers(0, height - h), rng.integers(0, width - w)
        img[:, top:top + h, left:left + w] = rng.uniform(0, 1, size=(3, 1, 1))
    return np.clip(img, 0, 1).astype(np.float32)


def write_picture(path: Path, height: int = 64, width: int = 64, seed: int = 0,
                  noise_sigma: float | None = None) -> Path:
    """Write a procedural picture (optionally with seeded Gaussian noise, 0-255 units) as 8-bit PNG."""
    pixels = picture(height, width, seed)
    if noise_sigma is not None:
        rng = np.random.default_rng(seed + 1000)
        pixels = np.clip(pixels + rng.normal(0, noise_sigma / 255, pixels.shape), 0, 1).astype(np.float32)
    images.save_image(path, pixels)
    return path


def write_config(folder: Path) -> Path:
    path = folder / "narrow.yaml"
    path.write_text(NARROW_YAML)
    return path


def isolated_folder(folder: Path, monkeypatch: Any) -> Path:
    """img.png and narrow.yaml in `folder`, made the working directory, lip's environment variables unset."""
    write_picture(folder / "img.png", 64, 64, seed=0)
    write_config(folder)
    monkeypatch.chdir(folder)
    for var in ("LIP_DEVICE", "LIP_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return folder


def make_mask(path: Path, spec: dict[str, Any] = SPEC, rounds: int = 3, seed: int = 0) -> Path:
    """A small valid IMP-style artifact: seeded init, random global scores, kept = N / 2^k at round k."""
    torch.manual_seed(seed)
    net = nets.build(spec)
    names = nets.conv_weight_names(net)
    traj = Trajectory.start(net, names, method="imp", seed=seed)
    traj.record(0, 0.0)
    total = sum(traj.prune_round[n].numel() for n in names)
    drawn = scores.random(net, names, scores.ScoreContext(gen=torch.Generator().manual_seed(seed)))
    for k in range(1, rounds + 1):
        before = traj.masks(k - 1)
        record_round(traj.prune_round, before, top_global(drawn, before, ladder_kept(total, 0.5, k)), k)
        traj.record(k, 0.0, loss=0.1)
    artifact.save(path, traj.to_artifact(None))
    return path


def settings() -> dict[str, Any]:
    return config.resolve("denoise", None, "fast", {"precision": "fp32", "net": NET})


def problem(path: Path, simulate: bool = True, clean: Path | None = None) -> Problem:
    return load_problem(path, "denoise", settings(), simulate=simulate, seed=0, clean=clean)


def fit_config(iters: int = ITERS) -> FitConfig:
    return FitConfig(iters=iters, early_stop=False, precision="fp32", seed=0)


def request(method: str = "imp", rounds: int = 3, rate: float = 0.2, scope: str = "conv",
            keep_input_dense: bool = False, iters: int = ITERS, seed: int = 0,
            target_sparsity: float | None = None, like: Path | None = None, synflow_iters: int = 3,
            **imp_kw: Any) -> SearchRequest:
    return SearchRequest(
        method=method, task="denoise", net=NET, rounds=rounds, rate=rate, scope=scope,
        keep_input_dense=keep_input_dense, imp=ImpSettings(rounds=rounds, rate=rate, **imp_kw),
        fit=fit_config(iters), seed=seed, synflow_iters=synflow_iters, target_sparsity=target_sparsity,
        like=str(like) if like else None)


def run_search(req: SearchRequest, problems: list[Problem], out: Path, resume: bool = False,
               on_step: Callable[[Step], None] = lambda s: None,
               on_round: Callable[[dict[str, Any]], None] = lambda r: None, slim: bool = False) -> artifact.Artifact:
    return search(req, problems, provenance(problems), CPU, out, resume, lambda: None, on_step, on_round, slim)


def params_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()}


class FitSpy:
    """Wraps `fit` (monkeypatched into a module): records each call's starting weights, masks,
    targets, weights after chosen iterations, final weights and result. `script` optionally
    overrides each call's losses (to drive the stop rule); `interrupt_at` = (call, iteration)
    raises KeyboardInterrupt from inside that call."""

    def __init__(self, real: Callable[..., Any], grab_at: tuple[int, ...] = (),
                 script: list[float] | None = None, interrupt_at: tuple[int, int] | None = None) -> None:
        self.real, self.grab_at, self.script, self.interrupt_at = real, set(grab_at), script, interrupt_at
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model, targets, cfg, **kw):
        call = {"entry": params_of(model), "masks": kw.get("masks"), "targets": targets, "snaps": {},
                "cfg": cfg}
        index = len(self.calls)
        self.calls.append(call)

        def grab(step: Step) -> None:
            if step.iteration in self.grab_at:
                call["snaps"][step.iteration] = params_of(model)
            if self.interrupt_at == (index, step.iteration):
                raise KeyboardInterrupt

        kw["callbacks"] = list(kw.get("callbacks", ())) + [grab]
        result = self.real(model, targets, cfg, **kw)
        if self.script is not None:
            result.losses = [float(self.script[index])]
        call["after"], call["result"] = params_of(model), result
        return result


def spied_search(req: SearchRequest, problems: list[Problem], out: Path) -> tuple[artifact.Artifact, FitSpy]:
    """Run a search with every IMP session's fit recorded (the module fixtures' shared set-up)."""
    spy = FitSpy(imp_mod.fit)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(imp_mod, "fit", spy)
        art = run_search(req, problems, out)
    return art, spy


def nested(art: artifact.Artifact) -> bool:
    """mask(k+1) is a subset of mask(k) for every round and parameter."""
    for k in range(art.rounds):
        before, after = art.mask(k), art.mask(k + 1)
        if any(bool((after[n] & ~before[n]).any()) for n in before):
            return False
    return True
