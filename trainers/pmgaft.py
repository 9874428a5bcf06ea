"""PMG-AFT (Wang et al., CVPR 2024): pre-trained-model-guided adversarial fine-tuning of CLIP's vision tower.

TeCoA's cross-entropy on PGD examples made against the current tower, plus two KL terms on the adversarial output
distribution: towards the frozen pre-trained tower's output on the same adversarial image, and towards the tuned
tower's own output on the clean image. As the authors' code (``PMG_AFT.py``):

    loss = CE(z_adv, y) + W_CLEAN * KL(p_clean || p_adv) + W_ORI * KL(p_ori || p_adv)

with KL summed over classes and over the batch (``nn.KLDivLoss(reduction="sum")``; ``KL_REDUCTION mean`` averages
it over the batch instead), weights 1 and 1, and gradients through both the clean and the adversarial branch. The
authors' logits are cosine similarities without CLIP's logit scale (their forward renormalises the scaled text
features): ``LOGIT_SCALE 1`` (the default) reproduces that for the loss and the training attack, ``LOGIT_SCALE 0``
uses CLIP's own scale, as this toolbox's TeCoA does. The tower is exported as TeCoA's (``vision_encoder.pth.tar``,
under ``vision_encoder_state_dict``, the key PMG-AFT's checkpoints use).
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from promptengine.attacks.losses import kl_per_sample
from promptengine.config.domains import OneOf, Real
from promptengine.evaluation.metrics import accuracy
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective
from .tower import TowerTuning, tower_cfg_node, tower_domains

REDUCTIONS = ("sum", "mean")


def pmg_aft_loss(y: torch.Tensor, logits_adv: torch.Tensor, logits_clean: torch.Tensor, logits_ori: torch.Tensor,
                 w_clean: float = 1.0, w_ori: float = 1.0, reduction: str = "sum"
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """PMG-AFT's loss from (B, K) logits; returns (total, CE, KL(clean || adv), KL(ori || adv)), KL reduced over
    the batch by ``reduction`` ("sum" as the authors' code). Nothing is detached: the caller's frozen logits carry
    no gradient, the clean branch does (as the authors' code)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    ce = F.cross_entropy(logits_adv.float(), y)
    reduce = torch.sum if reduction == "sum" else torch.mean
    kl_clean = reduce(kl_per_sample(logits_clean, logits_adv))
    kl_ori = reduce(kl_per_sample(logits_ori, logits_adv))
    return ce + w_clean * kl_clean + w_ori * kl_ori, ce, kl_clean, kl_ori


@TRAINER_REGISTRY.register()
class PMGAFT(TowerTuning, TeCoAObjective):
    tower_node = "PMGAFT"
    keeps_frozen_tower = True
    script_folder, default_config = "pmgaft", "vit_b32_eps1"
    config_domains = {**tower_domains("PMGAFT"),
                      "TRAINER.PMGAFT.W_CLEAN": Real(0.0), "TRAINER.PMGAFT.W_ORI": Real(0.0),
                      "TRAINER.PMGAFT.KL_REDUCTION": OneOf(*REDUCTIONS),
                      "TRAINER.PMGAFT.LOGIT_SCALE": Real(0.0, meaning="0 = CLIP's logit scale")}

    @staticmethod
    def extend_cfg(cfg) -> None:
        c = tower_cfg_node()
        c.W_CLEAN = 1.0  # KL(p_clean || p_adv)
        c.W_ORI = 1.0  # KL(p_pretrained(x_adv) || p_adv)
        c.KL_REDUCTION = "sum"  # over the batch: sum (the authors' KLDivLoss) | mean
        c.LOGIT_SCALE = 1.0  # the loss's and training attack's logit scale: 1 = the authors' cosine logits, 0 = CLIP's
        cfg.TRAINER.PMGAFT = c

    def rescale(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits at CLIP's scale -> at ``LOGIT_SCALE`` (unchanged for 0)."""
        scale = float(self.tower_cfg.LOGIT_SCALE)
        return logits if scale == 0 else logits * (scale / self.model.logit_scale.detach())

    def attack_examples(self, x, y, bundle, text) -> torch.Tensor:
        det = bundle.detached()
        text_det = text.detach().float()
        return self.adversarial(x, y, bundle, text, target=lambda z: self.rescale(
            self.model.logits_from_features(self.model.image_features(z, det), text_det)))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        node = self.tower_cfg
        bundle = self.model.prompts()
        text = self.model.text_features(bundle)  # frozen text tower: fixed class features
        x_adv = self.attack_examples(x, y, bundle, text)
        logits_adv = self.rescale(self.model(x_adv, bundle, text))
        logits_clean = self.rescale(self.model(x, bundle, text))
        with torch.no_grad():
            logits_ori = self.rescale(self.frozen_logits(x_adv, text))
        loss, ce, kl_clean, kl_ori = pmg_aft_loss(y, logits_adv, logits_clean, logits_ori, float(node.W_CLEAN),
                                                  float(node.W_ORI), node.KL_REDUCTION)
        return loss, {"loss": loss.item(), "ce": ce.item(), "kl_clean": kl_clean.item(), "kl_ori": kl_ori.item(),
                      "adv_acc": accuracy(logits_adv.argmax(1) == y)}
