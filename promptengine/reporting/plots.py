"""PNG plots from the same selections and grids as the tables (matplotlib, optional).

- ``<protocol>_clean_vs_robust.png``: clean (x) vs robust (y) accuracy, one colour per method, one small marker per
  dataset and a large one for the Average. The entry is HM for base2new, the largest shot count for fewshot and the
  target accuracy for xd/dg.
- ``fewshot_accuracy_vs_shots.png``: accuracy vs shots per dataset (and Average); clean solid, robust dashed.
- ``<protocol>_accuracy_vs_eps.png``: accuracy vs attack budget for attacks of the same run family that differ only
  in eps (alpha may change with eps, as it is usually a fraction of it); the clean accuracy is drawn at eps = 0.
  Means over the seeds present. linf budgets are in units of 1/255.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import UserError
from .grid import AVERAGE, HM, Grid
from .selection import Selection
from .stats import mean

MAX_PANELS = 12


def require_matplotlib():
    """The matplotlib Figure class, or a one-line UserError when matplotlib is not installed."""
    try:
        import matplotlib  # optional dependency: plots only

        matplotlib.use("Agg")
        from matplotlib.figure import Figure  # optional dependency: plots only
    except ImportError as exc:
        raise UserError("--plots needs matplotlib, which is not installed: pip install matplotlib") from exc
    return Figure


def _panels(figure_cls, count: int, width: float = 4.0, height: float = 3.2):
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    fig = figure_cls(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _colors(rows: Sequence[str]) -> Dict[str, object]:
    from matplotlib import colormaps  # optional dependency: plots only

    cmap = colormaps["tab10"]
    return {row: cmap(i % 10) for i, row in enumerate(rows)}


def headline_column(grid: Grid) -> str:
    if HM in grid.columns:
        return HM
    return grid.columns[-1] if grid.protocol == "fewshot" else grid.columns[0]


def plot_clean_vs_robust(clean: Grid, robust: Grid, path: Path) -> Optional[Path]:
    Figure = require_matplotlib()
    column = headline_column(clean)
    colors = _colors(clean.rows)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    labelled = set()
    for row in clean.rows:
        for block in clean.blocks:
            c, r = clean.cell(block, row, column), robust.cell(block, row, column)
            if c.missing or r.missing:
                continue
            big = block == AVERAGE
            ax.scatter(
                c.mean,
                r.mean,
                color=colors[row],
                s=90 if big else 25,
                edgecolors="black" if big else "none",
                label=None if row in labelled else row,
                zorder=3 if big else 2,
            )
            labelled.add(row)
    if not labelled:
        return None
    ax.legend(fontsize=8)
    ax.set_xlabel(f"clean accuracy (%), {column}")
    ax.set_ylabel(f"robust accuracy (%), {column}")
    ax.set_title(f"{clean.protocol}: clean vs robust (large marker: Average)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    return path


def plot_accuracy_vs_shots(clean: Grid, robust: Optional[Grid], path: Path) -> Optional[Path]:
    Figure = require_matplotlib()
    colors = _colors(clean.rows)
    blocks = clean.blocks[:MAX_PANELS]
    fig, axes = _panels(Figure, len(blocks))
    xs = list(range(len(clean.columns)))
    for ax, block in zip(axes, blocks):
        for row in clean.rows:
            for grid, style in ((clean, "o-"), (robust, "s--")):
                if grid is None:
                    continue
                points = [(x, grid.cell(block, row, col).mean) for x, col in zip(xs, grid.columns)]
                points = [(x, y) for x, y in points if y is not None]
                if points:
                    label = f"{row} ({grid.metric})"
                    ax.plot(*zip(*points), style, color=colors[row], label=label, markersize=4)
        ax.set_xticks(xs, [c.split()[0] for c in clean.columns])
        ax.set_title(block, fontsize=10)
        ax.set_xlabel("shots per class")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=120)
    return path


def _family(attack: dict) -> Tuple[str, str]:
    """(key, label) of an attack without its budget: eps and alpha removed."""
    rest = {k: v for k, v in attack.items() if k not in ("eps", "alpha")}
    key = json.dumps(rest, sort_keys=True, default=str)
    label = f"{rest.get('method', 'attack')}{rest.get('steps', '')}"
    if rest.get("norm"):
        label += f" {rest['norm']}"
    if rest.get("loss") not in (None, "ce"):
        label += f" {rest['loss']}"
    return key, label


def eps_curves(sel: Selection) -> Dict[Tuple[str, str], Dict[Tuple[str, str], Dict[float, float]]]:
    """(block, column) -> (method, family label) -> {eps: mean accuracy over seeds}, eps = 0 being clean.

    Only families evaluated at two or more budgets are kept; linf budgets are in 1/255 units.
    """
    budgets: Dict[Tuple[str, str, str, str], Dict[float, List[float]]] = defaultdict(lambda: defaultdict(list))
    clean: Dict[Tuple[str, str, str], List[float]] = defaultdict(list)
    labels: Dict[str, str] = {}
    for (block, row, column), seeds in sel.runs.items():
        for run in seeds.values():
            if run.clean is not None:
                clean[(block, column, row)].append(run.clean)
            for attack in run.robust:
                eps = attack.attack.get("eps")
                if not isinstance(eps, (int, float)):
                    continue
                key, label = _family(attack.attack)
                labels[key] = label
                scale = 255.0 if attack.attack.get("norm", "linf") == "linf" else 1.0
                budgets[(block, column, row, key)][round(eps * scale, 2)].append(attack.accuracy)
    out: Dict[Tuple[str, str], Dict[Tuple[str, str], Dict[float, float]]] = defaultdict(dict)
    for (block, column, row, key), by_eps in budgets.items():
        if len(by_eps) < 2:
            continue
        points = {e: mean(v) for e, v in by_eps.items()}
        if clean[(block, column, row)]:
            points[0.0] = mean(clean[(block, column, row)])
        out[(block, column)][(row, labels[key])] = dict(sorted(points.items()))
    order = {b: i for i, b in enumerate(sel.blocks)}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0][0], 0), kv[0][1])))


def plot_accuracy_vs_eps(sel: Selection, path: Path) -> Optional[Path]:
    curves = eps_curves(sel)
    if not curves:
        return None
    Figure = require_matplotlib()
    colors = _colors(sel.rows)
    panels = list(curves.items())[:MAX_PANELS]
    fig, axes = _panels(Figure, len(panels))
    styles = ["o-", "s--", "^:", "d-."]
    for ax, ((block, column), lines) in zip(axes, panels):
        families = sorted({fam for _, fam in lines})
        for (row, fam), points in sorted(lines.items()):
            ax.plot(
                list(points),
                list(points.values()),
                styles[families.index(fam) % len(styles)],
                color=colors[row],
                label=f"{row}, {fam}",
                markersize=4,
            )
        title = block if len(sel.columns) == 1 else f"{block} · {column}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("eps (x 1/255 for linf; 0 = clean)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    return path


def write_plots(selections: Sequence[Selection], grids: Dict[str, List[Grid]], out_dir: Path) -> List[Path]:
    """Every plot the data supports, as PNG files in ``out_dir``; returns the written paths."""
    require_matplotlib()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: List[Optional[Path]] = []
    for sel in selections:
        by_metric = {g.metric: g for g in grids[sel.protocol]}
        clean, robust = by_metric["clean"], by_metric.get("robust")
        if robust is not None:
            written.append(plot_clean_vs_robust(clean, robust, out_dir / f"{sel.protocol}_clean_vs_robust.png"))
        if sel.protocol == "fewshot":
            written.append(plot_accuracy_vs_shots(clean, robust, out_dir / "fewshot_accuracy_vs_shots.png"))
        written.append(plot_accuracy_vs_eps(sel, out_dir / f"{sel.protocol}_accuracy_vs_eps.png"))
    return [p for p in written if p is not None]
