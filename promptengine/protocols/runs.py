"""The runs of each protocol: which ``train.py`` runs one call of ``scripts/<method>/<protocol>.sh`` performs, in which
folders and with which command lines. Nothing here runs anything (``runner.py`` does); the sweep plans from here too.

Every run is started with ``--skip-done``: a run whose result of the same identity exists is skipped, an interrupted
one is resumed, and a folder holding a run of another identity stops with one line.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from ..config.merge import build_cfg
from ..errors import UserError
from ..registry import HOME, Method
from ..weights.resolve import resolve_backbone
from .layout import (
    ALL_SHOTS,
    BASE2NEW,
    DG,
    FEWSHOT,
    SPECS,
    SUBSAMPLE_OF_PHASE,
    TEST,
    TEST_BASE,
    TEST_NEW,
    TRAIN,
    TRAIN_BASE,
    TRANSFER,
    ZSROBUST,
    RunFolder,
    options_tag,
)
from .methods import config_file
from .presets import DEFAULT_PRESET, Preset, get_preset
from .worlds import SOURCES, TARGETS, choose_cfg, dataset_config, world_of

TRAIN_RUN, TRAIN_TEST_RUN, EVAL_RUN = "train", "train+test", "eval"  # the kinds of run (the runner's [run] lines)
#: an evaluation's ``--load-epoch`` until its training run has finished: the epoch is read from its config.yaml
LATEST_EPOCH = "<OPTIM.MAX_EPOCH>"
FEWSHOT_SHOTS = ("1", "2", "4", "8", "16", "all")
DEFAULT_SEEDS = ("1", "2", "3")


@dataclass(frozen=True)
class Step:
    """One ``train.py`` run: its kind, its folder, its command line and, for an evaluation of a trained model, the
    training run's folder (whose last epoch it loads)."""

    kind: str
    folder: Path
    command: Tuple[str, ...]
    model: Optional[Path] = None


def words(values: Optional[Sequence[str]], env_name: str = "", env: Optional[Mapping[str, str]] = None,
          default: Sequence[str] = ()) -> List[str]:
    """Values given as arguments, else from the environment variable, else the default; commas also separate."""
    if not values and env_name:
        values = [(env or {}).get(env_name, "")]
    out = [w for v in values or () for w in re.split(r"[,\s]+", v) if w]
    return out or list(default)


def parse_seed(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise UserError(f"a seed must be an integer, not '{text}'")
    return int(text)


def parse_shots(text: str) -> int:
    """DATASET.NUM_SHOTS of a shot count: a positive integer, or ``all`` (also -1) for every image."""
    if text.lower() in ("all", "-1"):
        return ALL_SHOTS
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"shots must be a positive integer or 'all', not '{text}'")
    return int(text)


def extra_options(env: Mapping[str, str]) -> List[str]:
    """EXTRA_OPTS as KEY VALUE words."""
    try:
        tokens = shlex.split(env.get("EXTRA_OPTS", ""))
    except ValueError as exc:
        raise UserError(f"EXTRA_OPTS is not valid shell words ({exc}); balance its quotes: {env.get('EXTRA_OPTS')}") from exc
    if len(tokens) % 2:
        raise UserError(f"EXTRA_OPTS must be KEY VALUE pairs; got an odd number of words: {' '.join(tokens)}")
    return tokens


def config_folder(cfg: str, env: Mapping[str, str], preset: str = "") -> str:
    """The config folder of a call's runs: the config name plus the tag of EXTRA_OPTS, BACKBONE and the zsrobust
    preset (a repeated key: the last value wins)."""
    extra = extra_options(env)
    options = dict(zip(extra[0::2], extra[1::2]))
    if env.get("BACKBONE"):
        options["MODEL.BACKBONE.NAME"] = env["BACKBONE"]
    if preset:
        options["PRESET"] = preset
    return cfg + options_tag(options)


def train_program() -> List[str]:
    """``train.py`` of the checkout, or the installed package's module."""
    script = HOME / "train.py"
    return [str(script)] if script.is_file() else ["-m", "promptengine.apps.train"]


def default_python() -> str:
    venv = HOME / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else "python" if (HOME / "train.py").is_file() else sys.executable


@dataclass(frozen=True)
class Run:
    """One run's folder and the classes it trains or tests on (DATASET.SUBSAMPLE_CLASSES)."""

    where: RunFolder
    subsample: str = "all"


