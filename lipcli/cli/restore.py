"""`lip restore`: parse, restore each image with the chosen prior, write it and report it."""
from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .. import api, config, device as devices, files, jobs as jobs_mod, resume
from .. import images as images_io
from ..ensemble import Elsewhere
from ..errors import LipError, LipRuntimeError
from ..fit import FitResult, Step
from ..physics.mri import HEADROOM, check_scan_paths
from ..problem import Problem, largest_need
from .render import (RunLog, Terminated, check_stdout_free, emit_json, err, fmt, guarded, progress, say, say_lost,
                     say_state_kept, set_threads_quietly, steps_done, write_then_discard)
from .options import (ARGS, Config, DataConsistency, Device, EarlyStop, Ema, EsClose, EsGate, EsPatience, EsSpike,
                      EsWhite, EsWindow, InpaintMask, Iters, Jobs, Json, JumpFactor, Log, Lr, MaskRound, MaskSparsity,
                      Precision, RegNoise, RegNoiseEvery, ResumeEvery, Seed, Sgld, Simulate, Task, Threads, WeightDecay,
                      net_option, with_task_flags)


SPARSITY_NOTE = 0.02  # --sparsity picks the closest round; further from it than this, the run says so


def output_paths(inputs: list[Path], out: Optional[str], suffix: str = "_restored") -> list[Path]:
    """One output per input: beside it by default; --out a file for one input, or a folder (created) for several,
    or when it is one already or ends in /. Two inputs that would be written to one file are refused first."""
    if out == "":
        raise LipError("-o is empty (an unset shell variable?): give a file, a folder or -")
    if out is not None and files.is_stdout(out):
        if len(inputs) > 1:
            raise LipError("-o - writes one image to stdout: give one input (or an output folder)")
        return [Path(out)]
    images_io.check_given_once(inputs, "input")
    folder = None if out is None or not (len(inputs) > 1 or Path(out).is_dir() or out.endswith(("/", os.sep))) \
        else Path(out)
    meant_folder = folder is not None and (folder.is_dir() or out.endswith(("/", os.sep)))
    if folder is not None and not meant_folder and images_io.names_image_file(folder):
        raise LipError(f"-o {out} names one image file, and {len(inputs)} inputs were given (a glob that matched "
                       f"more than meant?): give an output folder (-o {folder.parent / 'restored'}/) or one input")
    if out is None:  # beside the input, in its type (images_io.output_suffix); samples go to the working folder
        paths = [images_io.beside(p, f"{suffix}{images_io.output_suffix(p)}") for p in inputs]
    elif folder is None:
        return [Path(out)]
    else:
        paths = [folder / f"{images_io.resolve(p).stem}{images_io.output_suffix(p)}" for p in inputs]
    for k, path in enumerate(paths):
        if path in paths[:k]:
            raise LipError(f"{inputs[paths.index(path)]} and {inputs[k]} would both be written to {path}; "
                           + ("restore them into different --out folders" if folder else
                              "restore them one at a time, each with its own -o"))
    if folder is not None:
        files.make_folder(folder, "output folder")
    return paths


