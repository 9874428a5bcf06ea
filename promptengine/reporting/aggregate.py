"""From run records to comparison grids: per-protocol run selection, seed statistics, HM, averages, best marks.

Conventions (documented in docs/COMPARE.md, tested in tests/test_reporting.py and tests/test_intervals.py):

- A cell is the mean over seeds, with its 95% interval over seeds and test images (``intervals``,
  ``significance``); the population standard deviation (ddof=0, as CoOp's parser) is kept in the JSON output. A cell
  with fewer seeds than expected keeps its value and is marked with its n.
- base2new: Base comes from ``test_base`` when present, else from the final test of ``train_base``; New from
  ``test_new``. ``HM = 2*B*N/(B+N)`` of the seed-averaged Base and New (the CoCoOp/MaPLe convention, not the mean of
  per-seed HMs).
- Robust = each run's per-sample worst case over its attacks (``worst_case`` in results.json).
- Average = unweighted mean over datasets of the per-dataset means; its HM is the HM of the averaged Base and
  New. An average with a missing dataset is missing, unless partial averages are asked for: then it is the mean
  over the datasets present, marked ``[k/N]`` and never marked best.
- Best = highest entry per dataset and column among at least two methods, marked only when the paired 95% interval
  of its difference to the runner-up lies above zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .intervals import DEFAULT_DRAWS, Expr
from .results import PROTOCOLS, RunResult, shots_label
from .stats import harmonic_mean, mean, pstd

AVERAGE = "Average"
HM = "HM"
BASE, NEW = "Base", "New"
ACCURACY = "Accuracy"
METRICS = ("clean", "robust")
DEFAULT_LAYOUT = {"base2new": "wide", "fewshot": "long", "xd": "wide", "dg": "wide"}
TITLES = {
    "base2new": "Base-to-new generalization",
    "fewshot": "Few-shot learning",
    "xd": "Cross-dataset transfer",
    "dg": "Domain generalization",
}
MISSING_LIST_LIMIT = 12

CellKey = Tuple[str, str, str]  # (block, row, column)


@dataclass
class Cell:
    """One table entry. ``n`` is set for seed statistics and None for derived entries (HM, averages)."""

    mean: Optional[float] = None
    std: Optional[float] = None
    n: Optional[int] = None
    short: bool = False  # fewer seeds than expected (here or, for derived entries, in an input)
    partial: Optional[Tuple[int, int]] = None  # average over only k of N datasets
    best: bool = False
    low: Optional[float] = None  # 95% interval (None: none could be computed)
    high: Optional[float] = None
    interval: Optional[str] = None  # how: intervals.BOOTSTRAP, SEEDS or NONE

    @property
    def missing(self) -> bool:
        return self.mean is None


@dataclass
class Selection:
    """Which runs feed which cell of one protocol's grid, before any metric is chosen."""

    protocol: str
    blocks: List[str]
    average_blocks: List[str]
    rows: List[str]
    columns: List[str]
    runs: Dict[CellKey, Dict[int, RunResult]]
    expected_seeds: Tuple[int, ...]
    hm: bool = False
    notes: List[str] = field(default_factory=list)

    def records(self) -> Iterable[RunResult]:
        for seeds in self.runs.values():
            yield from seeds.values()

    def has_metric(self, metric: str) -> bool:
        return any(r.value(metric) is not None for r in self.records())


@dataclass
class Grid:
    """A finished table: blocks (datasets, then Average) x rows (methods) x columns (metrics or shots)."""

    protocol: str
    metric: str
    title: str
    blocks: List[str]
    rows: List[str]
    columns: List[str]
    cells: Dict[CellKey, Cell]
    footnotes: List[str]
    layout: str
    block_header: str = "Dataset"
    signed: bool = False  # entries are differences (the --pairwise view)
    exprs: Dict[CellKey, Expr] = field(default_factory=dict, repr=False)  # what each entry's interval is of

    def cell(self, block: str, row: str, column: str) -> Cell:
        return self.cells.get((block, row, column), Cell())


# ----------------------------------------------------------------------------------------------------------------
# Selection per protocol


def _ordered(names: Iterable[str], preferred: Optional[Sequence[str]]) -> List[str]:
    names = set(names)
    if preferred:
        return [n for n in preferred if n in names]
    return sorted(names)


MethodKey = Tuple[str, str, int, int]  # (trainer, config, shots, setting variant: 0 = the only one)


