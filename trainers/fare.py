"""FARE (Schlarmann et al., ICML 2024): unsupervised adversarial fine-tuning of CLIP's vision tower.

The tuned tower's embedding of an adversarial image is pulled to the frozen (pre-trained) tower's embedding of the
clean image, ``mean_i ||f(x_adv_i) - f_frozen(x_i)||^2`` (squared L2 summed over the embedding, averaged over the
batch, unnormalised embeddings: RobustVLM's ``l2`` loss with ``--output_normalize False``); the training attack
maximises the same distance (``ATTACK.TRAIN.LOSS embed``). No labels and no text enter the loss; the frozen class
text features are used only to evaluate the tuned tower zero-shot. With ``EXPORT`` every checkpoint writes
``<OUTPUT_DIR>/fare_vision_encoder.pt``: the tower's plain state dict, the layout of RobustVLM's released files,
which ``MODEL.BACKBONE.PATH`` loads (as it loads the released files).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F

from promptengine.attacks import train_spec
from promptengine.errors import UserError
from promptengine.prompting import AdversarialPromptTrainer
from promptengine.registry import TRAINER_REGISTRY

from .tower import TowerTuning, tower_cfg_node, tower_domains

EXPORT_NAME = "fare_vision_encoder.pt"


def fare_loss(embedding_adv: torch.Tensor, embedding_frozen_clean: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_d (f(x_adv)_id - f_frozen(x)_id)^2`` over (B, E) embeddings, in fp32 (the target is detached)."""
    return (embedding_adv.float() - embedding_frozen_clean.detach().float()).pow(2).sum(dim=1).mean()


@TRAINER_REGISTRY.register()
class FARE(TowerTuning, AdversarialPromptTrainer):
    tower_node = "FARE"
    export_name = EXPORT_NAME
    keeps_frozen_tower = True
    script_folder, default_config = "fare", "vit_b32_eps4"
    config_domains = tower_domains("FARE")

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.FARE = tower_cfg_node()

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        spec = train_spec(cfg)
        if spec.method != "pgd" or spec.loss != "embed":
            raise UserError(f"FARE's training attack maximises its embedding loss: set ATTACK.TRAIN.LOSS embed "
                            f"(got a {spec.method} attack with loss {spec.loss})")

    def export_payload(self, epoch: int, state: Dict[str, torch.Tensor]) -> Any:
        return state  # RobustVLM saves the vision tower's state dict alone

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        bundle = self.model.prompts()
        target = self.frozen_tower(x).float()  # (B, E) the pre-trained tower on the clean images, no grad
        det = bundle.detached()
        x_adv = self.training_attack(lambda z: self.backbone.encode_image(z, det), x, y, target_embedding=target)
        embedding_adv = self.backbone.encode_image(x_adv, bundle)
        loss = fare_loss(embedding_adv, target)
        cos = F.cosine_similarity(embedding_adv.detach().float(), target, dim=1).mean()
        return loss, {"loss": loss.item(), "cos_adv_frozen": cos.item()}
