"""Named presets, YAML config files, and turning them plus command-line flags into typed settings.

Precedence: preset < config file < command-line flags. A config file is flat YAML with the same keys
as the options (iters, lr, reg_noise, ...), optionally with per-task sections (`denoise:`, `inpaint:`,
`sr:`) and a `preset:` it starts from. The checks of flag values that several commands share live here
once, so every command refuses a bad value with the same line.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, TypeVar

import torch
import yaml

from . import device as devices, library, nets, yamlfile
from .errors import LipError
from .fit import LATER_KNOBS, FitConfig
from .physics import TASKS

# The paper's settings (anchors-spec a.3, LIP row): one net for every task; each task adds its own
# fitting settings and options (physics/: `Task.fitting`, `Task.options`).
_PAPER_COMMON = dict(net="dip", lr=0.01, es_window=200, es_patience=1000, es_gate=1.05, es_white=0.0, es_close=0.0,
                     es_spike=0.0, precision="fp32", early_stop=True, rounds=16, rate=0.2, early_bird=0.0, scope="conv",
                     target_sparsity=None, sgld=0.0, weight_decay=0.0, data_consistency=False, reg_noise_every=0,
                     jump_factor=10 ** 0.5, fresh_input=True)
# Fewer iterations for CPUs: small images peak near 1000 iterations, and early stopping ends sooner.
# IMP prunes 36% (= 1 - 0.8^2) per round, so round k is the paper's round 2k, with 1200 iterations per
# round: its masks transferred as well as the paper's schedule at 1/5 of the iterations
# (experiments/RESULTS-search-budget.md). 4 rounds = 83.2% sparsity, as 8 rounds of 20%. Early-stop patience
# is per task (`Task.fast_es_patience`: 150 for denoising, whose stop has the noise gate; 300 elsewhere).
# IMP's rounds fit one input code z, not a new one each round as the published code does (anchors-spec b.1):
# the fast schedule and its studies were measured so (RESULTS-search-budget.md).
_FAST_OVERRIDES = dict(precision="auto", rounds=4, rate=0.36, fresh_input=False)
# Other papers' protocols, each on top of the paper preset, for every task. OES (anchors-spec c.1-c.3, its
# configs/config_mask.yaml and config_train_sparse.yaml): its net with every parameter masked, 95% sparse
# (the 5% masks it ships for each image; its pepper mask is 96.5%: --target-sparsity 0.965), the mask learnt
# in 60,000 Adam steps at 0.01 (tau 0.2 and KL weight 1e-9 are lip prune's defaults), then 40,000 steps of
# training at 0.01 with no input jitter, no output average and no early stop: OES reports the last iterate.
# The deep decoder as Heckel & Hand fit it (anchors-spec d, their denoising notebook): k = 128, 6 blocks,
# Adam 0.01 for 1,900 iterations, no jitter, no average, no early stop (its small size is the regulariser), for
# every task (their inpainting demo: --dd-k 256 --lr 0.0025 --iters 40000 --reg-noise 0.005 --reg-noise-every 500).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "oes": dict(net="oes", scope="all", target_sparsity=0.95, search_iters=60_000, iters=40_000, lr=0.01,
                reg_noise=0.0, ema=0.0, early_stop=False),
    "deep-decoder": dict(net="deep-decoder", search_iters=1900, iters=1900, lr=0.01, reg_noise=0.0, ema=0.0,
                         early_stop=False),
}
PRESETS = ("paper", "fast", *PROTOCOLS)


def preset(name: str, task: str) -> dict[str, Any]:
    """A preset's settings for a task, built from the registered tasks when asked (so a task
    registered later has presets too). Every task's options are present, whatever the task, so a
    setting such as `sigma` always has a value. search_iters: IMP iterations per round (the paper
    trains each round like a restore)."""
    t = TASKS.get(task)
    options = {k: v for name_ in TASKS for k, v in TASKS.get(name_).options.items()}
    settings = {**_PAPER_COMMON, **options, **t.fitting, "search_iters": t.fitting["iters"], "ticket": None}
    if name == "fast":
        settings.update(_FAST_OVERRIDES, iters=t.fast_iters, search_iters=t.fast_search_iters or t.fast_iters,
                        es_patience=t.fast_es_patience, ticket=t.fast_ticket, early_stop=t.fast_early_stop,
                        data_consistency=t.fast_data_consistency, weight_decay=t.fast_weight_decay,
                        ema=t.fitting["ema"] if t.fast_ema is None else t.fast_ema)
    settings.update(PROTOCOLS.get(name, {}))
    return settings


# What only a mask search reads (lip prune): a config shared with restore may hold them, a restore's options may not.
SEARCH_KEYS = frozenset({"search_iters", "rounds", "rate", "early_bird", "scope", "target_sparsity", "fresh_input"})


def known_keys(search: bool = True) -> set[str]:
    """The keys a YAML config may set; without `search`, the ones a fit reads (SEARCH_KEYS left out)."""
    keys = set(preset("paper", next(iter(TASKS))))
    return keys if search else keys - SEARCH_KEYS


def check_names(given: Iterable[str], known: Iterable[str], where: str, noun: str = "option") -> None:
    """Refuse a misspelt option (a YAML key, a Python keyword) rather than ignore it: `iter=20` would otherwise
    run the preset's thousands of iterations."""
    known = sorted(known)
    unknown = sorted(str(k) for k in set(given) - set(known))  # a YAML key may be a number or null
    if unknown:
        close = [k for k in known if k.rstrip("_") == unknown[0]] or difflib.get_close_matches(unknown[0], known, n=1)
        if close:
            hint = f"did you mean {' or '.join(close)}?"
        elif len(known) <= 12:
            hint = f"known: {', '.join(known)}"
        else:  # a config's keys: too many to list on one line
            hint = f"known: {', '.join(known[:12])}, ... ({len(known)} in all, each a flag's long name with _ for -)"
        raise LipError(f"{where}: unknown {noun} {unknown[0]!r} ({hint})")