@guarded
@with_task_flags(after="simulate")
def restore_cmd(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Degraded image(s), MRI k-space .npy or CS measurements y.npy "
                                                   "(clean images with --simulate)"),
    task: Task = "denoise", inpaint_mask: InpaintMask = None, simulate: Simulate = False,
    save_kspace: Optional[Path] = typer.Option(None, help="MRI with --simulate: also write the k-space and its mask "
                                               "to this folder (kspace.npy, mask.npy; created), to reconstruct "
                                               "the same from files (an .npy output holds the same values; a PNG "
                                               "made from k-space alone has another white: k-space does not say "
                                               "what white is, so white is --headroom times the zero-filled "
                                               "image's brightest pixel)",
                                               rich_help_panel="Task"),
    mask: Optional[Path] = typer.Option(None, help="Mask artifact (.safetensors) or a library name (`lip masks`: "
                                        "fitted for its task with the settings it was measured with, flags "
                                        "override); absent: the preset's ticket for the task (--dense: none), else "
                                        "the dense net",
                                        rich_help_panel="Prior"),
    round_: MaskRound = None, sparsity: MaskSparsity = None,
    init: str = typer.Option("artifact", help="artifact: the mask's theta0 (LIP ticket) | fresh: new "
                             "weights under the mask (OES transfer), drawn from --seed apart from the ticket's own "
                             "draw", rich_help_panel="Prior"),
    prior: str = typer.Option("dip", help="dip | deep-decoder (dense priors without --mask)",
                              rich_help_panel="Prior"),
    net: net_option("Prior") = None,
    dense: bool = typer.Option(False, "--dense", help="Fit the dense DIP net where the preset would fit its "
                               "shipped ticket (lip masks; --config paper always fits the dense net)",
                               rich_help_panel="Prior"),
    dd_k: Optional[int] = typer.Option(None, help="Deep-decoder width k (6(k^2+2k)+3k parameters) whenever the "
                                       "deep decoder is fitted (--prior, --net or --config deep-decoder) [128]",
                                       min=1, show_default=False, rich_help_panel="Prior"),
    compact: Optional[bool] = typer.Option(None, "--compact/--no-compact", help="Fit the masked net with its "
                                           "entirely pruned filters removed (lipcli/nets/compact.py): the same "
                                           "function, faster. [on whenever the mask removes whole filters]",
                                           show_default=False, rich_help_panel="Prior"),
    iters: Iters = None, lr: Lr = None, reg_noise: RegNoise = None, reg_noise_every: RegNoiseEvery = None,
    ema: Ema = None, sgld: Sgld = None, weight_decay: WeightDecay = None, early_stop: EarlyStop = None,
    data_consistency: DataConsistency = None, es_window: EsWindow = None,
    es_patience: EsPatience = None, es_gate: EsGate = None, es_white: EsWhite = None, es_close: EsClose = None,
    es_spike: EsSpike = None, jump_factor: JumpFactor = None,
    ensemble: int = typer.Option(1, min=1, help="Average N fits with seeds SEED..SEED+N-1 (each auto-stopped; "
                                 "N times the work). One input on a CPU: the members are fitted at once, the "
                                 "cores divided as for --jobs (--jobs 1: one after the other)",
                                 rich_help_panel="Fitting"),
    members: Optional[tuple[str, Path]] = typer.Option(None, metavar="J/M DIR", hidden=True,
                                                       help="Fit ensemble members J, J+M, ... of the one input "
                                                       "into folder DIR and write no image: a worker of an "
                                                       "ensemble fitted at once (lipcli/jobs.py)"),
    inputs_at: Optional[str] = typer.Option(None, "--inputs-at", metavar="I,J,...", hidden=True,
                                            help="Restore only the inputs at these positions of the list (from 0): "
                                            "a worker of a --jobs run (lipcli/jobs.py)"),
    snapshots: Optional[tuple[int, Path]] = typer.Option(None, metavar="N DIR", help="Also write what the fit "
                                                         "shows every N iterations into folder DIR (created), as "
                                                         "INPUT-STEM_ITERATION.png: its learning process",
                                                         show_default=False, rich_help_panel="Fitting"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output file; a folder for several inputs (or "
                                      "when it ends in /); or - for PNG bytes on stdout [INPUT_restored.png]"),
    clean: Optional[Path] = typer.Option(None, help="Clean reference for metrics only (reports the "
                                         "'oracle' best PSNR too). Compared as the values it holds; peak: its "
                                         "type's range (8/16-bit unsigned; floats in [0,1]: 1), else the input's "
                                         "where that is fixed, else the reference's own min..max; MRI: in the "
                                         "k-space's units"),
    device: Device = "auto", seed: Seed = 0, precision: Precision = None,
    threads: Threads = None, jobs: Jobs = "auto",
    shard: Optional[str] = typer.Option(None, help="i/n: restore only inputs i, i+n, i+2n, ... (one share of a "
                                        "folder per machine or SLURM task; --jobs shares out the inputs on one "
                                        "machine)", rich_help_panel="Run"),
    config_: Config = None,
    checkpoint: Optional[bool] = typer.Option(None, "--checkpoint/--no-checkpoint", help="Recompute conv "
                                              "blocks in backward: about 1/3 less memory, each block's forward runs "
                                              "twice, same result [on only when the image would not fit otherwise]",
                                              show_default=False, rich_help_panel="Run"),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave inputs whose output file exists "
                                       "(outputs are written whole or not at all, so re-running an interrupted "
                                       "batch with this flag restores only what is missing); each is reported "
                                       "as skipped", rich_help_panel="Run"),
    resume_every: ResumeEvery = 60.0,
    json_: Json = False,
    log: Log = None,
    task_flags: dict[str, Any] = None,  # type: ignore[assignment]  # filled by with_task_flags
) -> None:
    """Restore images with a dense or masked Deep Image Prior."""
    dev = devices.resolve(device)
    say_threads = set_threads_quietly(threads)
    n_jobs, shard_ = jobs_mod.parse_jobs(jobs), config.parse_shard(shard)
    job = api.restorer(task=task, simulate=simulate, inpaint_mask=inpaint_mask, mask=mask, round_=round_,
                       sparsity=sparsity, init=init, prior=prior, net=net, dense=dense, dd_k=dd_k, compact=compact,
                       early_stop=early_stop, checkpoint=checkpoint, config=config_, device=dev, seed=seed,
                       **task_flags, iters=iters,
                       lr=lr, reg_noise=reg_noise, reg_noise_every=reg_noise_every, ema=ema, sgld=sgld,
                       weight_decay=weight_decay,
                       data_consistency=data_consistency,
                       es_window=es_window, es_patience=es_patience, es_gate=es_gate, es_white=es_white,
                       es_close=es_close, es_spike=es_spike, jump_factor=jump_factor, precision=precision,
                       ensemble=ensemble, snapshot_every=snapshots[0] if snapshots else None,
                       resume_every=resume_every or None)
    if clean is not None and len(images) > 1:
        raise LipError("--clean gives one reference image; restore one input at a time with it")
    if save_kspace is not None and (task != "mri" or not simulate or len(images) > 1):
        raise LipError("--save-kspace writes the k-space of one simulated scan: give one image, --task mri "
                       "and --simulate")
    images_io.check_readable(images)
    at = (jobs_mod.parse_positions(inputs_at, len(images)) if inputs_at is not None
          else config.shard_of(list(range(len(images))), shard_))
    if members is not None:  # a worker of its parent's run, which did the checks
        _fit_share([images[k] for k in at], job, clean, members, log)
        return
    check_stdout_free(out, json_, log)
    outs = output_paths(images, out)
    scan = dict(zip(("--save-kspace's k-space", "--save-kspace's mask"), check_scan_paths(save_kspace))) \
        if save_kspace is not None else {}
    files.check_distinct({"--log": log, **scan, **{f"the output of {p}": o for p, o in zip(images, outs)}})
    for path in outs:
        files.check_writable(path)
        images_io.check_suffix(path)  # before the run, not after it
    if snapshots is not None:  # the folder is made at the first snapshot: a run refused later leaves none
        files.check_folder(snapshots[1], "snapshot folder")
        every, folder = snapshots
        named: dict[str, Path] = {}
        for p in images:  # snapshots are named by the input's stem alone
            first = named.setdefault(images_io.resolve(p).stem, p)
            if first is not p:
                raise LipError(f"{first} and {p} would write their snapshots to the same files ({folder}/"
                               f"{images_io.resolve(p).stem}_N.png): restore them in separate runs, or rename one")
        stems, iters = set(named), job.cfg.iters

        def a_snapshot(entry: Path) -> bool:  # a name some snapshot of this run takes
            stem, _, it = entry.stem.rpartition("_")
            return (stem in stems and it.isdigit() and 0 < int(it) <= iters and int(it) % every == 0
                    and entry == _snapshot_path(folder, Path(stem), int(it), iters))
        if log is not None and not files.is_stream(log) and \
                os.path.realpath(Path(log).parent) == os.path.realpath(folder) and a_snapshot(folder / Path(log).name):
            raise LipError(f"--log {log} is the name of a snapshot this run writes: give the log another name")
        if not folder.is_dir():
            files.check_writable(folder)
        else:  # the files there that a snapshot will replace, now, not when one lands on an input
            for entry in sorted(folder.iterdir()):
                if a_snapshot(entry):
                    files.check_writable(entry)
    if sparsity is not None and abs(job.prior.sparsity - sparsity) > SPARSITY_NOTE:  # the closest may be far
        say(f"lip: --sparsity {sparsity:g}: the closest round of {mask} is round {job.prior.source['round']}, "
            f"{100 * job.prior.sparsity:.1f}% sparse")
    if job.prior.warning:  # said once, here, whether the fits run in this process or in jobs
        say(f"lip: warning: {job.prior.warning}")
    if job.note:
        say(f"lip: note: {job.note}")
    mine = [(images[k], outs[k]) for k in at]
    if len(mine) > 1:  # one input's notes wait until it is read: an input refused then errs in one line
        say_threads()
    if not mine:
        say(f"lip restore: --shard {shard} of {len(images)} inputs has none of them; nothing to do")
    unreadable = _read_ahead(mine, job, skip_existing)
    skipped = [k for k in at if skip_existing and outs[k].is_file()]
    todo = [k for k in at if k not in skipped and images[k] not in unreadable]  # positions of the inputs to fit
    need = lambda: largest_need([images[k] for k in todo], task, job.settings, simulate,  # noqa: E731
                                job.prior.fitted_spec, job.cfg.precision)
    planned = jobs_mod.plan(n_jobs, threads, len(todo), dev, need, say)
    at_once = None if planned else jobs_mod.plan_members(n_jobs, threads, len(todo), job.ensemble, dev, need, say)
    run_log = RunLog(log)
    try:
        refused: list[tuple[str, LipError]] = [(p.name, exc) for p, exc in unreadable.items()]  # said when read
        if planned is not None:
            say_threads()
            _restore_jobs(ctx.meta[ARGS], list(zip(images, outs)), skipped, todo, *planned, json_, run_log)
            _raise_refused(refused, len(mine))
            return
        members_jobs = None if at_once is None else partial(_members_at_once, ctx.meta[ARGS], todo[0], *at_once,
                                                            run_log)
        batch = len(mine) > 1 and not skip_existing  # stopped, it names --skip-existing: the written images stay
        for path, dest in mine:
            if skip_existing and dest.is_file():
                _skipped(path, dest, json_, run_log)
                continue
            if path in unreadable:  # said when it was read ahead, and counted as refused
                continue
            try:
                _restore_one(path, dest, job, clean, json_, run_log, save_kspace, snapshots, members_jobs, batch,
                             say_threads)
            except LipRuntimeError:  # a failed run (a full disk, divergence): the next would fail alike
                raise
            except LipError as exc:  # this input is refused; the others are restored all the same
                if len(mine) == 1:
                    raise
                say(f"lip: {path.name} not restored: {exc}")
                refused.append((path.name, exc))
        _raise_refused(refused, len(mine))
    finally:
        run_log.close()


