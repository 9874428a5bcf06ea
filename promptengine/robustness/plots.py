"""The report's PNG plots (matplotlib, optional): one line or bar group per part (base / new / all)."""

from __future__ import annotations

import os
from typing import Any, Dict, List

from ..reporting.plots import require_matplotlib

COLORS = {"all": "tab:blue", "base": "tab:blue", "new": "tab:orange"}


def _save(fig, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=100)
    return path


def plot_eps(report: Dict[str, Any], out_dir: str) -> str:
    Figure = require_matplotlib()
    norms = list(next(iter(report["parts"].values()))["eps_curve"])
    fig = Figure(figsize=(4.2 * len(norms), 3.3), layout="constrained")
    axes = fig.subplots(1, len(norms), squeeze=False)[0]
    for ax, norm in zip(axes, norms):
        for name, r in report["parts"].items():
            pts = r["eps_curve"][norm]
            ax.plot([p["eps"] for p in pts], [p["accuracy"] for p in pts], "o-", color=COLORS.get(name), label=name)
        ax.set_xlabel(f"eps ({norm}, x 1/255; 0 = clean)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(f"accuracy vs eps, PGD-{r['eps_curve_steps']}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "eps_curve.png")


def plot_convergence(report: Dict[str, Any], out_dir: str) -> str:
    Figure = require_matplotlib()
    fig = Figure(figsize=(8.4, 3.3), layout="constrained")
    ax_steps, ax_restarts = fig.subplots(1, 2, sharey=True)
    for name, r in report["parts"].items():
        color = COLORS.get(name)
        ax_steps.plot([p["steps"] for p in r["steps_curve"]], [p["accuracy"] for p in r["steps_curve"]], "o-",
                      color=color, label=f"{name}: PGD")
        ax_steps.axhline(r["autoattack_worst"], color=color, ls="--", lw=1, label=f"{name}: AutoAttack")
        ax_restarts.plot([p["restarts"] for p in r["restarts_curve"]], [p["accuracy"] for p in r["restarts_curve"]],
                         "s-", color=color, label=name)
    ax_steps.set_xscale("log")
    ax_steps.set_xlabel("PGD steps (log)")
    ax_restarts.set_xticks([p["restarts"] for p in r["restarts_curve"]])
    ax_restarts.set_xlabel(f"restarts of PGD-{r['restart_steps']}")
    for ax in (ax_steps, ax_restarts):
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"convergence at eps {report['headline_eps']:g}/255", fontsize=10)
    return _save(fig, out_dir, "convergence.png")


def plot_attacks(report: Dict[str, Any], out_dir: str) -> str:
    Figure = require_matplotlib()
    parts = report["parts"]
    first = next(iter(parts.values()))
    labels = ["clean", "PGD", *[f"AA {a}" for a in first["autoattack"]], "AA worst", "transfer", "worst case"]

    def values(r):
        return [r["clean"], r["pgd"], *r["autoattack"].values(), r["autoattack_worst"], r.get("transfer"),
                r["worst_case"]]

    fig = Figure(figsize=(7.5, 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(parts)
    for i, (name, r) in enumerate(parts.items()):
        xs = [j + (i - (len(parts) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, [v if v is not None else 0 for v in values(r)], width, color=COLORS.get(name), label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"attacks at eps {report['headline_eps']:g}/255 (lower = stronger)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "attacks.png")


def plot_per_class(report: Dict[str, Any], out_dir: str) -> str:
    Figure = require_matplotlib()
    parts = report["parts"]
    fig = Figure(figsize=(7.5, 2.6 * len(parts)), layout="constrained")
    axes = fig.subplots(len(parts), 1, squeeze=False)[:, 0]
    for ax, (name, r) in zip(axes, parts.items()):
        rows = sorted(r["per_class"], key=lambda c: (c["robust"], c["class"]))
        xs = range(len(rows))
        ax.bar(xs, [c["clean"] for c in rows], color="lightgray", label="clean")
        ax.bar(xs, [c["robust"] for c in rows], color=COLORS.get(name), width=0.5, label="robust (worst case)")
        ax.set_xticks(list(xs), [c["class"] for c in rows], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{name} classes at eps {report['headline_eps']:g}/255, weakest first", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, out_dir, "per_class.png")


def write_plots(report: Dict[str, Any], out_dir: str) -> List[str]:
    return [fn(report, out_dir) for fn in (plot_eps, plot_convergence, plot_attacks, plot_per_class)]
