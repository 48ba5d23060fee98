"""`lip inspect`: what a mask artifact is, its per-layer sparsity, and how two or more masks compare."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from .. import artifact, files, inspect as insp, plot as charts
from ..errors import LipError
from ..masks import sparsity
from .render import emit_json, err, fmt, guarded, print_wide
from .options import json_flag

ReportJson = json_flag("Print everything as one JSON object on stdout (no tables)", panel=None)
LAYER_COLUMNS = ("index", "name", "shape", "params", "kept", "sparsity")


@guarded
def inspect_cmd(
    artifacts: list[Path] = typer.Argument(..., help="A mask artifact (.safetensors, or a library name: lip "
                                           "masks), or several (A B C ...) to compare: each one's layer-wise "
                                           "sparsity and its overlap with A",
                                           show_default=False),
    round_: Optional[int] = typer.Option(None, "--round", help="Round to tabulate, A's when comparing "
                                         "(default: the recommended round)"),
    round_b: Optional[str] = typer.Option(None, "--round-b", help="B's round when comparing (default: "
                                          "the round closest to A's sparsity); with more masks one per mask "
                                          "after A, e.g. 2,-,4 ('-' = matched)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write layer-wise sparsity bars to this .png, or "
                                        ".pdf / .svg for papers (needs matplotlib: pip install 'matplotlib>=3.7'); "
                                        "x = layer index in forward order, y = sparsity"),
    plot_rounds: Optional[str] = typer.Option(None, "--plot-rounds", help="Rounds to plot, e.g. 1,4,8 "
                                              "(default: up to 4, evenly spread)"),
    json_: ReportJson = False,
    csv_: Optional[Path] = typer.Option(None, "--csv", help="Write the per-layer table as CSV ('-' = stdout)"),
) -> None:
    """Show what a mask artifact holds, layer by layer; with several, their sparsity side by side and overlap."""
    if not 1 <= len(artifacts) <= len(insp.TAGS):
        raise LipError(f"give one artifact, or 2 to {len(insp.TAGS)} to compare (got {len(artifacts)})")
    several = len(artifacts) > 1
    csv_stdout = csv_ is not None and str(csv_) == "-"
    if round_b is not None and not several:
        raise LipError("--round-b is B's round: give two artifacts to compare")
    if several and plot_rounds is not None:
        raise LipError("--plot-rounds applies to one artifact; comparing masks plots each one's chosen round")
    if plot_rounds is not None and plot is None:
        raise LipError("--plot-rounds needs --plot FILE.png (or .pdf/.svg)")
    if json_ and csv_ is not None and files.reaches_stdout(csv_):  # '-', /dev/stdout, /proc/self/fd/1, ...
        raise LipError(f"--json and --csv {csv_} both write to stdout; give --csv a file name")
    others = insp.parse_other_rounds(round_b, len(artifacts) - 1) if several else []
    files.check_distinct({"--plot": plot, "--csv": csv_})
    if plot is not None:
        charts.check_format(plot)
        files.check_writable(plot)
    if csv_ is not None and not csv_stdout:
        files.check_writable(csv_)
    arts = [artifact.load(p) for p in artifacts]
    if several:
        report, rows, columns = _compare(artifacts, arts, [round_, *others], plot)
    else:
        report, rows, columns = _single(artifacts[0], arts[0], round_, plot, plot_rounds)
    if csv_ is not None:
        files.write_csv(csv_, [{**r, "shape": "x".join(map(str, r["shape"]))} if "shape" in r else r for r in rows],
                        columns)
        report["csv"] = "-" if csv_stdout else str(csv_)
    if json_:
        emit_json(report)
    else:
        (_say_compare if several else _say_single)(report)
    for key, what in (("plot", "plot"), ("csv", "per-layer table")):
        if report.get(key) and report[key] != "-":
            err.print(f"wrote {what} {report[key]}", markup=False, soft_wrap=True)


def _single(path: Path, art: artifact.Artifact, round_: Optional[int], plot: Optional[Path],
            plot_rounds: Optional[str]) -> tuple[dict[str, Any], list[dict[str, Any]], tuple[str, ...]]:
    k = insp.check_round(art, art.recommended_round if round_ is None else round_)
    rows = insp.layer_table(art, k)
    report: dict[str, Any] = {"type": "inspect", "artifact": str(path), "summary": insp.summary(art),
                              "round": k, "sparsity": art.sparsity(k), "layers": rows, "plot": None}
    if plot is not None:
        chosen = insp.parse_rounds(plot_rounds, art) if plot_rounds else insp.default_plot_rounds(art)
        insp.plot_sparsity(art, chosen, plot, title=f"Layer-wise sparsity: {path.name} ({_made(art)})")
        report.update(plot=str(plot), plot_rounds=chosen)
    return report, rows, LAYER_COLUMNS


def _compare(paths: list[Path], arts: list[artifact.Artifact], rounds: list[Optional[int]],
             plot: Optional[Path]) -> tuple[dict[str, Any], list, tuple[str, ...]]:
    """A, B, C, ...: each mask's summary, the rounds compared (B's on: matched to A's sparsity or given)
    and insp.compare's table; the two-mask report is the case of one pair."""
    tags = insp.TAGS[:len(arts)]
    ov = insp.compare(arts, rounds)
    report: dict[str, Any] = {
        "type": "overlap",
        **{t: {"artifact": str(p), "summary": insp.summary(x)} for t, p, x in zip(tags, paths, arts)},
        **{f"round_{t}_chosen": "given" if r is not None else "matched sparsity"
           for t, r in zip(tags[1:], rounds[1:])},
        **ov, "plot": None}
    if plot is not None:
        insp.plot_sparsity(arts[0], [ov["round_a"]], plot,
                           others=[(t.upper(), x, ov[f"round_{t}"]) for t, x in zip(tags[1:], arts[1:])],
                           title="Layer-wise sparsity: " + ", ".join(f"{t.upper()} = {p.name}"
                                                                     for t, p in zip(tags, paths)))
        report["plot"] = str(plot)
    return report, ov["layers"], tuple(ov["layers"][0]) if ov["layers"] else ()


