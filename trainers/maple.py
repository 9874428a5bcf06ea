"""MaPLe: coupled deep prompts, vision prompts projected from text prompts (and AdvMaPLe with TeCoA)."""

from __future__ import annotations

from typing import Dict

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Domain, Int, Precision
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


def coupled_domains(name: str) -> Dict[str, Domain]:
    """Domains of the keys ``coupled_keys`` declares."""
    p = f"TRAINER.{name}."
    return {p + "N_CTX": Int(1), p + "PREC": Precision(), p + "PROMPT_DEPTH": Int(1)}


def coupled_spec(node, coupling: str) -> PromptSpec:
    return PromptSpec(text_n_ctx=node.N_CTX, text_depth=node.PROMPT_DEPTH, text_ctx_init=node.CTX_INIT,
                      vision_n_ctx=node.N_CTX, vision_depth=node.PROMPT_DEPTH, coupling=coupling)


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    config_domains = coupled_domains("MAPLE")

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "MAPLE")

    def prompt_spec(self) -> PromptSpec:
        return coupled_spec(self.cfg.TRAINER.MAPLE, "text_to_vision")


@TRAINER_REGISTRY.register()
class AdvMaPLe(TeCoA):
    config_domains = coupled_domains("ADVMAPLE")

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "ADVMAPLE")
        cfg.TRAINER.ADVMAPLE.CLASSIFIER = False  # FAP's key, unused

    def prompt_spec(self) -> PromptSpec:
        return coupled_spec(self.cfg.TRAINER.ADVMAPLE, "text_to_vision")
