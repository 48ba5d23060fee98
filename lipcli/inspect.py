"""What a mask artifact holds, layer by layer, and how several masks compare. Pure functions, no printing.

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
from .generators import unfinished
from .masks import kept_by_round, sparsity, total_count

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
                     "sparsity": sparsity(kept, params)})
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
        out.append({"round": k, "kept": kept, "total": total, "sparsity": sparsity(kept, total),
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
    if out["seed"] is None:  # a GAN search records its seed among its settings
        out["seed"] = (meta.get("settings") or {}).get("seed")
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
    out["finetuned_rounds"] = sorted(art.finetuned)  # rounds whose trained weights it keeps (GAN IMP: what CS uses)
    out["unfinished"] = unfinished(art)  # a generator whose training was stopped
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


TAGS = "abcdefghijklmnopqrstuvwxyz"  # masks compared are A, B, C, ... in the order given


def _shared(arts: Sequence[Artifact], tags: str) -> tuple[set[str], list[str]]:
    """The masked tensors every mask covers, each checked to have one shape in all, and those only some cover (an
    element mask and a channel ticket, which leaves the head dense), which the comparison leaves out."""
    a = arts[0]
    shared = set.intersection(*(set(x.prune_round) for x in arts))
    if not shared:
        raise LipError("the masks share no masked parameter: compare masks of the same net")
    for tag, x in zip(tags[1:], arts[1:]):
        for n in sorted(shared):
            if a.prune_round[n].shape != x.prune_round[n].shape:
                raise LipError(f"masks A and {tag.upper()} differ in shape at {n}: {_shape_str(a.prune_round[n].shape)}"
                               f" vs {_shape_str(x.prune_round[n].shape)} (different nets)")
    return shared, sorted(set.union(*(set(x.prune_round) for x in arts)) - shared)


def matched_round(a: Artifact, ra: int, b: Artifact, round_b: int | None) -> int:
    """B's round: given, or the one closest in sparsity to A's round `ra`."""
    return b.round_for_sparsity(a.sparsity(ra)) if round_b is None else check_round(b, round_b, "--round-b")


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def pair_key(field: str, tag: str, n: int) -> str:
    """The name of a field of the pair (A, tag) among n masks: `fraction_a_in_c`; the symmetric fields keep
    the plain names of the two-mask format (`jaccard`) when there is one pair, else name it (`jaccard_a_c`)."""
    if field.endswith("_in"):
        return f"{field}_{tag}"
    return field if n == 2 else f"{field}_a_{tag}"


def _pair(inter: int, union: int, kept_a: int, tag: str, n: int) -> dict[str, Any]:
    return {pair_key("intersection", tag, n): inter, pair_key("union", tag, n): union,
            pair_key("jaccard", tag, n): _ratio(inter, union) if union else 1.0,
            pair_key("fraction_a_in", tag, n): _ratio(inter, kept_a)}


def compare(arts: Sequence[Artifact], rounds: Sequence[int | None]) -> dict[str, Any]:
    """Per-layer sparsity of masks A, B, C, ... side by side (LIP Fig. 7: LIP, SNIP and random) and
    the overlap of each with A's kept weights, per layer and overall.

    A's round is `rounds[0]` (its recommended one when None); every other mask's is given, or the one
    closest in sparsity to A's. jaccard = |A and X| / |A or X|; fraction_a_in_x = |A and X| / |A|;
    `chance_*` are what independent random masks of the same overall densities would give (a reference
    line). Field names: `pair_key`. Over the tensors every mask covers (`left_out`: the others); refuses masks of
    different shapes or with no tensor in common.
    """
    if not 2 <= len(arts) <= len(TAGS) or len(rounds) != len(arts):
        raise LipError(f"compare 2 to {len(TAGS)} masks, one round (or None) each")
    a, n, tags = arts[0], len(arts), TAGS[:len(arts)]
    shared, left_out = _shared(arts, tags)
    ra = check_round(a, a.recommended_round if rounds[0] is None else rounds[0], "--round")
    chosen = [ra] + [matched_round(a, ra, x, r) for x, r in zip(arts[1:], rounds[1:])]
    masks = [x.mask(k) for x, k in zip(arts, chosen)]
    rows = []
    for i, name in enumerate(n for n in forward_names(a) if n in shared):
        ms = [m[name] for m in masks]
        size, kept = ms[0].numel(), [int(m.sum()) for m in ms]
        row = {"index": i, "name": name, "shape": list(ms[0].shape), "params": size,
               **{f"kept_{t}": k for t, k in zip(tags, kept)},
               **{f"sparsity_{t}": sparsity(k, size) for t, k in zip(tags, kept)}}
        for t, m in zip(tags[1:], ms[1:]):
            row.update(_pair(int((ms[0] & m).sum()), int((ms[0] | m).sum()), kept[0], t, n))
        rows.append(row)
    total = sum(r["params"] for r in rows)
    kept_t = {t: sum(r[f"kept_{t}"] for r in rows) for t in tags}
    density = {t: k / total if total else 0.0 for t, k in kept_t.items()}
    overall: dict[str, Any] = {"params": total, **{f"kept_{t}": k for t, k in kept_t.items()},
                               **{f"sparsity_{t}": 1 - d for t, d in density.items()}}
    for t in tags[1:]:
        both = density["a"] * density[t]
        either = density["a"] + density[t] - both
        overall.update(_pair(sum(r[pair_key("intersection", t, n)] for r in rows),
                             sum(r[pair_key("union", t, n)] for r in rows), kept_t["a"], t, n))
        overall.update({pair_key("chance_jaccard", t, n): both / either if either > 0 else None,
                        pair_key("chance_fraction_a_in", t, n): density[t]})
    return {**{f"round_{t}": k for t, k in zip(tags, chosen)}, "matched": True,
            "same_spec": all(x.spec == a.spec for x in arts[1:]), "overall": overall, "layers": rows,
            "left_out": left_out}


def parse_other_rounds(text: str | None, others: int) -> list[int | None]:
    """`--round-b 2` or, with more masks, `--round-b 2,-,4`: a round per mask after A, '-' = matched to
    A's sparsity; None (the option left out) matches them all."""
    if text is None:
        return [None] * others
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != others:
        raise LipError(f"--round-b {text!r} gives {len(parts)} round{'s' * (len(parts) > 1)} for the "
                       f"{others} mask{'s' * (others > 1)} after A (one each, '-' = matched to A's sparsity)")
    try:
        return [None if p == "-" else int(p) for p in parts]
    except ValueError:
        raise LipError(f"--round-b {text!r}: use round numbers, one per mask after A, or '-' "
                       "(matched to A's sparsity), e.g. 2,-,4") from None


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
    return [sparsity(c, n) for c, n in zip(kept, sizes)], sparsity(sum(kept), sum(sizes))


def plot_sparsity(art: Artifact, rounds: Sequence[int], path: Path | str, title: str | None = None,
                  others: Sequence[tuple[str, Artifact, int]] = ()) -> Path:
    """Layer-wise sparsity bars (the paper's Fig. 7/11 layout): x = layer index in forward order,
    y = sparsity, one coloured bar per round. `others` adds (label prefix, artifact, round) series
    over the same layers, e.g. other masks at matched sparsity: the tensors every mask covers, as `compare`'s
    (a channel ticket leaves the head dense, which an element mask covers)."""
    rounds = [check_round(art, k, "--plot-rounds round") for k in rounds]
    if not rounds:
        raise LipError("no round to plot")
    names = forward_names(art)
    if others:
        shared, _ = _shared([art, *(o for _, o, _ in others)], TAGS)
        names = [n for n in names if n in shared]
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
