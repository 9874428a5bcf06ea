"""95 % intervals of accuracies and of differences between methods, over seeds and test images (docs/EXPERIMENTS.md).

Stable API (pure Python, torch-free; results are reproducible for a given ``draws`` and ``seed``)::

    records = load_records(paths, metric="robust")          # one SeedRecord per results.json (a seed's evaluation)
    mean_interval(records)                                   # a method's mean accuracy on one test set
    paired_diff_interval(records_a, records_b)               # A - B on the same test set, paired by seed and image
    hm_interval(base, new) / hm_diff_interval(base_a, new_a, base_b, new_b)
    average_interval([records_d1, records_d2, ...])          # unweighted mean over datasets
    average_diff_interval([a_d1, a_d2, ...], [b_d1, b_d2, ...])
    interval(expr)                                           # any expression of Runs / Diff / HM / Mean

Each returns an ``Interval`` (estimate, low, high, method, seeds, note). With per-image records in every
results.json involved, the interval is a hierarchical percentile bootstrap (``bootstrap``): seeds resampled with
replacement, then test images with replacement, the same images for every seed and every method on that test set;
see ``promptengine.reporting.bootstrap`` for how it is drawn exactly and fast. Without them (files written before
per-image records existed, or runs evaluated on different items), the fallback is a normal interval over seeds only
(``seeds``): estimate +- 1.96 x the jackknife-over-seed-numbers standard error, which for a plain mean is
``s / sqrt(n)`` with the sample standard deviation s; it ignores test-image noise. With one seed and no per-image
record there is no interval (``none``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from ..evaluation.perimage import parse_record
from .bootstrap import Leaf, Simulator, percentile
from .stats import harmonic_mean

BOOTSTRAP, SEEDS, NONE = "bootstrap", "seeds", "none"
DEFAULT_DRAWS = 2000
MIN_DRAWS = 100  # fewer draws cannot place the 2.5 % and 97.5 % percentiles
DEFAULT_SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class SeedRecord:
    """One seed's evaluation of one metric on one test set: its accuracy (percent) and, when recorded, which images
    it got right (bit i of ``bits`` = image i) with the digest of the evaluated items."""

    seed: int
    accuracy: float
    n: int = 0
    items: Optional[str] = None
    bits: Optional[int] = None

    @property
    def per_image(self) -> bool:
        return self.bits is not None and self.items is not None and self.n > 0


@dataclass(frozen=True)
class Interval:
    """``estimate`` with its ``level`` interval [low, high] (None when there is none); ``method`` says how it was
    obtained (bootstrap, seeds, none), ``seeds`` how many seed numbers it rests on, ``note`` why it fell back."""

    estimate: float
    low: Optional[float]
    high: Optional[float]
    method: str
    seeds: int
    note: str = ""

    @property
    def above_zero(self) -> bool:
        return self.low is not None and self.low > 0

    @property
    def below_zero(self) -> bool:
        return self.high is not None and self.high < 0

    @property
    def excludes_zero(self) -> bool:
        return self.above_zero or self.below_zero


# ----------------------------------------------------------------------------------------------------------------
# Expressions: what an interval is of


class Expr:
    """A statistic of cells; ``evaluate`` maps each cell to a list of values (one per draw) and combines them."""

    def leaves(self) -> Iterator[Runs]:
        raise NotImplementedError

    def evaluate(self, of: Callable[[Runs], List[float]]) -> List[float]:
        raise NotImplementedError


class Runs(Expr):
    """A cell: one method's mean accuracy over its seeds on one test set (one SeedRecord per seed)."""

    def __init__(self, records: Iterable[SeedRecord]) -> None:
        self.records = tuple(sorted(records, key=lambda r: r.seed))
        if not self.records:
            raise ValueError("a cell needs at least one seed record")
        seeds = [r.seed for r in self.records]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"two records of the same seed in one cell (seeds {seeds})")
        self.mean = math.fsum(r.accuracy for r in self.records) / len(self.records)
        self._leaf: Optional[Leaf] = None

    @property
    def seeds(self) -> tuple:
        return tuple(r.seed for r in self.records)

    def why_no_images(self) -> Optional[str]:
        """Why this cell cannot be resampled over images, or None when it can."""
        missing = [r.seed for r in self.records if not r.per_image]
        if missing:
            return f"no per-image record for seed {', '.join(map(str, missing))}"
        if len({(r.items, r.n) for r in self.records}) > 1:
            return "its seeds were evaluated on different test items"
        return None

    def leaf(self) -> Leaf:
        if self._leaf is None:
            first = self.records[0]
            self._leaf = Leaf(self.seeds, [r.bits for r in self.records], first.items, first.n)
        return self._leaf

    def without(self, seed: int) -> List[float]:
        kept = [r.accuracy for r in self.records if r.seed != seed]
        return [math.fsum(kept) / len(kept)]

    def leaves(self) -> Iterator[Runs]:
        yield self

    def evaluate(self, of):
        return of(self)


