"""CAPT's objective as pure functions (unit-tested on hand-computed examples).

L = CE(clean, y) + lambda * [(1 - a) * L_cons-train + a * L_cons-frz]
L_cons-train = KL between the prompted model's clean and adversarial predictions,
L_cons-frz   = KL between the frozen CLIP's clean zero-shot prediction and the prompted adversarial one,
a = alpha_cons: adaptive (per sample or per batch, detached by default) or fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F

from promptengine.attacks.losses import kl_per_sample
from promptengine.distributed import global_mean

ALPHA_MODES = ("confidence", "loss_ratio", "agreement", "fixed")
KL_DIRECTIONS = ("target_adv", "adv_target")
REDUCTIONS = ("sample", "batch")


@dataclass(frozen=True)
class CAPTLossConfig:
    """The objective's settings; its defaults are TRAINER.CAPT's (``CAPT.extend_cfg`` reads them), its values are
    checked by ``CAPT.config_domains`` when the config is built."""

    lam: float = 1.5
    alpha_mode: str = "confidence"
    alpha_fixed: float = 0.5
    alpha_reduction: str = "sample"  # sample: one alpha per image; batch: the batch mean
    alpha_detach: bool = True
    kl_direction: str = "target_adv"  # KL(target || adv) (TRADES/FAP idiom) or KL(adv || target) (as the equation reads)
    clean_detach: bool = False  # detach the prompted clean branch inside L_cons-train


kl = kl_per_sample  # KL(softmax(p) || softmax(q)) per sample -> (B,): the toolbox's one KL


def consistency(target_logits: torch.Tensor, adv_logits: torch.Tensor, direction: str) -> torch.Tensor:
    return kl(target_logits, adv_logits) if direction == "target_adv" else kl(adv_logits, target_logits)


def alpha_cons(cfg: CAPTLossConfig, y: torch.Tensor, clean_logits: torch.Tensor, frozen_logits: torch.Tensor,
               cons_train: torch.Tensor, cons_frz: torch.Tensor) -> torch.Tensor:
    """(B,) weights in [0, 1] on the frozen-model term.

    confidence: p_frz(y) / (p_frz(y) + p_train(y)) -- trust the frozen CLIP where it is the more confident one;
    loss_ratio: L_frz / (L_frz + L_train) -- weigh the larger of the two consistency terms more;
    agreement:  cosine similarity of the two clean probability vectors -- lean on the frozen CLIP where both agree;
    fixed:      ALPHA_FIXED.
    """
    eps = 1e-12
    if cfg.alpha_mode == "fixed":
        a = torch.full_like(cons_train, cfg.alpha_fixed)
    elif cfg.alpha_mode == "confidence":
        p_frz = F.softmax(frozen_logits.float(), 1).gather(1, y[:, None]).squeeze(1)
        p_tr = F.softmax(clean_logits.float(), 1).gather(1, y[:, None]).squeeze(1)
        a = p_frz / (p_frz + p_tr + eps)
    elif cfg.alpha_mode == "loss_ratio":
        a = cons_frz / (cons_frz + cons_train + eps)
    else:
        a = F.cosine_similarity(F.softmax(clean_logits.float(), 1), F.softmax(frozen_logits.float(), 1), dim=1)
    if cfg.alpha_reduction == "batch":  # the global batch's mean: all-reduced over torchrun ranks
        a = global_mean(a).expand_as(a)
    a = a.clamp(0.0, 1.0)
    return a.detach() if cfg.alpha_detach else a


def capt_loss(cfg: CAPTLossConfig, y: torch.Tensor, clean_logits: torch.Tensor, adv_logits: torch.Tensor,
              frozen_logits: torch.Tensor) -> tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """The total loss and its terms (each a scalar tensor)."""
    clean_target = clean_logits.detach() if cfg.clean_detach else clean_logits
    cons_train = consistency(clean_target, adv_logits, cfg.kl_direction)  # (B,)
    cons_frz = consistency(frozen_logits.detach(), adv_logits, cfg.kl_direction)  # (B,)
    a = alpha_cons(cfg, y, clean_logits, frozen_logits, cons_train, cons_frz)  # (B,)
    ce = F.cross_entropy(clean_logits.float(), y)
    adv_cons = ((1 - a) * cons_train + a * cons_frz).mean()
    total = ce + cfg.lam * adv_cons
    return total, {"ce": ce, "cons_train": cons_train.mean(), "cons_frz": cons_frz.mean(), "adv_cons": adv_cons,
                   "alpha": a.mean()}
