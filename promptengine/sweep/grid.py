"""A sweep grid: the axes (from a YAML file and/or flags) expanded into points, one protocol-script call each."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ..config.merge import utf8_text
from ..errors import UserError
from ..protocols.layout import FEWSHOT, PROTOCOLS, TARGET_PROTOCOLS
from ..protocols.runs import FEWSHOT_SHOTS
from ..registry import HOME as REPO  # the checkout, or the wheel's copy of scripts/ and tools/

SCRIPTS = REPO / "scripts"
AXES = ("protocols", "methods", "datasets", "seeds", "shots", "options")
#: environment of the protocol scripts a grid may set for all its points (docs/EXPERIMENTS.md)
SCRIPT_ENV = ("OUTPUT", "DATA", "CFG", "BACKBONE", "PYTHON", "SOURCE", "WORLD", "PRESET", "EXTRA_OPTS")
SECTIONS = set(AXES) | {"name", "env", "slurm"}


@dataclass(frozen=True)
class Point:
    """One call of ``scripts/<method>/<protocol>.sh ARGS`` with ``env`` added to the sweep's environment."""

    id: str
    method: str
    protocol: str
    args: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def script(self) -> Path:
        return SCRIPTS / self.method / f"{self.protocol}.sh"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Point:
        return cls(data["id"], data["method"], data["protocol"], list(data["args"]), dict(data["env"]))


@dataclass
class Grid:
    name: str
    protocols: List[str]
    methods: List[str]
    datasets: List[str]
    seeds: List[str]
    shots: List[str]
    options: Dict[str, str]  # variant name -> EXTRA_OPTS appended to the common ones
    env: Dict[str, str]
    slurm: Dict[str, Any]


def as_words(value: Any, what: str) -> List[str]:
    """A YAML list or a string of words separated by spaces or commas, as strings."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, (str, int, float)):
        return [w for w in re.split(r"[,\s]+", str(value)) if w]
    raise UserError(f"grid key '{what}' must be a list or a string of words, not {type(value).__name__}")


def read_grid_file(path: Optional[str]) -> Dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UserError(f"cannot read grid file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(utf8_text(raw, f"grid file {path}")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"grid file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"grid file {path} must be a mapping of keys ({', '.join(sorted(SECTIONS))})")
    unknown = sorted(set(data) - SECTIONS)
    if unknown:
        raise UserError(f"grid file {path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(SECTIONS))})")
    return data


def build_grid(path: Optional[str], flags: Dict[str, Any]) -> Grid:
    """The grid of a YAML file with the flags' axes replacing the file's (flags given as lists win)."""
    data = read_grid_file(path)
    for axis in AXES:
        if flags.get(axis):
            data[axis] = flags[axis]
    options = data.get("options") or {"default": ""}
    if isinstance(options, (list, str)):
        options = {f"opt{i}": text for i, text in enumerate(as_words(options, "options") if isinstance(options, str)
                                                             else options)}
    if not isinstance(options, dict):
        raise UserError("grid key 'options' must map a variant name to its EXTRA_OPTS (KEY VALUE ...)")
    env = {str(k): str(v) for k, v in (data.get("env") or {}).items()}
    bad_env = sorted(set(env) - set(SCRIPT_ENV))
    if bad_env:
        raise UserError(f"grid key 'env' may set {', '.join(SCRIPT_ENV)}; not {', '.join(bad_env)}")
    grid = Grid(
        name=str(data.get("name") or flags.get("name") or (Path(path).stem if path else "sweep")),
        protocols=as_words(data.get("protocols"), "protocols"),
        methods=as_words(data.get("methods"), "methods"),
        datasets=as_words(data.get("datasets"), "datasets"),
        seeds=as_words(data.get("seeds"), "seeds") or ["1", "2", "3"],
        shots=as_words(data.get("shots"), "shots"),
        options={str(k): "" if v is None else str(v) for k, v in options.items()},
        env=env, slurm=dict(data.get("slurm") or {}),
    )
    if not grid.protocols:
        raise UserError(f"the grid names no protocol: set 'protocols' in the grid file or pass --protocols "
                        f"({' '.join(PROTOCOLS)})")
    bad = [p for p in grid.protocols if p not in PROTOCOLS]
    if bad:
        raise UserError(f"unknown protocol(s) {' '.join(bad)} (known: {' '.join(PROTOCOLS)})")
    if not grid.methods:
        raise UserError("the grid names no method: set 'methods' in the grid file or pass --methods")
    for seed in grid.seeds:
        if not re.fullmatch(r"-?\d+", seed):
            raise UserError(f"a seed must be an integer, not '{seed}'")
    return grid


def slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.+]", "_", p) for p in parts if p)


def check_option_names(names: Sequence[str]) -> None:
    """Option variants name their points: two names that look alike once cleaned ('λ3' and 'α3' both give '_3')
    would merge two different points into one id (one log, one record, one status line), so they are refused."""
    seen: Dict[str, str] = {}
    for name in names:
        cleaned = slug("" if name == "default" else name)  # the default variant adds no suffix
        if cleaned in seen:
            raise UserError(f"grid options '{seen[cleaned]}' and '{name}' give the same point id suffix '{cleaned}' "
                            "(ids keep only letters, digits, '_', '.', '+'): rename one of them")
        seen[cleaned] = name


def expand(grid: Grid, methods: Sequence[str], common_extra: str) -> List[Point]:
    """The points of the grid, in a stable order; ``methods`` are the grid's methods as script folders.
    A repeated point (a dataset or seed listed twice) is one point; option names are checked to give unique ids."""
    check_option_names(list(grid.options))
    points: Dict[str, Point] = {}
    for protocol in grid.protocols:
        shot_list = grid.shots or (list(FEWSHOT_SHOTS) if protocol == FEWSHOT.name else [""])
        for method in methods:
            for opt_name, opt_text in grid.options.items():
                extra = " ".join(t for t in (common_extra, opt_text) if t.strip())
                variant = "" if opt_name == "default" else opt_name
                for seed in grid.seeds:
                    for shots in shot_list:
                        env = {"EXTRA_OPTS": extra}
                        if shots:
                            env["SHOTS"] = shots
                        k = f"k{shots}" if shots else ""
                        if protocol in TARGET_PROTOCOLS:  # datasets are the targets of one source model
                            calls = [(slug(protocol, method, f"s{seed}", k, variant), [seed, *grid.datasets])]
                        elif protocol == FEWSHOT.name:
                            env["SEEDS"] = seed
                            calls = [(slug(protocol, method, d, f"s{seed}", k, variant), [d, shots] if shots else [d])
                                     for d in grid.datasets]
                        else:
                            calls = [(slug(protocol, method, d, f"s{seed}", k, variant), [d, seed])
                                     for d in grid.datasets]
                        for pid, args in calls:
                            points.setdefault(pid, Point(pid, method, protocol, args, dict(env)))
    if not points:
        raise UserError("the grid has no points: base2new and fewshot need 'datasets'")
    return list(points.values())


def script_env(grid: Grid) -> Dict[str, str]:
    """The scripts' common environment: the sweep's own, then the grid's ``env``; OUTPUT made absolute."""
    env = {k: os.environ[k] for k in SCRIPT_ENV if os.environ.get(k)}
    env.update(grid.env)
    env["OUTPUT"] = os.path.abspath(env.get("OUTPUT") or "./output")
    if env.get("DATA"):
        env["DATA"] = os.path.abspath(env["DATA"])
    return env
