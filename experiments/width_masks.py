"""Channel masks of the dense DIP net with chosen layer widths, drawn from the shipped ticket's filter order.

Why (RESULTS-sparse.md, "Widths that suit the CPU"): a compacted 25% channel mask restores ~0.7 dB better than a
fresh uniform net of its width (w32), and what the two still differ in is the layer widths: the mask keeps one
skip filter per level where w32 has four, and odd counts (28-46) elsewhere. Odd counts are also slow here:
oneDNN's bf16 convolutions and PyTorch's channels-last BatchNorm run a count like 44 about as slowly as 48.
This writes a one-round artifact on the dense `dip` net (its seed-0 theta0, as the ticket's) whose round 1 keeps,
per conv, a chosen number of whole filters: those the ticket's search pruned last (never-pruned first), ties by
index. `lip restore --mask FILE --round 1` fits it compacted.

    PYTHONPATH=$PWD python experiments/width_masks.py --rule round16 --out experiments/sparse/ticket16.safetensors
    PYTHONPATH=$PWD python experiments/width_masks.py --rule uniform32 --skip 1 --out experiments/sparse/u32s1.safetensors

`--ticket` takes another source (a library name or a ticket file, at `--round`, default its recommended one), e.g.
the inpainting search's round 2 with four skip filters per level (RESULTS-inpaint-ticket.md, "Four skip filters"):

    PYTHONPATH=$PWD python experiments/width_masks.py --ticket experiments/sparse/house_inpaint_ch.safetensors \
        --round 2 --rule same --skip 4 --out experiments/sparse/inp-s4.safetensors

`--levels L` puts the mask on the same hourglass with only its first L levels (the deepest dropped), initialised
afresh from the source's seed: every level is a fixed cost per iteration on a CPU, whatever its width
(RESULTS-sparse.md, "Fewer levels"). A conv whose weight keeps the source's shape takes the source's filter order;
the new deepest level's up conv (it has no deeper level to concatenate) keeps its first filters.

    PYTHONPATH=$PWD python experiments/width_masks.py --rule uniform32 --skip 1 --levels 3 --out experiments/sparse/u32s1L3.safetensors
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lipcli import artifact, masks, nets
from lipcli.nets.compact import compact

TICKET = "dip-channel-house"


def ticket_widths(art: artifact.Artifact, round_: int) -> dict[str, int]:
    """Output channels each conv block keeps in the compacted ticket at `round_`."""
    net = nets.build(art.spec)
    return {n: kept for n, (kept, _) in compact(net, art.mask(round_)).report["layers"].items()}


def widths_for(rule: str, ticket: dict[str, int], skip: int | None) -> dict[str, int]:
    """`same`: the ticket's counts; `round16`: the ticket's counts rounded to the nearest multiple of 16 (at
    least 16); `uniformK`: K everywhere. Skip branches keep the ticket's count unless `skip` is given."""
    out = {}
    for name, kept in ticket.items():
        if name.endswith(".skip"):
            out[name] = kept if skip is None else skip
        elif rule == "same":
            out[name] = kept
        elif rule == "round16":
            out[name] = max(16, 16 * round(kept / 16))
        elif rule.startswith("uniform"):
            out[name] = int(rule[len("uniform"):])
        else:
            raise SystemExit(f"unknown rule {rule}")
    return out


def block_of(weight: str) -> str:
    """The conv block a masked weight belongs to (`levels.0.down.conv.weight` -> `levels.0.down`)."""
    return weight.rsplit(".conv.weight", 1)[0]


def filter_order(r: torch.Tensor) -> torch.Tensor:
    """Filters of one conv weight, last pruned first (a never-pruned filter has round 0: it ranks first)."""
    last = r.flatten(1).amax(1).long()  # a filter's round: its elements are pruned together
    key = torch.where(last == 0, torch.full_like(last, 1 << 16), last)
    return torch.sort(key, descending=True, stable=True).indices


def shallower(art: artifact.Artifact, levels: int | None) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(spec, theta0, source prune rounds) of the net the new mask is on: the source's, or its first `levels`
    levels drawn afresh from the source's seed, with the source's rounds where a conv keeps its shape (else none:
    index order)."""
    if levels is None or levels == len(art.spec["down"]):
        return art.spec, art.theta0, art.prune_round
    spec = {**art.spec, **{key: art.spec[key][:levels] for key in ("down", "up", "skip")}}
    theta0 = artifact.seeded_theta0(spec, art.meta["seed"])
    rounds = {name: r if r.shape == theta0[name].shape else torch.zeros_like(theta0[name], dtype=r.dtype)
              for name, r in art.prune_round.items() if name in theta0}
    return spec, theta0, rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rule", required=True, help="same, round16 or uniformK (e.g. uniform32)")
    ap.add_argument("--ticket", default=TICKET, help="the source: a library name or a ticket file")
    ap.add_argument("--round", type=int, default=None, help="the source's round (default: its recommended one)")
    ap.add_argument("--skip", type=int, default=None, help="skip filters per level (default: the ticket's)")
    ap.add_argument("--levels", type=int, default=None, help="keep only the first L levels (default: all)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    art = artifact.load(a.ticket)
    round_ = art.recommended_round if a.round is None else a.round
    spec, theta0, source = shallower(art, a.levels)
    widths = widths_for(a.rule, ticket_widths(art, round_), a.skip)
    prune_round = {}
    for name, r in source.items():
        keep = filter_order(r)[: widths[block_of(name)]]
        new = torch.ones_like(r, dtype=torch.uint8)
        new[keep] = 0
        prune_round[name] = new
    keep_masks = masks.from_rounds(prune_round, 1)
    kept, total = masks.kept_count(keep_masks), masks.total_count(keep_masks)
    meta = {**art.meta, "spec": spec, "method": "widths", "recommended_round": 1,
            "rounds": [{"round": 0, "sparsity": 0.0, "kept": total, "total": total},
                       {"round": 1, "sparsity": masks.sparsity(kept, total), "kept": kept, "total": total}],
            "recommended_by": f"experiments/width_masks.py --ticket {a.ticket} --round {round_} --rule {a.rule} "
                              f"--skip {a.skip} --levels {a.levels} (a control)"}
    artifact.save(a.out, artifact.Artifact(meta=meta, theta0=theta0, prune_round=prune_round), slim=True)
    print(f"{a.out}: {kept:,} of {total:,} conv weights kept; widths {({b: widths[b] for b in map(block_of, source)})}")


if __name__ == "__main__":
    main()