class Diff(Expr):
    """``a - b``."""

    def __init__(self, a: Expr, b: Expr) -> None:
        self.a, self.b = a, b

    def leaves(self):
        yield from self.a.leaves()
        yield from self.b.leaves()

    def evaluate(self, of):
        return [x - y for x, y in zip(self.a.evaluate(of), self.b.evaluate(of))]


class HM(Expr):
    """``2 B N / (B + N)`` of two statistics (base and new accuracy)."""

    def __init__(self, base: Expr, new: Expr) -> None:
        self.base, self.new = base, new

    def leaves(self):
        yield from self.base.leaves()
        yield from self.new.leaves()

    def evaluate(self, of):
        return [harmonic_mean(b, n) for b, n in zip(self.base.evaluate(of), self.new.evaluate(of))]


class Mean(Expr):
    """The unweighted mean of several statistics (an average over datasets)."""

    def __init__(self, parts: Sequence[Expr]) -> None:
        if not parts:
            raise ValueError("a mean needs at least one part")
        self.parts = list(parts)

    def leaves(self):
        for part in self.parts:
            yield from part.leaves()

    def evaluate(self, of):
        columns = [part.evaluate(of) for part in self.parts]
        k = len(columns)
        return [math.fsum(values) / k for values in zip(*columns)]


# ----------------------------------------------------------------------------------------------------------------
# Intervals


def _unique(expr: Expr) -> List[Runs]:
    seen: Dict[int, Runs] = {}
    for leaf in expr.leaves():
        seen.setdefault(id(leaf), leaf)
    return list(seen.values())


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _fallback_reason(cells: Sequence[Runs]) -> Optional[str]:
    reasons = [why for why in (c.why_no_images() for c in cells) if why]
    if reasons:
        return reasons[0]
    return None


def interval(expr: Expr, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED, level: float = LEVEL,
             simulator: Optional[Simulator] = None) -> Interval:
    """The ``level`` interval of ``expr`` (see the module docstring for the method and its fallback).

    Cells on the same test items are resampled with the same image draw (paired images); cells with the same seed
    numbers with the same seed draw (paired seeds). Pass one ``simulator`` to many calls to reuse draws.
    """
    cells = _unique(expr)
    estimate = expr.evaluate(lambda c: [c.mean])[0]
    seed_numbers = sorted({s for c in cells for s in c.seeds})
    why = _fallback_reason(cells)
    if why is None:
        sim = simulator or Simulator(draws, seed)
        groups: Dict[tuple, List[Runs]] = {}
        for c in cells:
            groups.setdefault((c.records[0].items, c.records[0].n), []).append(c)
        replicates: Dict[int, List[float]] = {}
        for members in groups.values():
            drawn = sim.replicates([c.leaf() for c in members])
            for c in members:
                replicates[id(c)] = drawn[c.leaf().key]
        values = sorted(expr.evaluate(lambda c: replicates[id(c)]))
        tail = (1.0 - level) / 2
        return Interval(estimate, percentile(values, tail), percentile(values, 1 - tail), BOOTSTRAP, len(seed_numbers))
    if len(seed_numbers) < 2 or any(len(c.records) < 2 for c in cells):
        return Interval(estimate, None, None, NONE, len(seed_numbers), f"one seed and {why}: no interval")
    thetas = [expr.evaluate(lambda c, s=s: c.without(s))[0] for s in seed_numbers]
    n = len(thetas)
    centre = math.fsum(thetas) / n
    se = math.sqrt((n - 1) / n * math.fsum((t - centre) ** 2 for t in thetas))
    half = _z(level) * se
    return Interval(estimate, estimate - half, estimate + half, SEEDS, n, f"seeds only: {why}")


