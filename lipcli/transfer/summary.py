"""From rows to the summary: legend labels, a fixed method order, mean and std over seeds (the CSV is
files.write_csv's).

Shared by the summary table, the CLI's tables and every plot, so a prior has one name and one place
in every output.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Iterable

METHOD_ORDER = ("dense", "mask", "random", "deep-decoder")  # dense first: the reference, first colour
STATS = ("psnr_final", "psnr_stopped", "ssim_final", "ssim_stopped", "oracle_best_psnr")
SUMMARY_COLUMNS = (["task", "image", "method", "mask", "label", "round", "sparsity", "nonzero_params", "metric",
                    "seeds", "diverged"] + [f"{s}_{x}" for s in STATS for x in ("mean", "std")])


def label(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A legend name: the mask file (and method); baselines name their mask only when it is ambiguous."""
    method, mask = row["method"], row.get("mask")
    if method == "mask":
        return f"{mask} ({row['mask_method']})" if row.get("mask_method") else str(mask)
    name = {"dense": "dense", "random": "random mask", "deep-decoder": "deep decoder"}[method]
    if len({r.get("mask") for r in rows if r["method"] == method}) > 1:
        name += f" ~{mask}"
    return name


def method_order(row: dict[str, Any]) -> tuple:
    m = row["method"]
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), str(row.get("mask")), row["round"])


def tasks_of(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' tasks in the order they first appear (the grid's --tasks order)."""
    return list(dict.fromkeys(r["task"] for r in rows))


def mean_of(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.fmean(vals) if vals else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per method/mask/round/task/image (std blank for one seed)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["mask"], r["round"], r["task"], r["image"]), []).append(r)
    tasks = tasks_of(rows)
    out = []
    for (method, mask, round_, task, image), rs in groups.items():
        first = rs[0]
        s = {"task": task, "image": image, "method": method, "mask": mask, "label": label(first, rows),
             "round": round_, "sparsity": first.get("sparsity"), "nonzero_params": first.get("nonzero_params"),
             "metric": first.get("metric"), "seeds": len(rs), "diverged": sum(bool(r.get("diverged")) for r in rs)}
        for stat in STATS:
            vals = [float(r[stat]) for r in rs if r.get(stat) is not None]
            s[f"{stat}_mean"] = statistics.fmean(vals) if vals else None
            s[f"{stat}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(s)
    out.sort(key=lambda s: (tasks.index(s["task"]), s["image"], method_order(s)))
    return out
