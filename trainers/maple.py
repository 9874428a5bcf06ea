"""MaPLe: coupled deep prompts, vision prompts projected from text prompts (and AdvMaPLe with TeCoA)."""

from __future__ import annotations

from typing import Dict, Optional

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Domain, Int, OneOf, Precision
from promptengine.errors import UserError
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective


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
        print(f'Note: the context init "{ctx_init}" is not used with N_CTX {n_ctx} > {MAX_INIT_CTX}: random init '
              "(as MaPLe)")
        return ""
    return ctx_init


# Where the text context and prompt prefix come from. ctx_init: the CTX_INIT words (MaPLe's code); dataset_template:
# the dataset's hand-crafted template with its literal "{}" (FAP's code, for its FAP and advMaPLe learners).
PROMPT_INITS = ("ctx_init", "dataset_template")


def prompt_init_key(node) -> None:
    node.PROMPT_INIT = "ctx_init"


def prompt_init_domain(name: str) -> Dict[str, Domain]:
    return {f"TRAINER.{name}.PROMPT_INIT": OneOf(*PROMPT_INITS)}


def context_words(node, name: str, dataset) -> str:
    """The prefix words the context is initialised from (``TRAINER.<name>``), printed so a log says which init a run
    used. dataset_template needs the dataset's own template (a Dassl fork's datasets may have none)."""
    if node.PROMPT_INIT == "dataset_template":
        template = getattr(type(dataset), "template", "")
        if not template:
            raise UserError(f"TRAINER.{name}.PROMPT_INIT dataset_template: dataset {type(dataset).__name__} has no "
                            "`template` attribute; add one or set PROMPT_INIT ctx_init")
        print(f'PROMPT_INIT dataset_template "{template}" (FAP code: the template, {{}} kept, is the prompt prefix; '
              "CTX_INIT unused)")
        return template
    print(f'PROMPT_INIT ctx_init "{node.CTX_INIT}"')
    return node.CTX_INIT


def coupled_domains(name: str) -> Dict[str, Domain]:
    """Domains of the keys ``coupled_keys`` declares."""
    p = f"TRAINER.{name}."
    return {p + "N_CTX": Int(1), p + "PREC": Precision(), p + "PROMPT_DEPTH": Int(1)}


def coupled_spec(node, coupling: str, ctx_init: Optional[str] = None) -> PromptSpec:
    """MaPLe-style coupled prompts; ``ctx_init`` overrides ``node.CTX_INIT`` (see ``context_words``)."""
    words = node.CTX_INIT if ctx_init is None else ctx_init
    return PromptSpec(text_n_ctx=node.N_CTX, text_depth=node.PROMPT_DEPTH,
                      text_ctx_init=upstream_ctx_init(node.N_CTX, words),
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
class AdvMaPLe(TeCoAObjective):
    script_folder, default_config = "advmaple", "vit_b32_ep10_batch4_2ctx_notransform"
    upstream_names = ("advMaPLe",)  # FAP's spelling
    upstream_unused = ("TRAINER.ADVMAPLE.CLASSIFIER",)  # FAP's key, never read by its code either
    config_domains = {**coupled_domains("ADVMAPLE"), **prompt_init_domain("ADVMAPLE"),
                      "TRAINER.ADVMAPLE.COUPLING": OneOf("text_to_vision", "vision_to_text")}

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "ADVMAPLE")
        # text_to_vision: MaPLe's coupling (the method's definition); vision_to_text: FAP's released advMaPLe code
        cfg.TRAINER.ADVMAPLE.COUPLING = "text_to_vision"
        prompt_init_key(cfg.TRAINER.ADVMAPLE)  # FAP's released advMaPLe: dataset_template (its paper recipes set both)

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.ADVMAPLE
        return coupled_spec(node, node.COUPLING, context_words(node, "ADVMAPLE", self.dm.dataset))