class Setting:
    """What every run of one call shares: the method, its config, the options (EXTRA_OPTS, BACKBONE), the roots
    (DATA, OUTPUT) and the interpreter (PYTHON)."""

    def __init__(self, method: Method, cfg: str, env: Mapping[str, str], preset: Optional[Preset] = None) -> None:
        self.method, self.cfg = method, cfg
        self.config_file = config_file(method, cfg)
        self.extra = extra_options(env)
        self.preset = preset
        self.backbone = env.get("BACKBONE", "") or (preset.backbone if preset else "")
        self.config_folder = config_folder(cfg, env, preset.name if preset else "")
        self.output = env.get("OUTPUT") or "./output"
        self.data = env.get("DATA") or "./data"
        self.python = env.get("PYTHON") or default_python()

    def run(self, protocol: str, phase: str, dataset: str, shots: int, seed: int, subsample: str = "all") -> Run:
        return Run(RunFolder(protocol, phase, dataset, shots, self.method.trainer, self.config_folder, seed), subsample)

    def command(self, run: Run, *flags: str, no_test: bool = False, options: Sequence[str] = ()) -> Tuple[str, ...]:
        """The run's train.py command line; ``options`` (the protocol's KEY VALUE words) come before EXTRA_OPTS,
        which the user gives last so that they win."""
        where = run.where
        cmd = [self.python, *train_program(), "--root", self.data, "--seed", str(where.seed),
               "--trainer", self.method.trainer, "--dataset-config-file", str(dataset_config(where.dataset)),
               "--config-file", str(self.config_file), "--output-dir", str(where.path(self.output)), "--skip-done",
               *flags, "DATASET.NUM_SHOTS", str(where.shots), "DATASET.SUBSAMPLE_CLASSES", run.subsample]
        if no_test:
            cmd += ["TEST.NO_TEST", "True"]
        if self.backbone:
            cmd += ["MODEL.BACKBONE.NAME", self.backbone]
        return tuple(cmd + list(options) + self.extra)

    def check_weights(self, dataset: str) -> None:
        """Resolve the catalogued weights the runs name (BACKBONE, the preset's backbone, ``MODEL.BACKBONE.*`` in the
        config or EXTRA_OPTS) as each run's train.py will, once, before any run starts: a missing or different file
        is train.py's one line instead of a failed first run. Each run prints its own notes and warnings."""
        overrides = [("TRAINER.NAME", self.method.trainer)]
        if self.backbone:
            overrides.append(("MODEL.BACKBONE.NAME", self.backbone))
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            cfg = build_cfg(str(dataset_config(dataset)), str(self.config_file), overrides, self.extra, freeze=False)
            resolve_backbone(cfg)

    # ---- the three kinds of run ----------------------------------------------------------------------------------
    def train_and_test(self, run: Run) -> Step:
        """A training run whose own final test is its result (few-shot); a training-free method is evaluated."""
        if self.method.training_free:
            return self.evaluate(run)
        return Step(TRAIN_TEST_RUN, run.where.path(self.output), self.command(run))

    def train_only(self, run: Run) -> Step:
        """A training run with ``TEST.NO_TEST True`` (a no-op when its final checkpoint exists)."""
        options = self.preset.train_options if self.preset else ()
        return Step(TRAIN_RUN, run.where.path(self.output), self.command(run, no_test=True, options=options))

    def evaluate(self, run: Run, model: Optional[Run] = None) -> Step:
        """An eval-only run of the model trained by ``model`` (none for a training-free method)."""
        flags = ["--eval-only"]
        trained = model.where.path(self.output) if model is not None else None
        if trained is not None:
            flags += ["--model-dir", str(trained), "--load-epoch", LATEST_EPOCH]
        options = self.preset.eval_options(run.where.dataset) if self.preset else ()
        return Step(EVAL_RUN, run.where.path(self.output), self.command(run, *flags, options=options), trained)

    def train_then_evaluate(self, train: Run, evals: List[Run]) -> List[Step]:
        """Train once (a training-free method: nothing), then evaluate the last epoch on every run of ``evals``."""
        if self.method.training_free:
            return [self.evaluate(run) for run in evals]
        return [self.train_only(train)] + [self.evaluate(run, train) for run in evals]

    # ---- the protocols -------------------------------------------------------------------------------------------
    def base2new(self, dataset: str, seed: int, shots: int) -> List[Step]:
        train = self.run(BASE2NEW.name, TRAIN_BASE, dataset, shots, seed, SUBSAMPLE_OF_PHASE[TRAIN_BASE])
        evals = [self.run(BASE2NEW.name, phase, dataset, shots, seed, SUBSAMPLE_OF_PHASE[phase])
                 for phase in (TEST_BASE, TEST_NEW)]
        return self.train_then_evaluate(train, evals)

    def fewshot(self, dataset: str, seeds: List[int], shot_list: List[int]) -> List[Step]:
        return [self.train_and_test(self.run(FEWSHOT.name, TRAIN, dataset, shots, seed))
                for shots in shot_list for seed in seeds]

    def transfer(self, protocol: str, source: str, targets: List[str], seed: int, shots: int) -> List[Step]:
        """xd and dg: one source model (all classes) shared by both protocols, evaluated on each target; dg also
        evaluates it on the source's own test set (its ``train`` folder, the source column)."""
        train = self.run(TRANSFER, TRAIN, source, shots, seed)
        evals = [self.run(protocol, TEST, target, shots, seed) for target in targets]
        if protocol == DG.name:
            evals.insert(0, self.run(protocol, TRAIN, source, shots, seed))
        return self.train_then_evaluate(train, evals)

    def zsrobust(self, source: str, targets: List[str], seed: int, shots: int) -> List[Step]:
        """Tune on the source (all its classes; a training-free method: nothing), then evaluate zero-shot on each
        target's own classes with the preset's image budget and attacks."""
        train = self.run(ZSROBUST.name, TRAIN, source, shots, seed)
        return self.train_then_evaluate(train, [self.run(ZSROBUST.name, TEST, t, shots, seed) for t in targets])


