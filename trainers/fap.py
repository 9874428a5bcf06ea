"""FAP: image->text coupled deep prompts; CE(clean) + lambda * mean_i[(cos(f_clean, f_adv) + 1) * KL_i(clean || adv)],
training attack maximising KL(clean || adv) (FAP's TRADES option); test attack PGD-100 CE."""

from __future__ import annotations

from typing import Dict, Tuple

import torch

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import OneOf, Real
from promptengine.evaluation.metrics import accuracy
from promptengine.prompting import AdversarialPromptTrainer
from promptengine.registry import TRAINER_REGISTRY

from .maple import context_words, coupled_domains, coupled_keys, coupled_spec, prompt_init_domain, prompt_init_key
from .objectives import fap_loss


@TRAINER_REGISTRY.register()
class FAP(AdversarialPromptTrainer):
    script_folder, default_config = "fap", "vit_b32_ep10_batch4_2ctx_notransform"
    upstream_unused = ("TRAINER.FAP.CLASSIFIER",)  # FAP's key, never read by its code either
    config_domains = {**coupled_domains("FAP"), **prompt_init_domain("FAP"), "TRAINER.FAP.LAMBDA": Real(0),
                      "TRAINER.FAP.ADV_TERM": OneOf("cos", "kl")}

    @staticmethod
    def extend_cfg(cfg) -> None:
        coupled_keys(cfg, "FAP")
        cfg.TRAINER.FAP.LAMBDA = 1.5  # the released scripts' LAMBDA_1 (FAP's ATTACK.PGD.LAMBDA_1 is translated here)
        cfg.TRAINER.FAP.ADV_TERM = "cos"  # cos: (cos + 1)-weighted KL (FAP); kl: plain KL (TRADES-like ablation)
        prompt_init_key(cfg.TRAINER.FAP)  # dataset_template = FAP's code; our recipes keep CTX_INIT (docs/METHODS.md)

    @staticmethod
    def from_fap_attack(cfg, lambda_1: float, adv_term: str) -> str:
        """FAP's attack keys as this method's (the config loader reads them): LAMBDA_1, and the cos-weighted KL when
        FAP's ADV_TERM is cos or ce. Returns the keys it set."""
        node = cfg.TRAINER.get("FAP")
        if node is None:  # a Dassl cfg without this method's keys
            return ""
        node.LAMBDA = float(lambda_1)
        if adv_term in ("cos", "ce"):
            node.ADV_TERM = "cos"
        return "TRAINER.FAP.LAMBDA/ADV_TERM"

    @property
    def lam(self) -> float:
        return float(self.cfg.TRAINER.FAP.LAMBDA)

    @property
    def adv_term(self) -> str:
        return self.cfg.TRAINER.FAP.ADV_TERM

    def prompt_spec(self) -> PromptSpec:
        node = self.cfg.TRAINER.FAP
        return coupled_spec(node, "vision_to_text", context_words(node, "FAP", self.dm.dataset))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        model = self.model
        bundle = model.prompts()
        text = model.text_features(bundle)  # (K, E), once per step
        f_clean = model.image_features(x, bundle)
        logits_clean = model.logits_from_features(f_clean, text)
        x_adv = self.adversarial(x, y, bundle, text, clean_logits=logits_clean)
        f_adv = model.image_features(x_adv, bundle)
        logits_adv = model.logits_from_features(f_adv, text)
        loss, nat, adv = fap_loss(y, logits_clean, logits_adv, f_clean, f_adv, self.lam, self.adv_term)
        return loss, {"loss": loss.item(), "nat_loss": nat.item(), "adv_loss": adv.item(),
                      "acc": accuracy(logits_clean.argmax(1) == y), "adv_acc": accuracy(logits_adv.argmax(1) == y)}
