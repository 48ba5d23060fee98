"""What a mask artifact holds, layer by layer, and how two masks overlap. Pure functions, no printing.

Per-layer counts come from one histogram of each `prune_round` tensor (how many elements were
pruned at each round), so any round's kept count is exact and every round costs nothing extra.
"Layers" are the masked parameter tensors in forward order (`nets.param_order`: the order in which a
forward pass of the artifact's net first uses them, traced once on the meta device; `named_parameters()`
order for a net that cannot be traced), which for convs is `nets.conv_weight_names`' order.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from . import nets, plot
from .artifact import Artifact
from .errors import LipError
from .masks import kept_by_round, total_count

SUMMARY_FIELDS = ("method", "task", "operator", "images", "seed", "oracle", "tool_version",
                  "torch_version", "created", "format_version", "search", "stopped_by_rule",
                  "rewind_iteration")


def _net(spec: dict[str, Any], device: str = "meta") -> torch.nn.Module:
    """The artifact's net; on the meta device by default (no memory, no init cost)."""
    try:
        with torch.device(device):
            return nets.build(spec)
    except Exception as exc:  # any malformed spec, whatever the builder trips on
        if device == "meta":
            return _net(spec, "cpu")
        raise LipError(f"the artifact's net spec is invalid ({exc})") from None


@functools.lru_cache(maxsize=16)
def _order_cached(spec_json: str) -> tuple[str, ...]:
    spec = json.loads(spec_json)
    for device in ("meta", "cpu"):
        try:
            return tuple(nets.param_order(_net(spec, device)))
        except LipError:
            raise
        except Exception:  # a net that cannot be traced here: fall back to definition order
            continue
    return tuple(n for n, _ in _net(spec).named_parameters())


def _param_order(spec: dict[str, Any]) -> list[str]:
    """Every parameter name in forward order (the order a forward pass uses them)."""
    return list(_order_cached(json.dumps(spec, sort_keys=True)))


def forward_names(art: Artifact) -> list[str]:
    """Masked parameter names in forward order (anything the net does not know goes last, sorted)."""
    order = _param_order(art.spec)
    known = [n for n in order if n in art.prune_round]
    return known + sorted(set(art.prune_round) - set(known))


def check_round(art: Artifact, round_: int, what: str = "--round") -> int:
    if not 0 <= round_ <= art.rounds:
        raise LipError(f"{what} {round_} is out of range: this artifact has rounds 0..{art.rounds}")
    return round_


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


def layer_table(art: Artifact, round_: int | None = None) -> list[dict[str, Any]]:
    """One row per masked tensor in forward order: index, name, shape, params, kept, sparsity."""
    k = check_round(art, art.recommended_round if round_ is None else round_)
    kept_by = kept_by_round(art.prune_round, art.rounds)
    rows = []
    for i, name in enumerate(forward_names(art)):
        r = art.prune_round[name]
        kept, params = kept_by[name][k], r.numel()
        rows.append({"index": i, "name": name, "shape": list(r.shape), "params": params, "kept": kept,
                     "sparsity": 1 - kept / params if params else 0.0})
    return rows


def round_records(art: Artifact) -> list[dict[str, Any]]:
    """Every round 0..rounds: exact kept/total/sparsity from the masks, plus what the method recorded."""
    kept_by = kept_by_round(art.prune_round, art.rounds)
    total = total_count(art.prune_round)
    recorded = {int(r["round"]): r for r in art.meta.get("rounds", []) if "round" in r}
    out = []
    for k in range(art.rounds + 1):
        kept = sum(v[k] for v in kept_by.values())
        rec = {key: v for key, v in recorded.get(k, {}).items()
               if key not in ("round", "kept", "total", "sparsity")}
        out.append({"round": k, "kept": kept, "total": total, "sparsity": 1 - kept / total if total else 0.0,
                    "loss": rec.pop("loss", None), "recommended": k == art.recommended_round, **rec})
    return out