def _raise_refused(refused: list[tuple[str, LipError]], inputs: int) -> None:
    """After the others were restored: the inputs refused, as one error (exit 2)."""
    if len(refused) == 1:
        raise refused[0][1]
    if refused:
        raise LipError(f"{len(refused)} of {inputs} inputs were refused: "
                       + "; ".join(f"{name}: {exc}" for name, exc in refused))


def _read_ahead(mine: list[tuple[Path, Path]], job: api.Restorer, skip_existing: bool) -> dict[Path, LipError]:
    """Read every input of a batch before the first fit and say now which ones will be refused (an unreadable
    file, a wrong size for its mask): the others are restored all the same, but a user should not learn about
    input 150 hours later, when its turn comes."""
    if len(mine) < 2:
        return {}
    refused: dict[Path, LipError] = {}
    for path, dest in mine:
        if skip_existing and dest.is_file():
            continue
        try:
            job.problem(path)
        except LipRuntimeError:
            raise
        except LipError as exc:
            refused[path] = exc
            say(f"lip: {path.name} will not be restored: {exc}")
    return refused


def _restore_jobs(args: list[str], pairs: list[tuple[Path, Path]], skipped: list[int], todo: list[int], jobs: int,
                  each: int, json_: bool, run_log: RunLog) -> None:
    """Restore the inputs at positions `todo` of (input, output) `pairs` as `jobs` worker processes
    (lipcli/jobs.py), reporting those at positions `skipped` as skipped (their outputs exist): one
    progress display over the restored ones, a line per finished image, the JSON lines in input order, the
    workers' events in --log."""
    count, dests = len(todo), [pairs[k][1] for k in todo]
    left = list(skipped)  # reported in input order among the results

    def skipped_before(position: int) -> None:
        while left and left[0] < position:
            _skipped(*pairs[left.pop(0)], json_, run_log)

    say(f"lip restore: {count} images, {jobs} at once ({each} thread{'s' * (each > 1)} each; --jobs 1 runs "
        "them one after the other)")
    running: dict[int, str] = {}  # job -> its image and iteration
    finished = 0
    with progress(count, "images") as advance:
        def on_event(job: int, event: dict[str, Any]) -> None:
            nonlocal finished
            run_log.append(event)
            if event.get("event") == "step":
                running[job] = f"{event['input']} {event['iteration']}/{event['total']}"
            elif event.get("event") == "result":
                running.pop(job, None)
                finished += 1
                _say_restored(event)
            advance(1 if event.get("event") == "result" else 0, "  ".join(running[j] for j in sorted(running)))

        def on_report(position: int, report: dict[str, Any]) -> None:
            skipped_before(position)
            if json_:
                emit_json(report)

        skipped_before(todo[0])
        try:
            jobs_mod.run(args, todo, jobs, each, on_event, on_report, say)
            skipped_before(len(pairs))
        except (KeyboardInterrupt, Terminated):
            kept = sum(folder is not None and folder.is_dir() for folder in map(resume.state_folder, dests))
            say(f"lip: stopped the {jobs} jobs; {finished} of {count} images were restored and written"
                + (f"; the fits stopped midway kept their state beside their outputs ({kept}): the same command "
                   "with --skip-existing continues them and leaves the written images" if kept else ""))
            raise


