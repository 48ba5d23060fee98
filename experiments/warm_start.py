"""Warm starts of the default denoising prior (issue 12): does the ticket, pre-fitted for K iterations on one
image, reach its peak in fewer iterations on other images, and at what PSNR?

Arms: `cold` is today's default restore (the compacted `dip-channel-house` ticket from its theta0). `SRC:K`
starts the same restore from the ticket's weights after a K-iteration fit (fast preset, no stop, seed 0) of
the bundled House crop: `noisy` = the noisy sample the ticket was searched on (blind, as the search), `clean`
= the clean crop, `clean-fresh` = the clean crop with an input code that changes every iteration. Everything else is today's default (`lip restore --simulate --sigma 25`, automatic stop,
2400 cap, one thread). Crops: the 128x128 centre crops of experiments/es_collect.py (House is in its tune
half: choose K and the source on TUNE, report on REPORT). One JSON row per restore, appended as it ends; a
re-run skips the rows already there.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/warm_start.py cold,noisy:300,noisy:100,clean:300 \
        baboon512,bird,butterfly,coastguard,comic,f16 experiments/warm/tune.jsonl [SIGMA [SEED]]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

import lipcli.restore as R
from lipcli import api
from es_collect import Job, prepare

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "lipcli" / "data"
# source -> (image, input jitter of the warm-up fit). `fresh`: the code's jitter (0.1) is 3x the code's own
# spread (U[0, 0.1): std 0.029), so the input changes every iteration and the weights cannot learn one code.
SOURCES = {"clean": (DATA / "house.png", None), "noisy": (DATA / "house-noisy.png", None),
           "clean-fresh": (DATA / "house.png", 0.1)}
_state: dict = {"weights": None, "capture": False, "model": None}
_fitted_form = R.fitted_form


def _form(net, prior, notify):
    """restore.py's fitted form (the compacted ticket), its weights replaced by the warm ones when set."""
    model, masks, info = _fitted_form(net, prior, notify)
    if _state["weights"] is not None:
        model.load_state_dict(_state["weights"])
    if _state["capture"]:
        _state["model"] = model
    return model, masks, info


R.fitted_form = _form


def warm_weights(source: str, k: int, cache: Path) -> dict[str, torch.Tensor]:
    """The compacted ticket's weights after k iterations on the House crop `source` (cached in `cache`)."""
    path = cache / f"{source}{k}.pt"
    if path.exists():
        return torch.load(path)
    _state["capture"] = True
    image, jitter = SOURCES[source]
    api.restorer(task="denoise", early_stop=False, iters=k, device="cpu", seed=0, resume_every=None,
                 **({} if jitter is None else {"reg_noise": jitter}))(image)
    _state["capture"] = False
    weights = {n: t.detach().clone() for n, t in _state["model"].state_dict().items()}
    torch.save(weights, path)
    return weights


def restore(image: Path, weights: dict[str, torch.Tensor] | None, sigma: float, seed: int) -> dict:
    _state["weights"] = weights
    job = api.restorer(task="denoise", simulate=True, sigma=sigma, device="cpu", seed=seed, resume_every=None)
    began = time.perf_counter()
    r = job(image).report
    _state["weights"] = None
    return {**{k: r[k] for k in ("iterations", "stopped_at", "psnr_stopped", "ssim_stopped", "psnr_final",
                                 "oracle_best_psnr", "oracle_best_iter")},
            "seconds": round(time.perf_counter() - began, 1)}


def main() -> None:
    arms, images, out = sys.argv[1].split(","), sys.argv[2].split(","), Path(sys.argv[3])
    sigma = float(sys.argv[4]) if len(sys.argv) > 4 else 25.0
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0  # the restores' (noise, input code, jitter); the warm-up's is 0
    torch.set_num_threads(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["image"], r["arm"], r["sigma"], r.get("seed", 0)) for r in map(json.loads, out.read_text().splitlines())} \
        if out.exists() else set()
    for image in images:
        path, _, _ = prepare(Job(image, 128, 0, "denoise", str(int(sigma)), seed), HERE / "es_dev" / "crops")
        for arm in arms:
            if (image, arm, sigma, seed) in done:
                continue
            source, _, k = arm.partition(":")
            weights = None if arm == "cold" else warm_weights(source, int(k), out.parent)
            row = {"image": image, "arm": arm, "sigma": sigma, "seed": seed, **restore(path, weights, sigma, seed)}
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
