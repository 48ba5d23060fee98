"""`lip import-mask` and `lip export-mask`: masks from and for the official LIP and OES code (lipcli/interop.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

from .. import artifact, config, files, interop, nets
from ..errors import LipError
from ..inspect import check_round
from .render import check_stdout_free, emit_json, guarded, say
from .options import Json, Seed, given_flags, registry_option

NET = "Net"
NetOpt = Annotated[Optional[str], registry_option(nets.image_presets, "--net", help="The net the masks were made "
                                                  "for: {names} [the first whose shapes they fit]",
                                                  kind="net preset", rich_help_panel=NET)]
ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="A YAML config whose net: is the one the masks "
                                                  "were made for (e.g. other widths)", rich_help_panel=NET)]


@guarded
def import_mask_cmd(
    ctx: typer.Context,
    sources: list[Path] = typer.Argument(..., help="Mask files: LIP's (torch.save of *_mask tensors or of a pruned "
                                         "state dict; .pt/.pth) or OES's (a boolean vector, .npy). Several = the "
                                         "rounds of one search, in order", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="The lip mask artifact to write (.safetensors)",
                             show_default=False),
    net: NetOpt = None,
    config_: ConfigOpt = None,
    init: Optional[Path] = typer.Option(None, "--init", help="theta0 from a state dict: LIP's saved init, or a "
                                        "pruned state dict (its *_orig weights). Default: a fresh draw with --seed",
                                        rich_help_panel=NET),
    seed: Seed = 0,
    keep_input_dense: bool = typer.Option(False, "--keep-input-dense", help="Leave the two z-facing convs "
                                          "unmasked, as the LIP code applies its masks", rich_help_panel=NET),
    json_: Json = False,
) -> None:
    """Turn LIP/OES mask files into a lip mask artifact (matched to lip's parameters by order and shape)."""
    if init is not None and given_flags(ctx, {"seed"}):
        raise LipError(f"--seed draws theta0, which --init {init} gives: drop one")
    artifact.check_output(out)
    check_stdout_free(out, json_, logs=False)
    spec = None
    if net is not None or config_ is not None:  # else: the first preset the files fit
        spec = nets.resolve_spec(config.resolve_settings("denoise", config_, torch.device("cpu"), {"net": net})["net"])
    art = interop.import_masks(sources, spec, init, seed, keep_input_dense)
    artifact.save(out, art)
    scope = art.meta["search"]["scope"]
    for rec in art.meta["rounds"][1:]:
        say(f"round {rec['round']}: {100 * rec['sparsity']:.2f}% of {rec['total']:,} "
            f"{'conv weights' if scope == 'conv' else 'parameters'} pruned ({sources[rec['round'] - 1]})")
    init_text = f"from {init}" if init is not None else f"fresh, seed {seed}"
    say(f"wrote {out}: {art.spec['kind']} net, {art.rounds} round(s), theta0 {init_text}")
    if json_:
        emit_json({"type": "import", "out": str(out), "spec": art.spec, "scope": scope, "rounds": art.meta["rounds"],
                   "init": art.meta.get("init"), "seed": art.meta.get("seed")})


@guarded
def export_mask_cmd(
    mask: Path = typer.Argument(..., help="A lip mask artifact (.safetensors)", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="OUT.pt: a dict of *_mask tensors that "
                             "torch.nn.utils.prune.custom_from_mask takes (LIP's format); OUT.npy: an OES mask "
                             "vector", show_default=False),
    round_: Optional[int] = typer.Option(None, "--round", help="The round to export (default: the recommended one)"),
    json_: Json = False,
) -> None:
    """Write one round of a lip mask for the official LIP or OES code, in their parameter order."""
    interop.export_layout(out)
    files.check_writable(out)
    art = artifact.load(mask)
    k = check_round(art, art.recommended_round if round_ is None else round_)
    count, zeros = interop.export(art, k, out)
    what = "vector entries" if out.suffix.lower() == ".npy" else "mask tensors"
    written = "" if abs(zeros - art.sparsity(k)) < 5e-5 else \
        f"; {100 * zeros:.2f}% of the file's entries: the parameters it does not mask are written kept"
    say(f"wrote {out}: round {k} ({100 * art.sparsity(k):.2f}% sparse{written}), {count:,} {what} in the published "
        "code's parameter order")
    if json_:
        emit_json({"type": "export", "out": str(out), "round": k, "sparsity": art.sparsity(k),
                   "file_zeros": zeros, "count": count})