def _members_at_once(args: list[str], position: int, workers: int, threads: int, run_log: RunLog,
                     advance: Callable[..., None]) -> Elsewhere:
    """One input's ensemble members fitted by `workers` worker processes (lipcli/jobs.py), shown in the
    image's progress display (each worker's iteration) and their events in --log, as a sequential run's."""
    def fitted(problem: Problem, seeds: list[int], states: Optional[Path]) -> list[tuple[FitResult, dict[str, Any]]]:
        say(f"lip restore: {len(seeds)} ensemble members, {workers} at once ({threads} thread{'s' * (threads > 1)} "
            "each; --jobs 1 fits them one after the other)")
        saved = resume.saved_fits(states) if states is not None else []
        if saved:  # the workers say nothing until they end: say here that they will use them
            say(f"lip restore: {len(saved)} saved fit{'s' * (len(saved) > 1)} in {states}/: the members that are "
                "the same fit continue from them")
        running: dict[int, str] = {}  # worker -> its iteration
        last: dict[Any, int] = {}

        def on_event(worker: int, event: dict[str, Any]) -> None:
            run_log.append(event)
            if event.get("event") == "step":
                running[worker] = f"{event['iteration']}/{event['total']}"
                advance(steps_done(last, worker, event["iteration"]),
                        "iterations; members at " + "  ".join(running[w] for w in sorted(running)),
                        event["total"] * len(seeds))

        try:
            return jobs_mod.run_members(args, position, len(seeds), workers, threads, on_event, say, states)
        except (KeyboardInterrupt, Terminated):
            say(f"lip: stopped the {workers} ensemble jobs; nothing was written")
            raise
    return fitted


