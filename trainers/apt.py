"""APT: CoOp text prompts trained on PGD examples (TeCoA), attack prompt 'onfly' or 'constant'."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.errors import UserError
from promptengine.prompting import FrozenCLIPMixin
from promptengine.registry import TRAINER_REGISTRY

from .coop import coop_spec
from .objectives import TeCoA

ATTACK_PROMPTS = ("onfly", "constant")


@TRAINER_REGISTRY.register()
class APT(FrozenCLIPMixin, TeCoA):
    """Reads the prompt keys from TRAINER.COOP, as APT's configs do."""

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.APT = CN()
        cfg.TRAINER.APT.ATTACK_PROMPT = "onfly"  # onfly: current prompts; constant: "a photo of a {}."
        cfg.TRAINER.APT.CONSTANT_TEMPLATE = "a photo of a {}."

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        if cfg.TRAINER.APT.ATTACK_PROMPT not in ATTACK_PROMPTS:
            raise UserError(f"TRAINER.APT.ATTACK_PROMPT must be onfly or constant, got '{cfg.TRAINER.APT.ATTACK_PROMPT}'")

    def trainer_precision(self) -> str:
        return self.cfg.TRAINER.COOP.PREC

    def prompt_spec(self) -> PromptSpec:
        return coop_spec(self.cfg.TRAINER.COOP)

    def build_model(self) -> None:
        super().build_model()
        self.constant_target = None
        if self.cfg.TRAINER.APT.ATTACK_PROMPT == "constant":
            self.constant_target = self.frozen_zero_shot([self.cfg.TRAINER.APT.CONSTANT_TEMPLATE])

    def attack_examples(self, x, y, bundle, text):
        if self.constant_target is None:
            return super().attack_examples(x, y, bundle, text)
        return self.training_attack(self.constant_target, x, y)
