"""Result aggregation: Dassl log parsing, results.json loading, comparison grids, table rendering and plots.

- ``logs``: which ``log.txt``/``log.txt-<timestamp>`` of a run counts and its clean/robust metric lines
  (``tools/parse_test_res.py``);
- ``results``: ``results.json`` records placed in the protocol output layout;
- ``selection``: which runs feed which table entry, per protocol; ``aggregate``: means over seeds, HM, averages
  over datasets;
- ``perimage``: the per-image correctness record of results.json; ``bootstrap`` and ``intervals``: 95 % intervals
  over seeds and test images (paired comparisons, seeds-only fallback); ``significance``: intervals and best marks
  on grids, the --pairwise view;
- ``tables``: terminal, Markdown, CSV, LaTeX and JSON tables; ``plots``: PNG plots (optional matplotlib);
- ``cli``: the two command lines (``tools/compare.py``).

Nothing here imports torch, so the tools start in a fraction of a second.
"""

from .aggregate import build_grid, build_grids
from .grid import Cell, Grid
from .logs import LogResult, list_logs, parse_log, read_run
from .results import AttackResult, LoadReport, RunResult, load_results
from .selection import Selection, select
from .tables import render

__all__ = [
    "AttackResult",
    "Cell",
    "Grid",
    "LoadReport",
    "LogResult",
    "RunResult",
    "Selection",
    "build_grid",
    "build_grids",
    "list_logs",
    "load_results",
    "parse_log",
    "read_run",
    "render",
    "select",
]