def _fit_share(images: list[Path], job: api.Restorer, clean: Optional[Path], members: tuple[str, Path],
               log: Optional[Path]) -> None:
    """`--members J/M DIR`: fit this worker's share of the one input's ensemble, its steps to --log."""
    if len(images) != 1:
        raise LipError("--members fits the ensemble members of one image: give one input (or a --shard of one)")
    share, run_log = config.parse_shard(members[0], option="--members"), RunLog(log)
    try:
        job.fit_share(images[0], share, members[1], clean=clean, on_step=partial(_log_step, run_log, images[0]),
                      notify=say)
    finally:
        run_log.close()


def _log_step(run_log: RunLog, path: Path, step: Step) -> None:
    run_log.write("step", input=str(path), iteration=step.iteration, total=step.total, loss=step.loss,
                  metric=step.metrics[0], stopped_at=step.stopped_at[0],
                  **({} if step.member is None else {"member_seed": step.member}))


def _save(dest: Path, picture: images_io.Image) -> None:
    images_io.save_image(dest, picture.pixels, alpha=picture.alpha, stored=picture.stored)


def _snapshot_path(folder: Path, source: Path, iteration: int, iters: int) -> Path:
    """--snapshots: FOLDER/INPUT-STEM_ITERATION.png, the iteration zero-padded so that names sort."""
    return folder / f"{images_io.resolve(source).stem}_{iteration:0{len(str(iters))}d}.png"


