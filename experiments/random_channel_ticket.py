"""Random-channel control for the channel ticket (issue 12, item 4): the ticket's per-layer allocation,
random filters.

`lip prune --granularity channel --method random` ranks random channel scores globally, so each layer keeps
about the ladder's fraction, not the ticket's own per-layer counts. This writes a copy of a channel ticket
whose every round keeps EXACTLY the ticket's number of filters in every layer, chosen uniformly at random
(seeded): one random order of each layer's filters, cut at the ticket's count of round k, so rounds stay
nested. theta0 is the ticket's (the net's seeded initialisation) and the pruned rows are whole filters as
in the ticket, so a restore of round k differs from the ticket's only in which filters it keeps.

    PYTHONPATH=$PWD python experiments/random_channel_ticket.py --seed 0 \
        --out experiments/sparse/randch-s0.safetensors
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lipcli import artifact
from lipcli.masks import channels_alive


def random_like(ticket: artifact.Artifact, seed: int, like: str) -> artifact.Artifact:
    """`ticket` with its filters re-drawn at random in every layer, per-layer counts kept at every round."""
    gen = torch.Generator().manual_seed(seed)
    kept = [channels_alive(ticket.mask(k)) for k in range(ticket.rounds + 1)]
    prune_round = {}
    for name, r in ticket.prune_round.items():
        order = torch.randperm(r.shape[0], generator=gen)  # order[i] = the filter ranked i-th
        rank = torch.empty_like(order)
        rank[order] = torch.arange(r.shape[0])
        counts = torch.tensor([int(k[name].sum()) for k in kept])  # non-increasing in k
        # a filter ranked i survives round k iff i < counts[k]; it is pruned at the first round that cuts it
        pruned_at = (rank.view(-1, 1) >= counts.view(1, -1)).to(torch.uint8).argmax(dim=1).to(torch.uint8)
        pruned_at[rank < counts[-1]] = 0
        prune_round[name] = pruned_at.view(-1, *[1] * (r.dim() - 1)).expand(r.shape).clone()
    rounds = [{k: v for k, v in rec.items() if k != "loss"} for rec in ticket.meta["rounds"]]  # nothing was fitted
    meta = {**ticket.meta, "method": "random-layerwise", "rounds": rounds, "seed_channels": seed,
            "like": like,
            "recommended_by": "experiments/random_channel_ticket.py (a control, not a ticket)"}
    return artifact.Artifact(meta=meta, theta0=ticket.theta0, prune_round=prune_round)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticket", default="dip-channel-house", help="a channel ticket (file or shipped name)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    ticket = artifact.load(a.ticket)
    if ticket.granularity != "channel":
        raise SystemExit(f"{a.ticket} is not a channel ticket")
    control = random_like(ticket, a.seed, a.ticket)
    for k in range(ticket.rounds + 1):  # the claim of this file, checked on what is written
        assert {n: int(f.sum()) for n, f in channels_alive(control.mask(k)).items()} == \
               {n: int(f.sum()) for n, f in channels_alive(ticket.mask(k)).items()}
        assert control.counts(k) == ticket.counts(k)
    artifact.save(a.out, control, slim=True)
    same = sum(int((channels_alive(control.mask(2))[n] & channels_alive(ticket.mask(2))[n]).sum())
               for n in ticket.prune_round)
    print(f"{a.out}: round 2 keeps {ticket.counts(2)[0]:,} weights in the ticket's per-layer filter counts; "
          f"{same} of its kept filters are the ticket's too")


if __name__ == "__main__":
    main()