def _made(art: artifact.Artifact) -> str:
    return ", ".join(str(art.meta[k]) for k in ("method", "task") if art.meta.get(k)) or "mask"


# ---------------------------------------------------------------- human output (stderr)

def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _compact(v: Any) -> str:
    if isinstance(v, list) and v and all(x == v[0] for x in v):
        return f"{v[0]}x{len(v)}"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def _spec_line(spec: dict[str, Any]) -> str:
    rest = " ".join(f"{k}={_compact(v)}" for k, v in spec.items() if k != "kind")
    return f"{spec.get('kind', '?')}: {rest}"


def _operator_line(op: Any) -> str:
    """`denoise sigma=25.0`; a parameter the search was not given (a blind search: the noise level of a photo
    nobody simulated) reads `sigma not given`, not Python's None."""
    if not isinstance(op, dict):
        return "-" if op is None else str(op)
    extra = " ".join(f"{k} not given" if v is None else f"{k}={v}" for k, v in op.items() if k != "name")
    return f"{op.get('name', '?')} {extra}".strip()


def _info_rows(path: str, s: dict[str, Any]) -> list[tuple[str, str]]:
    t, search, how = s["totals"], s.get("search") or {}, []
    if search.get("granularity") == "channel":
        score = search.get("channel_score")  # channel IMP's; a channel method is its own score
        how.append("whole filters: channel granularity" + ("" if score in (None, s["method"]) else f", score {score}"))
    if s.get("rewind_iteration"):
        how.append(f"theta0 rewound: the weights after iteration {s['rewind_iteration']}")
    if s["oracle"]:
        how.append("oracle: fitted to clean images")
    if s.get("finetuned_rounds"):
        k = s["finetuned_rounds"]
        how.append(f"keeps the fine-tuned weights of round{'s' * (len(k) > 1)} {', '.join(map(str, k))}")
    rows = [("artifact", path),
            ("method", f"{s['method'] or '-'}" + (f"  ({'; '.join(how)})" if how else "")),
            ("task", f"{s['task'] or '-'}  operator {_operator_line(s['operator'])}"),
            ("net", f"{_spec_line(s['spec'])}"),
            ("params", f"{t['net_params']:,} in {t['net_tensors']} tensors; masked ({s['scope']} scope) "
                       f"{t['masked_params']:,} in {t['masked_tensors']} tensors"),
            ("seed", str(s["seed"]) if s["seed"] is not None else "-")]
    for i, im in enumerate(s.get("images") or []):
        if isinstance(im, dict):
            size = f"{im.get('width')}x{im.get('height')}" if im.get("width") else ""
            rows.append(("images" if i == 0 else "", f"{im.get('name', '?')} {size}  sha256 "
                                                     f"{str(im.get('sha256', '-'))[:16]}"))
    rec = s["recommended_round"]
    rows += [("rounds", f"0..{s['n_rounds']}, recommended {rec} (sparsity {_pct(s['totals']['sparsity'])})"
                        + ("; search stopped by the loss-rise rule" if s.get("stopped_by_rule") else "")),
             ("made by", f"lip {s['tool_version'] or '?'} (torch {s['torch_version'] or '?'}), "
                         f"created {s['created'] or '-'}")]
    return rows + ([("training", f"unfinished: {s['unfinished']}")] if s.get("unfinished") else [])


def _say_info(rows: list[tuple[str, str]]) -> None:
    for k, v in rows:
        err.print(f"{k:<10}{v}", markup=False, soft_wrap=True)