def _save_kspace(folder: Path, problem: Problem) -> None:
    """--save-kspace: the simulated k-space and its mask, as `lip restore --task mri` reads them back."""
    kspace, mask = problem.op.save_scan(problem.y, folder)
    headroom = "" if problem.op.headroom == HEADROOM else f" --headroom {problem.op.headroom:g}"
    say(f"wrote {kspace} and {mask} (reconstruct them with --task mri {kspace} --sampling-mask {mask}{headroom})")


def _restore_one(path: Path, dest: Path, job: api.Restorer, clean: Optional[Path], json_: bool,
                 run_log: RunLog, save_kspace: Optional[Path] = None,
                 snapshots: Optional[tuple[int, Path]] = None,
                 members_jobs: Optional[Callable[[Callable[[int, str], None]], Elsewhere]] = None,
                 batch: bool = False, ready: Callable[[], None] = lambda: None) -> None:
    """Restore one image and write it, its report (stderr, --json), its log lines and its snapshots;
    `members_jobs(advance)`: who fits its ensemble members (None: this process, one after the other); `batch`:
    one of several inputs, whose stop hint names --skip-existing (the plain command would fit the written
    images again); `ready()` once the input is read and the fit goes ahead (the run's held notes)."""
    rerun = "the same command with --skip-existing" if batch else "the same command"
    def on_snapshot(iteration: int, picture: Any) -> None:
        files.make_folder(snapshots[1], "snapshot folder")
        _save(_snapshot_path(snapshots[1], path, iteration, job.cfg.iters), picture)
    state = resume.state_folder(dest)
    with resume.writing(dest), progress(job.cfg.iters * job.ensemble, f"{path.name}") as advance:
        last: dict[Any, int] = {}

        def on_step(step: Step) -> None:
            shown = f"loss {step.loss:.5f}" + (f" psnr {step.metrics[0]:.2f}" if step.metrics[0] else "")
            advance(steps_done(last, None, step.iteration), shown, step.total * job.ensemble)
            _log_step(run_log, path, step)
        if members_jobs is not None:
            job = replace(job, members_elsewhere=members_jobs(advance))

        def on_problem(problem: Problem) -> None:
            ready()
            say_lost(dest, path.name, images_io.narrowed(dest, problem.alpha is not None, problem.stored,
                                                         1 if problem.gray else 3))
            if save_kspace is not None:
                _save_kspace(save_kspace, problem)
        written: list[Path] = []

        def on_result(restored: api.Restored) -> None:  # a signal meanwhile waits until it returns
            write_then_discard(lambda: _save(dest, restored.picture), state)
            written.append(dest)
            report = {**restored.report, "input": str(path), "output": str(dest)}  # as given: two x.png differ
            _say_restored(report)
            run_log.write("result", **report)
            if json_:
                emit_json(report)
        try:
            job(path, clean=clean, on_step=on_step, notify=say, on_problem=on_problem,
                on_snapshot=None if snapshots is None else on_snapshot, state=state, on_result=on_result)
        except (KeyboardInterrupt, Terminated):
            if written:
                say(f"lip: stopped after {dest} was written" + (f"; {rerun} continues with the next input"
                                                                if batch else ""))
            else:
                say_state_kept(state, output=dest, rerun=rerun)
            raise
        except api.Diverged as exc:  # keep the last good output, then fail with exit 1
            _save(dest, exc.picture)
            raise LipRuntimeError(f"{exc} — the last good result (iteration {exc.iteration}) "
                                  f"was written to {dest}") from None


