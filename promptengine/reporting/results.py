"""Loading ``results.json`` records from an output tree written by the protocol scripts.

Layout (fixed contract with the protocol scripts)::

    <root>/<protocol>/<phase>/<DATASET>/shots_<K>/<TRAINER>/<CFG>/seed<S>/results.json

``protocol``/``phase`` is one of ``base2new/{train_base,test_base,test_new}``, ``fewshot/train``,
``xd/{train,test}`` and ``dg/{train,test}``; ``shots_all`` means all shots (``num_shots`` -1). The path is read from
the right, so ``root`` may be the output root or any folder inside it. The protocol and phase come from the path;
dataset, trainer, shots and seed come from the JSON (the path is the fallback, and a disagreement is reported).
Logs are never read here: ``results.json`` is the machine-readable source of truth.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .perimage import PerImage
from .perimage import parse_record as parse_per_image

RESULTS_NAME = "results.json"
SUPPORTED_FORMAT = 1
PROTOCOL_PHASES: Dict[str, Tuple[str, ...]] = {
    "base2new": ("train_base", "test_base", "test_new"),
    "fewshot": ("train",),
    "xd": ("train", "test"),
    "dg": ("train", "test"),
}
PROTOCOLS: Tuple[str, ...] = tuple(PROTOCOL_PHASES)
SUBSAMPLE_OF_PHASE = {"train_base": "base", "test_base": "base", "test_new": "new"}
ALL_SHOTS = -1
_SHOTS_DIR = re.compile(r"^shots_(\d+|all)$")
_SEED_DIR = re.compile(r"^seed(-?\d+)$")


def shots_label(shots: int) -> str:
    return "all" if shots < 1 else str(shots)


@dataclass(frozen=True)
class AttackResult:
    name: str
    attack: Dict[str, Any]
    accuracy: float


@dataclass
class RunResult:
    """One evaluation record, placed in the protocol layout."""

    path: Path
    protocol: str
    phase: str
    dataset: str
    shots: int
    trainer: str
    config: str
    seed: int
    clean: Optional[float]
    robust: Tuple[AttackResult, ...] = ()
    worst_case: Optional[float] = None
    split: str = "test"
    subsample: str = "all"
    time: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)
    per_image: Optional[PerImage] = field(default=None, repr=False)  # which test images it got right, when recorded

    @property
    def setting_identity(self) -> Optional[Dict[str, Any]]:
        """The recorded run identity without what varies across the cells of one method row: the seed, the data
        (dataset, classes, items) and where the weights come from. None for records written before identities."""
        full = (self.raw.get("identity") or {}).get("identity")
        if not isinstance(full, dict):
            return None
        setting = {k: v for k, v in full.items() if k not in ("data", "weights")}
        train = dict(setting.get("train") or {})
        train.pop("SEED", None)
        setting["train"] = train
        return setting

    @property
    def setting(self) -> Optional[str]:
        """Fingerprint of ``setting_identity``: seeds may only be averaged when it is equal."""
        from ..engine.identity import fingerprint

        identity = self.setting_identity
        return fingerprint(identity) if identity is not None else None

    @property
    def attack_names(self) -> Tuple[str, ...]:
        return tuple(a.name for a in self.robust)

    def value(self, metric: str) -> Optional[float]:
        """``clean`` accuracy, or ``robust``: the per-sample worst case over this run's attacks."""
        if metric == "clean":
            return self.clean
        if metric == "robust":
            return self.worst_case
        raise ValueError(f"unknown metric {metric!r} (clean, robust)")

    @property
    def key(self) -> Tuple[str, str, str, int, str, str, int]:
        return (self.protocol, self.phase, self.dataset, self.shots, self.trainer, self.config, self.seed)


@dataclass
class LoadReport:
    runs: List[RunResult]
    warnings: List[str]


DATASET_ID_ALIASES = {"dtd": "describabletextures"}


