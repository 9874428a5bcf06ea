"""TGA-ZSR (Yu et al., NeurIPS 2024): adversarial fine-tuning of CLIP's vision tower with text-guided attention.

The text-guided attention of an image is the similarity of each of its patch tokens (after ``ln_post`` and ``proj``)
with its class text feature, min-max scaled per image and resized to the input resolution. The loss is TeCoA's
cross-entropy on PGD examples plus two attention terms, both measured against the *frozen* tower's clean attention
(the authors' code, ``criterion`` in TGA-ZSR.py):

    L = CE(adv) + ALPHA * d(A_tuned(x_adv), A_frozen(x)) + BETA * d(A_tuned(x), A_frozen(x))

attention refinement (ALPHA = 0.08) and attention-based model constraint (BETA = 0.05), d the per-image L2 distance
averaged over the batch. With ``EXPORT`` every checkpoint writes ``<OUTPUT_DIR>/vision_encoder.pth.tar`` in the
layout of the authors' ``save_checkpoint`` (the tower under ``vision_encoder_state_dict``), which
``MODEL.BACKBONE.PATH`` loads.
"""

from __future__ import annotations

import copy
import os
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from promptengine import distributed as dist
from promptengine.clip.backbone import PromptableCLIP, PromptBundle
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.clip.tuning import unfreeze
from promptengine.config.domains import Int, OneOf, Precision, Real
from promptengine.engine import checkpoint as ckpt
from promptengine.errors import UserError
from promptengine.evaluation.metrics import accuracy
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective
from .tower import TUNE_CHOICES
from .tower import VISION_ENCODER_FILE as EXPORT_NAME

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
class TGAZSR(TeCoAObjective):
    script_folder, default_config = "tgazsr", "vit_b32_tinyimagenet"
    tunes_tower = True  # judged by the zero-shot robustness protocol too (scripts/tgazsr/zsrobust.sh)
    config_domains = {"TRAINER.TGAZSR.TUNE": OneOf(*TUNE_CHOICES),
                      "TRAINER.TGAZSR.LAST_N": Int(0, meaning="the number of last vision blocks for TUNE vision_last"),
                      "TRAINER.TGAZSR.ALPHA": Real(0, meaning="weight of the attention refinement term"),
                      "TRAINER.TGAZSR.BETA": Real(0, meaning="weight of the attention constraint term"),
                      "TRAINER.TGAZSR.DISTANCE": OneOf(*DISTANCES),
                      "TRAINER.TGAZSR.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        c = CN()
        c.TUNE = "vision"  # vision: the whole vision tower (the authors' default) | vision_last: its last LAST_N blocks
        c.LAST_N = 0
        c.TEMPLATE = ""  # the frozen class prompts; "" = the dataset's hand-crafted template
        c.ALPHA = 0.08  # attention refinement: tuned adversarial attention -> frozen clean attention
        c.BETA = 0.05  # attention constraint: tuned clean attention -> frozen clean attention
        c.DISTANCE = "l2"  # l2 | cos | l1, the authors' Distance_metric
        c.PREC = "fp32"
        c.EXPORT = True  # write the tuned tower as <OUTPUT_DIR>/vision_encoder.pth.tar with every checkpoint
        cfg.TRAINER.TGAZSR = c

    @property
    def node(self) -> CN:
        return self.cfg.TRAINER.TGAZSR

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(template=self.node.TEMPLATE or self.dataset_template)

    def build_network(self) -> nn.Module:
        if not self.backbone.is_vit:
            raise UserError(f"{type(self).__name__} reads patch tokens: it needs a ViT CLIP backbone")
        self.reference = frozen_copy(self.backbone)  # before unfreezing: the reference attention's tower
        n = unfreeze(self.backbone, self.node.TUNE, int(self.node.LAST_N))
        print(f"{type(self).__name__} tunes {self.node.TUNE}"
              + (f" (last {self.node.LAST_N} blocks)" if self.node.TUNE == "vision_last" else "")
              + f": {n:,} parameters; attention weights {self.node.ALPHA} / {self.node.BETA} ({self.node.DISTANCE})")
        return super().build_network()

    def learnable_modules(self) -> Dict[str, nn.Module]:
        return {"backbone": self.backbone}  # only the unfrozen tower parameters are optimised and checkpointed

    def attention(self, backbone: PromptableCLIP, x: torch.Tensor, bundle: PromptBundle,
                  text: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(class-token features (B, E), attention maps (B, res * res)) of ``backbone`` for images ``x``."""
        tokens = backbone.encode_image_tokens(x, bundle)
        return tokens[:, 0], text_guided_attention(tokens, text, backbone.vision_grid, backbone.resolution)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        bundle = self.model.prompts()
        text = self.model.text_features(bundle)  # (K, E), frozen text tower: computed once per run
        x_adv = self.attack_examples(x, y, bundle, text)
        text_y = text[y].detach()
        feats_adv, att_adv = self.attention(self.backbone, x_adv, bundle, text_y)
        _, att_clean = self.attention(self.backbone, x, bundle, text_y)
        with torch.no_grad():
            _, att_frozen = self.attention(self.reference, x, bundle, text_y)
        logits_adv = self.model.logits_from_features(F.normalize(feats_adv, dim=-1), text)
        loss, ce, refine, constrain = tgazsr_loss(y, logits_adv, att_adv, att_clean, att_frozen, float(self.node.ALPHA),
                                                  float(self.node.BETA), self.node.DISTANCE)
        return loss, {"loss": loss.item(), "ce": ce.item(), "refine": refine.item(), "constrain": constrain.item(),
                      "adv_acc": accuracy(logits_adv.argmax(1) == y)}

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None) -> None:
        super().save_model(epoch, directory, is_best, val_result)
        if self.node.EXPORT and not is_best and dist.is_main():
            path = os.path.join(directory, EXPORT_NAME)
            ckpt.atomic_save(released_layout(self.backbone, epoch + 1), path)
            print(f"Exported the tuned vision tower to {path} (load it with MODEL.BACKBONE.PATH)")


def frozen_copy(backbone: PromptableCLIP) -> PromptableCLIP:
    """A frozen, detached copy of the backbone as loaded (the pre-trained reference the attention terms align to)."""
    frozen = copy.deepcopy(backbone)
    frozen.requires_grad_(False)
    return frozen.eval()


def released_layout(backbone: PromptableCLIP, epoch: int) -> Dict[str, object]:
    """The tuned tower in the layout of the authors' ``save_checkpoint``: the tower under
    ``vision_encoder_state_dict``; their (empty) prompter states and ``best_acc1`` (0 when training ends, as their
    script writes it) so that their ``--resume`` reads the file too. The optimizer state is left out."""
    visual = backbone.clip.visual
    tower = {k: v.detach().cpu().clone() for k, v in visual.state_dict().items()}
    return {"epoch": epoch, "state_dict": {}, "add_prompter": {"prompt": torch.zeros(1, 0, backbone.vision_width)},
            "best_acc1": 0.0, "vision_encoder_state_dict": tower}
