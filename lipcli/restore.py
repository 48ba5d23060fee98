"""Restore one problem with a (possibly masked) prior: the engine behind `lip restore` and `transfer`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from . import allocator, artifact, config, device as devices, nets, seeds
from .errors import LipError
from .fit import FitConfig, FitResult, Step, fit
from .masks import Masks, mask_sparsity
from .nets.compact import compact as compact_net, disconnected, kept_spec
from .problem import Problem
from .resume import Keeper


@dataclass
class Prior:
    """A net spec, optionally its initial weights (a lottery ticket) and a keep-mask.

    `compact`: fit the masked net in its channel-compacted form (lipcli/nets/compact.py): the same
    function with fewer FLOPs when whole filters are pruned. None (the default) compacts whenever the
    mask removes whole channels; True asks for it (and says why when it cannot); False never.
    """

    spec: dict[str, Any]
    theta0: dict[str, torch.Tensor] | None = None
    masks: Masks | None = None
    source: dict[str, Any] = field(default_factory=dict)
    compact: bool | None = None
    fresh: bool = False  # new weights for a mask (--init fresh): drawn from seeds.FRESH_INIT's stream

    @property
    def sparsity(self) -> float:
        return mask_sparsity(self.masks)

    @cached_property
    def fitted_spec(self) -> dict[str, Any]:
        """The spec a fit's memory is planned with: the compacted widths where the fit compacts (the default
        ticket keeps about a third of the channels; its estimate is 0.34x the dense net's at 1536x1536), else the
        spec."""
        if self.compact is False or not self.masks or not nets.skeleton(self.spec).compactable:
            return self.spec
        kept = kept_spec(self.spec, self.masks)
        return kept if nets.count_params(nets.skeleton(kept)) < nets.count_params(nets.skeleton(self.spec)) \
            else self.spec

    @cached_property
    def warning(self) -> str | None:
        """Why every fit of this prior will fail, to say once before them: a mask that cuts every channel off the
        output (a SNIP mask can empty a layer) leaves a net, masked or compacted, that makes one constant image."""
        if self.masks and nets.skeleton(self.spec).compactable and disconnected(self.spec, self.masks):
            return ("the mask disconnects the net (every channel is cut off from the output): it can only fit one "
                    "constant image; use another round or mask")
        return None

    def build(self, seed: int) -> torch.nn.Module:
        """The net at its initial weights: the artifact's theta0, or a seeded draw (`fresh`: another one)."""
        net = nets.build(self.spec, seeds.valid(seed + seeds.FRESH_INIT) if self.fresh else seed)
        if self.theta0 is not None:
            net.load_state_dict(self.theta0, strict=False)
        return net


def dense_prior(net: str | dict[str, Any], **overrides: Any) -> Prior:
    """A dense net from a preset name or a {"preset": ..., overrides} mapping."""
    spec = {**nets.resolve_spec(net), **overrides}
    return Prior(spec=spec, source={"prior": spec["kind"] if isinstance(net, dict) else net})


def check_dip_mask(art: artifact.Artifact, path: object) -> artifact.Artifact:
    """The artifact, if it masks a net that restores images (not a generator's, which `lip cs` fits)."""
    if art.spec.get("kind") == "gan":
        raise LipError(f"{path} is a generator's mask (lip prune --prior gan): use it with lip cs --mask and the "
                       "generator prior (not --prior dip); a DIP needs a DIP mask" if art.prune_round else
                       f"{path} is a generator (lip train-generator): use it with lip cs --generator; a DIP needs "
                       "a DIP mask")
    return art


