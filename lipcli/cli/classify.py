"""`lip classify`: the DIP hourglass as an MNIST digit classifier (LIP Figs. 6-7, lipcli/classify.py):
dense, under a mask, under a random mask of that size, or pruned by IMP into a classification ticket."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .. import artifact, classify as cls, config, device as devices, files
from ..errors import LipError
from ..restore import dense_prior, masked_prior
from .render import Terminated, emit_json, guarded, progress, say, say_round
from .options import Device, Json, MaskRound, MaskSparsity, Seed, Threads, net_option


@guarded
def classify_cmd(
    mask: Optional[Path] = typer.Option(None, help="Mask artifact (or a shipped mask's name): train under the part "
                                        "of it the classifier shares, from its theta0; dense net when absent",
                                        rich_help_panel="Prior"),
    round_: MaskRound = None, sparsity: MaskSparsity = None,
    random: bool = typer.Option(False, "--random", help="With --mask: a random mask keeping as many weights of the "
                                "same convs instead (the baseline)", rich_help_panel="Prior"),
    net: net_option("Prior") = None,
    head: str = typer.Option("flatten", help="flatten: keep the DIP's head conv and flatten its output into the "
                             "linear layer (the published script) | pool: replace the head conv by global average "
                             "pooling (the paper's words)", rich_help_panel="Prior"),
    prune_rounds: Optional[int] = typer.Option(None, "--prune-rounds", min=1, max=255, help="Find a classification "
                                               "ticket: this many IMP rounds on the classification loss, rewinding to "
                                               "theta0; writes -o", rich_help_panel="Search"),
    rate: Optional[float] = typer.Option(None, help="IMP: fraction of the remaining weights pruned per round "
                                         f"[{cls.PRUNE_RATE}]", rich_help_panel="Search"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The classification ticket to write "
                                       "[classify_imp.safetensors]", rich_help_panel="Search"),
    epochs: int = typer.Option(1, min=1, help="Passes over the training digits", rich_help_panel="Training"),
    batch: int = typer.Option(32, min=1, help="Batch size", rich_help_panel="Training"),
    lr: float = typer.Option(0.01, help="SGD learning rate (momentum 0.9, weight decay 2e-4)",
                             rich_help_panel="Training"),
    train: int = typer.Option(4500, "--train", help="Digits trained on (of the 5,000 bundled, stratified)",
                              rich_help_panel="Training"),
    test: int = typer.Option(500, "--test", help="Digits held out for the accuracy (stratified, the same "
                             "digits for every run)", rich_help_panel="Training"),
    device: Device = "auto", seed: Seed = 0, threads: Threads = None,
    json_: Json = False,
) -> None:
    """Train the DIP net as a digit classifier, dense or under a mask, or find a classification ticket."""
    if mask is None and (round_ is not None or sparsity is not None or random):
        raise LipError("--round, --sparsity and --random choose from a mask: give --mask")
    if mask is not None and (net is not None or prune_rounds is not None):
        given = " and ".join(f for f, v in (("--net", net), ("--prune-rounds", prune_rounds)) if v is not None)
        raise LipError(f"--mask fixes the net and its weights: drop {given}")
    if prune_rounds is None and (out is not None or rate is not None):
        raise LipError("-o and --rate belong to a ticket search: give --prune-rounds")
    if out is not None and files.reaches_stdout(out):  # stdout would get one whole artifact per round
        raise LipError(f"-o {out}: the ticket is saved after every round; give it a file name")
    config.check_lr(lr)
    cfg = cls.TrainConfig(epochs=epochs, batch=batch, lr=lr, train=train, test=test, seed=seed, head=head)
    dev = devices.resolve(device)
    n_threads = devices.set_threads(threads, say)
    if prune_rounds is not None:
        _prune(net, prune_rounds, cls.PRUNE_RATE if rate is None else rate, out or Path("classify_imp.safetensors"),
               cfg, dev, n_threads, json_)
        return
    prior = masked_prior(mask, round_, sparsity, "artifact") if mask is not None else dense_prior(net or "dip")
    what = f"a random mask the size of {mask}" if random else str(mask) if mask else f"the dense {net or 'dip'} net"
    with progress(cls.steps(cfg), "classify") as advance:
        report = cls.classify(prior.spec, prior.theta0, prior.masks, cfg, dev, random,
                              lambda: say(f"lip classify: {what}, {train} training digits x {epochs} epoch(s), "
                                          f"{test} held out"), lambda: advance(1))
    report.update(prior.source, threads=n_threads)
    say(f"accuracy {100 * report['accuracy']:.1f}% on {test} held-out digits, train loss {report['train_loss']:.4f}, "
        f"{_masked(report)}, {report['seconds']:.1f}s")
    if json_:
        emit_json(report)


def _masked(report: dict[str, Any]) -> str:
    if not report["masked_params"]:
        return "dense"
    unused = report["mask_layers_unused"]
    return (f"sparsity {100 * report['sparsity']:.2f}% of {report['masked_params']:,} masked conv weights"
            + (f" (mask layers the classifier lacks, unused: {', '.join(unused)})" if unused else ""))


def _prune(net: Optional[str], rounds: int, rate: float, out: Path, cfg: cls.TrainConfig, dev: Any,
           n_threads: int, json_: bool) -> None:
    artifact.check_output(out)
    spec = dense_prior(net or "dip").spec
    start = (f"lip classify: IMP on the classification loss, {rounds} rounds of {100 * rate:g}%, {cfg.train} "
             f"digits x {cfg.epochs} epoch(s) per round, writing {out}")
    written: list[dict[str, Any]] = []  # the rounds this search wrote to `out` (after each, once saved)

    def on_round(rec: dict[str, Any]) -> None:
        written.append(rec)
        say_round(rec, json_)
    try:
        with progress((rounds + 1) * cls.steps(cfg), "classify IMP") as advance:
            art = cls.prune(spec, rounds, rate, cfg, dev, out, lambda: say(start), on_round,
                            lambda: advance(1), command=" ".join(["lip", *sys.argv[1:]]), threads=n_threads)
    except (KeyboardInterrupt, Terminated):
        if written:  # rewritten after every round: what it holds is a ticket, its last round untrained
            say(f"lip: stopped; {out} keeps the rounds found so far (the last one's accuracy unmeasured); "
                "lip classify cannot continue a search: the same command starts it over")
        else:
            say(f"lip: stopped before the first round ended; nothing was written to {out}")
        raise
    say(f"wrote {out}: rounds 0..{art.rounds}, recommended {art.recommended_round} (sparsity "
        f"{100 * art.sparsity(art.recommended_round):.2f}%); lip restore --mask {out} fits it on images")
    if json_:
        emit_json({"type": "result", "out": str(out), "rounds": art.rounds,
                   "recommended_round": art.recommended_round})
