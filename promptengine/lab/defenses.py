"""The test-time defense study of the embedded world: each defense against the attack crafted on the model it protects
(non-adaptive, what test-time papers report) and against the attacks that differentiate through it (adaptive).

Runs (seeds x {base, new} of SynthShapes, the first ``images`` test images of each part):

- zero-shot SynthCLIP undefended, and behind TTC and R-TPT (``scripts/{zsclip,ttc,rtpt}/base2new.sh``);
- AdvVLP prompts trained by a TAPT run (``scripts/tapt/base2new.sh``), then the same checkpoint evaluated undefended
  and behind TTC (``--eval-only --model-dir``, ``TEST.DEFENSE none|TTC``).

Every number is a mean over seeds x test images with a 95 % bootstrap interval, and every difference is paired on the
same seeds and images (``promptengine.reporting.intervals``). A defense is flagged, as the robustness report flags it,
when its strongest adaptive attack is more than ``GAP`` points below the non-adaptive one and the interval of that
difference excludes zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..evaluation.perimage import parse_record
from ..protocols.layout import BASE2NEW, TEST_BASE, TEST_NEW, TRAIN_BASE, RunFolder
from ..reporting.intervals import Interval, SeedRecord, mean_interval, paired_diff_interval
from .phenomena import fmt, fmt_level, trainer_names

DATASET = "synth_shapes"
PARTS = ("base", "new")
PHASE_OF_PART = {"base": TEST_BASE, "new": TEST_NEW}
DEFENSE_CONFIG = "defense-"  # config folder of an eval-only run of the TAPT prompts: defense-none, defense-ttc
GAP = 5.0  # points: the robustness report's ``adaptive_gap``


@dataclass(frozen=True)
class Model:
    """One evaluated model: its label, where its results come from and the undefended model it protects."""

    label: str
    reference: str  # label of the undefended model it protects ("" for an undefended model)
    script: str = ""  # the method's script folder, for a protocol run's results (its trainer: the registry's)
    defense: str = ""  # TEST.DEFENSE of an eval-only run of the TAPT run's prompts


# Script folders: zero-shot CLIP and the three defenses (scripts/<folder>/base2new.sh); the trainer names come from
# the registry (``trainer_names``)
ZERO_SHOT, TTC, RTPT, TAPT = "zsclip", "ttc", "rtpt", "tapt"
MODELS = (
    Model("zero-shot, undefended", "", script=ZERO_SHOT),
    Model("TTC on zero-shot", "zero-shot, undefended", script=TTC),
    Model("R-TPT on zero-shot", "zero-shot, undefended", script=RTPT),
    Model("AdvVLP prompts, undefended", "", defense="none"),
    Model("TAPT on AdvVLP prompts", "AdvVLP prompts, undefended", script=TAPT),
    Model("TTC on AdvVLP prompts", "AdvVLP prompts, undefended", defense="ttc"),
)


def protocol_jobs(seeds: Sequence[int]) -> List[Tuple[str, List[str]]]:
    """(script folder, base2new arguments) of the protocol runs, costliest first (R-TPT, TAPT) to balance the pool."""
    return [(m, [DATASET, str(s)]) for m in (RTPT, TAPT, TTC, ZERO_SHOT) for s in seeds]


def _runs(root: Path, phase: str, trainer: str) -> List[Tuple[RunFolder, Path]]:
    """(run, folder) of every run folder of ``trainer`` in base-to-new ``phase`` on the study's dataset."""
    out = []
    for folder in sorted((root / BASE2NEW.name / phase / DATASET).glob("*/*/*/*")):
        run = RunFolder.parse(folder)
        if run is not None and run.trainer == trainer and folder.is_dir():
            out.append((run, folder))
    return out


