"""Tables of the issue-12 prior study (experiments/sparse_study.py): per prior, mean +- std of the
auto-stopped, final and oracle PSNR, the paired difference to the dense net on the same crops, the
iterations and seconds; for the tune half, the report half, and both. Rows of another task (`--extra "--task
sr --scale 4"`) get tables of their own, paired with the dense net of that task, and so do rows of another
noise level, seed or crop size (`--sigmas`, `--seeds`, `--sizes`). `--per-crop` adds, per prior, a
crop-by-crop table against dense (auto-stopped and oracle value, iterations, difference) closed by the paired
means. `--against dense,ticket:r2` pairs every table with each of those priors in turn (default: dense).

Give the rows files of one preset. A row does not record the stop rule or the preset's settings, so rows run
under two presets (the previous stop rule and the gated one) would share a prior; a crop recorded in two given
files with other results is such a mix, and is refused (naming both files) rather than counted once.

    PYTHONPATH=$PWD python experiments/sparse_report.py experiments/sparse/rows.jsonl experiments/sparse/rows-b.jsonl \
        experiments/sparse/rows-d.jsonl
    PYTHONPATH=$PWD python experiments/sparse_report.py --per-crop experiments/sparse/rows-sr.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path


TASK_FLAGS = ("--task", "--scale", "--keep")  # flags that choose the task: its rows are compared apart
RECORD_FLAGS = ("--log",)  # flags that only record the fit: they make no other prior


def split_extra(extra: str) -> tuple[str, str]:
    """(the task flags, the other flags) of a row's extra restore flags."""
    words, task, other = extra.split(), [], []
    for flag, value in zip(words[::2], words[1::2]):
        if flag not in RECORD_FLAGS:
            (task if flag in TASK_FLAGS else other).extend((flag, value))
    return " ".join(task), " ".join(other)


RESULT = ("psnr_stopped", "psnr_final", "iterations")  # what a re-run of the same restore reproduces


