"""MaPLe: coupled deep prompts, vision prompts projected from text prompts (and AdvMaPLe with TeCoA)."""

from __future__ import annotations

from typing import Dict

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Domain, Int, OneOf, Precision
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoA


def coupled_keys(cfg, name: str) -> None:
    node = CN()
    node.N_CTX = 2
    node.CTX_INIT = "a photo of a"
    node.PREC = "fp16"
    node.PROMPT_DEPTH = 9
    setattr(cfg.TRAINER, name, node)


MAX_INIT_CTX = 4  # MaPLe/IVLP/FAP's code initialises from CTX_INIT only when N_CTX <= 4, else randomly


def upstream_ctx_init(n_ctx: int, ctx_init: str) -> str:
    """CTX_INIT as MaPLe's code uses it: ignored (random init, "X" placeholders) when N_CTX > 4."""
    if ctx_init and n_ctx > MAX_INIT_CTX:
        print(f'Note: CTX_INIT "{ctx_init}" is not used with N_CTX {n_ctx} > {MAX_INIT_CTX}: random init (as MaPLe)')
        return ""
    return ctx_init


def coupled_domains(name: str) -> Dict[str, Domain]:
    """Domains of the keys ``coupled_keys`` declares."""
    p = f"TRAINER.{name}."
    return {p + "N_CTX": Int(1), p + "PREC": Precision(), p + "PROMPT_DEPTH": Int(1)}


def coupled_spec(node, coupling: str) -> PromptSpec:
    return PromptSpec(text_n_ctx=node.N_CTX, text_depth=node.PROMPT_DEPTH,
                      text_ctx_init=upstream_ctx_init(node.N_CTX, node.CTX_INIT),
                      vision_n_ctx=node.N_CTX, vision_depth=node.PROMPT_DEPTH, coupling=coupling)


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    script_folder, default_config = "maple", "vit_b16_c2_ep5_batch4_2ctx"
    config_domains = coupled_domains("MAPLE")

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "MAPLE")

    def prompt_spec(self) -> PromptSpec:
        return coupled_spec(self.cfg.TRAINER.MAPLE, "text_to_vision")


@TRAINER_REGISTRY.register()
class AdvMaPLe(TeCoA):
    script_folder, default_config = "advmaple", "vit_b32_ep10_batch4_2ctx_notransform"
    config_domains = {**coupled_domains("ADVMAPLE"),
                      "TRAINER.ADVMAPLE.COUPLING": OneOf("text_to_vision", "vision_to_text")}

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "ADVMAPLE")
        cfg.TRAINER.ADVMAPLE.CLASSIFIER = False  # FAP's key, unused
        # text_to_vision: MaPLe's coupling (the method's definition); vision_to_text: FAP's released advMaPLe code
        cfg.TRAINER.ADVMAPLE.COUPLING = "text_to_vision"

    def prompt_spec(self) -> PromptSpec:
        return coupled_spec(self.cfg.TRAINER.ADVMAPLE, self.cfg.TRAINER.ADVMAPLE.COUPLING)
