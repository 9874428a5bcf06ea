"""VPT: (deep) visual prompt tokens; the text side is the fixed phrase CTX_INIT + class name."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, Precision
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY


def fixed_text_template(ctx_init: str) -> str:
    return f"{ctx_init.strip()} {{}}." if ctx_init.strip() else "{}."


@TRAINER_REGISTRY.register()
class VPT(PromptTrainer):
    script_folder, default_config = "vpt", "vit_b16_c2_ep5_batch4_4"
    config_domains = {"TRAINER.VPT.N_CTX_VISION": Int(1), "TRAINER.VPT.PROMPT_DEPTH_VISION": Int(1),
                      "TRAINER.VPT.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.VPT = CN()
        cfg.TRAINER.VPT.N_CTX_VISION = 2
        cfg.TRAINER.VPT.CTX_INIT = "a photo of a"
        cfg.TRAINER.VPT.PREC = "fp16"
        cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 1

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.VPT
        return PromptSpec(vision_n_ctx=node.N_CTX_VISION, vision_depth=node.PROMPT_DEPTH_VISION,
                          template=fixed_text_template(node.CTX_INIT))
