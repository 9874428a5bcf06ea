"""The evaluation protocols (base2new, fewshot, xd, dg), one implementation shared by every method's scripts.

    scripts/<method>/base2new.sh DATASET SEED [CFG]
    scripts/<method>/fewshot.sh DATASET [SHOTS ...]
    scripts/<method>/xd.sh SEED [TARGET ...]
    scripts/<method>/dg.sh SEED [TARGET ...]
    scripts/compare_<protocol>.sh [--methods M ...] [--datasets D ...] [--seeds S ...] [--shots K ...] [-- compare.py options]

A method's wrapper runs ``scripts/lib/protocol.sh PROTOCOL TRAINER DEFAULT_CFG ARGS...``, which runs this file.
Every run is one ``train.py`` process, started with ``--skip-done``: a run whose result of the same identity exists
is skipped, an interrupted one is resumed, and a folder holding a run of another identity stops with one line.
Options that change a run (EXTRA_OPTS, BACKBONE) add an options tag to the config folder (``<CFG>@<tag>``), so runs
with different settings never share a folder. xd and dg train their source model once, in
``transfer/train/<SOURCE>/...``, and both evaluate it.

Environment: DATA (dataset root, default ./data), OUTPUT (default ./output), CFG (trainer config name),
BACKBONE (MODEL.BACKBONE.NAME override), PYTHON (interpreter for train.py), EXTRA_OPTS (KEY VALUE options appended
to every run), SEEDS (default "1 2 3"), SHOTS (training shots; fewshot: the list of shot counts), SOURCE and WORLD
(xd/dg source), DRY_RUN=1 (print the commands instead of running them). See docs/SCRIPTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]  # the checkout, or promptengine/_home in an installed wheel
CONFIGS = REPO / "configs" if (REPO / "configs").is_dir() else REPO.parent / "configs"  # the wheel: promptengine/configs
DATASET_CONFIGS = CONFIGS / "datasets"
TRAINER_CONFIGS = CONFIGS / "trainers"
SCRIPTS = REPO / "scripts"

PROTOCOLS = ("base2new", "fewshot", "xd", "dg")
TRAINING_FREE = {"ZeroshotCLIP"}  # evaluated directly: no training run, no --model-dir
SYNTH_PREFIX = "synth_"
SYNTH_CFG = "synth"

BENCHMARKS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
              "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
SYNTH_BENCHMARKS = ("synth_shapes", "synth_glyphs", "synth_patterns", "synth_counts", "synth_fills")
SOURCES = {"benchmark": "imagenet", "synth": "synth_shapes"}
TARGETS = {  # default targets per protocol and world
    ("xd", "benchmark"): BENCHMARKS[1:],
    ("xd", "synth"): ("synth_glyphs", "synth_patterns", "synth_counts", "synth_fills"),
    ("dg", "benchmark"): ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"),
    ("dg", "synth"): ("synth_shapes_sketch", "synth_shapes_clutter"),
}
USAGE = {
    "base2new": "base2new.sh DATASET SEED [CFG]",
    "fewshot": "fewshot.sh DATASET [SHOTS ...]   (seeds from SEEDS, default '1 2 3')",
    "xd": "xd.sh SEED [TARGET ...]   (source from SOURCE, default imagenet or synth_shapes)",
    "dg": "dg.sh SEED [TARGET ...]   (source from SOURCE, default imagenet or synth_shapes)",
}


class ProtocolError(Exception):
    """A usage or setup problem, reported as one line (exit status 2)."""


class RunFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as the shell reports it


def is_synth(dataset: str) -> bool:
    return dataset.startswith(SYNTH_PREFIX)


def known_datasets() -> List[str]:
    return sorted(p.stem for p in DATASET_CONFIGS.glob("*.yaml"))


def dataset_config(dataset: str) -> Path:
    path = DATASET_CONFIGS / f"{dataset}.yaml"
    if not path.is_file():
        raise ProtocolError(f"unknown dataset id '{dataset}': {path} does not exist "
                            f"(known: {' '.join(known_datasets())})")
    return path


def words(values: Optional[Sequence[str]], env_name: str = "", default: Sequence[str] = ()) -> List[str]:
    """Values given as arguments, else from the environment variable, else the default; commas also separate."""
    if not values and env_name:
        values = [os.environ.get(env_name, "")]
    out = [w for v in values or () for w in re.split(r"[,\s]+", v) if w]
    return out or list(default)


def parse_seed(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise ProtocolError(f"a seed must be an integer, not '{text}'")
    return int(text)


def parse_shots(text: str) -> Tuple[str, int]:
    """('16', 16) or ('all', -1): the folder label and DATASET.NUM_SHOTS."""
    if text.lower() in ("all", "-1"):
        return "all", -1
    if not text.isdigit() or int(text) < 1:
        raise ProtocolError(f"shots must be a positive integer or 'all', not '{text}'")
    return str(int(text)), int(text)


def options_tag() -> str:
    """'' without EXTRA_OPTS/BACKBONE, else '@' + 8 hex digits of the normalised options (later keys win)."""
    tokens = shlex.split(os.environ.get("EXTRA_OPTS", ""))
    if len(tokens) % 2:
        raise ProtocolError(f"EXTRA_OPTS must be KEY VALUE pairs; got an odd number of words: {' '.join(tokens)}")
    options = dict(zip(tokens[0::2], tokens[1::2]))
    if os.environ.get("BACKBONE"):
        options["MODEL.BACKBONE.NAME"] = os.environ["BACKBONE"]
    if not options:
        return ""
    text = "\n".join(f"{k}={v}" for k, v in sorted(options.items()))
    return "@" + hashlib.sha256(text.encode()).hexdigest()[:8]


def train_program() -> List[str]:
    """``train.py`` of the checkout, or the installed package's module."""
    script = REPO / "train.py"
    return [str(script)] if script.is_file() else ["-m", "promptengine.apps.train"]


