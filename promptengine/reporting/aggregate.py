"""From run records to comparison grids: seed statistics, HM, averages, intervals, best marks (which runs feed
which entry is ``selection``).

Conventions (documented in docs/EXPERIMENTS.md, tested in tests/test_reporting.py and tests/test_intervals.py):

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
from typing import Dict, List, Optional, Sequence, Tuple

from ..protocols.layout import FEWSHOT, SPECS, TARGET_PROTOCOLS, ZSROBUST
from . import significance
from .bootstrap import Simulator
from .grid import AVERAGE, HM, Cell, Grid
from .intervals import DEFAULT_DRAWS
from .results import LOOSE
from .selection import BASE, NEW, CellKey, Selection
from .selection import select as select  # re-exported: aggregate.select stays the entry point of the tables
from .stats import harmonic_mean, mean, pstd

METRICS = ("clean", "robust")
LONG_TABLES = (FEWSHOT.name,)  # one column per shot count: a long table by default; the others are wide
TITLES = {**{name: spec.title[:1].upper() + spec.title[1:] for name, spec in SPECS.items()},
          LOOSE: "Runs outside the protocol layout"}


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
    by_column: Dict[str, set] = defaultdict(set)
    for (_, row, column), seeds in sel.runs.items():
        for run in seeds.values():
            if run.worst_case is not None:
                sets[run.attack_names].add(row)
                by_column[column].add(run.attack_names)
                budgets[run.attack_names].update(repr(a.attack.get("eps")) for a in run.robust)

    def describe(names: Tuple[str, ...]) -> str:
        mixed = " (mixes eps budgets)" if len(budgets[names]) > 1 else ""
        return f"{{{'; '.join(names)}}}{mixed}"

    if len(sets) == 1:
        return f"Robust = per-sample worst case over the attacks {describe(next(iter(sets)))} of each run."
    if all(len(names) == 1 for names in by_column.values()):  # one attack set per column (zsrobust's budgets)
        parts = [f"{column}: {describe(next(iter(by_column[column])))}" for column in sel.columns if column in by_column]
        return "Robust = per-sample worst case over the attacks of each run in the column's set: " + " | ".join(parts) + "."
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
        layout=layout or ("long" if sel.protocol in LONG_TABLES or (  # zsrobust: one column per budget
            sel.protocol == ZSROBUST.name and len(sel.columns) > 1) else "wide"),
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
    seeds = ", ".join(map(str, sel.expected_seeds))
    notes = [
        f"Mean over seeds {{{seeds}}} with its 95% interval [low, high]. "
        "(n=k): only k of the expected seeds found; †: computed from such an entry; —: missing."
    ]
    notes += significance.interval_notes(grid, draws)
    if undecided:
        notes.append(f"No best mark in {undecided} dataset/column pair(s): the runner-up is within noise of the best "
                     "(the paired 95% interval of their difference includes zero).")
    if metric == "robust":
        notes.append(_attack_sets_note(sel))
    if sel.hm:
        notes.append("HM = 2·Base·New/(Base+New) of the seed-averaged Base and New (CoCoOp/MaPLe convention).")
    if AVERAGE in grid.blocks:
        what = "target datasets" if sel.protocol in TARGET_PROTOCOLS else "datasets"
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
    sim = simulator or Simulator(draws)
    metrics = ["clean"] + (["robust"] if sel.has_metric("robust") else [])
    return [build_grid(sel, m, partial_averages, layout, simulator=sim, intervals=intervals) for m in metrics]
