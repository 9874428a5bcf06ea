"""Training objectives shared by several methods (TeCoA) and FAP's loss (its KL is the attack core's)."""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from promptengine.attacks.losses import kl_per_sample
from promptengine.evaluation.metrics import accuracy
from promptengine.prompting import AdversarialPromptTrainer


def fap_loss(y: torch.Tensor, logits_clean: torch.Tensor, logits_adv: torch.Tensor, f_clean: torch.Tensor,
             f_adv: torch.Tensor, lam: float, adv_term: str = "cos") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FAP: CE(clean) + lam * mean_i[w_i * KL_i(clean || adv)], w_i = cos(f_clean_i, f_adv_i) + 1 ('cos') or 1 ('kl').

    Returns (total, natural term, adversarial term); the clean branch is not detached (as FAP's code).
    """
    nat = F.cross_entropy(logits_clean.float(), y)
    kl = kl_per_sample(logits_clean, logits_adv)  # (B,)
    weight = (F.cosine_similarity(f_clean.float(), f_adv.float(), dim=1) + 1) if adv_term == "cos" else 1.0
    adv = (weight * kl).mean()
    return nat + lam * adv, nat, adv


class TeCoAObjective(AdversarialPromptTrainer):
    """Cross-entropy on PGD examples made against the current prompts (APT, AdvVP, AdvVLP, AdvMaPLe)."""

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        bundle = self.model.prompts()
        text = None if self.model.spec.conditional else self.model.text_features(bundle)  # once per step
        x_adv = self.attack_examples(x, y, bundle, text)
        logits_adv = self.model(x_adv, bundle, text)
        loss = F.cross_entropy(logits_adv.float(), y)
        return loss, {"loss": loss.item(), "adv_acc": accuracy(logits_adv.argmax(1) == y)}

    def attack_examples(self, x, y, bundle, text) -> torch.Tensor:
        """Hook: APT's 'constant' mode attacks the hand-crafted prompt instead."""
        return self.adversarial(x, y, bundle, text)