def absent_values() -> dict[str, Any]:
    """What a record without a key was made with, for the settings records leave out at their old value (the fit's
    later knobs, off; a task's `absent`): a difference names that value, which a flag can give back."""
    off = FitConfig()
    return {**{k: getattr(off, k) for k in LATER_KNOBS},
            **{k: v for name in TASKS for k, v in TASKS.get(name).absent.items()}}


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ, e.g. fit.iters."""
    out, absent = [], absent_values()
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, absent.get(k)), new.get(k, absent.get(k))
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            short = len(repr(a)) + len(repr(b)) < 40
            out.append(f"{prefix}{k} {a!r} -> {b!r}" if short else f"{prefix}{k}")
    return out


_CONFIG_TEXT: dict[tuple[str, int, int, int], str] = {}


def _config_text(path: Path) -> str:
    """A config file's text, read once while it is unchanged: settings are resolved per task and image, and a
    pipe (`--config <(...)`) can be read only once."""
    st = path.stat()
    regular = stat.S_ISREG(st.st_mode)
    key = (str(path), st.st_ino, st.st_mtime_ns if regular else 0, st.st_size if regular else -1)
    if key not in _CONFIG_TEXT:
        _CONFIG_TEXT[key] = path.read_text()
    return _CONFIG_TEXT[key]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yamlfile.load(_config_text(path))
    except FileNotFoundError:
        raise LipError(f"config {path} not found (give a preset name: {', '.join(PRESETS)}, or a YAML file)") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LipError(f"config {path} is not readable YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LipError(f"config {path} must be a mapping of option names to values")
    return data


def resolve(task: str, config: str | None, default_preset: str, flags: dict[str, Any],
            under: Mapping[str, Any] = {}) -> dict[str, Any]:
    """The settings for `task`: a preset, then `under` (a library entry's own: `library.fast_settings`),
    then a YAML file's values, then flags that were given. A file's `iters` is also a search's iterations
    per round (`search_iters`) unless the file sets those: `lip prune --iters N` and `iters: N` mean the same."""
    if task not in TASKS:
        raise LipError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    name, file_values = default_preset, {}
    if config in PRESETS and Path(config).is_file():
        raise LipError(f"--config {config} names both a preset and the file ./{config}: give the file as ./{config}, "
                       "or rename it")
    if config in PRESETS:
        name = config
    elif config is not None:
        data = _read_yaml(Path(config))
        name = data.pop("preset", default_preset)
        if name not in PRESETS:
            raise LipError(f"config {config}: unknown preset {name!r} (use {', '.join(PRESETS)})")
        sections = {t: data.pop(t, {}) or {} for t in TASKS}
        for t, section in sections.items():
            if not isinstance(section, dict):
                raise LipError(f"config {config}: {t}: must be a section of option names and values "
                               f"(such as iters: 2000, indented under it), not {section!r}")
            check_names(section, known_keys(), f"config {config}: {t}", "key")  # every task's, not only this one's
        file_values = {**data, **sections[task]}
        check_names(file_values, known_keys(), f"config {config}", "key")
        if "iters" in file_values and "search_iters" not in file_values:  # as `lip prune --iters` reads it
            file_values["search_iters"] = file_values["iters"]
    given = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    settings = {**preset(name, task), **under, **given, "preset": name}
    kind = TASKS.get(task)
    for key, flag in {**kind.flags, **kind.numbers}.items():  # typed as the flag types them (`scale: 2.5` is no 2)
        if flag.type in (int, float) and given.get(key) is not None:
            low = -math.inf if flag.min is None else flag.min
            settings[key] = _number(settings, key, flag.type, lambda v: math.isfinite(v) and v >= low,
                                    ("a whole number" if flag.type is int else "a finite number")
                                    + ("" if flag.min is None else f" >= {flag.min:g}"),
                                    "" if key in kind.flags else "config key ")
    ticket = given.get("ticket")
    if ticket is not None and ticket not in library.names():
        raise LipError(f"ticket {ticket!r} is not a library mask ({', '.join(library.names()) or 'none'}; "
                       "null: the dense net)")
    if settings["data_consistency"] is True and not TASKS.get(task).data_consistency:
        raise no_exact_step(f"{task} has no exact step")
    if "ticket" not in given and ("net" in given or (settings["ticket"]
                                                     and not library.default_for(settings["ticket"], settings))):
        settings["ticket"] = None  # a net asked for (flag or YAML) is the prior, and a ticket fits where measured
    return settings


def no_exact_step(what: str) -> LipError:
    """The refusal of --data-consistency, `what` saying where the step is missing ("denoise has no exact
    step"); the tasks that have one are read from the registry."""
    having = " and ".join(t for t in TASKS if TASKS.get(t).data_consistency)
    return LipError(f"--data-consistency puts back what the observation holds exactly; {what} for it ({having} "
                    f"have one): drop it")


def resolve_settings(task: str, config: str | None, dev: torch.device, flags: dict[str, Any],
                     under: Mapping[str, Any] = {}) -> dict[str, Any]:
    """`resolve` with the default preset of the device (paper on CUDA, fast elsewhere) and the net
    spec checked now, not when the first image is fitted."""
    settings = resolve(task, config, "paper" if dev.type == "cuda" else "fast", flags, under)
    try:
        nets.validate(nets.resolve_spec(settings["net"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LipError(f"invalid net {settings['net']!r}: {exc}") from None
    return settings


def check_lr(lr: float) -> None:
    """Every optimiser of lip needs a positive learning rate (a fit's, from settings, also one below 10:
    `fit_config`); checked, like every numeric setting, by `_number`."""
    _number({"lr": lr}, "lr", float, lambda v: 0 < v < math.inf, "positive and finite")


def fit_config(settings: dict[str, Any], early_stop: bool, dev: torch.device, seed: int) -> FitConfig:
    """Turn resolved settings into the fitting loop's config (precision 'auto' decided here)."""
    precision = settings["precision"]
    if precision == "auto":
        precision = "bf16" if devices.fast_bf16(dev) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise LipError(f"unknown --precision {precision!r}: use fp32, bf16 or auto")
    lr = _number(settings, "lr", float, lambda v: 0 < v < 10, "a positive learning rate below 10")
    if not isinstance(early_stop, bool):
        raise LipError(f"early_stop {early_stop!r} must be true or false")
    if not isinstance(settings["data_consistency"], bool):
        raise LipError(f"data_consistency {settings['data_consistency']!r} must be true or false")
    every = _number(settings, "reg_noise_every", int, lambda v: v >= 0, "a whole number >= 0 (0 = off)")
    jitter = settings["reg_noise"]
    if every and not any(jitter.values() if isinstance(jitter, Mapping) else [jitter]):
        raise LipError(f"--reg-noise-every {every} decays the input jitter, which is 0 here: give --reg-noise too "
                       "(the deep decoder's inpainting demo: 0.005)")
    return FitConfig(iters=at_level("iters", settings["iters"], None), lr=lr,
                     reg_noise=at_level("reg_noise", settings["reg_noise"], None), reg_noise_every=every,
                     ema=_number(settings, "ema", float, lambda v: 0 <= v < 1, "in [0, 1) (0 = off)"),
                     early_stop=early_stop,
                     es_window=at_level("es_window", settings["es_window"], None),
                     es_patience=_number(settings, "es_patience", int, lambda v: v >= 1, "a whole number >= 1"),
                     es_gate=at_level("es_gate", settings["es_gate"], None),
                     es_white=at_level("es_white", settings["es_white"], None),
                     es_close=at_level("es_close", settings["es_close"], None),
                     es_spike=_number(settings, "es_spike", float, lambda v: v == 0 or 1 < v < math.inf,
                                      "0 (off) or a finite number above 1"),
                     precision=precision, channels_last=precision == "bf16" and dev.type == "cpu", seed=seed,
                     sgld=_number(settings, "sgld", float, lambda v: 0 <= v < math.inf,
                                  "a finite number >= 0 (0 = off)"),
                     weight_decay=decay(settings["weight_decay"], lr),
                     data_consistency=settings["data_consistency"],
                     jump_factor=at_level("jump_factor", settings["jump_factor"], None))


class Leveled(NamedTuple):
    """A setting a library entry may give as a schedule over the observation's noise level, {sigma (0-255): value,
    ...}: the level is known only once the image is (`Problem.noise_sigma`, estimated blind). A narrow prior keeps
    off strong noise better with more jitter (RESULTS-reg-noise.md), whose busier outputs the stop reads over a
    longer window, and at sigma 75 the estimate reads low enough that the stop's gate must open sooner
    (RESULTS-stop-jitter.md); at low noise it peaks late, past a cap that suits the rest (RESULTS-cap-low-noise.md).
    Before the image is known (a progress bar's total) a schedule reads as its first point."""

    kind: type
    ok: Callable[[float], bool]
    what: str  # what `ok` asks, for the error line
    linear: bool  # a schedule is linear between its points (a continuum), else it switches to a point's value
    #               above its level (the stop's knobs: as they were measured)


LEVELED: dict[str, Leveled] = {
    "iters": Leveled(int, lambda v: v >= 1, "a whole number >= 1", linear=False),
    "reg_noise": Leveled(float, lambda v: 0 <= v < 10, "in [0, 10)", linear=True),
    "es_window": Leveled(int, lambda v: v >= 2, "a whole number >= 2", linear=False),
    "es_gate": Leveled(float, lambda v: 0 <= v < 10, "in [0, 10) (0 = off)", linear=False),
    "es_white": Leveled(float, lambda v: 0 <= v < 1, "in [0, 1) (0 = off)", linear=False),
    "es_close": Leveled(float, lambda v: 0 <= v < 1, "in [0, 1) (0 = off)", linear=False),
    "weight_decay": Leveled(float, lambda v: 0 <= v < math.inf, "a finite number >= 0 (0 = off)", linear=False),
    "jump_factor": Leveled(float, lambda v: 1 < v < math.inf, "a finite number above 1", linear=False),
}


def decay(setting: float | Mapping[float, float], lr: float) -> float:
    """The weight decay with no noise level known (`at_level`), every value of a schedule checked against the
    step size it multiplies: a step must leave part of every kernel."""
    first = at_level("weight_decay", setting, None)  # (checks every point of a schedule)
    most = max(float(v) for v in setting.values()) if isinstance(setting, Mapping) else first
    if most * lr >= 1:
        raise LipError(f"--weight-decay {most:g} x --lr {lr:g} must be below 1 (the fraction of every kernel a "
                       "step takes off)")
    return first


def at_level(key: str, setting: float | Mapping[float, float], sigma: float | None) -> Any:
    """A `LEVELED` setting's value at noise level `sigma`: a number as it is, or a schedule read at `sigma`
    (linear or a switch, as `LEVELED` says) and flat beyond its points (no noise level: its first point)."""
    kind, ok, what, linear = LEVELED[key]
    if not isinstance(setting, Mapping):
        return _number({key: setting}, key, kind, ok, what)
    try:
        points = sorted((_number({key: k}, key, float, lambda v: 0 <= v < math.inf, ""),
                         _number({key: v}, key, kind, ok, "")) for k, v in setting.items())
    except LipError:
        points = []
    if not points:
        raise LipError(f"--{key.replace('_', '-')} {dict(setting)!r} must be a number or a schedule "
                       f"{{noise level (a finite number >= 0): value {what}, ...}}") from None
    if sigma is None or sigma <= points[0][0]:
        return points[0][1]
    for (s0, v0), (s1, v1) in zip(points, points[1:]):
        if sigma <= s1:
            return v0 + (v1 - v0) * (sigma - s0) / (s1 - s0) if linear else v0
    return points[-1][1]


def at_levels(settings: Mapping[str, Any], sigma: float | None) -> dict[str, Any]:
    """Every `LEVELED` setting of `settings` read at the observation's noise level `sigma`."""
    return {key: at_level(key, settings[key], sigma) for key in LEVELED}


def leveled(cfg: FitConfig, settings: Mapping[str, Any], sigma: float | None) -> FitConfig:
    """`cfg` with every `LEVELED` setting read at the observation's noise level `sigma`."""
    return replace(cfg, **at_levels(settings, sigma))


def _number(settings: dict[str, Any], key: str, kind: type, ok: Callable[[float], bool], what: str,
            config_key: str = "") -> Any:
    """A numeric setting as `kind`, or one bad-input line naming it as a flag: a YAML config reaches here
    unchecked (`lr: abc`, `es_window: 1`), and a whole number must not be silently truncated."""
    value = settings[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not ok(number) or (kind is int and not number.is_integer()):
        raise LipError(f"{config_key + key if config_key else '--' + key.replace('_', '-')} {value!r} must be {what}")
    return kind(number)


INITS = ("artifact", "fresh")  # a mask's weights: its theta0 (the LIP ticket) or a new seeded draw (OES)


def count(settings: dict[str, Any], key: str) -> int:
    """A whole-number setting of 1 or more (a YAML `rounds: 0` is refused as `--rounds 0` is)."""
    return _number(settings, key, int, lambda v: v >= 1, "a whole number of 1 or more")


def fraction(settings: dict[str, Any], key: str) -> float:
    """A setting in [0, 1] (a YAML `early_bird: 5` is refused as `--early-bird 5` is)."""
    return _number(settings, key, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def check_init(init: str) -> None:
    if init not in INITS:
        raise LipError(f"unknown --init {init!r}: use artifact (keep theta0) or fresh (new weights)")


T = TypeVar("T")


def parse_shard(text: str | None, env: Mapping[str, str] = os.environ, option: str = "--shard"
                ) -> tuple[int, int] | None:
    """`--shard i/n` (transfer's cells, restore's inputs; also restore's `--members`, a share of an
    ensemble), or `auto`: this task's place in a SLURM job array (`slurm_shard`); None when not given."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return slurm_shard(env)
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not int(m[1]) < int(m[2]):
        raise LipError(f"{option} {text!r}: give i/n with 0 <= i < n, e.g. 0/2 and 1/2")
    return int(m[1]), int(m[2])


SLURM_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def slurm_shard(env: Mapping[str, str]) -> tuple[int, int]:
    """The shard of a SLURM array task: i = TASK_ID - TASK_MIN of n = TASK_COUNT.

    Only a consecutive array (`--array=0-7`, `--array=1-8%2`) numbers its tasks so; a stepped or
    listed one (`0-14:2`, `1,3,5`) would leave shards unrun, so it is refused, as is anything missing
    or out of range: a wrong shard silently computes the wrong part of a grid."""
    values = {}
    for var in SLURM_VARS:
        text = env.get(var)
        if text is None:
            raise LipError(f"--shard auto: {var} is not set (run it as a SLURM job array, sbatch --array=0-N, "
                           "or give --shard i/n)")
        if not text.strip().isdigit():
            raise LipError(f"--shard auto: {var}={text!r} is not a whole number")
        values[var] = int(text)
    task, low, count = (values[v] for v in SLURM_VARS)
    step, high = env.get("SLURM_ARRAY_TASK_STEP", "1").strip(), env.get("SLURM_ARRAY_TASK_MAX")
    consecutive = step == "1" and (high is None or high.strip() == str(low + count - 1))
    if not consecutive or count < 1:
        raise LipError(f"--shard auto: the array is not consecutive (SLURM_ARRAY_TASK_MIN={low}, MAX={high}, "
                       f"COUNT={count}, STEP={step}); use --array={low}-{low + max(count, 1) - 1}")
    if not low <= task < low + count:
        raise LipError(f"--shard auto: SLURM_ARRAY_TASK_ID={task} is outside the array {low}..{low + count - 1}")
    return task - low, count



def shard_of(items: list[T], shard: tuple[int, int] | None) -> list[T]:
    """`--shard i/n`: the items whose index is i modulo n (all of them without a shard)."""
    if shard is None:
        return items
    i, n = shard
    return items[i::n]
