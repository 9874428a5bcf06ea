"""The attacks of a report's stages, built from its budgets (/255 units).

Every adversarial example comes from ``promptengine.attacks.attack`` (PGD, AutoAttack and Square alike) and every
verdict from ``promptengine.evaluation`` (the evaluator used during training and at test time). PGD step size is
eps/4 (the toolbox's test default) everywhere.
"""

from __future__ import annotations

from typing import List

from ..attacks import AttackSpec, from_255
from ..attacks.autoattack import MIN_CLASSES

AA_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")  # the standard version's attacks, run one by one


def pgd(eps_255: float, steps: int, restarts: int = 1, norm: str = "linf", seed: int = 0) -> AttackSpec:
    eps = from_255(eps_255)
    return AttackSpec(method="pgd", norm=norm, eps=eps, alpha=eps / 4, steps=steps, restarts=restarts, seed=seed)


def autoattack_part(name: str, eps_255: float, iters: int, seed: int = 0) -> AttackSpec:
    return AttackSpec(method="autoattack", eps=from_255(eps_255), aa_version="custom", aa_attacks=(name,),
                      aa_iters=iters, seed=seed)


def usable_aa_attacks(n_classes: int) -> List[str]:
    return [a for a in AA_ATTACKS if n_classes >= MIN_CLASSES[a]]
