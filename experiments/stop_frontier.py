"""Can a shorter stop rule for the ticket buy issue 12's speed-up at the dense net's PSNR? Replay (issues 12, 17).

Issue 12 asks the default restore (the channel ticket) to take >= 3x less wall time than the dense net at
>= its mean auto-stopped PSNR, at 128x128. Per iteration the ticket is only 2.6x cheaper (quiet machine,
experiments/RESULTS-sparse.md, Timing), and under today's rule it runs more iterations than the dense net.
So the question is whether a ticket rule that stops sooner (shorter patience, lower cap), chosen on the
TUNE crops, keeps the dense net's PSNR; REPORT says whether that holds on crops not used for the choice.

Both nets are replayed on their recorded trajectories (es_collect.py, same crops, task, noise and seed) with
stop_gate.replay; time = iterations run x the quiet per-iteration time. Gap = oracle (best EMA PSNR over
the recorded horizon, reads the clean image) - reported; issue 17 wants the mean <= 0.1 dB.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_frontier.py \\
        --ticket experiments/es_dev/rows-ticket.jsonl.gz experiments/es_dev/rows-ticket-report.jsonl.gz \\
        --dense experiments/es_dev/rows-dense-tune.jsonl.gz experiments/es_dev/rows-dense-report.jsonl.gz
"""
from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stop_gate import load_runs, oracle, replay

MS_PER_ITER = {"ticket": 29.6, "dense": 78.3}  # 128x128, quiet machine, RESULTS-sparse.md (Timing)


@dataclass(frozen=True)
class Rule:
    tau: float | None  # noise gate (None: none)
    patience: int
    cap: int

    @classmethod
    def parse(cls, text: str) -> "Rule":
        """TAU/PATIENCE/CAP, e.g. 1.05/150/1800 (TAU none: no gate)."""
        tau, patience, cap = text.split("/")
        return cls(None if tau == "none" else float(tau), int(patience), int(cap))

    def __str__(self) -> str:
        return f"{self.tau or 'none'}/{self.patience}/{self.cap}"


@dataclass(frozen=True)
class Outcome:
    psnr: np.ndarray  # reported, per crop
    iters: np.ndarray  # iterations run, per crop
    gap: np.ndarray  # oracle - reported, per crop

    def ms(self, net: str) -> float:
        """Mean wall milliseconds per restore."""
        return float(self.iters.mean()) * MS_PER_ITER[net]


def outcome(rows: list[dict], rule: Rule) -> Outcome:
    got = np.array([replay(r, rule.tau, r["sigma_used"], rule.patience, min(rule.cap, r["iters"])) for r in rows])
    return Outcome(got[:, 1], got[:, 0], np.array([oracle(r) for r in rows]) - got[:, 1])


def crop(row: dict) -> tuple:
    return row["image"], row["size"], row["crop"], row["param"], row["seed"]


def per_crop(ticket: dict, dense: dict, ticket_rules: list[Rule], dense_rules: list[Rule]) -> None:
    """Each crop: each net's oracle (its iteration) and what each rule reports (iterations run)."""
    head = [f"ticket {r}" for r in ticket_rules] + [f"dense {r}" for r in dense_rules]
    print("| crop | half | ticket oracle (iter) | dense oracle (iter) | " + " | ".join(head) + " |")
    print("|---|---|---|---|" + "---|" * len(head))
    for key in sorted(ticket, key=lambda k: (ticket[k]["half"] != "tune", k)):
        t, d = ticket[key], dense[key]
        cells = [_cell(t, r) for r in ticket_rules] + [_cell(d, r) for r in dense_rules]
        peaks = [f"{oracle(x):.2f} ({int(np.argmax(x['signals']['psnr_ema'])) + 1})" for x in (t, d)]
        print(f"| {key[0]} | {t['half']} | {' | '.join(peaks)} | {' | '.join(cells)} |")


def _cell(row: dict, rule: Rule) -> str:
    got = outcome([row], rule)
    return f"{got.psnr[0]:.2f} ({int(got.iters[0])})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticket", type=Path, nargs="+", required=True, help="ticket trajectories")
    ap.add_argument("--dense", type=Path, nargs="+", required=True, help="dense trajectories")
    ap.add_argument("--dense-rules", default="1.05/150/1800,1.05/300/1800", help="TAU/PATIENCE/CAP, comma list")
    ap.add_argument("--taus", default="1.05", help="ticket gate taus (none: no gate)")
    ap.add_argument("--patiences", default="50,75,100,150")
    ap.add_argument("--caps", default="600,900,1200,1500,1800")
    ap.add_argument("--ticket-rules", default="1.05/150/1800", help="ticket rules of the per-crop table")
    ap.add_argument("--speedup", type=float, default=3.0, help="issue 12's required wall-time ratio")
    a = ap.parse_args()
    dense = {crop(r): r for r in load_runs(a.dense) if r["size"] == 128}
    ticket = {crop(r): r for r in load_runs(a.ticket) if crop(r) in dense}
    halves = {h: sorted(k for k in ticket if ticket[k]["half"] == h) for h in ("tune", "report")}
    rules = [Rule.parse(f"{t}/{p}/{c}") for t, p, c in
             itertools.product(a.taus.split(","), a.patiences.split(","), a.caps.split(","))]
    dense_rules = [Rule.parse(x) for x in a.dense_rules.split(",")]
    per_crop(ticket, dense, [Rule.parse(x) for x in a.ticket_rules.split(",")], dense_rules)
    for dense_rule in dense_rules:
        print(f"\n## Dense rule {dense_rule} (tau/patience/cap)\n")
        chosen: Rule | None = None
        for half in ("tune", "report"):
            keys = halves[half]
            if not keys:
                continue
            d = outcome([dense[k] for k in keys], dense_rule)
            print(f"{half}: {len(keys)} crops ({', '.join(k[0] for k in keys)}); dense: {d.psnr.mean():.2f} dB, "
                  f"gap {d.gap.mean():.2f}, {d.iters.mean():.0f} iterations, {d.ms('dense') / 1000:.1f} s\n")
            print("| ticket rule | mean dB | vs dense dB | crops >= dense | mean gap (oracle) | iterations "
                  "| s per restore | dense/ticket time |")
            print("|---|---|---|---|---|---|---|---|")
            best = None
            for rule in rules:
                t = outcome([ticket[k] for k in keys], rule)
                speed, delta = d.ms("dense") / t.ms("ticket"), t.psnr.mean() - d.psnr.mean()
                mark = " *" if rule == chosen else ""
                print(f"| {rule}{mark} | {t.psnr.mean():.2f} | {delta:+.2f} | {int((t.psnr >= d.psnr).sum())}/"
                      f"{len(keys)} | {t.gap.mean():.2f} | {t.iters.mean():.0f} | {t.ms('ticket') / 1000:.1f} "
                      f"| {speed:.2f} |")
                if half == "tune" and speed >= a.speedup and delta >= 0 and (best is None or delta > best[0]):
                    best = (delta, rule)
            if half == "tune":
                chosen = best[1] if best else None
                print(f"\nChosen on tune (>= {a.speedup}x and >= dense mean PSNR, highest PSNR): "
                      f"{chosen or 'none qualifies'}\n")


if __name__ == "__main__":
    main()