@dataclass(frozen=True)
class Call:
    """The checked arguments of one protocol call: what it runs on, known before the method is looked up (so bad
    input fails before the trainer registry is imported)."""

    protocol: str
    datasets: Tuple[str, ...]  # base2new, fewshot: the dataset; xd, dg: the source, then the targets
    seeds: Tuple[int, ...]
    shots: Tuple[int, ...]
    cfg: str = ""  # base2new's CFG argument
    preset: str = ""  # zsrobust's preset


def parse_call(protocol: str, args: Sequence[str], env: Mapping[str, str]) -> Call:
    """The arguments of ``scripts/<method>/<protocol>.sh ARGS`` under ``env``; bad ones are one-line UserErrors."""
    usage = UserError(f"usage: {SPECS[protocol].usage}")
    if not args or args[0] in ("-h", "--help"):
        raise usage
    if protocol == BASE2NEW.name:
        if len(args) not in (2, 3):
            raise usage
        dataset, seed = args[0], parse_seed(args[1])
        dataset_config(dataset)
        shots = parse_shots(env.get("SHOTS") or "16")
        return Call(protocol, (dataset,), (seed,), (shots,), args[2] if len(args) == 3 else "")
    if protocol == FEWSHOT.name:
        dataset = args[0]
        dataset_config(dataset)
        shot_list = tuple(parse_shots(s) for s in words(args[1:], "SHOTS", env, FEWSHOT_SHOTS))
        seeds = tuple(parse_seed(s) for s in words(None, "SEEDS", env, DEFAULT_SEEDS))
        return Call(protocol, (dataset,), seeds, shot_list)
    seed, targets = parse_seed(args[0]), list(args[1:])
    if protocol == ZSROBUST.name:
        return parse_zsrobust(seed, targets, env)
    world = world_of(targets + ([env["SOURCE"]] if env.get("SOURCE") else []), env)
    source = env.get("SOURCE") or SOURCES[world]
    targets = targets or list(TARGETS[(protocol, world)])
    for dataset in [source, *targets]:
        dataset_config(dataset)
    return Call(protocol, (source, *targets), (seed,), (parse_shots(env.get("SHOTS") or "16"),))


def parse_zsrobust(seed: int, targets: List[str], env: Mapping[str, str]) -> Call:
    """zsrobust's call: the preset (PRESET, else the world's default), its source (SOURCE overrides) and targets (the
    arguments override), its training shots (SHOTS overrides)."""
    named = targets + ([env["SOURCE"]] if env.get("SOURCE") else [])
    preset = get_preset(env.get("PRESET") or DEFAULT_PRESET[world_of(named, env)])
    source = env.get("SOURCE") or preset.source
    targets = targets or list(preset.targets)
    world_of([source, *targets], env)  # one world per call
    for dataset in [source, *targets]:
        dataset_config(dataset)
    shots = parse_shots(env.get("SHOTS") or preset.source_shots)
    return Call(ZSROBUST.name, (source, *targets), (seed,), (shots,), preset=preset.name)


def call_setting(method: Method, call: Call, env: Mapping[str, str]) -> Setting:
    """What the runs of a call share (its config chosen here: a missing one is a UserError)."""
    cfg = choose_cfg(method.default_config, call.datasets, call.cfg, env)
    return Setting(method, cfg, env, get_preset(call.preset) if call.protocol == ZSROBUST.name else None)


def check_call_weights(method: Method, call: Call, env: Mapping[str, str]) -> None:
    """The catalogued weights of a call resolved and verified before its first run (``Setting.check_weights``)."""
    call_setting(method, call, env).check_weights(call.datasets[0])


def plan_call(method: Method, call: Call, env: Mapping[str, str]) -> List[Step]:
    """The runs of a call for one method (its config chosen here: a missing one is a UserError)."""
    setting = call_setting(method, call, env)
    if call.protocol == ZSROBUST.name:
        return setting.zsrobust(call.datasets[0], list(call.datasets[1:]), call.seeds[0], call.shots[0])
    if call.protocol == BASE2NEW.name:
        return setting.base2new(call.datasets[0], call.seeds[0], call.shots[0])
    if call.protocol == FEWSHOT.name:
        return setting.fewshot(call.datasets[0], list(call.seeds), list(call.shots))
    return setting.transfer(call.protocol, call.datasets[0], list(call.datasets[1:]), call.seeds[0], call.shots[0])