def default_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else "python" if (REPO / "train.py").is_file() else sys.executable


@dataclass(frozen=True)
class Run:
    """One train.py run: its place in the output layout and what it trains or evaluates on."""

    protocol: str
    phase: str
    dataset: str
    shots: Tuple[str, int]
    trainer: str
    cfg: str
    seed: int
    subsample: str = "all"

    @property
    def out_dir(self) -> Path:
        root = Path(os.environ.get("OUTPUT") or "./output")
        return (root / self.protocol / self.phase / self.dataset / f"shots_{self.shots[0]}" / self.trainer
                / f"{self.cfg}{options_tag()}" / f"seed{self.seed}")


class Protocol:
    """The runs of one method (trainer + config) and the train.py command lines that perform them."""

    def __init__(self, trainer: str, cfg: str) -> None:
        self.trainer, self.cfg = trainer, cfg
        self.config_file = TRAINER_CONFIGS / trainer / f"{cfg}.yaml"
        if not self.config_file.is_file():
            have = sorted(p.stem for p in (TRAINER_CONFIGS / trainer).glob("*.yaml"))
            raise ProtocolError(f"no config '{cfg}' for {trainer}: {self.config_file} does not exist "
                                f"(available: {' '.join(have) or 'none'})")
        self.python = os.environ.get("PYTHON") or default_python()
        self.extra = shlex.split(os.environ.get("EXTRA_OPTS", ""))
        self.dry_run = os.environ.get("DRY_RUN", "") not in ("", "0")

    @property
    def training_free(self) -> bool:
        return self.trainer in TRAINING_FREE

    def run(self, protocol: str, phase: str, dataset: str, shots: Tuple[str, int], seed: int, subsample="all") -> Run:
        return Run(protocol, phase, dataset, shots, self.trainer, self.cfg, seed, subsample)

    # ---- command lines ---------------------------------------------------------------------------------------
    def command(self, run: Run, *flags: str, no_test: bool = False) -> List[str]:
        cmd = [self.python, *train_program(), "--root", os.environ.get("DATA") or "./data",
               "--seed", str(run.seed), "--trainer", self.trainer,
               "--dataset-config-file", str(dataset_config(run.dataset)), "--config-file", str(self.config_file),
               "--output-dir", str(run.out_dir), "--skip-done", *flags,
               "DATASET.NUM_SHOTS", str(run.shots[1]), "DATASET.SUBSAMPLE_CLASSES", run.subsample]
        if no_test:
            cmd += ["TEST.NO_TEST", "True"]
        if os.environ.get("BACKBONE"):
            cmd += ["MODEL.BACKBONE.NAME", os.environ["BACKBONE"]]
        return cmd + self.extra

    def execute(self, cmd: List[str], what: str) -> None:
        if self.dry_run:
            print("  " + shlex.join(cmd), flush=True)
            return
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            code = subprocess.call(cmd, env=env)
        except OSError as exc:
            raise ProtocolError(f"cannot start {cmd[0]} ({exc}); set PYTHON to the interpreter to use") from exc
        if code != 0:
            raise RunFailed(code, f"train.py failed (exit status {code}) for {what}")

    def trained_epoch(self, run: Run) -> int:
        """OPTIM.MAX_EPOCH of a finished training run, read from its config.yaml (the epoch its evaluations load)."""
        if self.dry_run:
            return -1
        path = run.out_dir / "config.yaml"
        match = re.search(r"^OPTIM:\n(?:[ ].*\n)*?  MAX_EPOCH: (\d+)$", path.read_text() if path.is_file() else "",
                          re.MULTILINE)
        if not match:
            raise RunFailed(1, f"{path} has no OPTIM.MAX_EPOCH (the training run did not start?)")
        return int(match.group(1))

    # ---- the three kinds of run ------------------------------------------------------------------------------
    def train_and_test(self, run: Run) -> None:
        """A training run whose own final test is its result (few-shot); also how a training-free method is
        evaluated there."""
        if self.training_free:
            return self.evaluate(run)
        print(f"[run]  train+test {run.out_dir}", flush=True)
        self.execute(self.command(run), str(run.out_dir))

    def train_only(self, run: Run) -> int:
        """A training run with ``TEST.NO_TEST True`` (a no-op when its final checkpoint exists); returns the epoch
        its evaluations load."""
        print(f"[run]  train {run.out_dir}", flush=True)
        self.execute(self.command(run, no_test=True), str(run.out_dir))
        return self.trained_epoch(run)

    def evaluate(self, run: Run, model: Optional[Run] = None, epoch: int = 0) -> None:
        """An eval-only run of the model trained by ``model`` (none for a training-free method)."""
        print(f"[run]  eval {run.out_dir}", flush=True)
        flags = ["--eval-only"]
        if model is not None:
            flags += ["--model-dir", str(model.out_dir), "--load-epoch", str(epoch) if epoch > 0 else "<OPTIM.MAX_EPOCH>"]
        self.execute(self.command(run, *flags), str(run.out_dir))

    def train_then_evaluate(self, train: Run, evals: List[Run]) -> None:
        """Train once (training-free methods: nothing), then evaluate the last epoch on every run of ``evals``."""
        if self.training_free:
            for run in evals:
                self.evaluate(run)
            return
        epoch = self.train_only(train)
        for run in evals:
            self.evaluate(run, train, epoch)

    # ---- the protocols ---------------------------------------------------------------------------------------
    def base2new(self, dataset: str, seed: int, shots: Tuple[str, int]) -> None:
        train = self.run("base2new", "train_base", dataset, shots, seed, "base")
        evals = [self.run("base2new", f"test_{sub}", dataset, shots, seed, sub) for sub in ("base", "new")]
        self.train_then_evaluate(train, evals)

    def fewshot(self, dataset: str, seeds: List[int], shot_list: List[Tuple[str, int]]) -> None:
        for shots in shot_list:
            for seed in seeds:
                self.train_and_test(self.run("fewshot", "train", dataset, shots, seed))

    def transfer(self, protocol: str, source: str, targets: List[str], seed: int, shots: Tuple[str, int]) -> None:
        """xd and dg: one source model (all classes) shared by both protocols, evaluated on each target; dg also
        evaluates it on the source's own test set (its ``train`` folder, the source column)."""
        train = self.run("transfer", "train", source, shots, seed)
        evals = [self.run(protocol, "test", target, shots, seed) for target in targets]
        if protocol == "dg":
            evals.insert(0, self.run(protocol, "train", source, shots, seed))
        self.train_then_evaluate(train, evals)


