"""Intervals on comparison grids: a 95 % interval for every entry, "best" marks only where the best method is
distinguishable from the runner-up, and the ``--pairwise REF`` view (each method minus a reference method).

Every entry of a grid has an expression (``intervals.Runs`` for a seed cell, ``HM`` of two, ``Mean`` over datasets)
built next to its value in ``aggregate.build_grid``; one ``Simulator`` per selection shares the bootstrap draws of
each cell between its own entry, the HM and the averages, and pairs methods by seed number and test image.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from .bootstrap import Simulator
from .grid import AVERAGE, Cell, Grid
from .grid import HM as HM_COLUMN
from .intervals import BOOTSTRAP, HM, NONE, SEEDS, Diff, Expr, Mean, Runs, interval, records_of
from .selection import BASE, NEW, CellKey, Selection


def cell_exprs(sel: Selection, metric: str, cells: Dict[CellKey, Cell]) -> Dict[CellKey, Expr]:
    """The statistic behind each present entry, built like the entries themselves (seed cells, HM, averages)."""
    exprs: Dict[CellKey, Expr] = {}
    for block in sel.blocks:
        for row in sel.rows:
            for column in sel.columns:
                records = records_of(sel.runs.get((block, row, column), {}).values(), metric)
                if records:
                    exprs[(block, row, column)] = Runs(records)
    for block in (AVERAGE,) if (AVERAGE, sel.rows[0], sel.columns[0]) in cells else ():
        for row in sel.rows:
            for column in sel.columns:
                parts = [exprs[(b, row, column)] for b in sel.average_blocks if (b, row, column) in exprs]
                if not cells[(block, row, column)].missing:
                    exprs[(block, row, column)] = Mean(parts)
    if sel.hm:
        for block in sel.blocks + [AVERAGE]:
            for row in sel.rows:
                base, new = exprs.get((block, row, BASE)), exprs.get((block, row, NEW))
                if base is not None and new is not None:
                    exprs[(block, row, HM_COLUMN)] = HM(base, new)
    return exprs


def attach_intervals(grid: Grid, sim: Simulator) -> None:
    """Set low/high/interval of every entry that has an expression."""
    for key, expr in grid.exprs.items():
        cell = grid.cells.get(key)
        if cell is None or cell.missing:
            continue
        iv = interval(expr, simulator=sim)
        cell.low, cell.high, cell.interval = iv.low, iv.high, iv.method


def mark_best(grid: Grid, sim: Simulator) -> int:
    """Mark the highest entry per (block, column) among at least two full entries when the paired 95 % interval of
    its difference to the runner-up lies above zero; returns the number of such columns left unmarked."""
    undecided = 0
    for block in grid.blocks:
        for column in grid.columns:
            keys = [(block, row, column) for row in grid.rows]
            rivals = [k for k in keys if k in grid.exprs and not grid.cell(*k).missing and grid.cell(*k).partial is None]
            if len(rivals) < 2:
                continue
            rivals.sort(key=lambda k: grid.cells[k].mean, reverse=True)
            best, second = rivals[0], rivals[1]
            if round(grid.cells[best].mean, 2) > round(grid.cells[second].mean, 2) and interval(
                Diff(grid.exprs[best], grid.exprs[second]), simulator=sim
            ).above_zero:
                grid.cells[best].best = True
            else:
                undecided += 1
    return undecided


def interval_notes(grid: Grid, draws: int) -> List[str]:
    """What the brackets are, and which entries fell back to seeds only."""
    kinds = {c.interval for c in grid.cells.values() if not c.missing}
    notes = []
    if BOOTSTRAP in kinds:
        one_seed = any(c.n == 1 for c in grid.cells.values() if c.interval == BOOTSTRAP)
        notes.append(
            f"[low, high]: 95% interval, hierarchical percentile bootstrap over seeds and test images ({draws} draws; "
            "the same images for every seed and method)"
            + ("; with one seed it covers test-image sampling only" if one_seed else "")
            + "."
        )
    if SEEDS in kinds:
        notes.append(
            "‡: no per-image records in these results, so the interval is over seeds only (normal, jackknife standard "
            "error; test-image noise not included)."
        )
    if NONE in kinds:
        notes.append("No interval: one seed and no per-image records.")
    return notes


def pairwise_grid(grid: Grid, ref: str, sim: Simulator, heading: str) -> Optional[Grid]:
    """Each other method minus ``ref`` per entry, with the paired 95 % interval; None when ``ref`` is not a row.
    ``heading``: the protocol's title (``aggregate.TITLES``)."""
    if ref not in grid.rows:
        return None
    cells: Dict[CellKey, Cell] = {}
    exprs: Dict[CellKey, Expr] = {}
    rows = [r for r in grid.rows if r != ref]
    for block in grid.blocks:
        for column in grid.columns:
            theirs = grid.cell(block, ref, column)
            for row in rows:
                key, ref_key = (block, row, column), (block, ref, column)
                ours = grid.cell(block, row, column)
                if key not in grid.exprs or ref_key not in grid.exprs or ours.missing or theirs.missing:
                    continue
                if ours.partial or theirs.partial:  # averages over different datasets are not comparable
                    continue
                exprs[key] = Diff(grid.exprs[key], grid.exprs[ref_key])
                iv = interval(exprs[key], simulator=sim)
                cells[key] = Cell(mean=iv.estimate, n=None, short=ours.short or theirs.short, low=iv.low,
                                  high=iv.high, interval=iv.method)
    title = f"{heading} ({grid.protocol}): {grid.metric} accuracy, difference to {ref} (points)"
    notes = [f"Entry = method minus {ref} in percentage points; [low, high] its paired 95% interval (the same seed "
             f"numbers and the same test images for both methods). An interval that excludes 0 is a difference "
             "distinguishable from noise at 95%."]
    if AVERAGE in grid.blocks:
        notes.append("Average (and its HM) compares the averages over the same datasets; partial averages are not "
                     "compared.")
    out = Grid(protocol=grid.protocol, metric=grid.metric, title=title, blocks=list(grid.blocks), rows=rows,
               columns=list(grid.columns), cells=cells, footnotes=[], layout=grid.layout, signed=True, exprs=exprs)
    out.footnotes = notes + [n for n in interval_notes(out, sim.draws) if not n.startswith("[low, high]")]
    return out
