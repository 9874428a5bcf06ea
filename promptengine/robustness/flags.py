"""Gradient-masking checks on a part's results, after the common checklist of the adversarial-robustness literature
(Athalye et al. 2018, Carlini et al. 2019 "On evaluating adversarial robustness"): each check says what it saw.

A raised flag does not prove masking; it says the robust number must not be trusted until the cause is found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Sequence

from .settings import ReportSettings


@dataclass(frozen=True)
class Flag:
    check: str  # the property a trustworthy evaluation has; ``raised`` when it does not hold
    raised: bool
    evidence: str

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _rises(points: Sequence[Dict[str, Any]], key: str, tolerance: float) -> List[str]:
    """Where accuracy goes up by more than ``tolerance`` points from one point of a curve to the next."""
    out = []
    for a, b in zip(points, points[1:]):
        if b["accuracy"] > a["accuracy"] + tolerance:
            out.append(f"{a['accuracy']:.1f}% at {key} {a[key]:g} -> {b['accuracy']:.1f}% at {key} {b[key]:g}")
    return out


def masking_flags(r: Dict[str, Any], s: ReportSettings) -> List[Flag]:
    """Every check on one part's results ``r`` (from ``evaluate_part``), raised or not."""
    tol = max(s.tolerance, 100.0 / max(r["n_images"], 1))  # never finer than one image
    flags = []

    rises = [f"{norm}: {w}" for norm, pts in r["eps_curve"].items() for w in _rises(pts, "eps", tol)]
    rises += [f"steps: {w}" for w in _rises(r["steps_curve"], "steps", tol)]
    rises += [f"restarts: {w}" for w in _rises(r["restarts_curve"], "restarts", tol)]
    flags.append(Flag("accuracy falls as eps, steps and restarts grow", bool(rises),
                      "; ".join(rises) if rises else f"every curve is non-increasing (tolerance {tol:.1f} points)"))

    white = r["pgd"]
    stronger = []
    if r.get("transfer") is not None and r["transfer"] < white - tol:
        stronger.append(f"transfer from zero-shot CLIP {r['transfer']:.1f}%")
    if r.get("square") is not None and r["square"] < white - tol:
        stronger.append(f"Square (black-box) {r['square']:.1f}%")
    others = [f"transfer {r['transfer']:.1f}%" if r.get("transfer") is not None else "",
              f"Square {r['square']:.1f}%" if r.get("square") is not None else ""]
    flags.append(Flag("white-box PGD beats the black-box and transfer attacks", bool(stronger),
                      (", ".join(stronger) + f" < white-box PGD {white:.1f}%") if stronger else
                      f"white-box PGD {white:.1f}% <= {', '.join(o for o in others if o) or 'no other attack'} "
                      f"(+{tol:.1f})"))

    large = r["large_eps"]
    flags.append(Flag("accuracy is near 0 at a very large eps", large["accuracy"] > s.large_eps_max,
                      f"{large['accuracy']:.1f}% at eps {large['eps']:g}/255 (PGD-{large['steps']}); "
                      f"expected <= {s.large_eps_max:g}%"))

    frac = r["zero_gradient_fraction"]
    flags.append(Flag("input gradients are non-zero", frac > s.zero_grad_max,
                      f"{100 * frac:.1f}% of images have an exactly zero input gradient of the CE loss "
                      f"(threshold {100 * s.zero_grad_max:g}%)"))

    if r.get("defense") is not None:
        flags.append(adaptive_gap_flag(r["defense"], max(s.adaptive_gap, tol)))

    aa = r["autoattack_worst"]
    gap = white - aa
    flags.append(Flag("AutoAttack is close to PGD", gap > max(s.aa_gap, tol),
                      f"AutoAttack {aa:.1f}% vs PGD {white:.1f}% (gap {gap:.1f} points, threshold "
                      f"{max(s.aa_gap, tol):.1f})"))
    return flags


def adaptive_gap_flag(defense: Dict[str, Any], threshold: float) -> Flag:
    """Raised when the adaptive attacks (per-sample worst case) lower a test-time defense's robust accuracy by more
    than ``threshold`` points below the non-adaptive attack: its non-adaptive number came from masked gradients."""
    plain, adaptive = defense["non_adaptive"], defense["adaptive_worst"]
    gap = plain - adaptive
    rows = "; ".join(f"{row['attack']} {row['accuracy']:.1f}% (through {row['through']})" for row in defense["attacks"])
    return Flag("adaptive attacks are close to the non-adaptive one", gap > threshold,
                f"adaptive worst case {adaptive:.1f}% vs non-adaptive {plain:.1f}% (gap {gap:.1f} points, threshold "
                f"{threshold:.1f}): {rows}")