def _rounds_table(s: dict[str, Any]) -> Table:
    recs = s["rounds"]
    psnr = any(r.get("psnr_final") is not None for r in recs)
    channels = any(r.get("channels") is not None for r in recs)  # a channel search: filters kept per round
    t = Table(title="Rounds", box=box.SIMPLE_HEAD, title_justify="left")
    for col in (("round", "sparsity", "kept") + ("channels",) * channels + ("loss",)
                + (("psnr (report)",) if psnr else ()) + ("",)):
        t.add_column(col, justify="left" if col == "" else "right")
    for r in recs:
        loss = "-" if r.get("loss") is None else f"{r['loss']:.6f}"
        cells = [str(r["round"]), _pct(r["sparsity"]), f"{r['kept']:,}"]
        cells += ["-" if r.get("channels") is None else f"{r['channels']:,}"] * channels + [loss]
        if psnr:
            cells.append(fmt(r.get("psnr_final")))
        cells.append("<- recommended" if r["recommended"] else "")
        t.add_row(*cells, style="bold" if r["recommended"] else None)
    return t


def _say_single(r: dict[str, Any]) -> None:
    s = r["summary"]
    _say_info(_info_rows(r["artifact"], s))
    print_wide(_rounds_table(s))
    t = Table(title=f"Layers at round {r['round']} (sparsity {_pct(r['sparsity'])}), forward order",
              box=box.SIMPLE_HEAD, title_justify="left", show_footer=True)
    rows = r["layers"]
    kept, params = sum(x["kept"] for x in rows), sum(x["params"] for x in rows)
    for col, foot in (("#", ""), ("name", "total"), ("shape", ""), ("params", f"{params:,}"),
                      ("kept", f"{kept:,}"), ("sparsity", _pct(sparsity(kept, params)))):
        t.add_column(col, footer=foot, justify="left" if col in ("name", "shape") else "right")
    for x in rows:
        t.add_row(str(x["index"]), x["name"], "x".join(map(str, x["shape"])), f"{x['params']:,}",
                  f"{x['kept']:,}", _pct(x["sparsity"]))
    print_wide(t)


def _pair_label(tag: str, n: int) -> str:
    """Which pair a column or line is about: nothing with two masks (one pair), ' A-C' with more."""
    return "" if n == 2 else f" A-{tag.upper()}"


def _say_compare(r: dict[str, Any]) -> None:
    out = err
    o = r["overall"]
    tags = [t for t in insp.TAGS if f"round_{t}" in r]
    n = len(tags)
    for t in tags:
        side, k = r[t], r[f"round_{t}"]
        s = side["summary"]
        out.print(f"{t.upper()}: {side['artifact']}  {s['method'] or '-'} / {s['task'] or '-'}  round {k} "
                  f"(sparsity {_pct(o[f'sparsity_{t}'])})" + ("  [matched to A's sparsity]" if t != "a" and
                                                r[f"round_{t}_chosen"] != "given" else ""),
                  markup=False, soft_wrap=True)
    if not r["same_spec"]:
        out.print(f"note: the {'two ' if n == 2 else ''}net specs differ (same parameter shapes, so the masks "
                  "are comparable)", markup=False)
    if r["left_out"]:
        out.print(f"note: compared over the tensors every mask covers; left out: {', '.join(r['left_out'])} "
                  "(masked by some of them only: another --scope, or a channel ticket, which leaves the head dense)",
                  markup=False, soft_wrap=True)
    t = Table(title="Overlap of kept weights, forward order", box=box.SIMPLE_HEAD, title_justify="left",
              show_footer=True)
    columns = [("#", ""), ("name", "overall"), ("params", f"{o['params']:,}")]
    columns += [(f"sparsity {x.upper()}", _pct(o[f"sparsity_{x}"])) for x in tags]
    for x in tags[1:]:
        columns += [(f"jaccard{_pair_label(x, n)}", fmt(o[insp.pair_key("jaccard", x, n)], 3)),
                    (f"A in {x.upper()}", _pct(o[insp.pair_key("fraction_a_in", x, n)]))]
    for col, foot in columns:
        t.add_column(col, footer=foot, justify="left" if col == "name" else "right")
    for row in r["layers"]:
        t.add_row(str(row["index"]), row["name"], f"{row['params']:,}",
                  *[_pct(row[f"sparsity_{x}"]) for x in tags],
                  *[cell for x in tags[1:] for cell in (fmt(row[insp.pair_key("jaccard", x, n)], 3),
                                                        _pct(row[insp.pair_key("fraction_a_in", x, n)]))])
    print_wide(t)
    for x in tags[1:]:
        pair = {field: o[insp.pair_key(field, x, n)]
                for field in ("jaccard", "fraction_a_in", "chance_jaccard", "chance_fraction_a_in")}
        out.print(f"overall{_pair_label(x, n)}: jaccard {fmt(pair['jaccard'], 3)}, {_pct(pair['fraction_a_in'])} "
                  f"of A's kept weights are kept in {x.upper()} (independent random masks of these densities: "
                  f"jaccard {fmt(pair['chance_jaccard'], 3)}, {_pct(pair['chance_fraction_a_in'])})",
                  markup=False, soft_wrap=True)