def masked_prior(path: Path | str | artifact.Artifact, round_: int | None, sparsity: float | None, init: str,
                 compact: bool | None = None, label: str | None = None) -> Prior:
    """Load a mask artifact (or take a loaded one) and pick a round: explicit, nearest to a sparsity, or
    the recommended one. `label`: what reports call the mask (a library name), if not its path."""
    art = check_dip_mask(path if isinstance(path, artifact.Artifact) else artifact.load(path), path)
    if round_ is not None and sparsity is not None:
        raise LipError("give --round or --sparsity, not both")
    if sparsity is not None:
        if not 0 <= sparsity < 1:
            raise LipError(f"--sparsity {sparsity} must be in [0, 1)")
        round_ = art.round_for_sparsity(sparsity)
    k = art.recommended_round if round_ is None else round_
    config.check_init(init)
    return Prior(spec=art.spec, theta0=art.theta0 if init == "artifact" else None, masks=art.mask(k),
                 source={"mask": label or ("(in memory)" if path is art else str(path)), "round": k, "init": init,
                         "method": art.meta.get("method")},
                 compact=compact, fresh=init == "fresh")


def plan_memory(spec: dict[str, Any], size: tuple[int, int], cfg: FitConfig, dev: torch.device) -> FitConfig:
    """Decide activation checkpointing and refuse up front (`memory_plan`). On a CPU, memory freed by a step
    stops being kept for the next one where the larger peak that costs would not fit, or under checkpointing
    (lipcli/allocator.py)."""
    ckpt, need, share = memory_plan(spec, size, cfg, dev)
    if dev.type == "cpu" and (ckpt or share is not None and allocator.KEPT_PEAK * need > share):
        allocator.keep_freed_memory(False)  # glibc's lower peak (unmeasured with checkpointing: memory is tight)
    return replace(cfg, checkpoint=ckpt)


def memory_plan(spec: dict[str, Any], size: tuple[int, int], cfg: FitConfig, dev: torch.device
                ) -> tuple[bool, int, float | None]:
    """(checkpointing, bytes needed, bytes lip may fill or None) of a fit at the padded `size` (H, W); refused,
    with the estimate and a hint, rather than die of out-of-memory later. `cfg.checkpoint` None = automatic: on
    only when the plain step would not fit (every conv block's forward then runs twice)."""
    free = devices.available_memory(dev)
    share = None if free is None else devices.MEMORY_SHARE * free  # what a restore may plan to fill
    ckpt = cfg.checkpoint
    if ckpt is None:
        ckpt = share is not None and nets.estimate_bytes(spec, *size, cfg.precision) > share
    need = nets.estimate_bytes(spec, *size, cfg.precision, ckpt)
    if share is not None and need > share:  # the hints name lip restore's flags: lip cs, for one, has neither
        hint = "bf16 precision, " if cfg.precision != "bf16" else ""
        hint += "activation checkpointing (lip restore --checkpoint), " if not ckpt else ""
        raise LipError(f"a {size[1]}x{size[0]} fit (the image padded to the net's multiple) needs about "
                       f"{need / 2**30:.1f} GiB, more than the {share / 2**30:.1f} GiB lip plans to fill of the "
                       f"{free / 2**30:.1f} GiB free on {dev}; {'try ' + hint if hint else ''}crop or downscale "
                       "the image, or use a narrower net")
    return ckpt, need, share


def fitted_form(net: torch.nn.Module, prior: Prior, notify: Callable[[str], None]
                ) -> tuple[torch.nn.Module, Masks | None, dict[str, Any]]:
    """The net fit() trains, its masks and report fields: the masked net or, under `prior.compact`,
    its compacted form built at the initial weights, so that it starts as the masked net's function.

    The compact net keeps trainable every entry that can change the output and carries the masks of
    partially pruned filters; nets/compact.py says how far the two fits agree ("Training").
    """
    if prior.compact is False or (prior.compact is None and not prior.masks):
        return net, prior.masks, {}
    if not net.compactable:
        if not prior.compact:
            return net, prior.masks, {}
        return net, prior.masks, _not_compacted(notify, f"only the DIP skip net is compacted, not a "
                                                        f"{prior.spec['kind']!r} net", {})
    small = compact_net(net, prior.masks)
    r = small.report
    info = {key: r[key] for key in ("params_before", "params_after", "channels_removed", "channels_total")}
    if r["params_after"] >= r["params_before"]:
        if not prior.compact:  # automatic: nothing to say when there is nothing to remove
            return net, prior.masks, {"compact": {"fitted": "masked", **info}}
        why = "no filter is entirely pruned, nothing to compact"
        return net, prior.masks, _not_compacted(notify, why, info)
    notify(f"compacted: {r['params_before']:,} -> {r['params_after']:,} params ({r['channels_removed']:,} of "
           f"{r['channels_total']:,} channels removed); fitting the compact net")
    return small, small.masks, {"compact": {"fitted": "compact", **info}}


