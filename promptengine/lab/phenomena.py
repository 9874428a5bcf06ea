"""The P1-P6 study of the embedded world: which runs it needs and how each phenomenon is judged.

Each phenomenon is a method-independent effect the field reports on real CLIP (docs/SYNTH.md); on the embedded world
it must appear with a 95 % interval (seeds x test images, paired bootstrap) whose bound lies on the stated side.
The runs are ordinary protocol runs (``scripts/<method>/<protocol>.sh``) read back from their ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..config.merge import load_yaml
from ..protocols.layout import TEST_BASE, TEST_NEW
from ..protocols.runs import config_folder, parse_shots
from ..registry import HOME, registered_methods
from ..reporting.intervals import (
    Interval,
    average_diff_interval,
    average_interval,
    mean_interval,
    paired_diff_interval,
    records_of,
)
from ..reporting.results import RunResult, load_results

SOURCE = "synth_shapes"
# Base-to-new on the source (ImageNet's role) and on the specialist dataset whose deciding cue (the count) the
# pretraining captions rarely name (EuroSAT's role); the field's base-to-new numbers are averages over such a mix.
B2N_DATASETS = ("synth_shapes", "synth_counts")
TARGETS = ("synth_glyphs", "synth_patterns", "synth_counts", "synth_fills")
# methods by their script folder (scripts/<folder>/); the trainer each runs is the registry's (``trainer_names``)
B2N_METHODS = ("zsclip", "coop", "cocoop", "maple", "apt", "fap", "capt")
# P3's second half: the field's answers to CoOp's overfitting, conditional (CoCoOp) and multi-modal (MaPLe) prompts
RECOVERING = ("cocoop", "maple")
ADVERSARIAL = ("apt", "fap", "capt")
# P6's field reference is tower tuning on a broad source (TeCoA and its successors), so TeCoA joins the transfer runs
TOWER = ("tecoa",)
XD_METHODS = ("zsclip", *ADVERSARIAL, *TOWER)
REFERENCE = "zsclip"  # zero-shot CLIP, the baseline of every difference
DATASET_NAME = {"synth_shapes": "SynthShapes", "synth_glyphs": "SynthGlyphs", "synth_patterns": "SynthPatterns",
                "synth_counts": "SynthCounts", "synth_fills": "SynthFills"}

STUDY_SIZES = {
    # EXTRA_OPTS appended to every run, the prompt methods' training shots and the towers' (the field tunes a tower on
    # every image of its source, TeCoA on ImageNet, PMG-AFT and TGA-ZSR on Tiny ImageNet, as the zsrobust presets do)
    "full": dict(extra="TEST.MAX_IMAGES 400 ATTACK.TEST.STEPS 10", shots="16", tower_shots="all"),
    "ci": dict(extra=("TEST.MAX_IMAGES 24 ATTACK.TEST.STEPS 2 ATTACK.TRAIN.STEPS 1 OPTIM.MAX_EPOCH 1 "
                      "DATALOADER.TRAIN_X.BATCH_SIZE 8"), shots="2", tower_shots="2"),
}


# CoOp's base-to-new baseline trains far longer than the prompts that answer it: the CoCoOp paper runs CoOp at its
# 16-shot config (200 epochs) against CoCoOp's 10 (MaPLe: 5), and the field's P2 and P3 numbers are that CoOp's. The
# study trains CoOp for this many times its recipe's epochs (``--coop-epoch-factor``; 1 trains the recipe, as
# CoCoOp and MaPLe do); the recipe itself (a user's CoOp) is the search's.
COOP_FIELD_FACTOR = 20


@cache
def recipe_epochs(method: str) -> int:
    """OPTIM.MAX_EPOCH of a method's embedded-world recipe (``configs/trainers/<TRAINER>/synth.yaml``), read once."""
    recipe = HOME / "configs" / "trainers" / trainer_names()[method] / "synth.yaml"
    return int(load_yaml(str(recipe))["OPTIM"]["MAX_EPOCH"])


def study_extra(method: str, size: str, coop_factor: int = COOP_FIELD_FACTOR) -> str:
    """EXTRA_OPTS of a method's runs at a study size: the size's options, and for CoOp its epoch budget
    (``coop_factor`` times the epochs it would otherwise train; 1 leaves them)."""
    words = STUDY_SIZES[size]["extra"].split()
    factor = coop_factor if method == "coop" else 1
    if factor == 1:
        return " ".join(words)
    pairs = dict(zip(words[0::2], words[1::2]))
    epochs = int(pairs.pop("OPTIM.MAX_EPOCH", recipe_epochs(method)))
    return " ".join([*(f"{k} {v}" for k, v in pairs.items()), f"OPTIM.MAX_EPOCH {factor * epochs}"])


def study_config(size: str, method: str = REFERENCE, coop_factor: int = COOP_FIELD_FACTOR) -> str:
    """The config folder of a method's study runs at a size: its ``synth`` config tagged with its EXTRA_OPTS (runs
    of other options in the same output root, a tower swapped in, say, are not the study's)."""
    return config_folder("synth", {"EXTRA_OPTS": study_extra(method, size, coop_factor)})


