"""CoCoOp: context conditioned on each image by a small meta-net."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, Precision
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY


@TRAINER_REGISTRY.register()
class CoCoOp(PromptTrainer):
    script_folder, default_config = "cocoop", "vit_b16_c4_ep10_batch1_ctxv1"
    config_domains = {"TRAINER.COCOOP.N_CTX": Int(1), "TRAINER.COCOOP.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.COCOOP = CN()
        cfg.TRAINER.COCOOP.N_CTX = 16
        cfg.TRAINER.COCOOP.CTX_INIT = ""
        cfg.TRAINER.COCOOP.PREC = "fp16"

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.COCOOP
        n_ctx = len(node.CTX_INIT.split()) if node.CTX_INIT else node.N_CTX
        return PromptSpec(text_n_ctx=n_ctx, text_ctx_init=node.CTX_INIT, conditional=True)