def load(paths: list[Path]) -> list[dict]:
    """Rows by key (a key run twice in one file counts once: its last row); a prior run with extra flags other
    than the task's is its own prior. A key in two files with other results is refused (another preset)."""
    rows: dict[str, dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row["source"] = path
                earlier = rows.get(row["key"])
                if earlier and earlier["source"] != path and [earlier[k] for k in RESULT] != [row[k] for k in RESULT]:
                    raise SystemExit(f"{row['key']} is in {earlier['source']} and {path} with other results (rows "
                                     "of two presets or versions): report their files apart")
                row["task_flags"], other = split_extra(row.get("extra", ""))
                row["prior_name"] += f" {other}" if other else ""
                row["crop_key"] = row["key"].rsplit("|", 2)[0]  # image|size|crop|sigma|seed
                row["group"] = (row["task_flags"], row["size"], *row["crop_key"].split("|")[3:5])
                rows[row["key"]] = row
    return list(rows.values())


def db(value: float | None) -> str:
    """A PSNR cell; "-" where a row has none (an ensemble row has no oracle)."""
    return "-" if value is None else f"{value:.2f}"


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """The mean, or None if any value is None (an ensemble row has no oracle)."""
    values = list(values)
    return None if None in values else statistics.mean(values)


def mean_sd(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def table(rows: list[dict], half: str, ref: str = "dense") -> list[str]:
    chosen = [r for r in rows if half == "both" or r["half"] == half]
    if not chosen or (half == "both" and len({r["half"] for r in rows}) == 1):
        return []  # no rows of this half, or "both" would repeat the one half there is
    by_prior: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in chosen:
        by_prior[r["prior_name"]][r["crop_key"]] = r
    dense = by_prior.get(ref, {})
    out = [f"### {half} half" if half != "both" else "### both halves", "",
           f"| prior | params fitted | GFLOP/iter | n | stopped dB | final dB | oracle dB | stopped - {ref} (paired) | "
           f"wins vs {ref} | iterations | s/restore |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(by_prior, key=lambda p: -statistics.mean(r["params_fitted"] for r in by_prior[p].values()))
    for prior in order:
        crops = by_prior[prior]
        rs = list(crops.values())
        paired = [crops[c]["psnr_stopped"] - dense[c]["psnr_stopped"] for c in crops if c in dense]
        vs_dense = f"{mean_sd(paired)} ({len(paired)}) | {sum(d > 0 for d in paired)}/{len(paired)}" \
            if prior != ref else "- | -"
        out.append(
            f"| {prior} | {rs[0]['params_fitted']:,} | {rs[0]['gflop_per_iter']:.2f} | {len(rs)} | "
            f"{mean_sd([r['psnr_stopped'] for r in rs])} | {mean_sd([r['psnr_final'] for r in rs])} | "
            f"{mean_sd([r['oracle_best_psnr'] for r in rs])} | {vs_dense} | "
            f"{statistics.mean(r['iterations'] for r in rs):.0f} | {statistics.mean(r['seconds'] for r in rs):.0f} |")
    return out + [""]


def crop_cells(r: dict) -> str:
    """A row's auto-stopped dB, oracle dB and iterations (stopped at / run)."""
    return f"{r['psnr_stopped']:.2f} | {db(r['oracle_best_psnr'])} | {r['stopped_at']:.0f}/{r['iterations']:.0f}"


def mean_row(rows: tuple[dict, ...]) -> dict:
    """The mean of the values `crop_cells` shows."""
    return {k: mean_or_none(r[k] for r in rows) for k in ("psnr_stopped", "oracle_best_psnr", "stopped_at", "iterations")}


def per_crop(rows: list[dict], ref: str = "dense") -> list[str]:
    """Each prior against `ref`, crop by crop, then the means over the pairs with the paired differences
    (auto-stopped and oracle)."""
    by = {(r["crop_key"], r["prior_name"]): r for r in rows}
    crops = sorted({(r["half"], r["image"], r["crop_key"]) for r in rows})
    out = []
    for prior in sorted({r["prior_name"] for r in rows} - {ref}):
        out += [f"### per crop: {prior} vs {ref}", "",
                f"| image | half | {prior} stopped dB | oracle dB | iterations | {ref} stopped dB | oracle dB | "
                f"iterations | stopped - {ref} |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        pairs = [(by[key, prior], by[key, ref], image, half) for half, image, key in crops
                 if (key, prior) in by and (key, ref) in by]
        for p, d, image, half in pairs:
            out.append(f"| {image} | {half} | {crop_cells(p)} | {crop_cells(d)} | "
                       f"{p['psnr_stopped'] - d['psnr_stopped']:+.2f} |")
        if pairs:
            ps, ds = zip(*[(p, d) for p, d, _, _ in pairs])
            diff = [p["psnr_stopped"] - d["psnr_stopped"] for p, d in zip(ps, ds)]
            oracle = [p["oracle_best_psnr"] - d["oracle_best_psnr"] for p, d in zip(ps, ds)
                      if None not in (p["oracle_best_psnr"], d["oracle_best_psnr"])]
            out.append(f"| mean ({len(pairs)}) | | {crop_cells(mean_row(ps))} | {crop_cells(mean_row(ds))} | "
                       f"{mean_sd(diff)}, {sum(x > 0 for x in diff)}/{len(diff)} better; oracle {mean_sd(oracle)} |")
        out.append("")
    return out


def per_image(rows: list[dict]) -> list[str]:
    priors = sorted({r["prior_name"] for r in rows})
    crops = sorted({(r["half"], r["image"]) for r in rows})
    by = {(r["image"], r["prior_name"]): r for r in rows}
    out = ["### per crop: auto-stopped dB (oracle dB)", "", "| image | half | " + " | ".join(priors) + " |",
           "|---|---|" + "---:|" * len(priors)]
    for half, image in crops:
        cells = [f"{by[image, p]['psnr_stopped']:.2f} ({db(by[image, p]['oracle_best_psnr'])})"
                 if (image, p) in by else "-" for p in priors]
        out.append(f"| {image} | {half} | " + " | ".join(cells) + " |")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", type=Path)
    ap.add_argument("--per-crop", action="store_true", help="each prior against dense, crop by crop")
    ap.add_argument("--against", default="dense", help="comma list of priors to pair the tables with")
    a = ap.parse_args()
    rows = load(a.rows)
    groups = sorted({r["group"] for r in rows},
                    key=lambda g: (g[0], g[1], float(g[2]), int(g[3])))  # "" (denoising) first
    sizes = {size for _, size, _, _ in groups}
    lines = []
    for group in groups:
        task, size, sigma, seed = group
        chosen = [r for r in rows if r["group"] == group]
        where = f"{size}x{size}, " if len(sizes) > 1 else ""
        lines += [f"## {task or 'denoising'}, {where}sigma {sigma}, seed {seed}", ""] if len(groups) > 1 else []
        refs = a.against.split(",")
        lines += [line for ref in refs for half in ("tune", "report", "both") for line in table(chosen, half, ref)]
        lines += per_image(chosen)
        lines += [line for ref in refs for line in per_crop(chosen, ref)] if a.per_crop else []
    print("\n".join(lines))


if __name__ == "__main__":
    main()
