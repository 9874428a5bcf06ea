"""CAPT: consistency-guided adversarial prompt tuning with multi-modal deep prompts and a frozen-CLIP guide."""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from yacs.config import CfgNode as CN

from promptengine.clip.prompt_learner import COUPLINGS, PromptSpec
from promptengine.config.domains import Int, OneOf, Precision, Real
from promptengine.evaluation.metrics import accuracy
from promptengine.prompting import AdversarialPromptTrainer, FrozenCLIPMixin
from promptengine.registry import TRAINER_REGISTRY

from .capt_loss import ALPHA_MODES, KL_DIRECTIONS, REDUCTIONS, CAPTLossConfig, capt_loss

COLLAPSE_THRESHOLD = 1e-3


@TRAINER_REGISTRY.register()
class CAPT(FrozenCLIPMixin, AdversarialPromptTrainer):
    script_folder, default_config = "capt", "vit_b32_ep10_batch4_2ctx_notransform"
    roles = ("benchmark",)
    config_domains = {
        "TRAINER.CAPT.N_CTX": Int(1), "TRAINER.CAPT.PREC": Precision(), "TRAINER.CAPT.PROMPT_DEPTH": Int(1),
        "TRAINER.CAPT.COUPLING": OneOf(*COUPLINGS), "TRAINER.CAPT.LAMBDA": Real(0),
        "TRAINER.CAPT.ALPHA_MODE": OneOf(*ALPHA_MODES), "TRAINER.CAPT.ALPHA_FIXED": Real(0, 1),
        "TRAINER.CAPT.ALPHA_REDUCTION": OneOf(*REDUCTIONS), "TRAINER.CAPT.KL_DIRECTION": OneOf(*KL_DIRECTIONS),
    }

    @staticmethod
    def extend_cfg(cfg) -> None:
        c = CN()
        c.N_CTX = 2  # tokens per branch
        c.CTX_INIT = "a photo of a"
        c.PREC = "fp16"
        c.PROMPT_DEPTH = 9
        c.COUPLING = "vision_to_text"  # vision_to_text (FAP) | text_to_vision (MaPLe) | independent
        loss = CAPTLossConfig()  # the objective's defaults, written once (capt_loss.py)
        c.LAMBDA = loss.lam
        c.ALPHA_MODE = loss.alpha_mode  # confidence | loss_ratio | agreement | fixed
        c.ALPHA_FIXED = loss.alpha_fixed
        c.ALPHA_REDUCTION = loss.alpha_reduction  # sample | batch
        c.ALPHA_DETACH = loss.alpha_detach
        c.KL_DIRECTION = loss.kl_direction  # target_adv: KL(target || adv); adv_target: KL(adv || target)
        c.CLEAN_DETACH = loss.clean_detach
        c.FROZEN_TEMPLATES = ()  # frozen CLIP's prompts; () = the dataset's hand-crafted template
        cfg.TRAINER.CAPT = c

    def loss_cfg(self) -> CAPTLossConfig:
        c = self.cfg.TRAINER.CAPT
        return CAPTLossConfig(lam=float(c.LAMBDA), alpha_mode=c.ALPHA_MODE, alpha_fixed=float(c.ALPHA_FIXED),
                              alpha_reduction=c.ALPHA_REDUCTION, alpha_detach=bool(c.ALPHA_DETACH),
                              kl_direction=c.KL_DIRECTION, clean_detach=bool(c.CLEAN_DETACH))

    def prompt_spec(self) -> PromptSpec:
        c = self.cfg.TRAINER.CAPT
        return PromptSpec(text_n_ctx=c.N_CTX, text_depth=c.PROMPT_DEPTH, text_ctx_init=c.CTX_INIT,
                          vision_n_ctx=c.N_CTX, vision_depth=c.PROMPT_DEPTH, coupling=c.COUPLING)

    def build_model(self) -> None:
        super().build_model()
        self.frozen = self.frozen_zero_shot(list(self.cfg.TRAINER.CAPT.FROZEN_TEMPLATES) or None)  # text once per run
        self.capt_cfg = self.loss_cfg()

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        model = self.model
        bundle = model.prompts()
        text = model.text_features(bundle)  # (K, E): once per step, reused by every PGD iteration
        logits_clean = model.logits_from_features(model.image_features(x, bundle), text)
        x_adv = self.adversarial(x, y, bundle, text, clean_logits=logits_clean)
        logits_adv = model.logits_from_features(model.image_features(x_adv, bundle), text)
        with torch.no_grad():
            logits_frz = self.frozen(x)  # frozen CLIP, clean images, once per batch
        loss, terms = capt_loss(self.capt_cfg, y, logits_clean, logits_adv, logits_frz)
        out = {k: v.item() for k, v in terms.items()}
        out.update(loss=loss.item(), acc=accuracy(logits_clean.argmax(1) == y), adv_acc=accuracy(logits_adv.argmax(1) == y))
        return loss, out

    def after_epoch(self) -> None:
        summary = getattr(self, "epoch_summary", {})
        if summary and max(summary.get("cons_train", 1.0), summary.get("cons_frz", 1.0)) < COLLAPSE_THRESHOLD:
            print(f"Warning: the consistency terms collapsed to ~0 (cons_train {summary['cons_train']:.2e}, "
                  f"cons_frz {summary['cons_frz']:.2e}) at epoch {self.epoch + 1}: the adversarial examples may no "
                  "longer move the prediction (a known failure of KL-consistency training); check robust accuracy, "
                  "try a CE training attack (ATTACK.TRAIN.LOSS ce) or a lower TRAINER.CAPT.LAMBDA")
        super().after_epoch()
