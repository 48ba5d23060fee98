"""The fast preset's per-task stop and output settings are the ones the development set chose
(experiments/RESULTS-stop-tasks.md), and the paper preset keeps the paper's."""
from __future__ import annotations

import torch

from lipcli import api, config

CPU = torch.device("cpu")


def test_fast_inpainting_and_sr_report_the_ema_with_the_measured_caps():
    for task, iters in (("inpaint", 1875), ("sr", 1500)):
        fast = config.preset("fast", task)
        assert (fast["ema"], fast["iters"], fast["es_patience"], fast["es_window"]) == (0.99, iters, 300, 200)
        assert config.fit_config(fast, True, CPU, 0).ema == 0.99  # reaches the fitting loop
        assert config.preset("paper", task)["ema"] == 0.0  # the paper reports the raw output for these tasks
    # The mask search keeps its iterations per round: only the restore's cap moved.
    assert (config.preset("fast", "inpaint")["search_iters"], config.preset("fast", "sr")["search_iters"]) == (1500, 1200)
    assert config.preset("fast", "denoise")["ema"] == config.preset("paper", "denoise")["ema"] == 0.99


def test_fast_inpainting_runs_to_its_cap_and_every_other_task_stops_itself():
    """Noise-free inpainting peaked at the horizon on every development crop and its stop only fired early
    (experiments/RESULTS-stop-tasks.md); the paper preset and the other tasks keep the automatic stop."""
    from lipcli.physics import TASKS
    assert config.preset("fast", "inpaint")["early_stop"] is False
    assert all(config.preset("fast", t)["early_stop"] for t in TASKS if t != "inpaint")
    assert all(config.preset("paper", t)["early_stop"] for t in TASKS)
    given = {"early_stop": True}  # a flag wins
    assert config.resolve("inpaint", None, "fast", given)["early_stop"] is True


def test_the_fast_preset_fits_the_shipped_tickets_where_they_were_measured():
    """Denoising and SR x4 have tickets of their own (experiments/RESULTS-sparse.md); SR's at its own cap of
    3000 iterations and at scale 4 only. Inpainting fits the dense net, as the paper preset does everywhere."""
    assert config.preset("fast", "denoise")["ticket"] == "dip-channel-house"
    assert [config.preset("fast", t)["ticket"] for t in ("sr", "inpaint")] == ["dip-channel-house-sr4", None]
    assert config.preset("paper", "denoise")["ticket"] is None
    sr = api.restorer(task="sr", device="cpu")
    assert (sr.cfg.iters, sr.settings["ticket"], sr.prior.masks is not None) == (3000, "dip-channel-house-sr4", True)
    for other in (api.restorer(task="sr", scale=2, device="cpu"), api.restorer(task="sr", dense=True, device="cpu")):
        assert (other.cfg.iters, other.prior.masks) == (config.preset("fast", "sr")["iters"], None)
    assert api.restorer(task="sr", iters=40, device="cpu").cfg.iters == 40  # a flag still wins


def test_fast_inpainting_decays_the_kernels_and_a_flag_or_the_paper_preset_turns_it_off():
    """Inpainting runs to its cap, and the decay brought its fits nearer their peak there
    (experiments/RESULTS-decay-tasks.md); the other tasks' fits under the fast preset and the paper preset do not
    decay (the denoising ticket's library entry has its own schedule)."""
    from lipcli.physics import TASKS
    assert config.preset("fast", "inpaint")["weight_decay"] == 0.2
    assert config.fit_config(config.preset("fast", "inpaint"), False, CPU, 0).weight_decay == 0.2
    assert all(config.preset("fast", t)["weight_decay"] == 0 for t in TASKS if t != "inpaint")
    assert all(config.preset("paper", t)["weight_decay"] == 0 for t in TASKS)
    assert api.restorer(task="inpaint", device="cpu").cfg.weight_decay == 0.2
    assert api.restorer(task="inpaint", weight_decay=0, device="cpu").cfg.weight_decay == 0
