"""A fit's whole state on disk, so that an interrupted restore continues where it stopped.

A restore of a large image on a CPU runs for many minutes; a Ctrl-C, a SIGTERM from a scheduler or a
lost machine should cost at most the last minute of it. `Keeper` saves what the fitting loop holds
(weights, Adam's moments, the rollback snapshot, the jitter generators, the stop detector's window, the
EMA and the results so far) every `every` seconds and when the process is asked to stop. A later run
that is the same fit (`fingerprint`: the observation, the input code, the initial weights, the masks and
every setting but the iteration cap) loads it and continues to exactly the result the uninterrupted run
would have had (tests/test_resume.py; on a CUDA GPU, to within the last bits its atomic-add kernels vary by
from run to run).

A restore keeps its fits' states in one folder beside its output (`state_folder`), one file per seed
(`fit_state`), removed once the image is written. An ensemble's members are fits with seeds seed + k, so
member 0 continues a stopped single restore of the same command; a member that has ended keeps its
final state (`Keeper(final=True)`) and is not fitted again.

The file is safetensors, like every file lip reads (it never unpickles): the tensors under their path in
the state, and the rest of the state as a JSON skeleton in the metadata. It is an internal file of one
run, not an artifact to share.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import nn

from safetensors import safe_open
from safetensors.torch import save_file

from . import sharing
from .errors import LipError
from .files import atomic_path, fitting_name, is_stream, sole_writer
from .nets.base import is_channels_last
from .stops import SAID

SUFFIX = ".lip-resume"  # of the state folder
VERSION = 1  # of the saved state's layout; another version is not loaded (the fit starts over)
SIGNALS = tuple(SAID)  # SIGINT, SIGTERM, SIGHUP
FIT, MEMBER = "fit-{}.safetensors", "member-{}.safetensors"  # in a state folder: a fit's state, a finished member


def check_every(every: float | None) -> None:
    """`--resume-every`: seconds between saves, >= 0 (None: only when stopped)."""
    if every is not None and not every >= 0:  # NaN too
        raise LipError(f"--resume-every {every:g}: seconds between saves must be a number >= 0")


def state_folder(output: Path) -> Path | None:
    """Where the fits of the restore that writes `output` keep their state: beside it (None for a stream,
    stdout, a device or a pipe, which has no folder beside it)."""
    return None if is_stream(output) else output.with_name(fitting_name(output.name, len(SUFFIX)) + SUFFIX)


def writing(output: Path) -> ContextManager[None]:
    """Held while a restore writes `output` and keeps its fits' state beside it: a second restore of the same
    output at once is refused. Two ensembles shared the state folder: one averaged the other's members (another
    image's, exit 0) or found them gone. The lock file is in the per-user folder of running fits (sharing.py),
    named by the output's real path; none for a stream, which keeps no state."""
    where = None if is_stream(output) else sharing.usable_folder()
    if where is None:  # no usable folder: run unlocked, as sharing runs unshared
        return nullcontext()
    key = hashlib.sha256(os.fsencode(os.path.realpath(output))).hexdigest()[:32]
    return sole_writer(where / f"output-{key}.lock", "wait for it to end, or choose another -o", shown=output)


def fit_state(folder: Path, seed: int) -> Path:
    """The state file of the fit with `seed` in a restore's state folder."""
    return folder / FIT.format(seed)


def member_file(folder: Path, k: int) -> Path:
    """Where ensemble member k, fitted by a worker process, is left for the parent to average."""
    return folder / MEMBER.format(k)


def saved_fits(folder: Path) -> list[Path]:
    """The fits' states (`fit_state`) a restore's state folder holds."""
    return sorted(folder.glob(FIT.format("*"))) if folder.is_dir() else []


def clear(folder: Path) -> str | None:
    """Remove a restore's state folder: the files lip put there (fits' states, ensemble members, and the
    temporary file of a save a SIGKILL cut short: files.atomic_path's .NAME.XXXX.part...), then the folder if
    that left it empty. Its result is already stored, so a file that cannot be removed (another user's folder) is
    not an error: the reason is returned, for a warning."""
    if not folder.is_dir():
        return None
    ours = [FIT.format("*"), MEMBER.format("*")]
    try:
        for path in [p for name in ours for p in [*folder.glob(name), *folder.glob(f".{name}.*.part*")]]:
            path.unlink(missing_ok=True)
    except OSError as exc:
        return f"could not remove the saved fit state in {folder} ({exc.strerror or exc}): remove it yourself"
    try:
        folder.rmdir()
    except OSError:  # something else is in it: not ours to remove
        pass
    return None


