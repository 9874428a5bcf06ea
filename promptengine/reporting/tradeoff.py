"""The clean-robust trade-off of base-to-new runs (``compare.py ROOT --plot tradeoff``).

Points come from an output tree: every method's runs as one point each, and every sweep point root (a folder holding
``sweep_point.json``, written by ``scripts/lib/sweep.sh``) as one point of its method's series (e.g. CAPT's lambda
curve). Each point is the mean over its seeds (error bars: population std over seeds; faint dots: each seed).
Base and New are the final test accuracies on base and new classes; HM = 2BN/(B+N) of the seed-averaged B and N
(the table's convention), its spread the std of the per-seed HMs. Robust = the run's per-sample worst case.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import UserError
from ..protocols.layout import TEST_BASE, TEST_NEW, TRAIN_BASE
from .plots import _colors, require_matplotlib
from .results import RunResult, load_results
from .stats import harmonic_mean, mean, pstd

POINT_FILE = "sweep_point.json"
PANELS = ("Base", "New", "HM")
PHASE_PANEL = {TEST_BASE: "Base", TRAIN_BASE: "Base", TEST_NEW: "New"}


@dataclass
class Point:
    """One setting of one method: per panel, per seed, (clean, robust)."""

    series: str  # e.g. "CAPT" or "CAPT lambda" (plus " · DATASET" when the tree holds several datasets)
    value: str  # "" for a method's single point, else the swept value
    dataset: str = ""
    seeds: Dict[str, Dict[int, Tuple[float, float]]] = field(default_factory=lambda: defaultdict(dict))

    def per_seed(self, panel: str) -> Dict[int, Tuple[float, float]]:
        if panel != "HM":
            return self.seeds[panel]
        base, new = self.seeds["Base"], self.seeds["New"]
        return {s: tuple(harmonic_mean(base[s][i], new[s][i]) for i in (0, 1)) for s in base if s in new}

    def summary(self, panel: str) -> Optional[Tuple[float, float, float, float]]:
        """(clean mean, robust mean, clean spread, robust spread) or None when the panel has no seed."""
        values = list(self.per_seed(panel).values())
        if not values:
            return None
        clean, robust = [v[0] for v in values], [v[1] for v in values]
        if panel == "HM":  # HM of the seed-averaged Base and New, as the tables
            b, n = self.summary("Base"), self.summary("New")
            return harmonic_mean(b[0], n[0]), harmonic_mean(b[1], n[1]), pstd(clean), pstd(robust)
        return mean(clean), mean(robust), pstd(clean), pstd(robust)


def _add(points: Dict[Tuple[str, str, str], Point], runs: List[RunResult], series: Optional[str], value: str) -> None:
    phases = {r.phase for r in runs}
    for run in runs:
        panel = PHASE_PANEL.get(run.phase)
        if panel is None or run.clean is None or run.worst_case is None:
            continue
        if run.phase == TRAIN_BASE and TEST_BASE in phases:
            continue  # the separate base evaluation wins, as in the tables
        name = series or (run.trainer if run.config in ("", "synth") else f"{run.trainer}/{run.config}")
        point = points.setdefault((name, value, run.dataset), Point(name, value, run.dataset))
        point.seeds[panel][run.seed] = (run.clean, run.worst_case)


def collect_points(root: Path) -> Tuple[List[Point], List[str]]:
    """Every base2new point under ``root`` (sweep points and plain method runs) and the loader's warnings."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; pass an output root")
    points: Dict[Tuple[str, str, str], Point] = {}
    sweep_roots = sorted(p.parent for p in root.rglob(POINT_FILE))
    for point_root in sweep_roots:
        try:
            meta = json.loads((point_root / POINT_FILE).read_text())
            series, value = f"{meta['method']} {meta['series']}", str(meta["value"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{point_root / POINT_FILE} is not a sweep point record ({exc}); rerun the sweep "
                            "or delete the file") from None
        runs = [r for r in load_results(point_root).runs if r.protocol == "base2new"]
        _add(points, runs, series, value)
    warnings: List[str] = []
    for folder in _plain_folders(root, set(sweep_roots)):
        report = load_results(folder)
        _add(points, [r for r in report.runs if r.protocol == "base2new"], None, "")
        warnings += report.warnings
    if not points:
        raise UserError(f"no base2new results.json with clean and robust accuracy under {root}; run "
                        "scripts/<method>/base2new.sh or scripts/<method>/sweep.sh first")
    if len({p.dataset for p in points.values()}) > 1:
        for p in points.values():
            p.series = f"{p.series} · {p.dataset}"
    return sorted(points.values(), key=lambda p: (p.series, _numeric(p.value))), warnings


def _plain_folders(folder: Path, sweep_roots: set) -> List[Path]:
    """The largest folders under ``folder`` that hold no sweep point root (each loaded on its own, so that a plain run
    and a sweep point with the same protocol path are not taken for copies of one run)."""
    if folder in sweep_roots:
        return []
    if not any(root == folder or folder in root.parents for root in sweep_roots):
        return [folder]
    return [f for child in sorted(folder.iterdir()) if child.is_dir() for f in _plain_folders(child, sweep_roots)]


def _numeric(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def plot_tradeoff(points: List[Point], path: Path) -> Path:
    """Three panels (Base, New, HM): clean (x) vs robust (y), one colour per series, a numeric series joined in
    order of its swept value and each point labelled with it."""
    Figure = require_matplotlib()
    series = list(dict.fromkeys(p.series for p in points))
    colors = _colors(series)
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, panel in zip(axes, PANELS):
        for name in series:
            mine = [(p, p.summary(panel)) for p in points if p.series == name]
            mine = [(p, s) for p, s in mine if s is not None]
            if not mine:
                continue
            color = colors[name]
            for p, _ in mine:
                seeds = list(p.per_seed(panel).values())
                ax.scatter([v[0] for v in seeds], [v[1] for v in seeds], color=color, s=8, alpha=0.3, zorder=1)
            xs, ys = [s[0] for _, s in mine], [s[1] for _, s in mine]
            ax.errorbar(xs, ys, xerr=[s[2] for _, s in mine], yerr=[s[3] for _, s in mine], fmt="o-" if len(mine) > 1
                        and all(_numeric(p.value)[0] == 0 for p, _ in mine) else "o", color=color, ms=5,
                        capsize=2, label=name, zorder=3)
            for (p, s) in mine:
                if p.value:
                    ax.annotate(p.value, (s[0], s[1]), textcoords="offset points", xytext=(4, 3), fontsize=7,
                                color=color)
        ax.set_title(f"{panel}: clean vs robust (mean ± std over seeds)", fontsize=10)
        ax.set_xlabel("clean accuracy (%)")
        ax.set_ylabel("robust accuracy (%), worst case over attacks")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
