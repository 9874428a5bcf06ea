"""CoOp: learnable text context (unified or class-specific), class token at end/middle/front."""

from __future__ import annotations

from typing import Dict

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.clip.text_prompts import POSITIONS
from promptengine.config.domains import Domain, Int, OneOf, Precision
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY


def coop_keys(node_name: str, cfg) -> None:
    node = CN()
    node.N_CTX = 16
    node.CSC = False
    node.CTX_INIT = ""
    node.PREC = "fp16"
    node.CLASS_TOKEN_POSITION = "end"
    setattr(cfg.TRAINER, node_name, node)


def coop_domains(node_name: str) -> Dict[str, Domain]:
    """Domains of the keys ``coop_keys`` declares."""
    p = f"TRAINER.{node_name}."
    return {p + "N_CTX": Int(0, meaning="0 = the plain template"), p + "PREC": Precision(),
            p + "CLASS_TOKEN_POSITION": OneOf(*POSITIONS)}


def coop_spec(node) -> PromptSpec:
    """CoOp's rules: an init phrase sets the number of context tokens to its word count, and builds one shared
    context from the words (CSC is then ignored, as in CoOp's code)."""
    n_ctx = len(node.CTX_INIT.replace("_", " ").split()) if node.CTX_INIT else node.N_CTX
    if node.CSC and node.CTX_INIT:
        print(f'Note: CSC True is ignored with CTX_INIT "{node.CTX_INIT}": one shared context from the words (as CoOp)')
    return PromptSpec(text_n_ctx=n_ctx, text_ctx_init=node.CTX_INIT, text_csc=bool(node.CSC and not node.CTX_INIT),
                      class_token_position=node.CLASS_TOKEN_POSITION)


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    script_folder, default_config = "coop", "vit_b16_ep50"
    config_domains = coop_domains("COOP")

    @staticmethod
    def extend_cfg(cfg) -> None:
        coop_keys("COOP", cfg)

    def prompt_spec(self) -> PromptSpec:
        return coop_spec(self.cfg.TRAINER.COOP)
