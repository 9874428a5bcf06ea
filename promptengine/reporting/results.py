"""Loading ``results.json`` records from an output tree written by the protocol scripts.

The run folders are those of ``promptengine/protocols/layout.py`` (the layout the protocol runner writes), each with
its ``results.json``; ``shots_all`` means all shots (``num_shots`` -1). The path is read from the right, so ``root``
may be the output root or any folder inside it. The protocol and phase come from the path;
dataset, trainer, shots and seed come from the JSON (the path is the fallback, and a disagreement is reported).
A ``results.json`` outside this layout (a plain ``train.py --output-dir DIR`` run) is placed by its JSON alone, in the
pseudo-protocol ``runs``. Logs are never read here: ``results.json`` is the machine-readable source of truth.

An accuracy that cannot be a percentage (outside [0, 100], not finite, a boolean or a string) is excluded with one
warning naming the file: a table never averages an impossible number.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..engine.identity import fingerprint
from ..evaluation.perimage import PerImage
from ..evaluation.perimage import parse_record as parse_per_image
from ..protocols.layout import ALL_SHOTS, LAYOUT, PROTOCOLS, SUBSAMPLE_OF_PHASE, RunFolder

RESULTS_NAME = "results.json"
SUPPORTED_FORMAT = 1
#: results.json files outside the protocol layout (a plain train.py run), placed by what the file records
LOOSE, LOOSE_PHASE = "runs", "run"
TABLES: Tuple[str, ...] = PROTOCOLS + (LOOSE,)


@dataclass(frozen=True)
class AttackResult:
    name: str
    attack: Dict[str, Any]
    accuracy: float

    @property
    def budget(self) -> Tuple[str, float]:
        """(norm, eps in /255 units) of the attack; eps -1 when the record has none."""
        eps = self.attack.get("eps")
        value = round(float(eps) * 255.0, 3) if isinstance(eps, (int, float)) and not isinstance(eps, bool) else -1.0
        return str(self.attack.get("norm", "linf")), value


def budget_label(budget: Tuple[str, float]) -> str:
    """A column heading for one attack budget: ``eps 1/255``, ``eps 128/255 (l2)``."""
    norm, eps = budget
    text = "eps ?" if eps < 0 else f"eps {eps:g}/255"
    return text if norm == "linf" else f"{text} ({norm})"


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
    def budgets(self) -> Tuple[Tuple[str, float], ...]:
        """The attack budgets of this run, in the order of its attacks (each once)."""
        return tuple(dict.fromkeys(a.budget for a in self.robust))

    def at_budget(self, budget: Tuple[str, float]) -> RunResult:
        """This run restricted to its attacks at one budget: robust is their per-sample worst case (from the
        per-image record when there are several; missing without one), clean is unchanged."""
        keep = [i for i, a in enumerate(self.robust) if a.budget == budget]
        robust = tuple(self.robust[i] for i in keep)
        worst: Optional[float] = robust[0].accuracy if len(robust) == 1 else None
        per_image = self.per_image
        if per_image is not None:
            bits = tuple(per_image.robust[i] for i in keep)
            both = None
            if len(bits) > 1:
                both = per_image.clean
                for b in bits:
                    both &= b
                worst = 100.0 * both.bit_count() / per_image.n
            per_image = replace(per_image, robust=bits, worst_case=both)
        return replace(self, robust=robust, worst_case=worst if robust else None, per_image=per_image)

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
    """Protocol, phase, dataset, shots, trainer, config and seed of a results.json from its run folder, or None."""
    where = RunFolder.parse(Path(path).parent)
    return asdict(where) if where is not None else None


def _loose_place(path: Path, data: Dict[str, Any], warnings: List[str]) -> Optional[Dict[str, Any]]:
    """Dataset, trainer, shots and seed of a results.json outside the layout, from the file; None (warned) when it
    does not record them."""
    fields = {"dataset": data.get("dataset"), "trainer": data.get("trainer"), "shots": data.get("num_shots"),
              "seed": data.get("seed")}
    bad = [k for k in ("shots", "seed") if isinstance(fields[k], bool) or not isinstance(fields[k], int)]
    bad += [k for k in ("dataset", "trainer") if not isinstance(fields[k], str) or not fields[k]]
    if bad:
        warnings.append(f"{path}: outside the {LAYOUT} layout "
                        f"and no usable {', '.join(bad)} recorded in it; skipped")
        return None
    return {"protocol": LOOSE, "phase": LOOSE_PHASE, "dataset": str(fields["dataset"]),
            "shots": ALL_SHOTS if fields["shots"] < 1 else fields["shots"], "trainer": str(fields["trainer"]),
            "config": str(data.get("config") or ""), "seed": fields["seed"]}


def _accuracy(block: Any, what: str, excluded: List[str]) -> Optional[float]:
    """The block's accuracy when it is a percentage; an impossible value is named in ``excluded`` and dropped."""
    if not isinstance(block, dict) or "accuracy" not in block:
        return None
    value = block["accuracy"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 100:
        excluded.append(f"{what} {value!r}")
        return None
    return float(value)


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
    excluded: List[str] = []
    robust = []
    for i, item in enumerate(data.get("robust") or []):
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        acc = _accuracy(item, f"robust accuracy ({name or i})", excluded)
        if acc is not None:
            robust.append(AttackResult(name, dict(item.get("attack") or {}), acc))
    clean = _accuracy(data.get("clean"), "clean accuracy", excluded)
    worst = _accuracy(data.get("worst_case"), "worst-case accuracy", excluded)
    if excluded:
        warnings.append(f"{path}: impossible value(s) excluded: {', '.join(excluded)} (an accuracy is a percentage "
                        "in [0, 100]; rerun the evaluation or repair the file)")
    if worst is None and len(robust) == 1 and len(data.get("robust") or []) == 1:
        worst = robust[0].accuracy
    elif worst is None and robust:
        warnings.append(f"{path}: several attacks but no worst_case; robust accuracy treated as missing")
    per_image, why = parse_per_image(data)
    if why:
        warnings.append(f"{path}: per-image record unusable ({why}); its intervals fall back to seeds only")
    return RunResult(
        path=path,
        clean=clean,
        robust=tuple(robust),
        worst_case=worst,
        split=str(data.get("split", "test")),
        subsample=str(data.get("subsample", "all")),
        time=str(data.get("time", "")),
        raw=data,
        per_image=per_image,
        **ident,
    )


def _result_files(root: Path, warnings: List[str]) -> Iterator[Path]:
    """Every regular file named results.json under ``root``, through linked folders too (each real folder once)."""
    seen: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back into the tree (or a loop): read each real folder once
            warnings.append(f"{dirpath}: the same folder as {seen[real]} (a link); read once")
            dirnames[:] = []
            continue
        seen[real] = dirpath
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if RESULTS_NAME not in filenames:
            continue
        path = Path(dirpath) / RESULTS_NAME
        if not path.is_file():  # a FIFO would block the read, a dangling link cannot be read
            warnings.append(f"{path}: not a regular file; skipped")
            continue
        yield path


def _read_record(path: Path, warnings: List[str]) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        warnings.append(f"{path}: unreadable ({exc}); skipped")
        return None
    if not isinstance(data, dict) or data.get("format") != SUPPORTED_FORMAT:
        fmt = data.get("format") if isinstance(data, dict) else None
        warnings.append(f"{path}: results format {fmt!r} is not {SUPPORTED_FORMAT}; skipped")
        return None
    return data


def load_results(root: Path) -> LoadReport:
    """Every results.json under ``root`` that holds a test-split evaluation, placed by the protocol layout (or, outside
    it, by what the file records: the ``runs`` pseudo-protocol).

    Unreadable files, other formats, non-regular files and non-test splits are skipped with a warning.
    When two files describe the same run (a copied folder), the one with the latest ``time`` is kept.
    """
    root = Path(root)
    warnings: List[str] = []
    by_key: Dict[Tuple, RunResult] = {}  # run key + setting: records of other settings are other runs
    for path in _result_files(root, warnings):
        data = _read_record(path, warnings)
        if data is None:
            continue
        place = _place(path) or _loose_place(path, data, warnings)
        if place is None:
            continue
        run = parse_record(path, data, place, warnings)
        if not data.get("num_images", 1):
            warnings.append(f"{path}: evaluated on zero images; skipped")
            continue
        if run.clean is None and not run.robust:
            warnings.append(f"{path}: no usable accuracy in it; skipped")
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