def _method_labels(keys: Iterable[MethodKey], trainers: Optional[Sequence[str]]) -> Dict[MethodKey, str]:
    """Row labels: the trainer, plus ``/CFG`` when the trainer has several configs, plus the shots when they vary,
    plus ``[setting k]`` when one folder holds results of several run identities."""
    keys = sorted(set(keys))
    configs = defaultdict(set)
    for trainer, config, _, _ in keys:
        configs[trainer].add(config)
    several_shots = len({shots for _, _, shots, _ in keys}) > 1
    labels = {}
    for trainer, config, shots, variant in keys:
        label = trainer if len(configs[trainer]) == 1 else f"{trainer}/{config}"
        if several_shots:
            label += f" ({shots_label(shots)}-shot)" if shots > 0 else " (all shots)"
        if variant:
            label += f" [setting {variant}]"
        labels[(trainer, config, shots, variant)] = label
    order = {t: i for i, t in enumerate(trainers or [])}

    def rank(key: MethodKey):
        trainer, config = key[0], key[1]
        return (order.get(f"{trainer}/{config}", order.get(trainer, len(order))), key)

    return {key: labels[key] for key in sorted(labels, key=rank)}


def _setting_variants(runs: Sequence[RunResult], base_key) -> Tuple[Dict[str, int], List[str]]:
    """Number the run settings (identity minus seed and data) of each method row that holds more than one, so
    results of different identities are never averaged into one cell; a warning names what differs."""
    from ..engine.identity import describe_difference, first_difference

    by_row: Dict[Tuple, Dict[str, Dict]] = defaultdict(dict)
    for run in runs:
        if run.setting is not None:
            by_row[base_key(run)][run.setting] = run.setting_identity
    variants: Dict[str, int] = {}
    warnings = []
    for row, settings in sorted(by_row.items()):
        if len(settings) < 2:
            continue
        ordered = sorted(settings)
        for i, fp in enumerate(ordered, 1):
            variants[fp] = i
        diff = first_difference(settings[ordered[0]], settings[ordered[1]])
        what = describe_difference(diff, "setting 1", "setting 2") if diff else "their identities"
        warnings.append(f"Warning: {row[0]}/{row[1]} holds results of {len(settings)} different run settings, shown "
                        f"as separate rows and never averaged ({what}).")
    return variants, warnings


