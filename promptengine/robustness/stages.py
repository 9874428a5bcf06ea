"""The measurements of a report, each a per-sample correctness vector on the same images.

Every adversarial example comes from ``promptengine.attacks.attack`` (PGD, AutoAttack and Square alike); this module
only batches, predicts and records. PGD step size is eps/4 (the toolbox's test default) everywhere.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from tqdm import tqdm

from ..attacks import AttackSpec, attack, from_255
from ..attacks.autoattack import MIN_CLASSES
from .target import Forward

AA_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")  # the standard version's attacks, run one by one


def pgd(eps_255: float, steps: int, restarts: int = 1, norm: str = "linf", seed: int = 0) -> AttackSpec:
    eps = from_255(eps_255)
    return AttackSpec(method="pgd", norm=norm, eps=eps, alpha=eps / 4, steps=steps, restarts=restarts, seed=seed)


def autoattack_part(name: str, eps_255: float, iters: int, seed: int = 0) -> AttackSpec:
    return AttackSpec(method="autoattack", eps=from_255(eps_255), aa_version="custom", aa_attacks=(name,),
                      aa_iters=iters, seed=seed)


def usable_aa_attacks(n_classes: int) -> list:
    return [a for a in AA_ATTACKS if n_classes >= MIN_CLASSES[a]]


class Evaluator:
    """One model on one fixed image set (x in [0, 1], labels y, dataset indices ids), in batches."""

    def __init__(self, classifier: Forward, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                 module: Optional[torch.nn.Module] = None, device: torch.device = torch.device("cpu"),
                 batch_size: int = 100, progress: bool = True) -> None:
        self.classifier, self.module, self.device = classifier, module, device
        self.x, self.y, self.ids = x, y, ids
        self.batch_size, self.progress = batch_size, progress

    def _batches(self):
        for start in range(0, self.x.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            yield self.x[sl].to(self.device), self.y[sl].to(self.device), self.ids[sl]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier(x.to(self.device)).float().argmax(1).cpu()

    def clean(self) -> torch.Tensor:
        """(N,) bool: clean correctness."""
        return torch.cat([self.predict(x) == y.cpu() for x, y, _ in self._batches()])

    def robust(self, spec: AttackSpec, source: Optional[Forward] = None) -> torch.Tensor:
        """(N,) bool: correct on the examples ``spec`` crafts on ``source`` (default: this model, white-box)."""
        out = []
        for x, y, ids in self._batches():
            if source is None:
                x_adv = attack(self.classifier, x, y, spec, module=self.module, sample_ids=ids)
            else:  # transfer: crafted on the source, scored on this model
                x_adv = attack(source, x, y, spec, sample_ids=ids)
            out.append(self.predict(x_adv) == y.cpu())
        return torch.cat(out)

    def zero_gradient_fraction(self) -> float:
        """Fraction of images whose input gradient of the CE loss (at the clean point) is exactly zero."""
        zero = 0
        with torch.enable_grad():
            for x, y, _ in self._batches():
                x = x.clone().requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(self.classifier(x).float(), y, reduction="sum")
                grad = torch.autograd.grad(loss, x)[0]  # (B, C, H, W)
                zero += int((grad.flatten(1).abs().amax(dim=1) == 0).sum())
        return zero / max(self.x.shape[0], 1)

    def sweep(self, stage: str, specs: Dict[str, AttackSpec], source: Optional[Forward] = None
              ) -> Dict[str, torch.Tensor]:
        """``robust`` for each named spec, with one progress bar for the stage."""
        out = {}
        bar = tqdm(specs.items(), desc=stage, disable=not self.progress, leave=False, dynamic_ncols=True)
        for name, spec in bar:
            bar.set_postfix_str(name)
            out[name] = self.robust(spec, source)
        bar.close()
        return out


def accuracy(correct: torch.Tensor) -> float:
    return 100.0 * correct.float().mean().item() if correct.numel() else float("nan")


def worst_case(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample worst case: correct only if correct under every attack."""
    out = torch.ones_like(vectors[0])
    for v in vectors:
        out &= v
    return out