def _digest(h: "hashlib._Hash", t: torch.Tensor) -> None:
    h.update(str((tuple(t.shape), t.dtype)).encode())
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def _split(obj: Any, tensors: dict[str, torch.Tensor], at: str) -> Any:
    """The JSON skeleton of a nested state; its tensors go into `tensors` under their path `at`. Dicts
    become [key, value] pairs (optimizer state has int keys), tuples are marked, and a channels-last
    tensor keeps that layout (fused Adam wants its moments laid out like their parameters)."""
    if torch.is_tensor(obj):
        tensors[at] = obj.detach().contiguous()
        return {"tensor": at, "channels_last": is_channels_last(obj)}
    if isinstance(obj, dict):
        return {"dict": [[k, _split(v, tensors, f"{at}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_split(v, tensors, f"{at}/{i}") for i, v in enumerate(obj)]
        return {"tuple": items} if isinstance(obj, tuple) else items
    return obj


def _join(skeleton: Any, tensors: Any) -> Any:
    """`_split` undone, the tensors read from an open safetensors file."""
    if isinstance(skeleton, list):
        return [_join(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "tensor" in skeleton:
        t = tensors.get_tensor(skeleton["tensor"])
        return t.contiguous(memory_format=torch.channels_last) if skeleton["channels_last"] else t
    if "tuple" in skeleton:
        return tuple(_join(v, tensors) for v in skeleton["tuple"])
    return {k: _join(v, tensors) for k, v in skeleton["dict"]}


def fingerprint(settings: dict[str, Any], model: nn.Module, tensors: list[torch.Tensor]) -> str:
    """What makes two fits the same fit: their settings, the model's initial state and the tensors they
    fit to (observations, input codes, masks). Hashing the tensors themselves rather than the options
    that made them catches every way of making them."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        _digest(h, t)
    for t in tensors:
        _digest(h, t)
    return h.hexdigest()


class Keeper:
    """Saves a fit's state to `path` every `every` seconds (None: only when asked to stop) and when the
    process gets SIGINT, SIGTERM or SIGHUP (and, with `final`, once the fit has ended); loads it back for the same fit.
    A state holds `it` (steps done, against the run's cap) and `ended`; `where(state)` names its position
    in messages (a GAN's training says epoch and batch), `cap_named(cap)` the cap.

    While `holding()`, those signals are deferred to the end of the iteration: the loop saves the state
    (`due` is then True) and the signal is delivered as it would have been (Ctrl-C's KeyboardInterrupt,
    the CLI's SIGTERM handler). The same signal twice is delivered at once.
    """

    def __init__(self, path: Path, every: float | None = 60.0,
                 notify: Callable[[str], None] = lambda line: None, final: bool = False,
                 where: Callable[[dict[str, Any]], str] = lambda state: f"iteration {state['it']}",
                 cap_named: Callable[[int], str] = str) -> None:
        self.path, self.every, self.notify, self.final, self.where = Path(path), every, notify, final, where
        self.cap_named = cap_named  # a cap in steps, as `where` names positions (a GAN's: in epochs)
        self.next = 0.0
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}
        self.resumed_from: int | None = None  # the iteration a loaded state had reached

    def load(self, key: str, cap: int) -> dict[str, Any] | None:
        """The saved state of the fit `key`, its tensors on the CPU (None: there is none, or it belongs to
        another fit); `cap`: the iterations this run may reach, which a state can have ended under or may
        continue to."""
        self.next = time.monotonic() + (self.every or 0.0)
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("version") != str(VERSION) or meta.get("key") != key:
                    self.notify(f"{self.path.name} holds another fit (other input or settings); starting over")
                    return None
                state = _join(json.loads(meta["state"]), f)
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file is never fatal: start over
            self.notify(f"{self.path.name}: not a saved fit ({type(exc).__name__}); starting over")
            return None
        where, at = f"{self.path.parent.name}/{self.path.name}", self.where(state)
        if state["it"] > cap:  # a lowered cap: what this run asks for lies before the saved state
            self.notify(f"the fit saved in {where} is at {at}, past this run's cap of {self.cap_named(cap)}: "
                        "starting over")
            return None
        self.resumed_from = state["it"]
        self.notify(f"the fit saved in {where} ended at {at}: taken as it is"
                    if state["ended"] or state["it"] >= cap else
                    f"continuing the fit saved in {where} at {at}")
        return state

    def due(self) -> bool:
        return self.signal is not None or (self.every is not None and time.monotonic() >= self.next)

    def save(self, key: str, state: dict[str, Any]) -> None:
        """Write the state (atomically: an interrupted write keeps the previous one), then deliver a
        deferred signal. A state that cannot be written (a full disk) stops the saving, not the fit."""
        tensors: dict[str, torch.Tensor] = {}
        skeleton = json.dumps(_split(state, tensors, "state"))
        made = not self.path.parent.exists()
        try:
            self.path.parent.mkdir(exist_ok=True)
            with atomic_path(self.path) as tmp:
                save_file(tensors, str(tmp), metadata={"version": str(VERSION), "key": key, "state": skeleton})
        except Exception as exc:  # noqa: BLE001 - OSError, LipError, safetensors' own error on a full disk
            self.notify(f"cannot save the fit's state to {self.path} ({str(exc).strip() or type(exc).__name__}); "
                        "going on without saving it")
            self.every, self.final = None, False
            if made:  # an empty folder left beside the output would look like a kept state
                with suppress(OSError):
                    self.path.parent.rmdir()
        self.next = time.monotonic() + (self.every or 0.0)
        if self.signal is not None:
            self._deliver()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Defer SIGINT/SIGTERM/SIGHUP to the loop's next save; a no-op outside the main thread, and inside a stretch
        already held (a caller that holds past the fit, to write its result: that stretch delivers)."""
        if self.previous:
            yield
            return
        try:
            # an ignored signal (SIGHUP under nohup, SIGINT in a background job) stays ignored
            self.previous = {s: signal.signal(s, self._defer) for s in SIGNALS
                             if signal.getsignal(s) is not signal.SIG_IGN}
        except ValueError:  # signals can only be handled in the main thread
            self.previous = {}
        try:
            yield
        finally:
            if self.previous:
                self._deliver()

    def _defer(self, signum: int, frame: Any) -> None:
        if self.signal == signum:  # asked twice (Ctrl-C, Ctrl-C): stop now, with what was saved before
            self._deliver(signum)
        # Another signal meanwhile changes nothing: a `--jobs` worker gets the terminal's SIGINT and then its
        # parent's SIGTERM (processes.py), and should still save first.
        self.signal = self.signal or signum

    def _deliver(self, signum: int | None = None) -> None:
        """Put the handlers back and raise the deferred signal (if any) through them."""
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
        pending, self.signal = signum or self.signal, None
        if pending is not None:
            signal.raise_signal(pending)