def training_shots(method: str, size: str) -> str:
    """SHOTS of a method's runs at a study size: prompt methods tune on few shots, towers on the whole source."""
    sizes = STUDY_SIZES[size]
    return sizes["tower_shots"] if method in TOWER else sizes["shots"]


def plan_runs(seeds: Sequence[int]) -> List[Tuple[str, str, List[str]]]:
    """(method folder, protocol, script arguments) of every run the study needs, cheapest first."""
    jobs = []
    for seed in seeds:
        jobs += [(m, "base2new", [d, str(seed)]) for d in B2N_DATASETS for m in B2N_METHODS]
        jobs += [(m, "xd", [str(seed), *TARGETS]) for m in XD_METHODS]
    return jobs


@dataclass
class Row:
    key: str
    phenomenon: str
    field: str
    target: str
    measured: str
    holds: bool


def trainer_names() -> Dict[str, str]:
    """Script folder -> the registered trainer it runs (the name a run's results.json records)."""
    return {m.script_folder: m.trainer for m in registered_methods(with_scripts=True)}


class Cells:
    """The loaded runs of one study size, addressed by (protocol, phase, dataset, method folder); a run with other
    options or trained on other shots than the size gives its method (an earlier study's, say) is not the study's and
    is left out."""

    def __init__(self, runs: Sequence[RunResult], size: str = "full", coop_factor: int = COOP_FIELD_FACTOR) -> None:
        self.runs = runs
        self.size = size
        self.coop_factor = coop_factor
        self.trainer = trainer_names()

    def get(self, protocol: str, phase: str, dataset: str, method: str) -> List[RunResult]:
        name, trainer = DATASET_NAME.get(dataset, dataset), self.trainer[method]
        shots = parse_shots(training_shots(method, self.size))
        config = study_config(self.size, method, self.coop_factor)
        return [r for r in self.runs if r.protocol == protocol and r.phase == phase and r.dataset == name
                and r.trainer == trainer and r.shots == shots and r.config == config]

    def records(self, protocol: str, phase: str, dataset: str, method: str, metric: str):
        return records_of(self.get(protocol, phase, dataset, method), metric)

    def base(self, method: str, metric: str):
        """Per base-to-new dataset, the records of the base-class test."""
        return [self.records("base2new", TEST_BASE, d, method, metric) for d in B2N_DATASETS]

    def new(self, method: str, metric: str):
        return [self.records("base2new", TEST_NEW, d, method, metric) for d in B2N_DATASETS]

    def targets(self, method: str, metric: str):
        return [self.records("xd", "test", t, method, metric) for t in TARGETS]


def per_dataset(cells: Cells, half: str, method: str, metric: str, reference: str = REFERENCE) -> str:
    """The difference to the reference on each base-to-new dataset, for the measured column."""
    parts = getattr(cells, half)(method, metric)
    refs = getattr(cells, half)(reference, metric)
    out = [f"{DATASET_NAME[d]} {fmt(paired_diff_interval(a, b))}" for d, a, b in zip(B2N_DATASETS, parts, refs)]
    return " (" + "; ".join(out) + ")"


def fmt(iv: Optional[Interval]) -> str:
    if iv is None:
        return "n/a"
    if iv.low is None:
        return f"{iv.estimate:+.1f} (no interval)"
    return f"{iv.estimate:+.1f} [{iv.low:+.1f}, {iv.high:+.1f}]"


def fmt_level(iv: Interval) -> str:
    if iv.low is None:
        return f"{iv.estimate:.1f} (no interval)"
    return f"{iv.estimate:.1f} [{iv.low:.1f}, {iv.high:.1f}]"


def at_least(iv: Interval, bound: float) -> bool:
    """Estimate >= bound and the interval excludes zero upwards."""
    return iv.low is not None and iv.estimate >= bound and iv.low > 0


def at_most(iv: Interval, bound: float) -> bool:
    """Estimate <= bound and the interval excludes zero downwards."""
    return iv.high is not None and iv.estimate <= bound and iv.high < 0


def _guard(build: Callable[[], Row], key: str, phenomenon: str, notes: List[str]) -> Optional[Row]:
    try:
        return build()
    except (ValueError, KeyError, ZeroDivisionError) as exc:
        notes.append(f"{key} ({phenomenon}) not judged: {exc}")
        return None