def world_of(datasets: Sequence[str]) -> str:
    synth = {is_synth(d) for d in datasets}
    if len(synth) > 1:
        raise ProtocolError(f"mixing synthetic and benchmark datasets in one run: {' '.join(datasets)}")
    if synth:
        return "synth" if synth == {True} else "benchmark"
    return "synth" if os.environ.get("WORLD", "").lower() == "synth" else "benchmark"


def choose_cfg(default_cfg: str, datasets: Sequence[str], given: str = "") -> str:
    """An explicit CFG wins; else ``synth`` on the embedded world; else the method's default."""
    given = given or os.environ.get("CFG", "")
    if given:
        return given
    return SYNTH_CFG if all(is_synth(d) for d in datasets) else default_cfg


def protocol_main(protocol: str, trainer: str, default_cfg: str, args: List[str]) -> None:
    if not args or args[0] in ("-h", "--help"):
        raise ProtocolError(f"usage: {USAGE[protocol]}")
    if protocol == "base2new":
        if len(args) not in (2, 3):
            raise ProtocolError(f"usage: {USAGE[protocol]}")
        dataset, seed = args[0], parse_seed(args[1])
        dataset_config(dataset)
        shots = parse_shots(os.environ.get("SHOTS") or "16")
        Protocol(trainer, choose_cfg(default_cfg, [dataset], args[2] if len(args) == 3 else "")).base2new(dataset, seed, shots)
    elif protocol == "fewshot":
        dataset = args[0]
        dataset_config(dataset)
        shot_list = [parse_shots(s) for s in words(args[1:], "SHOTS", ["1", "2", "4", "8", "16", "all"])]
        seeds = [parse_seed(s) for s in words(None, "SEEDS", ["1", "2", "3"])]
        Protocol(trainer, choose_cfg(default_cfg, [dataset])).fewshot(dataset, seeds, shot_list)
    else:
        seed, targets = parse_seed(args[0]), list(args[1:])
        world = world_of(targets + ([os.environ["SOURCE"]] if os.environ.get("SOURCE") else []))
        source = os.environ.get("SOURCE") or SOURCES[world]
        targets = targets or list(TARGETS[(protocol, world)])
        for dataset in [source, *targets]:
            dataset_config(dataset)
        shots = parse_shots(os.environ.get("SHOTS") or "16")
        Protocol(trainer, choose_cfg(default_cfg, [source, *targets])).transfer(protocol, source, targets, seed, shots)