Cells = Union[Runs, Sequence[SeedRecord]]


def _cell(x: Cells) -> Runs:
    return x if isinstance(x, Runs) else Runs(x)


def mean_interval(runs: Cells, **kw) -> Interval:
    """A method's mean accuracy over its seeds on one test set."""
    return interval(_cell(runs), **kw)


def paired_diff_interval(runs_a: Cells, runs_b: Cells, **kw) -> Interval:
    """Method A minus method B on the same test set: the same seed numbers and the same images for both."""
    return interval(Diff(_cell(runs_a), _cell(runs_b)), **kw)


def hm_interval(base: Cells, new: Cells, **kw) -> Interval:
    """HM of the seed-averaged base and new accuracy (base and new images resampled independently)."""
    return interval(HM(_cell(base), _cell(new)), **kw)


def hm_diff_interval(base_a: Cells, new_a: Cells, base_b: Cells, new_b: Cells, **kw) -> Interval:
    """HM(A) minus HM(B)."""
    return interval(Diff(HM(_cell(base_a), _cell(new_a)), HM(_cell(base_b), _cell(new_b))), **kw)


def average_interval(datasets: Sequence[Cells], **kw) -> Interval:
    """The unweighted mean over datasets of a method's per-dataset means (images resampled within each dataset)."""
    return interval(Mean([_cell(d) for d in datasets]), **kw)


def average_diff_interval(datasets_a: Sequence[Cells], datasets_b: Sequence[Cells], **kw) -> Interval:
    """Average over datasets of A minus that of B (datasets in the same order for both)."""
    if len(datasets_a) != len(datasets_b):
        raise ValueError("both methods need the same datasets")
    return interval(Diff(Mean([_cell(d) for d in datasets_a]), Mean([_cell(d) for d in datasets_b])), **kw)


# ----------------------------------------------------------------------------------------------------------------
# Loading


def _accuracy(block) -> Optional[float]:
    if isinstance(block, dict) and isinstance(block.get("accuracy"), (int, float)):
        return float(block["accuracy"])
    return None


def record_from_json(data: dict, metric: str = "clean", where: str = "results.json") -> SeedRecord:
    """A SeedRecord from a results.json payload; ``metric`` is clean or robust (the per-sample worst case)."""
    if metric not in ("clean", "robust"):
        raise ValueError(f"unknown metric {metric!r} (clean, robust)")
    if not isinstance(data, dict) or not isinstance(data.get("seed"), int):
        raise ValueError(f"{where}: not a results.json record (no integer 'seed')")
    if metric == "clean":
        accuracy = _accuracy(data.get("clean"))
    else:
        attacks = data.get("robust") or []
        accuracy = _accuracy(data.get("worst_case"))
        if accuracy is None and len(attacks) == 1:
            accuracy = _accuracy(attacks[0])
    if accuracy is None:
        raise ValueError(f"{where}: no {metric} accuracy recorded")
    per_image, _ = parse_record(data)
    bits = per_image.bits(metric) if per_image is not None else None
    if bits is None:
        return SeedRecord(data["seed"], accuracy)
    return SeedRecord(data["seed"], accuracy, per_image.n, per_image.items, bits)


def load_record(path: Union[str, os.PathLike], metric: str = "clean") -> SeedRecord:
    """One run's SeedRecord from its results.json (or the run folder holding it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable results.json ({exc})") from None
    return record_from_json(data, metric, path)


def load_records(paths: Iterable[Union[str, os.PathLike]], metric: str = "clean") -> List[SeedRecord]:
    """SeedRecords of several seeds of one method on one test set (one results.json or run folder per seed)."""
    return [load_record(p, metric) for p in paths]


def records_of(runs: Iterable, metric: str) -> List[SeedRecord]:
    """SeedRecords of loaded ``RunResult``s (``promptengine.reporting.results``) that have a value for ``metric``."""
    out = []
    for run in runs:
        value = run.value(metric)
        if value is None:
            continue
        bits = run.per_image.bits(metric) if run.per_image is not None else None
        if bits is None:
            out.append(SeedRecord(run.seed, value))
        else:
            out.append(SeedRecord(run.seed, value, run.per_image.n, run.per_image.items, bits))
    return out
