"""`lip prune --prior gan`: GAN IMP (LIP Section 5), the second workflow of `lip prune`.

Fine-tune a pretrained generator with its critic each round, prune G's convs, rewind to the pretrained
weights. It shares IMP's session loop (prune/imp.py), the round table and the resume hint with the DIP search.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import files, gan
from .. import device as devices
from ..errors import LipError
from ..prune import gan_imp
from .render import Terminated, emit_json, err, say, say_round, say_stopped


@dataclass
class GanPrune:
    """The flags the GAN search reads (`lip prune --prior gan`)."""

    generator: Optional[Path]  # None: the bundled MNIST generator
    generator_spec: Optional[Path]  # the spec of an external state dict given as `generator`
    data: str  # "mnist" or a folder of images
    settings: gan_imp.GanImpSettings
    out: Path  # checked writable; with `resume`, the artifact to continue
    resume: bool
    threads: Optional[str]  # --threads: None, "auto" or a count (device.set_threads)
    json_: bool


def prune_gan(run: GanPrune) -> None:
    """Search (or resume) a GAN-IMP trajectory, writing the artifact after every round."""
    if run.generator_spec is not None and (run.generator is None or run.resume):
        raise LipError("--generator-spec describes the state dict given with --generator (not with --resume)")
    devices.set_threads(run.threads, say)
    if run.resume:
        traj = gan_imp.resumed(run.out, run.settings)
        if run.generator is not None and not gan_imp.same_generator(traj, run.generator):
            recorded = str(traj.meta.get("generator"))
            if Path(recorded).resolve() == run.generator.resolve():  # recorded relative to where it ran: a hint only
                raise LipError(f"--resume {run.out.name}: {run.generator} changed since the search began (other "
                               "weights); give the generator it prunes, or start a new search")
            raise LipError(f"--resume {run.out.name} prunes another generator ({recorded}) than --generator "
                           f"{run.generator}: drop --generator, or start a new search")
    else:
        gan_imp.refuse_restart(run.out, run.settings)
        traj = gan_imp.start(run.generator or gan.GENERATOR, run.settings, " ".join(["lip", *sys.argv[1:]]),
                             run.generator_spec)
    train_data = gan.load_data(run.data, traj.spec)
    try:
        with files.checkpointed(run.out) as checkpoint:
            art = gan_imp.run(traj, train_data, run.settings, checkpoint, lambda rec: say_round(rec, run.json_))
    except (KeyboardInterrupt, Terminated):
        say_stopped(run.out)
        raise
    err.print(f"wrote {run.out}: {art.rounds} rounds of {run.settings.method} on the generator",
                     markup=False)
    if run.json_:
        emit_json({"type": "result", "out": str(run.out), "method": run.settings.method, "rounds": art.meta["rounds"],
                   "recommended_round": art.recommended_round})
