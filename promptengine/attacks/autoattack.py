"""AutoAttack through the maintained ``pyautoattack`` package (0.2.0), behind ``attack(..., spec)``.

pyautoattack is a re-packaging of Croce & Hein's AutoAttack with its own API (keyword-only constructor, custom
subsets need ``version='custom'``, ``run_standard_evaluation(x, y, batch_size=...)`` returns ``(x_adv, y_adv)``).
The library runs the attacks one after another on the samples still classified correctly, so ``x_adv`` holds, per
sample, the first successful attack's example (the per-sample worst case over the ensemble), and the clean image for
samples no attack fooled. Why this library: docs/ATTACKS.md.
"""

from __future__ import annotations

import logging

import torch

from ..errors import UserError
from .forward import logits_of
from .library import import_library
from .spec import AttackSpec

logger = logging.getLogger(__name__)

# Fewest classes each attack needs: DLR divides by z_(1) - z_(3); targeted DLR also reads z_(4).
MIN_CLASSES = {"apgd-ce": 2, "apgd-dlr": 3, "apgd-t": 4, "fab": 2, "fab-t": 2, "square": 2}
_NORMS = {"linf": "Linf", "l2": "L2"}
SQUARE_QUERIES_PER_ITER = 50  # pyautoattack's defaults: APGD 100 iterations, Square 5000 queries


def run_autoattack(forward, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, *, autocast=None) -> torch.Tensor:
    """AutoAttack (``spec.aa_version`` / ``spec.aa_attacks``) on one batch; returns ``x_adv`` (fp32)."""
    library = import_library()

    def model(inp: torch.Tensor) -> torch.Tensor:
        return logits_of(forward, inp, autocast)

    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    attacks = spec.aa_effective_attacks
    needy = [a for a in attacks if n_classes < MIN_CLASSES[a]]
    if needy:
        need = max(MIN_CLASSES[a] for a in needy)
        raise UserError(f"AutoAttack '{spec.label()}' runs {', '.join(needy)}, which needs >= {need} classes; the model "
                        f"has {n_classes}. Use a subset without them, e.g. 'aa:attacks=apgd-ce+fab,eps=...', "
                        f"or a PGD/CW attack")

    custom = spec.aa_version == "custom"
    aa = library.AutoAttack(model, attacks=list(attacks) if custom else None, device=x.device, eps=spec.eps,
                            norm=_NORMS[spec.norm], seed=spec.seed, version=spec.aa_version)
    # The targeted attacks take their targets from the top (n_target_classes + 1) classes; with fewer classes the
    # library would index past the end, so use every other class (upstream advice for small label sets).
    targets = min(9, n_classes - 1)
    for part, name in ((aa.apgd_targeted, "apgd-t"), (aa.fab, "fab-t")):
        if name in attacks and part.n_target_classes > targets:
            logger.info("AutoAttack %s: %d target classes instead of %d (the model has %d classes)", name, targets,
                        part.n_target_classes, n_classes)
            part.n_target_classes = targets
    if spec.aa_iters:
        _set_iterations(aa, spec.aa_iters)

    # The library reseeds the global RNG (torch.manual_seed) inside every attack; keep the caller's stream intact.
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=x.shape[0])
    return x_adv.detach().float()


def _set_iterations(aa, n_iter: int) -> None:
    """Override APGD / FAB iteration counts (and APGD's step-size checkpoints, which derive from them), and Square's
    query budget in the library's own ratio (100 iterations <-> 5000 queries)."""
    for apgd in (aa.apgd, aa.apgd_targeted):
        apgd.n_iter = apgd.n_iter_orig = n_iter
        apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
        apgd.n_iter_min = max(int(0.06 * n_iter), 1)
        apgd.size_decr = max(int(0.03 * n_iter), 1)
    aa.fab.n_iter = n_iter
    aa.square.n_queries = SQUARE_QUERIES_PER_ITER * n_iter