def same_dataset(folder: str, name: str) -> bool:
    """A path's dataset folder is the YAML id (``oxford_pets``), the file records the class name (``OxfordPets``)."""
    def squash(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    return DATASET_ID_ALIASES.get(folder, squash(folder)) == squash(name)


def _place(path: Path) -> Optional[Dict[str, Any]]:
    """Protocol, phase, dataset, shots, trainer, config and seed from the 8 last path parts, or None."""
    parts = Path(os.path.abspath(path)).parts
    if len(parts) < 8:
        return None
    protocol, phase, dataset, shots_dir, trainer, config, seed_dir = parts[-8:-1]
    shots = _SHOTS_DIR.match(shots_dir)
    seed = _SEED_DIR.match(seed_dir)
    if protocol not in PROTOCOL_PHASES or phase not in PROTOCOL_PHASES[protocol] or not shots or not seed:
        return None
    return {
        "protocol": protocol,
        "phase": phase,
        "dataset": dataset,
        "shots": ALL_SHOTS if shots.group(1) == "all" else int(shots.group(1)),
        "trainer": trainer,
        "config": config,
        "seed": int(seed.group(1)),
    }


def _accuracy(block: Any) -> Optional[float]:
    if isinstance(block, dict) and isinstance(block.get("accuracy"), (int, float)):
        return float(block["accuracy"])
    return None


def parse_record(path: Path, data: Dict[str, Any], place: Dict[str, Any], warnings: List[str]) -> RunResult:
    """Build a RunResult from one results.json payload; identity disagreements with the path become warnings."""
    ident = dict(place)
    for key, json_key in (("dataset", "dataset"), ("trainer", "trainer"), ("shots", "num_shots"), ("seed", "seed")):
        if json_key not in data:
            continue
        value = data[json_key]
        if key == "shots" and isinstance(value, int) and value < 1:
            value = ALL_SHOTS
        if value != place[key] and not (key == "dataset" and same_dataset(place[key], value)):
            warnings.append(f"{path}: {json_key}={value!r} in the file but {place[key]!r} in the path; using the file")
        ident[key] = value
    robust = []
    for item in data.get("robust") or []:
        acc = _accuracy(item)
        if acc is not None:
            robust.append(AttackResult(str(item.get("name", "")), dict(item.get("attack") or {}), acc))
    worst = _accuracy(data.get("worst_case"))
    if worst is None and len(robust) == 1:
        worst = robust[0].accuracy
    elif worst is None and robust:
        warnings.append(f"{path}: several attacks but no worst_case; robust accuracy treated as missing")
    per_image, why = parse_per_image(data)
    if why:
        warnings.append(f"{path}: per-image record unusable ({why}); its intervals fall back to seeds only")
    return RunResult(
        path=path,
        clean=_accuracy(data.get("clean")),
        robust=tuple(robust),
        worst_case=worst,
        split=str(data.get("split", "test")),
        subsample=str(data.get("subsample", "all")),
        time=str(data.get("time", "")),
        raw=data,
        per_image=per_image,
        **ident,
    )


def load_results(root: Path) -> LoadReport:
    """Every results.json under ``root`` that sits in the protocol layout and holds a test-split evaluation.

    Files outside the layout, unreadable files, other formats and non-test splits are skipped with a warning.
    When two files describe the same run (a copied folder), the one with the latest ``time`` is kept.
    """
    root = Path(root)
    warnings: List[str] = []
    by_key: Dict[Tuple, RunResult] = {}  # run key + setting: records of other settings are other runs
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if RESULTS_NAME not in filenames:
            continue
        path = Path(dirpath) / RESULTS_NAME
        place = _place(path)
        if place is None:
            warnings.append(f"{path}: not in the <protocol>/<phase>/<DATASET>/shots_<K>/<TRAINER>/<CFG>/seed<S> layout; skipped")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            warnings.append(f"{path}: unreadable ({exc}); skipped")
            continue
        if not isinstance(data, dict) or data.get("format") != SUPPORTED_FORMAT:
            fmt = data.get("format") if isinstance(data, dict) else None
            warnings.append(f"{path}: results format {fmt!r} is not {SUPPORTED_FORMAT}; skipped")
            continue
        run = parse_record(path, data, place, warnings)
        if not data.get("num_images", 1) or (run.clean is None and not run.robust):
            warnings.append(f"{path}: evaluated on zero images; skipped")
            continue
        if run.split != "test":
            warnings.append(f"{path}: split {run.split!r} is not the final test evaluation; skipped")
            continue
        wanted = SUBSAMPLE_OF_PHASE.get(run.phase)
        if wanted and run.subsample != wanted:
            warnings.append(f"{path}: subsample {run.subsample!r} in a {run.phase} folder (expected {wanted!r})")
        key = (*run.key, run.setting or "")
        previous = by_key.get(key)
        if previous is not None:
            keep, drop = (run, previous) if run.time >= previous.time else (previous, run)
            warnings.append(f"{drop.path}: same run as {keep.path}, which is newer; skipped")
            run = keep
        by_key[key] = run
    return LoadReport(sorted(by_key.values(), key=lambda r: r.key), warnings)
