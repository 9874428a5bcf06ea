"""What the methods that fine-tune CLIP's vision tower share: the tuned scope, a frozen copy of the starting tower,
the checkpointed module and the exported tower file.

A tower method mixes ``TowerTuning`` in before its objective class and names its config node (``tower_node``), its
export file and, when its loss needs the pre-trained model, ``keeps_frozen_tower`` (the vision tower's embeddings)
or ``keeps_frozen_backbone`` (the whole backbone, e.g. for its patch tokens). The frozen copy is taken after
``MODEL.BACKBONE.PATH`` is loaded and before anything is unfrozen, so "pre-trained" means the tower the run starts
from (OpenAI's, or a robust file), and a resumed run rebuilds the same copy.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from promptengine import distributed as dist
from promptengine.clip.backbone import PromptableCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.clip.tuning import unfreeze
from promptengine.config.domains import Domain, Int, OneOf, Precision
from promptengine.engine import checkpoint as ckpt
from promptengine.errors import UserError

TUNE_CHOICES = ("vision", "vision_last")
#: the file TeCoA's and PMG-AFT's code write (the tower under ``vision_encoder_state_dict``)
VISION_ENCODER_FILE = "vision_encoder.pth.tar"


def tower_cfg_node() -> CN:
    """The keys every tower method reads under its own ``TRAINER.<NODE>``."""
    c = CN()
    c.TUNE = "vision"  # vision: the whole vision tower | vision_last: its last LAST_N blocks, ln_post and proj
    c.LAST_N = 0
    c.TEMPLATE = ""  # the frozen class prompts; "" = the dataset's hand-crafted template
    c.PREC = "fp32"
    c.EXPORT = True  # write the tuned tower to <OUTPUT_DIR>/<export file> with every checkpoint
    return c


def tower_domains(node: str) -> Dict[str, Domain]:
    """The domains of ``tower_cfg_node``'s keys under ``TRAINER.<node>``."""
    return {f"TRAINER.{node}.TUNE": OneOf(*TUNE_CHOICES),
            f"TRAINER.{node}.LAST_N": Int(0, meaning="the number of last vision blocks for TUNE vision_last"),
            f"TRAINER.{node}.PREC": Precision()}


class FrozenTower(nn.Module):
    """A frozen copy of a backbone's vision tower with the backbone's own preprocessing: (B, 3, H, W) [0, 1] images
    -> (B, E) embeddings, not normalised. Kept outside the trained model: never in train mode, never checkpointed."""

    def __init__(self, backbone: PromptableCLIP) -> None:
        super().__init__()
        self.visual = copy.deepcopy(backbone.clip.visual).requires_grad_(False).eval()
        self._prepare = backbone.prepare_images  # resize + CLIP normalisation, the same as the tuned tower's

    def train(self, mode: bool = True) -> FrozenTower:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self._prepare(x)
        return self.visual(z.to(self.visual.conv1.weight.dtype))


def frozen_backbone(backbone: PromptableCLIP) -> PromptableCLIP:
    """A frozen, detached copy of the whole backbone as loaded, for losses that read more than the pre-trained
    tower's embedding (TGA-ZSR's patch tokens). Kept outside the trained model, like ``FrozenTower``."""
    frozen = copy.deepcopy(backbone)
    frozen.requires_grad_(False)
    return frozen.eval()


class TowerTuning:
    """Mix-in for a ``PromptTrainer`` that tunes the vision tower instead of prompts (the trainer sets
    ``tower_node`` and ``export_name``, and overrides ``export_payload`` for another file layout)."""

    tower_node = ""  # the trainer's config node under TRAINER
    tunes_tower = True  # read by the registry's method records (the zero-shot robustness protocol judges these)
    export_name = VISION_ENCODER_FILE
    keeps_frozen_tower = False  # build ``self.frozen_tower`` (the pre-trained tower) before unfreezing
    keeps_frozen_backbone = False  # build ``self.reference`` (the whole pre-trained backbone) before unfreezing
    needs_vit = False  # the loss reads the ViT's tokens: a ResNet CLIP is refused before anything is built

    @property
    def tower_cfg(self) -> CN:
        return self.cfg.TRAINER[self.tower_node]

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(template=self.tower_cfg.TEMPLATE or self.dataset_template)

    def build_network(self) -> nn.Module:
        node = self.tower_cfg
        if self.needs_vit and not self.backbone.is_vit:
            raise UserError(f"{type(self).__name__} reads patch tokens: it needs a ViT CLIP backbone")
        if self.keeps_frozen_tower:
            self.frozen_tower = FrozenTower(self.backbone)
        if self.keeps_frozen_backbone:
            self.reference = frozen_backbone(self.backbone)
        n = unfreeze(self.backbone, node.TUNE, int(node.LAST_N))
        print(f"{type(self).__name__} tunes {node.TUNE}"
              + (f" (last {node.LAST_N} blocks)" if node.TUNE == "vision_last" else "") + f": {n:,} parameters"
              + self.tuning_note())
        return super().build_network()

    def tuning_note(self) -> str:
        """Hook: what the method adds to the line that says what it tunes (e.g. its loss weights)."""
        return ""

    def frozen_logits(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The pre-trained tower's logits over the current classes (the same text features and logit scale)."""
        return self.model.logits_from_features(F.normalize(self.frozen_tower(x), dim=-1), text.detach())

    def learnable_modules(self) -> Dict[str, nn.Module]:
        return {"backbone": self.backbone}  # only the unfrozen tower parameters are optimised and checkpointed

    def export_payload(self, epoch: int, state: Dict[str, torch.Tensor]) -> Any:
        """What the export file holds: the whole tower under ``vision_encoder_state_dict`` (TeCoA's layout)."""
        return {"epoch": epoch + 1, "vision_encoder_state_dict": state}

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None) -> None:
        super().save_model(epoch, directory, is_best, val_result)
        if self.tower_cfg.EXPORT and not is_best and dist.is_main():
            visual = self.backbone.clip.visual
            state = {k: v.detach().cpu().clone() for k, v in visual.state_dict().items()}
            path = os.path.join(directory, self.export_name)
            ckpt.atomic_save(self.export_payload(epoch, state), path)
            print(f"Exported the tuned vision tower to {path} (load it with MODEL.BACKBONE.PATH)")