def _not_compacted(notify: Callable[[str], None], why: str, info: dict[str, Any]) -> dict[str, Any]:
    notify(f"--compact: {why}; fitting the masked net")
    return {"compact": {"fitted": "masked", **info}}


def check_channels(spec: dict[str, Any], mask: Any, problem: Problem) -> None:
    """Refuse a net whose output channels the problem cannot take (one would be broadcast over a colour
    image's three). `mask`: the artifact the spec came from, if any, named in the fix."""
    k = spec.get("out_channels", 3)
    if k != 3 and not (k == 1 and problem.gray):
        fix = (f"the mask {mask} was found for {k}-channel images; use a mask found on colour images"
               if mask is not None else "set out_channels to 3")
        raise LipError(f"the net makes {k}-channel images; {problem.name} is fitted as 3 channels"
                       + (" (a gray image: 1 or 3)" if problem.gray else "") + f": {fix}")


def restore(problem: Problem, prior: Prior, cfg: FitConfig, dev: torch.device, seed: int,
            callbacks: Iterable[Callable[[Step], None]] = (),
            notify: Callable[[str], None] = lambda line: None,
            keeper: Keeper | None = None) -> tuple[FitResult, dict[str, Any]]:
    """Fit the prior to the problem; return the fit and a JSON-able report of its scores.

    `notify` receives one human line when a compact net is fitted, or when `prior.compact` asked for one
    and it could not be made. `keeper` keeps the fit's state as it runs and continues a saved one.
    """
    check_channels(prior.spec, prior.source.get("mask"), problem)
    baseline = problem.baseline()  # before the fit moves the operator to the device
    size = nets.padded_size(nets.skeleton(prior.spec), *problem.size)
    cfg = plan_memory(prior.fitted_spec, size, cfg, dev)  # first: a fit too large for the memory is refused
    net = prior.build(seed)
    net = net.to(dev)
    gen = seeds.generator(seed)
    target = problem.target(net, gen, dev)
    model, masks, form = fitted_form(net, prior, notify)
    try:
        result = fit(model, [target], cfg, masks=masks, callbacks=callbacks, keeper=keeper)
    except torch.OutOfMemoryError as exc:  # this image is refused; a batch goes on with the next
        raise devices.out_of_memory(exc) from None
    tr = result.targets[0]
    final, stopped = problem.scores(tr.final), problem.scores(tr.stopped)
    report = {
        "input": problem.name, "task": problem.op.name, "operator": problem.operator_params(),
        "sigma_estimated": problem.noise_sigma(),
        **({"sigma_estimated_values": problem.noise_sigma_in_values()} if problem.noise_sigma_in_values() else {}),
        "iterations": result.iterations, "stopped_at": tr.stopped_at,
        "auto_stopped": tr.auto_stopped and cfg.early_stop,  # the rule ended the fit (with it off, it only picked)
        "metric": problem.metric_name,
        "psnr_final": final["psnr"], "psnr_stopped": stopped["psnr"],
        "ssim_final": final["ssim"], "ssim_stopped": stopped["ssim"],
        "oracle_best_psnr": tr.oracle_best, "oracle_best_iter": tr.oracle_best_iter,
        "sparsity": prior.sparsity, "params": nets.count_params(net), "params_fitted": nets.count_params(model),
        "gflop_per_iter": round(nets.iteration_gflop(model, target.z), 3),
        "recoveries": result.recoveries, "seconds": round(result.seconds, 3), "checkpoint": cfg.checkpoint,
        **({"resumed_from": keeper.resumed_from} if keeper is not None and keeper.resumed_from else {}),
        **prior.source, **form, **({"ssim_note": problem.ssim_note} if problem.ssim_note else {}),
        **({"baseline": baseline} if baseline else {}),
    }
    return result, report
