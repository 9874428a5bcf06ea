"""Rendering grids as terminal text, Markdown, CSV, LaTeX (booktabs) or JSON.

Two layouts: ``wide`` has one row per method and one column per (dataset, column); ``long`` has one row per
(dataset, method) and one column per column. Each entry is its mean with its 95% interval, ``51.42 [49.8, 53.0]``.
Best entries are bold in Markdown/LaTeX and carry a ``*`` in terminal text and CSV.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Callable, List, Sequence

from tabulate import tabulate

from ..errors import UserError
from .grid import Cell, Grid
from .intervals import SEEDS

FORMATS = ("terminal", "markdown", "csv", "latex", "json")
LAYOUTS = ("wide", "long")
MISSING = "—"

_BEST_RULE = ("best per dataset and column, marked only where the paired 95% interval of its difference to the "
              "runner-up lies above zero")
_BEST_NOTE = {
    "terminal": f"*: {_BEST_RULE}.",
    "csv": f"*: {_BEST_RULE}.",
    "markdown": f"Bold: {_BEST_RULE}.",
    "latex": f"Bold: {_BEST_RULE}.",
}
_SEEDS_ONLY = {"latex": r"$^\ddagger$"}


def _number(value: float, signed: bool, digits: int) -> str:
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def cell_text(cell: Cell, fmt: str, signed: bool = False) -> str:
    """The displayed entry, e.g. ``51.42 [49.8, 53.0] (n=2)*`` (terminal) or ``\\textbf{51.42 [49.8, 53.0]}``
    (LaTeX): the mean with 2 decimals, its 95% interval with 1, ``‡`` when the interval is over seeds only."""
    if cell.missing:
        return "---" if fmt == "latex" else MISSING
    text = _number(cell.mean, signed, 2)
    if cell.low is not None and cell.high is not None:
        text += f" [{_number(cell.low, signed, 1)}, {_number(cell.high, signed, 1)}]"
        if cell.interval == SEEDS:
            text += _SEEDS_ONLY.get(fmt, "‡")
    if cell.short and cell.n is not None:
        text += f" (n={cell.n})"
    elif cell.short:
        text += r"$^\dagger$" if fmt == "latex" else "†"
    if cell.partial:
        text += f" [{cell.partial[0]}/{cell.partial[1]}]"
    if cell.best:
        if fmt == "markdown":
            text = f"**{text}**"
        elif fmt == "latex":
            text = rf"\textbf{{{text}}}"
        else:
            text += "*"
    return text


def _wide_header(grid: Grid) -> List[str]:
    header = ["Method"]
    for block in grid.blocks:
        header += [block] if len(grid.columns) == 1 else [f"{block} {c}" for c in grid.columns]
    return header


def table_rows(grid: Grid, fmt: str, layout: str, repeat_block: bool) -> List[List[str]]:
    """Header row plus body rows of display strings."""
    if layout == "wide":
        rows = [_wide_header(grid)]
        for row in grid.rows:
            rows.append([row] + [cell_text(grid.cell(b, row, c), fmt, grid.signed) for b in grid.blocks for c in grid.columns])
        return rows
    rows = [[grid.block_header, "Method"] + list(grid.columns)]
    for block in grid.blocks:
        for i, row in enumerate(grid.rows):
            label = block if (i == 0 or repeat_block) else ""
            rows.append([label, row] + [cell_text(grid.cell(block, row, c), fmt, grid.signed) for c in grid.columns])
    return rows


def _tabulate(rows: List[List[str]], tablefmt: str) -> str:
    return tabulate(rows[1:], headers=rows[0], tablefmt=tablefmt, disable_numparse=True, stralign="left")


def _notes(grid: Grid, fmt: str) -> List[str]:
    return list(grid.footnotes) + ([] if grid.signed else [_BEST_NOTE[fmt]])


def render_terminal(grid: Grid, layout: str) -> str:
    body = _tabulate(table_rows(grid, "terminal", layout, repeat_block=False), "simple")
    notes = "\n".join(f"  {n}" for n in _notes(grid, "terminal"))
    return f"== {grid.title} ==\n{body}\n{notes}\n"


def render_markdown(grid: Grid, layout: str) -> str:
    rows = table_rows(grid, "markdown", layout, repeat_block=False)
    rows = [[c.replace("|", r"\|") for c in row] for row in rows]
    body = _tabulate(rows, "github")
    notes = "\n".join(f"- {n}" for n in _notes(grid, "markdown"))
    return f"### {grid.title}\n\n{body}\n\n{notes}\n"


def render_csv(grid: Grid, layout: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"# {grid.title}"])
    writer.writerows(table_rows(grid, "csv", layout, repeat_block=True))
    for note in _notes(grid, "csv"):
        writer.writerow([f"# {note}"])
    return out.getvalue()


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def render_latex(grid: Grid, layout: str) -> str:
    """A booktabs tabular; wide grids with several columns get a two-level header (``\\multicolumn``)."""
    lines = [f"% {grid.title}", r"% needs \usepackage{booktabs}"]
    cols = grid.columns
    if layout == "wide":
        ncols = len(grid.blocks) * len(cols)
        lines.append(r"\begin{tabular}{l" + "c" * ncols + "}")
        lines.append(r"\toprule")
        if len(cols) == 1:
            lines.append(" & ".join(["Method"] + [latex_escape(b) for b in grid.blocks]) + r" \\")
        else:
            top = ["Method"] + [rf"\multicolumn{{{len(cols)}}}{{c}}{{{latex_escape(b)}}}" for b in grid.blocks]
            lines.append(" & ".join(top) + r" \\")
            rules = [rf"\cmidrule(lr){{{2 + i * len(cols)}-{1 + (i + 1) * len(cols)}}}" for i in range(len(grid.blocks))]
            lines.append(" ".join(rules))
            lines.append(" & ".join([""] + [latex_escape(c) for _ in grid.blocks for c in cols]) + r" \\")
        lines.append(r"\midrule")
        for row in grid.rows:
            entries = [cell_text(grid.cell(b, row, c), "latex", grid.signed) for b in grid.blocks for c in cols]
            lines.append(" & ".join([latex_escape(row)] + entries) + r" \\")
    else:
        lines.append(r"\begin{tabular}{ll" + "c" * len(cols) + "}")
        lines.append(r"\toprule")
        header = [latex_escape(grid.block_header), "Method"] + [latex_escape(c) for c in cols]
        lines.append(" & ".join(header) + r" \\")
        for block in grid.blocks:
            lines.append(r"\midrule")
            for i, row in enumerate(grid.rows):
                entries = [cell_text(grid.cell(block, row, c), "latex", grid.signed) for c in cols]
                lines.append(" & ".join([latex_escape(block) if i == 0 else "", latex_escape(row)] + entries) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {n}" for n in _notes(grid, "latex")]
    return "\n".join(lines) + "\n"


def grid_to_dict(grid: Grid) -> dict:
    cells = []
    for block in grid.blocks:
        for row in grid.rows:
            for column in grid.columns:
                c = grid.cell(block, row, column)
                cells.append(
                    {
                        "block": block,
                        "row": row,
                        "column": column,
                        "mean": c.mean,
                        "std": c.std,
                        "low": c.low,
                        "high": c.high,
                        "interval": c.interval,
                        "n": c.n,
                        "short": c.short,
                        "partial": list(c.partial) if c.partial else None,
                        "best": c.best,
                    }
                )
    return {
        "protocol": grid.protocol,
        "metric": grid.metric,
        "title": grid.title,
        "difference": grid.signed,
        "blocks": grid.blocks,
        "rows": grid.rows,
        "columns": grid.columns,
        "cells": cells,
        "footnotes": grid.footnotes,
    }


_RENDERERS: dict[str, Callable[[Grid, str], str]] = {
    "terminal": render_terminal,
    "markdown": render_markdown,
    "csv": render_csv,
    "latex": render_latex,
}


def render(grids: Sequence[Grid], fmt: str = "terminal", layout: str | None = None) -> str:
    """All grids in one document; ``layout`` overrides each grid's default layout."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps({"tables": [grid_to_dict(g) for g in grids]}, indent=1, ensure_ascii=False) + "\n"
    return "\n".join(_RENDERERS[fmt](g, layout or g.layout) for g in grids)
