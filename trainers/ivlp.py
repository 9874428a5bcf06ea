"""IVLP: independent deep text and vision prompts (and AdvVLP, its TeCoA version)."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, Precision
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY

from .maple import upstream_ctx_init
from .objectives import TeCoAObjective


def ivlp_spec(node) -> PromptSpec:
    return PromptSpec(text_n_ctx=node.N_CTX_TEXT, text_depth=node.PROMPT_DEPTH_TEXT,
                      text_ctx_init=upstream_ctx_init(node.N_CTX_TEXT, node.CTX_INIT),
                      vision_n_ctx=node.N_CTX_VISION, vision_depth=node.PROMPT_DEPTH_VISION, coupling="independent")


@TRAINER_REGISTRY.register()
class IVLP(PromptTrainer):
    script_folder, default_config = "ivlp", "vit_b16_c2_ep5_batch4_2+2ctx"
    config_domains = {f"TRAINER.IVLP.{k}": Int(0) for k in ("N_CTX_VISION", "N_CTX_TEXT", "PROMPT_DEPTH_VISION",
                                                            "PROMPT_DEPTH_TEXT")}
    config_domains["TRAINER.IVLP.PREC"] = Precision()

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.IVLP = CN()
        cfg.TRAINER.IVLP.N_CTX_VISION = 2
        cfg.TRAINER.IVLP.N_CTX_TEXT = 2
        cfg.TRAINER.IVLP.CTX_INIT = "a photo of a"
        cfg.TRAINER.IVLP.PREC = "fp16"
        cfg.TRAINER.IVLP.PROMPT_DEPTH_VISION = 9
        cfg.TRAINER.IVLP.PROMPT_DEPTH_TEXT = 9

    def prompt_spec(self) -> PromptSpec:
        return ivlp_spec(self.cfg.TRAINER.IVLP)


@TRAINER_REGISTRY.register()
class AdvVLP(TeCoAObjective):
    """IVLP prompts trained with TeCoA; reads TRAINER.IVLP (as FAP's AdvVLP YAMLs do)."""
    script_folder, default_config = "advvlp", "vit_b32_ep10_batch4_2ctx_notransform"
    upstream_names, upstream_nodes = ("ADVIVLP",), {"ADVIVLP": "IVLP"}  # FAP's name and node (same keys)

    def trainer_precision(self) -> str:
        return self.cfg.TRAINER.IVLP.PREC

    def prompt_spec(self) -> PromptSpec:
        return ivlp_spec(self.cfg.TRAINER.IVLP)
