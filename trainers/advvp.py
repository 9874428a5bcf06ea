"""AdvVP (adversarial visual prompting, TeCoA objective): a pixel padding prompt plus visual prompt tokens,
hand-crafted text (the dataset's template)."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, Precision
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoA


@TRAINER_REGISTRY.register()
class AdvVP(TeCoA):
    config_domains = {"TRAINER.ADVVP.PROMPT_SIZE": Int(0, meaning="0 = no pixel padding prompt"),
                      "TRAINER.ADVVP.ADD_PROMPT_SIZE": Int(0, meaning="0 = no prompt tokens"),
                      "TRAINER.ADVVP.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.ADVVP = CN()
        cfg.TRAINER.ADVVP.PROMPT_SIZE = 30  # padding width in pixels of a 224 px image (scaled to the model size)
        cfg.TRAINER.ADVVP.ADD_PROMPT_SIZE = 5  # visual prompt tokens at the input layer
        cfg.TRAINER.ADVVP.PREC = "fp16"

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.ADVVP
        res = self.backbone.resolution
        pad = max(1, round(node.PROMPT_SIZE * res / 224)) if node.PROMPT_SIZE > 0 else 0
        return PromptSpec(vision_n_ctx=node.ADD_PROMPT_SIZE, vision_depth=1 if node.ADD_PROMPT_SIZE else 0,
                          pixel_pad=pad, template=self.dataset_template)
