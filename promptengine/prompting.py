"""The composition layer methods are built from: a prompt spec + an objective on one engine.

``PromptTrainer`` builds the frozen CLIP, the method's network (by default a ``PromptedCLIP`` with its
``PromptSpec``) and registers what ``learnable_modules`` names (by default the prompt learner, so checkpoints hold
prompts only; a method that tunes CLIP itself unfreezes it with ``promptengine.clip.tuning`` and names it there).
``AdversarialPromptTrainer`` adds the training attack: prompts and text features are computed once per step and
reused by every PGD iteration, which only takes gradients with respect to the input.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attacks import AttackSpec, attack, mix_seed, train_spec
from .clip.backbone import PromptableCLIP, PromptBundle
from .clip.loading import load_clip, load_visual_weights
from .clip.model import FrozenZeroShot, PromptedCLIP
from .clip.prompt_learner import PromptSpec
from .config.weights import robust_weights_path
from .engine.precision import attack_autocast
from .engine.trainer import TrainerX
from .errors import UserError
from .evaluation.metrics import accuracy

DEFAULT_TEMPLATE = "a photo of a {}."


class PromptTrainer(TrainerX):
    """A prompt-learning method: override ``prompt_spec`` and, for a new objective, ``compute_loss``."""

    #: the method's protocol scripts ``scripts/<script_folder>/*.sh`` ("" = none) and the config they use by default
    #: (``configs/trainers/<Trainer>/<default_config>.yaml``); the runner, the tests and docs read them from here
    script_folder = ""
    default_config = ""

    #: what the toolbox asks the registry for instead of naming a method: "zero_shot" (the frozen CLIP with
    #: hand-crafted prompts, which reports attack with --zero-shot), "benchmark" (the method capt-bench times)
    roles: Tuple[str, ...] = ()

    #: upstream compatibility, declared by the method itself (never inherited) and read by
    #: ``promptengine.config.upstream`` through the registry: its trainer names in upstream scripts (compared
    #: case-insensitively), upstream config nodes read as its own node, and full keys upstream configs set that
    #: it does not read (accepted and dropped, with a note)
    upstream_names: Tuple[str, ...] = ()
    upstream_nodes: Dict[str, str] = {}
    upstream_unused: Tuple[str, ...] = ()

    def prompt_spec(self) -> PromptSpec:
        raise NotImplementedError

    @property
    def dataset_template(self) -> str:
        return getattr(type(self.dm.dataset), "template", DEFAULT_TEMPLATE)

    def load_backbone(self) -> PromptableCLIP:
        name = self.cfg.MODEL.BACKBONE.NAME
        print(f"Loading CLIP (backbone: {name})")
        clip_model = load_clip(name, self.cfg.MODEL.BACKBONE.DOWNLOAD_ROOT)
        path = robust_weights_path(self.cfg)  # PATH, or APT's default file when ROBUST
        if path:
            print(f"Loading robust vision weights from {path}")
            load_visual_weights(clip_model, path)
            clip_model.requires_grad_(False)
        return PromptableCLIP(clip_model).to(self.device)

    def build_model(self) -> None:
        """Backbone, network, then one optimizer and schedule per learnable module (registered under its name)."""
        self.backbone = self.load_backbone()
        self.model = self.build_network().to(self.device)
        for name, module in self.learnable_modules().items():
            n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
            print(f"Learnable parameters in {name}: {n_params:,}")
            optim, sched = self.build_optim(module)
            self.register_model(name, module, optim, sched)

    def build_network(self) -> nn.Module:
        """The model trained and evaluated (``self.model``): CLIP with this method's prompts."""
        spec = self.prompt_spec()
        model = PromptedCLIP(self.backbone, spec, self.classnames)
        if spec.text_n_ctx:
            print(f'Initial context: "{model.prompt_learner.class_prompts.prefix_text}"')
            print(f"Number of context words (tokens): {spec.text_n_ctx}")
        if spec.text_n_ctx and spec.vision_n_ctx:
            print(f"COUPLING {spec.coupling}")  # which side's prompts are learnt and which are projected
        print(f"Prompt spec: {spec}")
        return model

    def learnable_modules(self) -> Dict[str, nn.Module]:
        """What is trained and checkpointed, by checkpoint folder name: the parameters of each module that require
        grad get an optimizer and are saved (prompts only by default; see ``promptengine.clip.tuning``)."""
        return {"prompt_learner": self.model.prompt_learner}

    def parse_batch_train(self, batch: dict):
        self.batch_index = batch.get("index")  # dataset indices: each image's own attack random start
        return super().parse_batch_train(batch)

    def forward_backward(self, batch: dict) -> Dict[str, float]:
        x, y = self.parse_batch_train(batch)
        with self.autocast():
            loss, terms = self.compute_loss(x, y)
        self.model_backward_and_update(loss, terms=terms)
        return terms

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Clean cross-entropy (CoOp and the other clean prompt learners)."""
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"loss": loss.item(), "acc": accuracy(logits.argmax(1) == y)}


class AdversarialPromptTrainer(PromptTrainer):
    """Adds PGD training examples generated against the current prompts (white-box, 'onfly')."""

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        if train_spec(cfg) is None:
            raise UserError(
                f"{type(self).__name__} trains on adversarial examples: set ATTACK.TRAIN.ENABLED True and "
                "ATTACK.TRAIN.STEPS > 0 (or FAP's ATTACK.PGD.* keys)"
            )

    @property
    def train_attack(self) -> AttackSpec:
        return train_spec(self.cfg)

    @functools.cached_property
    def train_attack_autocast(self):
        """The training attack's precision (ATTACK.TRAIN.PRECISION, fp32 by default, outside the step's autocast)."""
        return attack_autocast(self.cfg, "TRAIN", self.device)

    def adversarial(self, x: torch.Tensor, y: torch.Tensor, bundle: PromptBundle, text: Optional[torch.Tensor],
                    spec: Optional[AttackSpec] = None, clean_logits: Optional[torch.Tensor] = None,
                    target: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """PGD examples against fixed (detached) prompts, or against ``target`` (a logits function) when given;
        text features reused by every iteration; per-image random starts fresh every epoch."""
        det = bundle.detached()
        if target is not None:
            classifier = target
        elif self.model.spec.conditional:
            classifier = lambda z: self.model.conditional_logits(z, det)
        else:
            # fp32 text features: the step may have computed them under autocast, the attack runs in its own precision
            text_det = (text.detach() if text is not None else self.model.text_features(det)).float()
            classifier = lambda z: self.model.logits_from_features(self.model.image_features(z, det), text_det)
        return self.training_attack(classifier, x, y, spec, clean_logits)

    def training_attack(self, classifier, x: torch.Tensor, y: torch.Tensor, spec: Optional[AttackSpec] = None,
                        clean_logits: Optional[torch.Tensor] = None,
                        target_embedding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the training attack on ``classifier`` with this step's random starts and the attack precision.

        Random starts are drawn per image from (attack seed, run SEED, epoch, image index): fresh every epoch,
        different for every run seed, and independent of how images are batched (a torchrun rank's half batch gets
        the same starts as the full batch). Without image indices the batch's noise is drawn from (attack seed,
        run SEED, epoch, batch number). ``target_embedding`` is the reference of the embedding attack loss
        (``classifier`` then returns embeddings)."""
        spec = spec or self.train_attack
        ids = getattr(self, "batch_index", None)
        if ids is not None and ids.shape[0] == x.shape[0]:
            seed = mix_seed(spec.seed, int(self.cfg.SEED), self.epoch)
        else:
            ids = None
            seed = mix_seed(spec.seed, int(self.cfg.SEED), self.epoch, getattr(self, "batch_idx", 0))
        return attack(classifier, x, y, replace(spec, seed=seed),
                      clean_logits=None if clean_logits is None else clean_logits.detach(),
                      module=self.model, autocast=self.train_attack_autocast, sample_ids=ids,
                      target_embedding=target_embedding)


class FrozenCLIPMixin:
    """The frozen CLIP's zero-shot classifier over the current classes (text features once per run)."""

    def frozen_zero_shot(self, templates: Optional[Sequence[str]] = None) -> FrozenZeroShot:
        templates = list(templates or [self.dataset_template])
        return FrozenZeroShot(self.backbone, self.classnames, templates).to(self.device)