def summary(art: Artifact) -> dict[str, Any]:
    """What the artifact is: how it was made, its rounds, the recommended round and the totals."""
    names = forward_names(art)
    order = _param_order(art.spec)
    net_params = sum(t.numel() for t in art.theta0.values())
    masked = sum(art.prune_round[n].numel() for n in names)
    rec = art.recommended_round
    kept, _ = art.counts(rec)
    meta = art.meta
    out: dict[str, Any] = {key: meta.get(key) for key in SUMMARY_FIELDS}
    out.update(
        spec=art.spec,
        rounds=round_records(art),
        n_rounds=art.rounds,
        recommended_round=rec,
        scope=_scope(art, names, order),
        totals={"net_params": net_params, "net_tensors": len(order), "masked_params": masked,
                "masked_tensors": len(names), "kept": kept,
                "sparsity": art.sparsity(rec),
                "dense_tensors": [n for n in order if n not in art.prune_round]},
    )
    out["oracle"] = bool(meta.get("oracle", False))
    return out


def _scope(art: Artifact, names: list[str], order: list[str]) -> str:
    """conv (IMP's default), all (OES) or custom; the search settings say it when recorded."""
    recorded = (art.meta.get("search") or {}).get("scope")
    if recorded:
        return str(recorded)
    if set(names) >= set(order):
        return "all"
    convs = {f"{n}.weight" for n, m in _net(art.spec).named_modules() if isinstance(m, torch.nn.Conv2d)}
    return "conv" if set(names) <= convs else "custom"


def _same_layout(a: Artifact, b: Artifact) -> None:
    sa = {n: tuple(r.shape) for n, r in a.prune_round.items()}
    sb = {n: tuple(r.shape) for n, r in b.prune_round.items()}
    if sa.keys() != sb.keys():
        only_a, only_b = sorted(sa.keys() - sb.keys()), sorted(sb.keys() - sa.keys())
        first = f"{only_a[0]} only in A" if only_a else f"{only_b[0]} only in B"
        raise LipError(f"the two masks cover different parameters ({first}; {len(only_a)} only in A, "
                       f"{len(only_b)} only in B): compare masks of the same net and --scope")
    for n in sa:
        if sa[n] != sb[n]:
            raise LipError(f"the two masks differ in shape at {n}: {_shape_str(sa[n])} vs "
                           f"{_shape_str(sb[n])} (different nets)")


def matched_rounds(a: Artifact, b: Artifact, round_a: int | None = None,
                   round_b: int | None = None) -> tuple[int, int]:
    """A's round (its recommended one by default) and B's: given, or the one closest in sparsity to A's."""
    ra = check_round(a, a.recommended_round if round_a is None else round_a, "--round")
    rb = b.round_for_sparsity(a.sparsity(ra)) if round_b is None else check_round(b, round_b, "--round-b")
    return ra, rb


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def overlap(a: Artifact, ra: int | None, b: Artifact, rb: int | None) -> dict[str, Any]:
    """Per-layer and overall overlap of A's kept weights at round ra with B's at round rb.

    jaccard = |A and B| / |A or B|; fraction_a_in_b = |A and B| / |A|. A round left None is chosen
    as in `matched_rounds`. `chance_*` are what two independent random masks of the same overall
    densities would give (a reference line). Refuses masks over different parameters or shapes.
    """
    _same_layout(a, b)
    ra, rb = matched_rounds(a, b, ra, rb)
    ma, mb = a.mask(ra), b.mask(rb)
    rows, inter_t, union_t, ka_t, kb_t, total = [], 0, 0, 0, 0, 0
    for i, name in enumerate(forward_names(a)):
        x, y = ma[name], mb[name]
        inter, union = int((x & y).sum()), int((x | y).sum())
        ka, kb, n = int(x.sum()), int(y.sum()), x.numel()
        rows.append({"index": i, "name": name, "shape": list(x.shape), "params": n, "kept_a": ka,
                     "kept_b": kb, "sparsity_a": 1 - ka / n if n else 0.0,
                     "sparsity_b": 1 - kb / n if n else 0.0, "intersection": inter, "union": union,
                     "jaccard": _ratio(inter, union) if union else 1.0,
                     "fraction_a_in_b": _ratio(inter, ka)})
        inter_t, union_t, ka_t, kb_t, total = inter_t + inter, union_t + union, ka_t + ka, kb_t + kb, total + n
    da, db = (ka_t / total, kb_t / total) if total else (0.0, 0.0)
    both = da * db
    overall = {"params": total, "kept_a": ka_t, "kept_b": kb_t, "sparsity_a": 1 - da, "sparsity_b": 1 - db,
               "intersection": inter_t, "union": union_t,
               "jaccard": _ratio(inter_t, union_t) if union_t else 1.0,
               "fraction_a_in_b": _ratio(inter_t, ka_t),
               "chance_jaccard": both / (da + db - both) if da + db - both > 0 else None,
               "chance_fraction_a_in_b": db}
    return {"round_a": ra, "round_b": rb, "matched": True, "same_spec": a.spec == b.spec,
            "overall": overall, "layers": rows}