def tapt_train_dir(root: Path, seed: int) -> Path:
    """The TAPT run's training folder (its AdvVLP prompts), found by the protocol layout."""
    found = [f for run, f in _runs(root, TRAIN_BASE, trainer_names()[TAPT]) if run.seed == seed]
    if len(found) != 1:
        raise SystemExit(f"error: expected one TAPT training run for seed {seed} under {root}, found {len(found)}; "
                         "run the study without --analyse-only first")
    return found[0]


def eval_dir(root: Path, defense: str, part: str, seed: int, shots: int) -> Path:
    """Where the eval-only run of the TAPT run's prompts behind ``defense`` (none, TTC) writes its results: the
    protocol layout, with the config folder ``defense-<name>``."""
    return RunFolder(BASE2NEW.name, PHASE_OF_PART[part], DATASET, shots, trainer_names()[TAPT],
                     DEFENSE_CONFIG + defense.lower(), seed).path(root)


def eval_only_command(python: str, repo: Path, root: Path, defense: str, part: str, seed: int, shots: int,
                      extra: Sequence[str]) -> List[str]:
    """train.py evaluating the TAPT run's trained prompts of ``seed`` on ``part`` behind ``defense``."""
    trainer = trainer_names()[TAPT]
    return [python, str(repo / "train.py"), "--trainer", trainer, "--seed", str(seed),
            "--config-file", str(repo / "configs" / "trainers" / trainer / "synth.yaml"),
            "--dataset-config-file", str(repo / f"configs/datasets/{DATASET}.yaml"),
            "--eval-only", "--skip-done", "--model-dir", str(tapt_train_dir(root, seed)),
            "--output-dir", str(eval_dir(root, defense, part, seed, shots)),
            "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", part, "TEST.DEFENSE", defense, *extra]


def result_files(root: Path, model: Model, part: str) -> List[Path]:
    """The results.json of every seed of one model on one part."""
    trainer = trainer_names()[model.script or TAPT]
    want = (lambda c: not c.startswith(DEFENSE_CONFIG)) if model.script else (lambda c: c == DEFENSE_CONFIG + model.defense)
    return [f / "results.json" for run, f in _runs(root, PHASE_OF_PART[part], trainer)
            if want(run.config) and (f / "results.json").is_file()]


@dataclass
class Evaluation:
    """One model on one part: per attack kind, the records of every seed."""

    clean: List[SeedRecord]
    non_adaptive: List[SeedRecord]
    adaptive: Dict[str, List[SeedRecord]]  # attack name -> records
    worst_adaptive: List[SeedRecord]  # per image, the strongest adaptive attack (empty for an undefended model)


def _record(seed: int, items: str, n: int, bits: int) -> SeedRecord:
    return SeedRecord(seed, 100.0 * bits.bit_count() / n, n, items, bits)


def load_evaluation(files: Sequence[Path]) -> Evaluation:
    """The records of one model on one part from its seeds' results.json (attack 0 is the non-adaptive PGD)."""
    if not files:
        raise ValueError("no results")
    clean, plain, worst = [], [], []
    adaptive: Dict[str, List[SeedRecord]] = {}
    for path in files:
        data = json.loads(path.read_text())
        record, why = parse_record(data)
        if record is None:
            raise ValueError(f"{path}: no per-image record ({why or 'missing'})")
        seed, n, items = data["seed"], record.n, record.items
        clean.append(_record(seed, items, n, record.clean))
        attacks = data.get("robust") or []
        kinds = ["through" in (a.get("attack") or {}) for a in attacks]
        if kinds.count(False) != 1:
            raise ValueError(f"{path}: expected one non-adaptive attack, found {kinds.count(False)}")
        plain.append(_record(seed, items, n, record.robust[kinds.index(False)]))
        strongest = None
        for attack, bits, adaptive_kind in zip(attacks, record.robust, kinds):
            if adaptive_kind:
                adaptive.setdefault(attack["name"], []).append(_record(seed, items, n, bits))
                strongest = bits if strongest is None else strongest & bits
        if strongest is not None:
            worst.append(_record(seed, items, n, strongest))
    return Evaluation(clean, plain, adaptive, worst)


