"""`lip train-generator`: train the GAN prior (WGAN-GP) and write it as a lip artifact."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .. import artifact, config, files, resume
from .. import images as images_io
from .. import device as devices
from ..errors import LipError
from ..gan import EpochStats, GanConfig, check_data_name, load_data, new_gan, sample_grid, trained_artifact, train
from ..nets import gan_spec
from ..resume import Keeper
from .render import Terminated, emit_json, err, guarded, progress, say, say_state_kept
from .options import Device, Seed, Threads, given_flags, json_flag

PlainJson = json_flag(panel=None)
ResumeEvery = Annotated[float, typer.Option(
    metavar="SECONDS", help="Save the training's state beside --out (folder OUT.lip-resume) every SECONDS and when "
    "stopped (Ctrl-C, SIGTERM, SIGHUP), so that the same command run again continues where it was, to the same "
    "generator; 0: only when stopped. Removed once the training ends")]


MAX_SIZE = 256  # peaked at 2.4 GB of memory training at 256 (a one-image folder, --batch 2)


def _command(data: str, epochs: int, batch: int, lr: float, nz: int, ngf: int, ndf: int, size: int,
             channels: int, seed: int, out: Path) -> str:
    """The canonical command line that reproduces a run (recorded in the artifact)."""
    return (f"lip train-generator --data {data} --epochs {epochs} --batch {batch} --lr {lr:g} "
            f"--nz {nz} --ngf {ngf} --ndf {ndf} --size {size} --channels {channels} --seed {seed} "
            f"--out {out}")


@guarded
def train_generator_cmd(
    ctx: typer.Context,
    data: str = typer.Option("mnist", help="'mnist' (the bundled 4,500 training digits; the last 50 "
                             "of each class are held back) or a folder of images (each centre-cropped square and "
                             "resized to --size)"),
    epochs: int = typer.Option(35, help="Passes over the data", min=1),
    batch: int = typer.Option(32, help="Batch size", min=1),
    lr: float = typer.Option(2e-4, help="Adam learning rate (betas 0, 0.99; the paper's WGAN-GP recipe)"),
    nz: int = typer.Option(64, help="Latent dimension", min=1),
    ngf: int = typer.Option(32, help="Generator width (channels at full resolution)", min=1),
    ndf: int = typer.Option(32, help="Critic width", min=1),
    size: int = typer.Option(32, help="Image side: 8, 16, 32, 64, ... up to 256"),
    channels: int = typer.Option(1, help="1 (gray) or 3 (RGB)"),
    out: Path = typer.Option(..., "--out", "-o", help="Generator artifact to write (.safetensors)"),
    samples: Path | None = typer.Option(None, help="Sample grid PNG [OUT stem + _samples.png]"),
    device: Device = "auto", seed: Seed = 0, threads: Threads = None, resume_every: ResumeEvery = 60.0,
    json_: PlainJson = False,
) -> None:
    """Train a DCGAN-style generator prior with WGAN-GP (for lip cs and GAN pruning)."""
    if channels not in (1, 3):
        raise LipError(f"--channels {channels} must be 1 or 3")
    config.check_lr(lr)
    resume.check_every(resume_every)
    dev = devices.resolve(device)
    n_threads = devices.set_threads(threads, say)
    if size < 8 or size & (size - 1) or size > MAX_SIZE:
        raise LipError(f"--size {size}: give a power of two from 8 to {MAX_SIZE} (8, 16, 32, 64, ...): a DCGAN prior "
                       "is a small-image generator, and memory grows with the side squared (1024 took 24 GB)")
    spec = gan_spec(nz=nz, ngf=ngf, ndf=ndf, channels=channels, size=size)
    try:
        net = new_gan(spec, seed).to(dev)
    except ValueError as exc:
        raise LipError(f"invalid generator shape: {exc}") from None
    note = check_data_name(data, bool(given_flags(ctx, {"data"})))
    if Path(data).is_dir():  # the training images are inputs: neither output may replace one
        files.protect(Path(data).iterdir())
    artifact.check_output(out)
    if files.reaches_stdout(out):  # stdout would get one whole artifact per epoch, back to back
        raise LipError(f"-o {out}: the generator is saved after every epoch; give it a file name")
    grid = samples or out.with_name(f"{out.stem}_samples.png")
    if files.reaches_stdout(grid):
        raise LipError(f"--samples {grid}: the sample grid is rewritten after every epoch; give it a file name")
    images_io.check_suffix(grid)
    files.check_writable(grid)
    if note:
        say(note)
    x = load_data(data, spec)
    cfg = GanConfig(epochs=epochs, batch=batch, lr=lr, seed=seed)
    command = _command(data, epochs, batch, lr, nz, ngf, ndf, size, channels, seed, out)
    err.print(f"lip train-generator: {x.shape[0]} images of {size}x{size}, {epochs} epochs, "
                     f"writing {out}", markup=False, soft_wrap=True)
    start = time.perf_counter()
    per_epoch = x.shape[0] // min(batch, x.shape[0])
    folder = resume.state_folder(out)
    keeper = None if folder is None else Keeper(resume.fit_state(folder, seed), resume_every or None, say,
                                                 where=lambda st: f"epoch {st['epoch']}, batch {st['count']} of "
                                                                  f"{per_epoch}",
                                                 cap_named=lambda cap: f"{cap // per_epoch} epoch"
                                                                       + "s" * (cap // per_epoch != 1))
    with progress(epochs * per_epoch, "train-generator") as advance:
        shown = written = 0  # batches shown, epochs written by this run

        def on_step(step: int) -> None:
            nonlocal shown
            advance(step - shown)  # a resumed run starts where the saved one was
            shown = step

        def on_epoch(history: list[EpochStats]) -> None:
            nonlocal written
            s, records = history[-1], [h.record() for h in history]
            # every epoch: an interrupted run keeps its last finished epoch
            artifact.save(out, trained_artifact(net, cfg, command=command, data=data, train_images=int(x.shape[0]),
                                                epochs_done=s.epoch, history=records))
            sample_grid(net.g, grid)
            written = s.epoch
            err.print(f"epoch {s.epoch:>3}  W {s.wasserstein:.4f}  d_loss {s.d_loss:.4f}  "
                      f"g_loss {s.g_loss:.4f}  {s.seconds:.1f}s", markup=False)
            if json_:
                emit_json({"type": "epoch", **records[-1], "seconds": round(s.seconds, 3)})

        try:
            train(net, x.to(dev), cfg, on_epoch=on_epoch, on_step=on_step, keeper=keeper)
        except (KeyboardInterrupt, Terminated):
            written = max(written, (keeper.resumed_from or 0) // per_epoch if keeper is not None else 0)
            say_state_kept(folder, f"stopped after epoch {written} of {epochs}; " + (
                "no generator was written" if not written else f"{out} holds the finished generator"
                if written == epochs else f"{out} holds that generator (its epochs_done), not a finished one"),
                output=out)
            raise
    problem = None if folder is None else resume.clear(folder)
    if problem:
        say(f"lip: warning: {problem}")
    seconds = time.perf_counter() - start
    err.print(f"wrote {out} and {grid} in {seconds:.0f}s ({n_threads} threads)", markup=False,
                     soft_wrap=True)
    if json_:
        emit_json({"type": "result", "out": str(out), "samples": str(grid), "seconds": round(seconds, 1),
                          "command": command})
