"""One model on one fixed image set held in memory (the robustness report's images), in batches.

White-box robustness is judged exactly as during training and at test time (``robust.robust_correct``: right on
clean input and not fooled by the attack's own verdict). A transfer attack's verdict is its source model's, so its
examples are scored by this model's forward instead.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import torch
from tqdm import tqdm

from ..attacks import AttackSpec, attack
from ..attacks.forward import Forward
from .robust import robust_correct


class ImageSetEvaluator:
    """``classifier`` on images ``x`` in [0, 1], labels ``y`` and dataset indices ``ids``; verdicts are (N,) bool."""

    def __init__(self, classifier: Forward, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                 module: Optional[torch.nn.Module] = None, device: torch.device = torch.device("cpu"),
                 batch_size: int = 100, progress: bool = True) -> None:
        self.classifier, self.module, self.device = classifier, module, device
        self.x, self.y, self.ids = x, y, ids
        self.batch_size, self.progress = batch_size, progress
        self._clean_logits: Optional[List[torch.Tensor]] = None

    def _batches(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(x, y, ids, clean logits) per batch; the clean forward runs once per image set."""
        if self._clean_logits is None:
            self._clean_logits = []
            for start in range(0, self.x.shape[0], self.batch_size):
                with torch.no_grad():
                    x = self.x[start:start + self.batch_size].to(self.device)
                    self._clean_logits.append(self.classifier(x).float())
        for b, start in enumerate(range(0, self.x.shape[0], self.batch_size)):
            sl = slice(start, start + self.batch_size)
            yield self.x[sl].to(self.device), self.y[sl].to(self.device), self.ids[sl], self._clean_logits[b]

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier(x).float().argmax(1)

    def clean(self) -> torch.Tensor:
        """(N,) bool: clean correctness."""
        return torch.cat([(logits.argmax(1) == y).cpu() for _, y, _, logits in self._batches()])

    def robust(self, spec: AttackSpec, source: Optional[Forward] = None) -> torch.Tensor:
        """(N,) bool: robust to ``spec`` crafted on this model (white-box), or correct on the examples it crafts on
        ``source`` (transfer)."""
        out = []
        for x, y, ids, logits in self._batches():
            if source is None:
                out.append(robust_correct(self.classifier, x, y, spec, logits, module=self.module, sample_ids=ids).cpu())
            else:
                out.append((self._predict(attack(source, x, y, spec, sample_ids=ids)) == y).cpu())
        return torch.cat(out)

    def zero_gradient_fraction(self) -> float:
        """Fraction of images whose input gradient of the CE loss (at the clean point) is exactly zero."""
        zero = 0
        with torch.enable_grad():
            for x, y, _, _ in self._batches():
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