@dataclass
class Line:
    label: str
    part: str
    seeds: int
    images: int
    clean: Interval
    non_adaptive: Interval
    adaptive: Dict[str, Interval]
    worst_adaptive: Optional[Interval]
    gap: Optional[Interval]  # worst adaptive - non-adaptive, paired
    clean_cost: Optional[Interval]  # clean - the undefended model's clean, paired
    versus_undefended: Optional[Interval]  # worst adaptive - the undefended model's robust, paired
    flagged: bool


def analyse(root: Path, draws: int = 2000) -> Tuple[List[Line], List[str]]:
    """One line per model and part, with the paired differences that judge a defense; notes on what is missing."""
    evaluations: Dict[Tuple[str, str], Evaluation] = {}
    notes: List[str] = []
    for model in MODELS:
        for part in PARTS:
            try:
                evaluations[model.label, part] = load_evaluation(result_files(root, model, part))
            except ValueError as exc:
                notes.append(f"{model.label}, {part}: not judged ({exc})")
    kw = dict(draws=draws)
    lines = []
    for model in MODELS:
        for part in PARTS:
            ev = evaluations.get((model.label, part))
            if ev is None:
                continue
            ref = evaluations.get((model.reference, part)) if model.reference else None
            worst = mean_interval(ev.worst_adaptive, **kw) if ev.worst_adaptive else None
            gap = paired_diff_interval(ev.worst_adaptive, ev.non_adaptive, **kw) if ev.worst_adaptive else None
            lines.append(Line(
                model.label, part, len(ev.clean), ev.clean[0].n,
                mean_interval(ev.clean, **kw), mean_interval(ev.non_adaptive, **kw),
                {name: mean_interval(recs, **kw) for name, recs in ev.adaptive.items()}, worst, gap,
                paired_diff_interval(ev.clean, ref.clean, **kw) if ref else None,
                paired_diff_interval(ev.worst_adaptive, ref.non_adaptive, **kw) if ref and ev.worst_adaptive else None,
                gap is not None and gap.high is not None and gap.estimate < -GAP and gap.high < 0))
    return lines, notes


def _level(iv: Optional[Interval]) -> str:
    return "–" if iv is None else fmt_level(iv)


def _diff(iv: Optional[Interval]) -> str:
    return "–" if iv is None else fmt(iv)


def render_table(lines: Sequence[Line]) -> str:
    """Markdown: per model and part, clean and robust accuracy (non-adaptive, adaptive) and the paired differences."""
    out = ["| model | part | clean | PGD-10 non-adaptive | adaptive (worst of through / EOT) | adaptive - non-adaptive "
           "| clean - undefended | adaptive - undefended PGD | flag |",
           "|---|---|---|---|---|---|---|---|---|"]
    for ln in lines:
        out.append(f"| {ln.label} | {ln.part} | {_level(ln.clean)} | {_level(ln.non_adaptive)} | "
                   f"{_level(ln.worst_adaptive)} | {_diff(ln.gap)} | {_diff(ln.clean_cost)} | "
                   f"{_diff(ln.versus_undefended)} | {'MASKING' if ln.flagged else ''} |")
    if lines:
        out.append(f"\n{lines[0].seeds} seeds x {lines[0].images} test images per part; 95 % paired bootstrap "
                   f"intervals; flag: adaptive more than {GAP:g} points below non-adaptive, interval excluding zero.")
    return "\n".join(out)


def render_attacks(lines: Sequence[Line]) -> str:
    """Each adaptive attack on its own (through the defense, EOT), for the defenses that have several."""
    out = []
    for ln in lines:
        for name, iv in ln.adaptive.items():
            out.append(f"- {ln.label}, {ln.part}: {name}: {_level(iv)}")
    return "\n".join(out)