def _disjoint_configs(protocol: str, runs: Sequence[RunResult]) -> Dict[str, List[str]]:
    """Trainers whose configs never fill the same cell, with those configs: one row each.

    Recipes pick a config per setting (CoOp few-shot: ``*_ep50`` for 1 shot, ``*_ep100`` for 2-4 shots, the
    200-epoch config for 8-16 shots; base2new: an ``*_ep50`` config on ImageNet only). Such configs are one method.
    """
    cover: Dict[str, Dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for run in runs:
        unit = (run.dataset, run.shots) if protocol in ("fewshot", "base2new") else (run.dataset, run.phase, run.shots)
        cover[run.trainer][run.config].add(unit)
    merged = {}
    for trainer, configs in cover.items():
        units = list(configs.values())
        if len(units) > 1 and sum(map(len, units)) == len(set().union(*units)):
            merged[trainer] = sorted(configs)
    return merged


def _matches(run: RunResult, trainers: Optional[Sequence[str]]) -> bool:
    return not trainers or run.trainer in trainers or f"{run.trainer}/{run.config}" in trainers


def _missing_notes(sel: Selection) -> List[str]:
    """Name the absent runs of every direct cell (``method · dataset · column: seeds ...``)."""
    missing = []
    expected = set(sel.expected_seeds)
    for block in sel.blocks:
        for row in sel.rows:
            for column in sel.columns:
                absent = sorted(expected - set(sel.runs.get((block, row, column), {})))
                if absent:
                    missing.append(f"{row} · {block} · {column}: seed {', '.join(map(str, absent))}")
    if not missing:
        return []
    shown = "; ".join(missing[:MISSING_LIST_LIMIT])
    more = f"; and {len(missing) - MISSING_LIST_LIMIT} more" if len(missing) > MISSING_LIST_LIMIT else ""
    return [f"Missing runs ({len(missing)} cells): {shown}{more}."]


def select(
    protocol: str,
    runs: Sequence[RunResult],
    trainers: Optional[Sequence[str]] = None,
    datasets: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
) -> Optional[Selection]:
    """The runs of ``protocol`` arranged into cells; None when the protocol has no runs after filtering.

    ``trainers`` filters and orders rows (a trainer name or ``TRAINER/CFG``), ``datasets`` filters and orders the
    evaluated datasets (xd/dg: the targets; sources are always kept), ``seeds`` sets the expected seeds (default:
    every seed seen in the protocol).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    chosen = [r for r in runs if r.protocol == protocol and _matches(r, trainers)]
    if seeds is not None:
        chosen = [r for r in chosen if r.seed in seeds]
    if datasets:
        keep_sources = protocol in ("xd", "dg")
        chosen = [r for r in chosen if r.dataset in datasets or (keep_sources and r.phase == "train")]
    if not chosen:
        return None

    shots_in_key = protocol != "fewshot"
    merged = _disjoint_configs(protocol, chosen)

    def base_key(run: RunResult) -> Tuple[str, str, int]:
        return (run.trainer, "" if run.trainer in merged else run.config, run.shots if shots_in_key else 0)

    variants, variant_warnings = _setting_variants(chosen, base_key)

    def method_key(run: RunResult) -> MethodKey:
        return (*base_key(run), variants.get(run.setting or "", 0))

    labels = _method_labels((method_key(r) for r in chosen), trainers)

    def label(run: RunResult) -> str:
        return labels[method_key(run)]

    cells: Dict[CellKey, Dict[int, RunResult]] = defaultdict(dict)
    notes: List[str] = [
        f"{trainer} combines the configs {', '.join(configs)}, which never share a cell." for trainer, configs in merged.items()
    ] + variant_warnings
    if protocol == "base2new":
        blocks = _ordered((r.dataset for r in chosen), datasets)
        columns, average_blocks = [BASE, NEW], list(blocks)
        from_train = 0
        for run in sorted(chosen, key=lambda r: r.phase != "test_base"):  # test_base first: it wins
            column = NEW if run.phase == "test_new" else BASE
            slot = cells[(run.dataset, label(run), column)]
            if run.seed not in slot:
                slot[run.seed] = run
                from_train += run.phase == "train_base"
        if from_train:
            notes.append(
                f"Base comes from test_base where present, else from the final test of train_base "
                f"({from_train} run(s) from train_base)."
            )
    elif protocol == "fewshot":
        blocks = _ordered((r.dataset for r in chosen), datasets)
        shot_values = sorted({r.shots for r in chosen}, key=lambda s: (s < 1, s))
        columns = [_shots_column(s) for s in shot_values]
        average_blocks = list(blocks)
        for run in chosen:
            cells[(run.dataset, label(run), _shots_column(run.shots))][run.seed] = run
    else:
        sources = sorted({r.dataset for r in chosen if r.phase == "train"})
        targets = _ordered((r.dataset for r in chosen if r.phase == "test"), datasets)
        blocks = [f"{s} (source)" for s in sources] + targets
        columns, average_blocks = [ACCURACY], targets
        for run in chosen:
            block = f"{run.dataset} (source)" if run.phase == "train" else run.dataset
            cells[(block, label(run), ACCURACY)][run.seed] = run
        if not targets:
            notes.append(f"No {protocol}/test runs yet: only the source accuracy is shown.")
    expected = tuple(sorted(seeds)) if seeds is not None else tuple(sorted({r.seed for r in chosen}))
    sel = Selection(
        protocol=protocol,
        blocks=blocks,
        average_blocks=average_blocks,
        rows=list(dict.fromkeys(labels.values())),
        columns=columns,
        runs=dict(cells),
        expected_seeds=expected,
        hm=protocol == "base2new",
        notes=notes,
    )
    sel.notes.extend(_missing_notes(sel))
    return sel


def _shots_column(shots: int) -> str:
    return "all shots" if shots < 1 else f"{shots} shot" + ("s" if shots > 1 else "")


# ----------------------------------------------------------------------------------------------------------------
# Cells


def seed_cell(values: Sequence[float], expected: int) -> Cell:
    if not values:
        return Cell()
    return Cell(mean=mean(values), std=pstd(values) if len(values) >= 2 else None, n=len(values), short=len(values) < expected)


def hm_cell(base: Cell, new: Cell) -> Cell:
    if base.missing or new.missing:
        return Cell()
    partial = None
    if base.partial or new.partial:
        parts = [c.partial for c in (base, new) if c.partial]
        partial = (min(k for k, _ in parts), parts[0][1])
    return Cell(mean=harmonic_mean(base.mean, new.mean), short=base.short or new.short, partial=partial)


def average_cell(cells: Sequence[Cell], allow_partial: bool) -> Cell:
    present = [c for c in cells if not c.missing]
    if not present or (len(present) < len(cells) and not allow_partial):
        return Cell()
    partial = (len(present), len(cells)) if len(present) < len(cells) else None
    return Cell(mean=mean([c.mean for c in present]), short=any(c.short for c in present), partial=partial)


def _attack_sets_note(sel: Selection) -> str:
    sets: Dict[Tuple[str, ...], set] = defaultdict(set)
    budgets: Dict[Tuple[str, ...], set] = defaultdict(set)
    for (_, row, _), seeds in sel.runs.items():
        for run in seeds.values():
            if run.worst_case is not None:
                sets[run.attack_names].add(row)
                budgets[run.attack_names].update(repr(a.attack.get("eps")) for a in run.robust)

    def describe(names: Tuple[str, ...]) -> str:
        mixed = " (mixes eps budgets)" if len(budgets[names]) > 1 else ""
        return f"{{{'; '.join(names)}}}{mixed}"

    if len(sets) == 1:
        return f"Robust = per-sample worst case over the attacks {describe(next(iter(sets)))} of each run."
    parts = [f"{describe(names)} for {', '.join(sorted(rows))}" for names, rows in sorted(sets.items())]
    return (
        "Robust = per-sample worst case over each run's attacks; the attack sets differ, so robust numbers are not "
        "directly comparable: " + " | ".join(parts) + "."
    )


def build_grid(sel: Selection, metric: str, partial_averages: bool = False, layout: Optional[str] = None,
               draws: int = DEFAULT_DRAWS, simulator=None, intervals: bool = True) -> Grid:
    """The ``clean`` or ``robust`` grid of a selection: seed cells, HM, the Average block, intervals and best marks.

    ``draws`` bootstrap draws (``simulator``: a ``bootstrap.Simulator`` shared with other grids of the selection);
    ``intervals=False`` leaves out intervals and best marks (the grid then only feeds the --pairwise view).
    """
    from . import significance
    from .bootstrap import Simulator

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    expected = len(sel.expected_seeds)
    columns = sel.columns + ([HM] if sel.hm else [])
    cells: Dict[CellKey, Cell] = {}
    for block in sel.blocks:
        for row in sel.rows:
            for column in sel.columns:
                seeds = sel.runs.get((block, row, column), {})
                values = [r.value(metric) for _, r in sorted(seeds.items()) if r.value(metric) is not None]
                cells[(block, row, column)] = seed_cell(values, expected)
            if sel.hm:
                cells[(block, row, HM)] = hm_cell(cells[(block, row, BASE)], cells[(block, row, NEW)])
    blocks = list(sel.blocks)
    if len(sel.average_blocks) >= 2:
        blocks.append(AVERAGE)
        for row in sel.rows:
            for column in sel.columns:
                inputs = [cells[(b, row, column)] for b in sel.average_blocks]
                cells[(AVERAGE, row, column)] = average_cell(inputs, partial_averages)
            if sel.hm:
                cells[(AVERAGE, row, HM)] = hm_cell(cells[(AVERAGE, row, BASE)], cells[(AVERAGE, row, NEW)])
    grid = Grid(
        protocol=sel.protocol,
        metric=metric,
        title=f"{TITLES[sel.protocol]} ({sel.protocol}): {metric} accuracy (%)",
        blocks=blocks,
        rows=list(sel.rows),
        columns=columns,
        cells=cells,
        footnotes=[],
        layout=layout or DEFAULT_LAYOUT[sel.protocol],
    )
    sim = simulator or Simulator(draws)
    grid.exprs = significance.cell_exprs(sel, metric, cells)
    undecided = 0
    if intervals:
        significance.attach_intervals(grid, sim)
        undecided = significance.mark_best(grid, sim)
    grid.footnotes = _footnotes(sel, grid, metric, partial_averages, sim.draws, undecided)
    return grid


def _footnotes(sel: Selection, grid: Grid, metric: str, partial_averages: bool, draws: int, undecided: int) -> List[str]:
    from .significance import interval_notes

    seeds = ", ".join(map(str, sel.expected_seeds))
    notes = [
        f"Mean over seeds {{{seeds}}} with its 95% interval [low, high]. "
        "(n=k): only k of the expected seeds found; †: computed from such an entry; —: missing."
    ]
    notes += interval_notes(grid, draws)
    if undecided:
        notes.append(f"No best mark in {undecided} dataset/column pair(s): the runner-up is within noise of the best "
                     "(the paired 95% interval of their difference includes zero).")
    if metric == "robust":
        notes.append(_attack_sets_note(sel))
    if sel.hm:
        notes.append("HM = 2·Base·New/(Base+New) of the seed-averaged Base and New (CoCoOp/MaPLe convention).")
    if AVERAGE in grid.blocks:
        what = "target datasets" if sel.protocol in ("xd", "dg") else "datasets"
        rule = (
            "[k/N]: only k of N datasets present (never marked best)"
            if partial_averages
            else "missing when any dataset is missing"
        )
        hm = "; its HM is the HM of the averaged Base and New" if sel.hm else ""
        notes.append(f"Average = unweighted mean of the per-dataset means over the {len(sel.average_blocks)} {what}{hm}; {rule}.")
    return notes + sel.notes


def build_grids(sel: Selection, partial_averages: bool = False, layout: Optional[str] = None,
                draws: int = DEFAULT_DRAWS, simulator=None, intervals: bool = True) -> List[Grid]:
    """Clean grid, plus the robust grid when any run of the selection was attacked (one shared simulator)."""
    from .bootstrap import Simulator

    sim = simulator or Simulator(draws)
    metrics = ["clean"] + (["robust"] if sel.has_metric("robust") else [])
    return [build_grid(sel, m, partial_averages, layout, simulator=sim, intervals=intervals) for m in metrics]