def default_plot_rounds(art: Artifact, n: int = 4) -> list[int]:
    """Up to `n` rounds evenly spread over 1..rounds (always the last one); [0] for a dense-only file."""
    top = art.rounds
    if top == 0:
        return [0]
    if top <= n:
        return list(range(1, top + 1))
    return sorted({round(1 + i * (top - 1) / (n - 1)) for i in range(n)})


def parse_rounds(text: str, art: Artifact) -> list[int]:
    """'1,4,8' -> [1, 4, 8], each checked against the artifact (duplicates dropped, order kept)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            k = int(part)
        except ValueError:
            raise LipError(f"--plot-rounds {text!r}: {part!r} is not a round number (e.g. 1,4,8)") from None
        check_round(art, k, "--plot-rounds round")
        if k not in out:
            out.append(k)
    if not out:
        raise LipError(f"--plot-rounds {text!r} names no round (e.g. 1,4,8)")
    return out


def _sparsities(art: Artifact, names: list[str], k: int) -> tuple[list[float], float]:
    """Per-layer sparsity at round k (in `names` order) and the overall sparsity."""
    kept_by = kept_by_round(art.prune_round, art.rounds)
    kept = [kept_by[n][k] for n in names]
    sizes = [art.prune_round[n].numel() for n in names]
    per = [1 - c / n if n else 0.0 for c, n in zip(kept, sizes)]
    return per, 1 - sum(kept) / sum(sizes) if sum(sizes) else 0.0


def plot_sparsity(art: Artifact, rounds: Sequence[int], path: Path | str, title: str | None = None,
                  others: Sequence[tuple[str, Artifact, int]] = ()) -> Path:
    """Layer-wise sparsity bars (the paper's Fig. 7/11 layout): x = layer index in forward order,
    y = sparsity, one coloured bar per round. `others` adds (label prefix, artifact, round) series
    over the same layers, e.g. a second mask at matched sparsity."""
    rounds = [check_round(art, k, "--plot-rounds round") for k in rounds]
    if not rounds:
        raise LipError("no round to plot")
    names = forward_names(art)
    series: dict[str, list[float]] = {}
    prefix = "A " if others else ""
    for tag, which, k in [(prefix, art, k) for k in rounds] + [(f"{t} ", o, k) for t, o, k in others]:
        per, overall = _sparsities(which, names, k)
        series[f"{tag}round {k}: {100 * overall:.1f}% sparse"] = per
    method = art.meta.get("method") or "mask"
    if title is None:
        title = f"Layer-wise sparsity: {method}" + (f" ({art.meta['task']})" if art.meta.get("task") else "")
    return plot.bar_chart([str(i) for i in range(len(names))], series, path, title,
                          "layer index (forward order)", "sparsity", ylim=(0.0, 1.0))
