"""What a lower iteration cap would have written, read from the `--log` of restores run to their full cap.

No schedule of lip's fit depends on the cap (`--iters`), so a run capped at C follows the same trajectory up to C
and writes what the stop reported by C (the log's `stopped_at`), or the output of iteration C where no stop was
reported yet or a later minimum was still within its lag (`--lag`, the EMA's: 99 at 0.99) at C: lipcli/fit.py
`_finish`. So one run per crop to the full cap gives every lower cap's result, but for one case the log cannot
show: a minimum whose report a newer minimum within its lag superseded (C between the two reads as not pending).
Caps within the lag of the full cap are left out (a pending minimum there is not in the log). Each log holds the
runs of one worker in order; a run is told from the others by its input and its cap (`total`), so give `--total`
to pick one prior's runs (e.g. the SR ticket's 3000 where the dense net's runs, at 1500, are in the same log).
`--rows` adds each crop's dense row (the sparse study's `dense` prior, same task) and the mean difference at every
cap. Checked against live `--iters 1800` restores: equal within 0.003 dB (experiments/RESULTS-sparse.md).

    python experiments/cap_replay.py --total 3000 --caps 1500:3000:100 --rows experiments/sparse/rows-item5-sr.jsonl \
        experiments/sparse/curves-item5-sr-A.jsonl.gz experiments/sparse/curves-item5-sr-B.jsonl.gz
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
from pathlib import Path


Run = tuple[dict[int, float], list[int]]  # metric by iteration, the iterations at which the stop reported


def runs(paths: list[Path], total: int) -> dict[str, Run]:
    """input -> its run capped at `total` (the last such run of an input counts)."""
    out: dict[str, Run] = {}
    for path in paths:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        for line in text.splitlines():
            ev = json.loads(line)
            if ev.get("event") != "step" or ev["total"] != total:
                continue
            if ev["iteration"] == 1:
                out[ev["input"]] = ({}, [])
            curve, reports = out[ev["input"]]
            curve[ev["iteration"]] = ev["metric"]
            if ev["stopped_at"] and (not reports or reports[-1] != ev["stopped_at"]):
                reports.append(ev["stopped_at"])
    return out


def at_cap(run: Run, cap: int, lag: int) -> float:
    """The metric of what `--iters cap` writes (lipcli/fit.py `_finish`)."""
    curve, reports = run
    done = [s for s in reports if s <= cap]
    pending = any(s - lag <= cap < s for s in reports)
    return curve[done[-1]] if done and not pending else curve[cap]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", type=Path)
    ap.add_argument("--total", type=int, required=True, help="the full cap of the runs to replay")
    ap.add_argument("--caps", default="1500:3000:100", help="first:last:step")
    ap.add_argument("--rows", type=Path, help="sparse-study rows holding each crop's dense row")
    ap.add_argument("--images", default="", help="comma list: only these images (a crop's name up to its first _)")
    ap.add_argument("--lag", type=int, default=99, help="the stop's lag (lipcli/fit.py ema_lag; 99 at EMA 0.99)")
    a = ap.parse_args()
    first, last, step = map(int, a.caps.split(":"))
    caps = [c for c in range(first, last + 1, step) if c <= a.total - a.lag]
    found = runs(a.logs, a.total)
    dense: dict[str, float] = {}
    if a.rows:
        for line in a.rows.read_text().splitlines():
            row = json.loads(line)
            if row["prior_name"] == "dense":
                dense[Path(row["input"]).name] = row["psnr_stopped"]  # the log names the input by its file name
    wanted = set(filter(None, a.images.split(",")))
    names = sorted((n for n in found if not wanted or Path(n).name.split("_")[0] in wanted), key=lambda n: Path(n).name)
    print("| crop | stop reported at | " + " | ".join(map(str, caps)) + (" | dense |" if dense else " |"))
    print("|---|---:|" + "---:|" * (len(caps) + bool(dense)))
    for name in names:
        reports = found[name][1]
        cells = [f"{at_cap(found[name], c, a.lag):.2f}" for c in caps]
        cells += [f"{dense[name]:.2f}"] if name in dense else []
        print(f"| {Path(name).stem} | {','.join(map(str, reports)) or '-'} | " + " | ".join(cells) + " |")
    paired = [n for n in names if n in dense]
    if paired:
        diffs = [statistics.mean(at_cap(found[n], c, a.lag) - dense[n] for n in paired) for c in caps]
        print(f"| **mean - dense ({len(paired)})** | | " + " | ".join(f"{d:+.3f}" for d in diffs) + " | |")


if __name__ == "__main__":
    main()
