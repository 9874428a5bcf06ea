"""APT: CoOp text prompts trained on PGD examples (TeCoA); the attack's prompt is 'onfly' (the current prompts),
'constant' (the frozen CLIP with APT's template) or 'perturbed' (the prompts move adversarially with the image)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from promptengine.clip.backbone import PromptBundle
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import OneOf, Real
from promptengine.prompting import FrozenCLIPMixin
from promptengine.registry import TRAINER_REGISTRY

from .coop import coop_spec
from .objectives import TeCoAObjective

ATTACK_PROMPTS = ("onfly", "constant", "perturbed")


@TRAINER_REGISTRY.register()
class APT(FrozenCLIPMixin, TeCoAObjective):
    """Reads the prompt keys from TRAINER.COOP, as APT's configs do."""
    script_folder, default_config = "apt", "vit_b32_ep50"

    config_domains = {"TRAINER.APT.ATTACK_PROMPT": OneOf(*ATTACK_PROMPTS),
                      "TRAINER.APT.PROMPT_ALPHA": Real(0, meaning="the 'perturbed' mode's prompt ascent step")}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.APT = CN()
        cfg.TRAINER.APT.ATTACK_PROMPT = "onfly"  # onfly | constant | perturbed (APT's --adv-prompt)
        cfg.TRAINER.APT.CONSTANT_TEMPLATE = "a photo of a {}"  # APT's constant prompt (no final period)
        cfg.TRAINER.APT.PROMPT_ALPHA = 0.0  # 'perturbed': SGD ascent step on the prompts per attack step

    def trainer_precision(self) -> str:
        return self.cfg.TRAINER.COOP.PREC

    def prompt_spec(self) -> PromptSpec:
        return coop_spec(self.cfg.TRAINER.COOP)

    def build_model(self) -> None:
        if not self.cfg.MODEL.BACKBONE.ROBUST and not self.cfg.MODEL.BACKBONE.PATH:
            print("Note: OpenAI vision weights; APT's own train.py loads the robust TeCoA tower by default "
                  "(MODEL.BACKBONE.ROBUST True, with backbone/<arch>_eps<E>.pth.tar or MODEL.BACKBONE.PATH)")
        super().build_model()
        self.constant_target = None
        if self.cfg.TRAINER.APT.ATTACK_PROMPT == "constant":
            self.constant_target = self.frozen_zero_shot([self.cfg.TRAINER.APT.CONSTANT_TEMPLATE])

    def attack_examples(self, x, y, bundle, text):
        mode = self.cfg.TRAINER.APT.ATTACK_PROMPT
        if mode == "constant":
            return self.training_attack(self.constant_target, x, y)
        if mode == "perturbed":
            return self.adversarial(x, y, bundle, text, target=self.perturbed_target(y, bundle))
        return super().attack_examples(x, y, bundle, text)

    def perturbed_target(self, y: torch.Tensor, bundle: PromptBundle) -> Callable[[torch.Tensor], torch.Tensor]:
        """A logits function whose prompt context takes one ascent step of PROMPT_ALPHA on the batch's mean CE at
        every attack step (APT's 'perturbed'); the learned prompts themselves are never changed."""
        model, step = self.model, float(self.cfg.TRAINER.APT.PROMPT_ALPHA)
        state = {"ctx": bundle.text_ctx.detach()}

        def forward(z: torch.Tensor) -> torch.Tensor:
            ctx = state["ctx"].clone().requires_grad_(True)
            with torch.enable_grad():
                prompts = replace(bundle.detached(), text_ctx=ctx)
                logits = model.logits_from_features(model.image_features(z, prompts), model.text_features(prompts))
            if z.requires_grad:  # an attack step: move the prompts with the same gradient pass
                (grad,) = torch.autograd.grad(F.cross_entropy(logits.float(), y), ctx, retain_graph=True)
                state["ctx"] = (ctx + step * grad).detach()
            return logits

        return forward