def _skipped(path: Path, dest: Path, json_: bool, run_log: RunLog) -> None:
    """An input left as it is under --skip-existing: reported like a result (one JSON line per input, and a
    "result" event, which is how a worker's parent counts its inputs)."""
    report = {"input": str(path), "output": str(dest), "skipped": "output exists"}
    _say_restored(report)
    run_log.write("result", **report)
    if json_:
        emit_json(report)


def _stop(member: dict[str, Any]) -> str:
    """Where an ensemble member stopped: the rule's iteration, or the cap it ran to."""
    return str(member["stopped_at"]) + ("" if member.get("auto_stopped", True) else " (the cap)")


def _say_restored(r: dict[str, Any]) -> None:
    if r.get("skipped"):
        err.print(f"{r['input']} -> {r['output']}: skipped, {r['skipped']} (--skip-existing)", markup=False,
                  soft_wrap=True)
        return
    members = r.get("members", [])
    if not r.get("early_stop", True):
        stop = "no automatic stop"
    elif not any(m.get("auto_stopped", True) for m in members or [r]):
        stop = "no automatic stop before the cap"
    elif members:  # e.g. "auto-stop at 840/2400 (the cap)"
        stop = "auto-stop at " + "/".join(_stop(m) for m in members)
    else:
        stop = f"auto-stop at {r['stopped_at']}"
    if r.get("data_consistency"):
        stop += ", observed values kept"
    line = (f"{r['input']} -> {r['output']}: {r['iterations']} iterations, {stop}, "
            f"{r['seconds']:.1f}s, sparsity {100 * r['sparsity']:.1f}%, "
            f"{r['params_fitted']:,} params fitted ({r['gflop_per_iter']:.2f} GFLOP/iteration)")
    if r.get("sigma_estimated") is not None:
        line += f", noise sigma ~{r['sigma_estimated']:.1f} (estimated" + (
            f"; on the 0-255 scale of the image's own min..max: {r['sigma_estimated_values']:.3g} in its values)"
            if r.get("sigma_estimated_values") is not None else ")")
    if r["psnr_final"] is not None and members:  # what was written first: without the stop, the final iterates
        stopped = (f"stopped members {'/'.join(fmt(m['psnr_stopped']) for m in members)}, "
                   f"their average {fmt(r['psnr_stopped'])}")
        final = f"final iterates averaged {fmt(r['psnr_final'])}"
        line += f"; {r['metric']} " + (f"{stopped} ({final})" if r.get("early_stop", True)
                                       else f"{final} (the rule's picks: {stopped})")
    elif r["psnr_final"] is not None:
        line += (f"; {r['metric']} final {fmt(r['psnr_final'])} / stopped "
                 f"{fmt(r['psnr_stopped'])} / oracle best {fmt(r['oracle_best_psnr'])}"
                 f" (iteration {r['oracle_best_iter']})")
        base = r.get("baseline")
        if base:
            line += (f"; ssim stopped {fmt(r['ssim_stopped'], 3)}; {base['name']}: {r['metric']} "
                     f"{fmt(base['psnr'])}, ssim {fmt(base['ssim'], 3)}")
    err.print(line, markup=False, soft_wrap=True)