# ---- comparison runner -------------------------------------------------------------------------------------------
def method_table() -> Dict[str, Tuple[str, str]]:
    """Method folder -> (trainer, default config), from the trainer registry (each trainer names its scripts)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from promptengine.registry import registered_methods

    methods = sorted(registered_methods(with_scripts=True), key=lambda m: m.script_folder)
    return {m.script_folder: (m.trainer, m.default_config) for m in methods}


def resolve_method(name: str, table: Dict[str, Tuple[str, str]]) -> str:
    """A script folder (capt) or trainer name (CAPT, ZeroshotCLIP), in any case, to its script folder."""
    for folder, (trainer, _) in table.items():
        if name.lower() in (folder.lower(), trainer.lower()):
            return folder
    known = ", ".join(f"{folder} ({trainer})" for folder, (trainer, _) in table.items())
    raise ProtocolError(f"unknown method '{name}' (known: {known})")


def compare_main(argv: List[str]) -> int:
    passthrough: List[str] = []
    if "--" in argv:
        argv, passthrough = argv[: argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(prog="compare_<protocol>.sh",
                                     description="Run methods x datasets x seeds with one protocol, then compare.")
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("--methods", nargs="+", help="script folders or trainer names (default: $METHODS, or all)")
    parser.add_argument("--datasets", nargs="+", help="datasets; xd/dg: the targets (default: $DATASETS)")
    parser.add_argument("--seeds", nargs="+", help="seeds (default: $SEEDS, or 1 2 3)")
    parser.add_argument("--shots", nargs="+", help="fewshot: shot counts; others: training shots (default: $SHOTS)")
    args = parser.parse_args(argv)
    table = method_table()
    methods = [resolve_method(m, table) for m in words(args.methods, "METHODS", list(table))]
    seeds = [str(parse_seed(s)) for s in words(args.seeds, "SEEDS", ["1", "2", "3"])]
    world = "synth" if os.environ.get("WORLD", "").lower() == "synth" else "benchmark"
    datasets = words(args.datasets, "DATASETS", () if args.protocol in ("xd", "dg")
                     else SYNTH_BENCHMARKS if world == "synth" else BENCHMARKS)
    for dataset in datasets:
        dataset_config(dataset)
    env = dict(os.environ, SEEDS=" ".join(seeds))
    if args.shots:
        env["SHOTS"] = " ".join(words(args.shots))
    calls = []
    for folder in methods:
        script = ["bash", str(SCRIPTS / folder / f"{args.protocol}.sh")]
        if args.protocol == "base2new":
            calls += [script + [d, s] for d in datasets for s in seeds]
        elif args.protocol == "fewshot":
            calls += [script + [d] for d in datasets]
        else:
            calls += [script + [s, *datasets] for s in seeds]
    for call in calls:
        print(f"==> {' '.join(Path(call[1]).parts[-2:])} {' '.join(call[2:])}", flush=True)
        code = subprocess.call(call, env=env)
        if code != 0:
            raise RunFailed(code, f"{' '.join(call[1:])} failed (exit status {code})")
    python = os.environ.get("PYTHON") or default_python()
    output = os.environ.get("OUTPUT") or "./output"
    trainers = [table[folder][0] for folder in methods]
    cmd = [python, str(REPO / "tools" / "compare.py"), output, "--protocol", args.protocol,
           "--trainers", *trainers, "--seeds", *seeds, *passthrough]
    print(f"==> {shlex.join(cmd)}", flush=True)
    if os.environ.get("DRY_RUN", "") not in ("", "0"):
        return 0
    return subprocess.call(cmd)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["compare"]:
            return compare_main(argv[1:])
        if len(argv) < 3 or argv[0] not in PROTOCOLS:
            raise ProtocolError("usage: run_protocol.py {base2new|fewshot|xd|dg} TRAINER DEFAULT_CFG ARGS... "
                                "| run_protocol.py compare PROTOCOL [options]")
        protocol_main(argv[0], argv[1], argv[2], argv[3:])
        return 0
    except ProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