def analyse(root: Path, draws: int = 2000, size: str = "full",
            coop_factor: int = COOP_FIELD_FACTOR) -> Tuple[List[Row], List[str]]:
    """The P1-P6 rows measured on the study's output under ``root`` (runs of the study ``size``, CoOp's of
    ``coop_factor`` times its recipe's epochs), and notes on anything missing."""
    report = load_results(Path(root))
    cells = Cells(report.runs, size, coop_factor)
    kw = dict(draws=draws)
    notes: List[str] = []
    rows: List[Optional[Row]] = []

    def p1() -> Row:
        per = {t: mean_interval(cells.records("xd", "test", t, REFERENCE, "clean"), **kw) for t in TARGETS}
        avg = average_interval([cells.records("xd", "test", t, REFERENCE, "clean") for t in TARGETS], **kw)
        low_t = min(per, key=lambda t: per[t].estimate)
        high_t = max(per, key=lambda t: per[t].estimate)
        ok = (avg.low is not None and 50 <= avg.low and avg.high <= 75 and per[low_t].high < 50
              and per[high_t].low > 85)
        measured = (f"average {fmt_level(avg)}; lowest {DATASET_NAME[low_t]} {fmt_level(per[low_t])}; "
                    f"highest {DATASET_NAME[high_t]} {fmt_level(per[high_t])}")
        return Row("P1", "zero-shot accuracy varies widely across datasets",
                   "CLIP: EuroSAT/DTD/Aircraft < 50 %, Caltech/Pets > 85 %",
                   "target average in [50, 75], one < 50, one > 85", measured, ok)

    def p2() -> Row:
        iv = average_diff_interval(cells.base("coop", "clean"), cells.base(REFERENCE, "clean"), **kw)
        return Row("P2", "few-shot prompt tuning helps on the tuned classes", "CoOp base +13 (CoCoOp paper)",
                   "CoOp base clean - zero-shot >= +10", fmt(iv) + per_dataset(cells, "base", "coop", "clean"),
                   at_least(iv, 10))

    def p3() -> Row:
        drop = average_diff_interval(cells.new("coop", "clean"), cells.new(REFERENCE, "clean"), **kw)
        recover = {m: average_diff_interval(cells.new(m, "clean"), cells.new("coop", "clean"), **kw)
                   for m in RECOVERING}
        shown = "; ".join(f"{cells.trainer[m]}-CoOp {fmt(iv)}{per_dataset(cells, 'new', m, 'clean', 'coop')}"
                          for m, iv in recover.items())
        return Row("P3", "CoOp overfits its base classes; conditional or multi-modal prompts recover part of it",
                   "CoOp new -11; CoCoOp, MaPLe new above CoOp",
                   "CoOp new - zero-shot <= -5; CoCoOp or MaPLe new - CoOp > 0",
                   f"CoOp-ZS {fmt(drop)}{per_dataset(cells, 'new', 'coop', 'clean')}; {shown}",
                   at_most(drop, -5) and any(at_least(iv, 0) for iv in recover.values()))

    def p4() -> Row:
        parts = [*cells.base(REFERENCE, "robust"), *cells.new(REFERENCE, "robust"),
                 *cells.targets(REFERENCE, "robust")]
        iv = average_interval(parts, **kw)
        return Row("P4", "zero-shot CLIP is not robust", "4.9 % (PGD, 1/255, 16 datasets)",
                   "zero-shot robust (base, new, targets averaged) <= 10", fmt_level(iv),
                   iv.high is not None and iv.high <= 10)

    def p5() -> Row:
        ivs = {m: average_diff_interval(cells.base(m, "robust"), cells.base(REFERENCE, "robust"), **kw)
               for m in ADVERSARIAL}
        return Row("P5", "adversarial prompt tuning buys robustness", "APT, FAP: tens of points over CLIP",
                   "APT, FAP, CAPT base robust - zero-shot >= +15",
                   "; ".join(f"{cells.trainer[m]} {fmt(iv)}{per_dataset(cells, 'base', m, 'robust')}"
                             for m, iv in ivs.items()),
                   all(at_least(iv, 15) for iv in ivs.values()))

    def p6() -> Row:
        ivs = {m: average_diff_interval(cells.targets(m, "robust"), cells.targets(REFERENCE, "robust"), **kw)
               for m in (*ADVERSARIAL, *TOWER)}
        return Row("P6", "robustness learned on a broad source transfers", "TeCoA-style: 28-44 % vs CLIP 4.9 %",
                   "cross-dataset robust average - zero-shot >= +5 (one method)",
                   "; ".join(f"{cells.trainer[m]} {fmt(iv)}" for m, iv in ivs.items()),
                   any(at_least(iv, 5) for iv in ivs.values()))

    for key, name, build in (("P1", "spread", p1), ("P2", "tuning helps", p2), ("P3", "overfitting", p3),
                             ("P4", "fragility", p4), ("P5", "robust tuning", p5), ("P6", "transfer", p6)):
        rows.append(_guard(build, key, name, notes))
    notes += report.warnings[:5]
    return [r for r in rows if r is not None], notes


def render_table(rows: Sequence[Row]) -> str:
    """A markdown table: phenomenon, field reference, target, measured (95 % intervals), verdict."""
    lines = ["| | phenomenon | field | target | measured (95 % interval) | verdict |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.key} | {r.phenomenon} | {r.field} | {r.target} | {r.measured} | "
                     f"{'holds' if r.holds else 'DOES NOT HOLD'} |")
    return "\n".join(lines)


def verdicts(rows: Sequence[Row]) -> Dict[str, bool]:
    return {r.key: r.holds for r in rows}
