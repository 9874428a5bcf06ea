"""A comparison table: its entries (``Cell``), the finished table (``Grid``) and the names of its derived entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .intervals import Expr
from .selection import CellKey

AVERAGE = "Average"  # the block of averages over datasets
HM = "HM"  # the harmonic mean of base and new


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
