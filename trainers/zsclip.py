"""Zero-shot CLIP with the per-dataset hand-crafted template, or an ensemble of templates."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from promptengine.config.domains import Precision
from promptengine.prompting import FrozenCLIPMixin, PromptTrainer
from promptengine.registry import TRAINER_REGISTRY

# The 7 ImageNet templates CoOp's ZeroshotCLIP2 ensembles (from CLIP's prompt-engineering notebook).
ENSEMBLE_TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(FrozenCLIPMixin, PromptTrainer):
    """No training: classify with the frozen CLIP and hand-crafted prompts (evaluate with --eval-only)."""
    script_folder, default_config = "zsclip", "vit_b16"
    roles = ("zero_shot",)
    upstream_names = ("AdvZeroshotCLIP",)  # FAP's name for zero-shot evaluation
    training_free = True

    config_domains = {"TRAINER.ZEROSHOTCLIP.PREC": Precision()}

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.ZEROSHOTCLIP = CN()
        cfg.TRAINER.ZEROSHOTCLIP.ENSEMBLE = False  # average the dataset template with ENSEMBLE_TEMPLATES
        cfg.TRAINER.ZEROSHOTCLIP.TEMPLATES = ()  # explicit templates override both
        cfg.TRAINER.ZEROSHOTCLIP.PREC = "fp32"

    def build_model(self) -> None:
        self.backbone = self.load_backbone()
        zs = self.cfg.TRAINER.ZEROSHOTCLIP
        templates = list(zs.TEMPLATES) or [self.dataset_template]
        if zs.ENSEMBLE:
            templates += [t for t in ENSEMBLE_TEMPLATES if t not in templates]
        print(f"Prompt templates: {templates}")
        self.model = self.frozen_zero_shot(templates)
        self.register_model("model", self.model)

    def attack_target(self):
        return self.model

    def train(self) -> None:
        print("ZeroshotCLIP has nothing to train; evaluating")
        self.loaded_epoch = None
        self.test()
