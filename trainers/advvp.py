"""AdvVP (adversarial visual prompting, TeCoA objective): a pixel padding prompt plus visual prompt tokens,
hand-crafted text (the dataset's template). By default as in its authors' code (and FAP's zsrobust): the pad
is added to the normalised image, pad and tokens start from N(0, 1)."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, OneOf, Precision
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective

# INIT: upstream = pad and tokens ~ N(0, 1) (authors' code); small = zero pad, tokens ~ N(0, 0.02^2)
INIT_STDS = {"upstream": (1.0, 1.0), "small": (0.0, 0.02)}


@TRAINER_REGISTRY.register()
class AdvVP(TeCoAObjective):
    script_folder, default_config = "advvp", "vit_b32_ep10_batch4"
    upstream_names, upstream_nodes = ("zsrobust",), {"ZSROBUST": "ADVVP"}  # FAP's name and node (same keys)
    config_domains = {"TRAINER.ADVVP.PROMPT_SIZE": Int(0, meaning="0 = no pixel padding prompt"),
                      "TRAINER.ADVVP.ADD_PROMPT_SIZE": Int(0, meaning="0 = no prompt tokens"),
                      "TRAINER.ADVVP.PREC": Precision(),
                      "TRAINER.ADVVP.VISUAL_PROMPT_METHOD": OneOf("padding", meaning="FAP's only visual prompt method"),
                      "TRAINER.ADVVP.PAD_SPACE": OneOf("normalized", "pixel"),
                      "TRAINER.ADVVP.INIT": OneOf(*INIT_STDS)}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.ADVVP = CN()
        cfg.TRAINER.ADVVP.PROMPT_SIZE = 30  # padding width in pixels of a 224 px image (scaled to the model size)
        cfg.TRAINER.ADVVP.ADD_PROMPT_SIZE = 5  # visual prompt tokens at the input layer
        cfg.TRAINER.ADVVP.PREC = "fp16"
        cfg.TRAINER.ADVVP.VISUAL_PROMPT_METHOD = "padding"  # FAP's zsrobust key; padding is the only method
        cfg.TRAINER.ADVVP.PAD_SPACE = "normalized"  # normalized (authors' code) | pixel (pad on the [0, 1] image)
        cfg.TRAINER.ADVVP.INIT = "upstream"  # upstream: N(0, 1) pad and tokens | small: zero pad, 0.02 tokens

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.ADVVP
        res = self.backbone.resolution
        pad = max(1, round(node.PROMPT_SIZE * res / 224)) if node.PROMPT_SIZE > 0 else 0
        pad_std, token_std = INIT_STDS[node.INIT]
        return PromptSpec(vision_n_ctx=node.ADD_PROMPT_SIZE, vision_depth=1 if node.ADD_PROMPT_SIZE else 0,
                          pixel_pad=pad, template=self.dataset_template, pixel_space=node.PAD_SPACE,
                          pixel_init_std=pad_std, vision_init_std=token_std)
