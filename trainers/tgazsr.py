"""TGA-ZSR (Yu et al., NeurIPS 2024): adversarial fine-tuning of CLIP's vision tower with text-guided attention.

The text-guided attention of an image is the similarity of each of its patch tokens (after ``ln_post`` and ``proj``)
with its class text feature, min-max scaled per image and resized to the input resolution. The loss is TeCoA's
cross-entropy on PGD examples plus two attention terms, both measured against the *frozen* tower's clean attention
(the authors' code, ``criterion`` in TGA-ZSR.py):

    L = CE(adv) + ALPHA * d(A_tuned(x_adv), A_frozen(x)) + BETA * d(A_tuned(x), A_frozen(x))

attention refinement (ALPHA = 0.08) and attention-based model constraint (BETA = 0.05), d the per-image L2 distance
averaged over the batch. With ``EXPORT`` every checkpoint writes ``<OUTPUT_DIR>/vision_encoder.pth.tar`` in the
layout of the authors' ``save_checkpoint`` (the tower under ``vision_encoder_state_dict``), which
``MODEL.BACKBONE.PATH`` loads. Scope, frozen reference, checkpointing and export: ``tower.TowerTuning``.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F

from promptengine.clip.backbone import PromptableCLIP, PromptBundle
from promptengine.config.domains import OneOf, Real
from promptengine.errors import UserError
from promptengine.evaluation.metrics import accuracy
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective
from .tower import VISION_ENCODER_FILE, TowerTuning, tower_cfg_node, tower_domains

EXPORT_NAME = VISION_ENCODER_FILE

DISTANCES = ("l2", "cos", "l1")
MINMAX_FLOOR = 1e-12  # a constant attention map scales to 0 instead of 0/0


def text_guided_attention(tokens: torch.Tensor, text: torch.Tensor, grid: int, size: int) -> torch.Tensor:
    """(B, L, E) image tokens and (B, E) class text features -> (B, size * size) attention maps in [0, 1].

    As the authors' ``attention_map``: every embedding channel is divided by its L2 norm over the class and patch
    tokens (their ``norm(dim=1)`` on (B, L, E)), the ``grid * grid`` patch tokens are dotted with the text feature,
    the map is min-max scaled per image, laid out as (grid, grid) and bilinearly resized to (size, size)."""
    tokens = tokens[:, : 1 + grid * grid].float()  # vision prompt tokens, if any, are not part of the image
    if tokens.shape[1] != 1 + grid * grid:
        raise UserError(f"expected 1 + {grid}x{grid} image tokens, got {tokens.shape[1]} (a ViT CLIP is needed)")
    tokens = tokens / tokens.norm(dim=1, keepdim=True)
    am = tokens[:, 1:] @ text.float().unsqueeze(-1)  # (B, g*g, 1)
    low, high = am.amin(1, keepdim=True), am.amax(1, keepdim=True)
    am = (am - low) / (high - low).clamp_min(MINMAX_FLOOR)
    am = am.reshape(am.shape[0], 1, grid, grid)
    return F.interpolate(am, size=(size, size), mode="bilinear", align_corners=False).flatten(1)


def attention_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """The batch mean of the per-image distance between (B, N) attention maps (the authors' three choices)."""
    if distance == "l2":
        return (a - b).norm(p=2, dim=1).mean()
    if distance == "cos":
        return (1 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()
    if distance == "l1":
        return (a - b).abs().mean()
    raise UserError(f"TRAINER attention distance must be one of {'/'.join(DISTANCES)}, got '{distance}'")


def tgazsr_loss(y: torch.Tensor, logits_adv: torch.Tensor, att_adv: torch.Tensor, att_clean: torch.Tensor,
                att_frozen: torch.Tensor, alpha: float, beta: float,
                distance: str = "l2") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CE(adv) + alpha * d(att_adv, att_frozen) + beta * d(att_clean, att_frozen).

    Returns (total, cross-entropy, attention refinement, attention constraint), the last two unweighted."""
    ce = F.cross_entropy(logits_adv.float(), y)
    refine = attention_distance(att_adv, att_frozen, distance)
    constrain = attention_distance(att_clean, att_frozen, distance)
    return ce + alpha * refine + beta * constrain, ce, refine, constrain


@TRAINER_REGISTRY.register()
class TGAZSR(TowerTuning, TeCoAObjective):
    tower_node = "TGAZSR"
    keeps_frozen_backbone = True  # ``self.reference``: the frozen clean attention's backbone
    needs_vit = True
    script_folder, default_config = "tgazsr", "vit_b32_tinyimagenet"
    config_domains = {**tower_domains("TGAZSR"),
                      "TRAINER.TGAZSR.ALPHA": Real(0, meaning="weight of the attention refinement term"),
                      "TRAINER.TGAZSR.BETA": Real(0, meaning="weight of the attention constraint term"),
                      "TRAINER.TGAZSR.DISTANCE": OneOf(*DISTANCES)}

    @staticmethod
    def extend_cfg(cfg) -> None:
        c = tower_cfg_node()  # TUNE vision (the whole tower) is the authors' default
        c.ALPHA = 0.08  # attention refinement: tuned adversarial attention -> frozen clean attention
        c.BETA = 0.05  # attention constraint: tuned clean attention -> frozen clean attention
        c.DISTANCE = "l2"  # l2 | cos | l1, the authors' Distance_metric
        cfg.TRAINER.TGAZSR = c

    def tuning_note(self) -> str:
        node = self.tower_cfg
        return f"; attention weights {node.ALPHA} / {node.BETA} ({node.DISTANCE})"

    def attention(self, backbone: PromptableCLIP, x: torch.Tensor, bundle: PromptBundle,
                  text: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(class-token features (B, E), attention maps (B, res * res)) of ``backbone`` for images ``x``."""
        tokens = backbone.encode_image_tokens(x, bundle)
        return tokens[:, 0], text_guided_attention(tokens, text, backbone.vision_grid, backbone.resolution)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        node = self.tower_cfg
        bundle = self.model.prompts()
        text = self.model.text_features(bundle)  # (K, E), frozen text tower: computed once per run
        x_adv = self.attack_examples(x, y, bundle, text)
        text_y = text[y].detach()
        feats_adv, att_adv = self.attention(self.backbone, x_adv, bundle, text_y)
        _, att_clean = self.attention(self.backbone, x, bundle, text_y)
        with torch.no_grad():
            _, att_frozen = self.attention(self.reference, x, bundle, text_y)
        logits_adv = self.model.logits_from_features(F.normalize(feats_adv, dim=-1), text)
        loss, ce, refine, constrain = tgazsr_loss(y, logits_adv, att_adv, att_clean, att_frozen, float(node.ALPHA),
                                                  float(node.BETA), node.DISTANCE)
        return loss, {"loss": loss.item(), "ce": ce.item(), "refine": refine.item(), "constrain": constrain.item(),
                      "adv_acc": accuracy(logits_adv.argmax(1) == y)}

    def export_payload(self, epoch: int, state: Dict[str, torch.Tensor]) -> Any:
        return released_layout(state, epoch + 1, self.backbone.vision_width)


def released_layout(tower: Dict[str, torch.Tensor], epoch: int, vision_width: int) -> Dict[str, object]:
    """The tuned tower's state in the layout of the authors' ``save_checkpoint``: the tower under
    ``vision_encoder_state_dict``; their (empty) prompter states and ``best_acc1`` (0 when training ends, as their
    script writes it) so that their ``--resume`` reads the file too. The optimizer state is left out."""
    return {"epoch": epoch, "state_dict": {}, "add_prompter": {"prompt": torch.zeros(1, 0, vision_width)},
            "best_acc1": 0.0, "vision_encoder_state_dict": tower}
