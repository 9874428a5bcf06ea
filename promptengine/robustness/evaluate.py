"""Run every stage of a report on one part (one label set) and collect accuracies and per-sample vectors."""

from __future__ import annotations

import time
from typing import Any, Dict, List

import torch

from ..attacks.spec import fmt_255, from_255
from ..evaluation.imageset import ImageSetEvaluator
from ..evaluation.metrics import accuracy, per_class, worst_case
from .defense import evaluate_defense
from .settings import ReportSettings
from .stages import autoattack_part, pgd, usable_aa_attacks
from .subset import balanced_indices, load_subset
from .target import Part

WEAKEST = 10


def _curve(values, vectors: Dict[str, torch.Tensor], key: str) -> List[Dict[str, Any]]:
    return [{key: v, "accuracy": accuracy(vectors[str(v)])} for v in values]


def evaluate_part(part: Part, s: ReportSettings, headline: float, progress: bool = True) -> Dict[str, Any]:
    """Every stage on ``part``: curves, AutoAttack breakdown, transfer, Square, large eps, gradients, per class."""
    t0 = time.time()
    indices = balanced_indices(part.labels, s.images_per_class, s.max_images, s.seed)
    x, y, ids = load_subset(part.labels, part.fetch, indices)
    ev = ImageSetEvaluator(part.classifier, x, y, ids, module=part.module, device=part.device, batch_size=s.batch_size,
                   progress=progress)
    clean = ev.clean()
    out: Dict[str, Any] = {"n_images": len(indices), "n_classes": len(part.classnames), "headline_eps": headline,
                           "clean": accuracy(clean)}
    timings = {}

    def timed(name, fn):
        start = time.time()
        result = fn()
        timings[name] = round(time.time() - start, 2)
        return result

    # accuracy vs eps (eps 0 = clean), per norm
    curves = {}
    for norm, budgets in (("linf", s.eps), ("l2", s.l2_eps)):
        if not budgets:
            continue
        specs = {str(e): pgd(e, s.curve_steps, norm=norm, seed=s.seed) for e in budgets if e > 0}
        vectors = timed(f"eps_{norm}", lambda n=norm, sp=specs: ev.sweep(f"eps curve ({n})", sp))
        vectors.update({str(e): clean for e in budgets if e == 0})
        curves[norm] = _curve(budgets, vectors, "eps")
    out["eps_curve"] = curves
    out["eps_curve_steps"] = s.curve_steps

    # convergence at the headline eps: steps, then restarts
    steps = timed("steps", lambda: ev.sweep("steps", {str(n): pgd(headline, n, seed=s.seed) for n in s.steps}))
    out["steps_curve"] = _curve(s.steps, steps, "steps")
    restarts = timed("restarts", lambda: ev.sweep(
        "restarts", {str(r): pgd(headline, s.restart_steps, restarts=r, seed=s.seed) for r in s.restarts}))
    out["restarts_curve"] = _curve(s.restarts, restarts, "restarts")
    out["restart_steps"] = s.restart_steps
    pgd_worst = worst_case(list(steps.values()) + list(restarts.values()))
    out["pgd"] = accuracy(pgd_worst)

    # AutoAttack, one attack at a time (the per-attack breakdown), and its per-sample worst case
    names = usable_aa_attacks(len(part.classnames))
    aa = timed("autoattack", lambda: ev.sweep(
        "AutoAttack", {n: autoattack_part(n, headline, s.aa_iters, s.seed) for n in names}))
    out["autoattack"] = {n: accuracy(v) for n, v in aa.items()}
    out["autoattack_iters"] = s.aa_iters or 100
    aa_worst = worst_case(list(aa.values()))
    out["autoattack_worst"] = accuracy(aa_worst)
    out["square"] = out["autoattack"].get("square")

    # transfer from the frozen zero-shot CLIP
    if part.transfer_source is not None:
        spec = pgd(headline, s.transfer_steps, seed=s.seed)
        transfer = timed("transfer", lambda: ev.sweep("transfer", {"zero-shot": spec}, source=part.transfer_source))
        out["transfer"] = accuracy(transfer["zero-shot"])
        out["transfer_steps"] = s.transfer_steps
    else:
        transfer = {}
        out["transfer"] = None

    # very large eps, and input gradients at the clean point
    large = timed("large_eps", lambda: ev.sweep("large eps", {"large": pgd(s.large_eps, s.large_eps_steps,
                                                                              seed=s.seed)}))
    out["large_eps"] = {"eps": s.large_eps, "steps": s.large_eps_steps, "accuracy": accuracy(large["large"])}
    out["zero_gradient_fraction"] = timed("gradients", ev.zero_gradient_fraction)
    out["defense"], adaptive = timed("defense", lambda: evaluate_defense(ev, headline, s))  # None: no defense

    # per-sample worst case at the headline eps, and per class
    whitebox = worst_case([pgd_worst, aa_worst, *adaptive])
    everything = worst_case([whitebox, *transfer.values()])
    out["whitebox_worst"] = accuracy(whitebox)
    out["worst_case"] = accuracy(everything)
    out["per_class"] = per_class(part.classnames, y, clean, everything)
    out["weakest_classes"] = [c["class"] for c in sorted(out["per_class"], key=lambda c: (c["robust"], c["class"]))
                              ][:WEAKEST]
    out["timings_s"] = timings
    out["seconds"] = round(time.time() - t0, 1)
    out["headline_label"] = f"eps={fmt_255(from_255(headline))}/255 (linf)"
    return out
