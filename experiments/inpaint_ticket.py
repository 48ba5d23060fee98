"""Inpainting with the channel ticket run longer against the dense net at its cap (issues 12 and 17).

Rows: es_dev/run_inpaint128.sh (dense: the fast preset, recorded to 2250; `ticket`: round 2 of the inpainting
channel ticket, recorded to 7500), no early stop. Scored as lip returns the image (observed pixels put back): the
EMA output at a cap. Paired difference per crop: the ticket at cap C minus the dense net at its 1875. Cost: CPU
per iteration from the rows (seconds / iters), r = dense / ticket; the ticket at C costs C / (1875 r) of a dense
restore. The cap is chosen on TUNE (the smallest at >= 1.5x less CPU whose paired mean is >= 0), then read on
REPORT. House, where the ticket was searched, is shown and never counted. RESULTS-inpaint-ticket.md has the marks.
`--ticket` may be any other arm of the same crops (e.g. the dense net with another jitter, RESULTS-inpaint-jitter.md):
then house counts. `--same-cap` reads the --dense rows at each cap too (both recorded that far): two arms at equal
iterations, e.g. the ticket's widths with four skip filters against the ticket (RESULTS-inpaint-ticket.md, end).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/inpaint_ticket.py \
        --dense experiments/es_dev/rows-tasks-inpaint128-[ab].jsonl.gz \
        --ticket experiments/es_dev/rows-inpaint-ticket128-[ab].jsonl.gz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from es_rows import read_rows

DENSE_CAP = 1875
CAPS = (1875, 2500, 3125, 3750, 4375, 5000, 5625, 6250, 6875, 7500)
SPEEDUP = 1.5  # the least CPU ratio per restore a candidate cap must keep
SEARCHED_ON = "house"


def returned(row: dict, cap: int) -> float:
    """PSNR of the EMA output at `cap` with the observed pixels put back (what `lip restore` writes)."""
    return row["signals"]["psnr_ema_dc"][cap - 1]


def oracle(row: dict) -> tuple[float, int]:
    """(the best PSNR of the raw or the EMA output, as returned, over the recorded horizon; its iteration).
    It reads the clean image: scoring only."""
    s = row["signals"]
    return max((max(s[k]), int(np.argmax(s[k])) + 1) for k in ("psnr_raw_dc", "psnr_ema_dc"))


def rows_by_crop(paths: list[Path]) -> dict[tuple[str, int], dict]:
    return {(r["image"], r["seed"]): r for p in paths for r in read_rows(p) if "error" not in r}


def stats(x: list[float]) -> str:
    a = np.array(x)
    return f"{a.mean():+.2f} ± {a.std(ddof=1) if len(a) > 1 else 0:.2f} ({int((a > 0).sum())} of {len(a)} better)"


def gaps(x: list[float]) -> str:
    a = np.array(x)
    return f"{a.mean():.2f} / {np.percentile(a, 90):.2f} / {a.max():.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dense", nargs="+", type=Path, required=True)
    ap.add_argument("--ticket", nargs="+", type=Path, required=True)
    ap.add_argument("--caps", type=lambda v: tuple(int(c) for c in v.split(",")), default=CAPS,
                    help="comma list of the caps to read the arm at")
    ap.add_argument("--same-cap", action="store_true", help="read --dense at each cap as well, not at 1875")
    a = ap.parse_args()
    dense, ticket = rows_by_crop(a.dense), rows_by_crop(a.ticket)
    pairs = sorted(set(dense) & set(ticket), key=lambda k: (dense[k]["half"] != "tune", k))
    if not pairs:
        raise SystemExit("no crop has both a dense and a ticket row yet")
    per_it = {name: sum(rows[k]["seconds"] for k in pairs) / sum(rows[k]["iters"] for k in pairs)
              for name, rows in (("dense", dense), ("ticket", ticket))}
    r = per_it["dense"] / per_it["ticket"]
    horizon = min(ticket[k]["iters"] for k in pairs)
    searched_on = SEARCHED_ON if all(ticket[k]["net"].startswith("ticket:") for k in pairs) else None
    caps = [c for c in a.caps if c <= horizon]
    print(f"{len(pairs)} crops; CPU per iteration: dense {1000 * per_it['dense']:.0f} ms, ticket "
          f"{1000 * per_it['ticket']:.0f} ms (r = {r:.2f}); caps at >= {SPEEDUP}x less CPU per restore: "
          f"C <= {DENSE_CAP * r / SPEEDUP:.0f}\n")

    print("| crop | half | seed | dense at 1875 (oracle over 2250) | " + " | ".join(f"ticket {c}" for c in caps)
          + " | ticket oracle over its horizon (iteration) |")
    print("|---|---|---|---|" + "---|" * len(caps) + "---|")
    for k in pairs:
        d, t = dense[k], ticket[k]
        best, at = oracle(t)
        name = k[0] + (" (searched on)" if k[0] == searched_on else "")
        print(f"| {name} | {d['half']} | {k[1]} | {returned(d, DENSE_CAP):.2f} ({oracle(d)[0]:.2f}) | "
              + " | ".join(f"{returned(t, c):.2f}" for c in caps) + f" | {best:.2f} ({at}) |")

    print("\n| half | seed(s) | cap | CPU per restore vs dense | ticket - dense, mean ± sd (better) "
          "| ticket gap to its oracle: mean / p90 / max | dense gap at 1875 (oracle over 2250) |")
    print("|---|---|---|---|---|---|---|")
    for half in ("tune", "report"):
        ks = [k for k in pairs if dense[k]["half"] == half and k[0] != searched_on]
        if not ks:
            continue
        seeds = ",".join(str(s) for s in sorted({k[1] for k in ks}))
        dense_gap = gaps([oracle(dense[k])[0] - returned(dense[k], DENSE_CAP) for k in ks])
        for c in caps:
            diff = [returned(ticket[k], c) - returned(dense[k], c if a.same_cap else DENSE_CAP) for k in ks]
            gap = [oracle(ticket[k])[0] - returned(ticket[k], c) for k in ks]
            cost = r if a.same_cap else DENSE_CAP * r / c
            print(f"| {half} ({len(ks)}) | {seeds} | {c} | {cost:.2f}x less | {stats(diff)} | "
                  f"{gaps(gap)} | {dense_gap} |")


if __name__ == "__main__":
    main()
