"""TeCoA (Mao et al., ICLR 2023): adversarial fine-tuning of CLIP's vision tower for zero-shot robustness.

Cross-entropy on PGD examples made against the current tower (the shared ``TeCoAObjective``), with frozen class
text features from one hand-crafted template. ``TRAINER.TECOA.TUNE`` picks the whole vision tower or its last
``LAST_N`` blocks. With ``EXPORT`` every checkpoint also writes ``<OUTPUT_DIR>/vision_encoder.pth.tar``: the whole
tuned tower under ``vision_encoder_state_dict``, the key of TeCoA's released files, so ``MODEL.BACKBONE.PATH`` loads
it (and the released files) for APT/CAPT on a robust backbone.
"""

from __future__ import annotations

import os
from typing import Dict

from torch import nn
from yacs.config import CfgNode as CN

from promptengine import distributed as dist
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.clip.tuning import unfreeze
from promptengine.config.domains import Int, OneOf, Precision
from promptengine.engine import checkpoint as ckpt
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective

TUNE_CHOICES = ("vision", "vision_last")
EXPORT_NAME = "vision_encoder.pth.tar"


@TRAINER_REGISTRY.register()
class TeCoA(TeCoAObjective):
    script_folder, default_config = "tecoa", "vit_b32_eps1"
    tunes_tower = True  # judged by the zero-shot robustness protocol too (scripts/tecoa/zsrobust.sh)
    config_domains = {"TRAINER.TECOA.TUNE": OneOf(*TUNE_CHOICES),
                      "TRAINER.TECOA.LAST_N": Int(0, meaning="the number of last vision blocks for TUNE vision_last"),
                      "TRAINER.TECOA.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        c = CN()
        c.TUNE = "vision"  # vision: the whole vision tower | vision_last: its last LAST_N blocks, ln_post and proj
        c.LAST_N = 0
        c.TEMPLATE = ""  # the frozen class prompts; "" = the dataset's hand-crafted template
        c.PREC = "fp32"
        c.EXPORT = True  # write the tuned tower as <OUTPUT_DIR>/vision_encoder.pth.tar with every checkpoint
        cfg.TRAINER.TECOA = c

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(template=self.cfg.TRAINER.TECOA.TEMPLATE or self.dataset_template)

    def build_network(self) -> nn.Module:
        node = self.cfg.TRAINER.TECOA
        n = unfreeze(self.backbone, node.TUNE, int(node.LAST_N))
        print(f"TeCoA tunes {node.TUNE}" + (f" (last {node.LAST_N} blocks)" if node.TUNE == "vision_last" else "")
              + f": {n:,} parameters")
        return super().build_network()

    def learnable_modules(self) -> Dict[str, nn.Module]:
        return {"backbone": self.backbone}  # only the unfrozen tower parameters are optimised and checkpointed

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None) -> None:
        super().save_model(epoch, directory, is_best, val_result)
        if self.cfg.TRAINER.TECOA.EXPORT and not is_best and dist.is_main():
            visual = self.backbone.clip.visual
            state = {k: v.detach().cpu().clone() for k, v in visual.state_dict().items()}
            path = os.path.join(directory, EXPORT_NAME)
            ckpt.atomic_save({"epoch": epoch + 1, "vision_encoder_state_dict": state}, path)
            print(f"Exported the tuned vision tower to {path} (load it with MODEL.BACKBONE.PATH)")
