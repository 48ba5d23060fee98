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


def filter_order(r: torch.Tensor) -> torch.Tensor:
    """Filters of one conv weight, last pruned first (a never-pruned filter has round 0: it ranks first)."""
    last = r.flatten(1).amax(1).long()  # a filter's round: its elements are pruned together
    key = torch.where(last == 0, torch.full_like(last, 1 << 16), last)
    return torch.sort(key, descending=True, stable=True).indices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rule", required=True, help="same, round16 or uniformK (e.g. uniform32)")
    ap.add_argument("--ticket", default=TICKET, help="the source: a library name or a ticket file")
    ap.add_argument("--round", type=int, default=None, help="the source's round (default: its recommended one)")
    ap.add_argument("--skip", type=int, default=None, help="skip filters per level (default: the ticket's)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    art = artifact.load(a.ticket)
    round_ = art.recommended_round if a.round is None else a.round
    widths = widths_for(a.rule, ticket_widths(art, round_), a.skip)
    prune_round = {}
    for name, r in art.prune_round.items():
        block = name.rsplit(".conv.weight", 1)[0]
        keep = filter_order(r)[: widths[block]]
        new = torch.ones_like(r, dtype=torch.uint8)
        new[keep] = 0
        prune_round[name] = new
    keep_masks = masks.from_rounds(prune_round, 1)
    kept, total = masks.kept_count(keep_masks), masks.total_count(keep_masks)
    meta = {**art.meta, "method": "widths", "recommended_round": 1,
            "rounds": [{"round": 0, "sparsity": 0.0, "kept": total, "total": total},
                       {"round": 1, "sparsity": masks.sparsity(kept, total), "kept": kept, "total": total}],
            "recommended_by": f"experiments/width_masks.py --ticket {a.ticket} --round {round_} --rule {a.rule} "
                              f"--skip {a.skip} (a control)"}
    artifact.save(a.out, artifact.Artifact(meta=meta, theta0=art.theta0, prune_round=prune_round), slim=True)
    print(f"{a.out}: {kept:,} of {total:,} conv weights kept; widths {widths}")


if __name__ == "__main__":
    main()
