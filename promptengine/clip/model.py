"""``PromptedCLIP``: frozen CLIP + a prompt learner; forward always returns logits.

Fast paths used by training and evaluation: ``text_features(bundle)`` once per step,
``classifier(...)`` = a logits function with cached text features for PGD iterations.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import PromptableCLIP, PromptBundle
from .prompt_learner import PromptLearner, PromptSpec
from .text_prompts import ClassPrompts

Logits = Callable[[torch.Tensor], torch.Tensor]


class PromptedCLIP(nn.Module):
    """The model every trainer builds. Only ``prompt_learner`` has learnable parameters."""

    def __init__(self, backbone: PromptableCLIP, spec: PromptSpec, classnames: Sequence[str]) -> None:
        super().__init__()
        self.backbone = backbone
        self.classnames = list(classnames)
        self.prompt_learner = PromptLearner(spec, backbone, classnames)
        self._fixed_text: Optional[torch.Tensor] = None  # (K, E) cache when the text side has nothing to learn

    @property
    def spec(self) -> PromptSpec:
        return self.prompt_learner.spec

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.backbone.logit_scale

    def prompts(self) -> PromptBundle:
        return self.prompt_learner()

    def text_is_fixed(self, bundle: PromptBundle) -> bool:
        """No text prompts and a frozen text tower: the class text features never change (VPT, AdvVP, TeCoA)."""
        text_tower = (p for n, p in self.backbone.clip.named_parameters() if not n.startswith("visual."))
        return bundle.text_ctx is None and not bundle.text_deep and not any(p.requires_grad for p in text_tower)

    def text_features(self, bundle: PromptBundle) -> torch.Tensor:
        """(K, E) L2-normalised class text features for the given prompts (computed once when they are fixed)."""
        if self.text_is_fixed(bundle):
            if self._fixed_text is None:
                with torch.no_grad():
                    self._fixed_text = self._encode_text(bundle)
            return self._fixed_text
        return self._encode_text(bundle)

    def _encode_text(self, bundle: PromptBundle) -> torch.Tensor:
        cp: ClassPrompts = self.prompt_learner.class_prompts
        emb = cp.assemble(bundle.text_ctx)
        feats = self.backbone.encode_text_embeddings(emb, cp.eot_index, bundle.text_deep)
        return F.normalize(feats, dim=-1)

    def image_features(self, x: torch.Tensor, bundle: PromptBundle) -> torch.Tensor:
        """(B, E) L2-normalised image features."""
        return F.normalize(self.backbone.encode_image(x, bundle), dim=-1)

    def logits_from_features(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        scale = self.logit_scale
        if text_features.dim() == 3:  # (B, K, E): per-image text features (CoCoOp)
            return scale * torch.einsum("be,bke->bk", image_features, text_features)
        return scale * image_features @ text_features.t()

    def conditional_logits(self, x: torch.Tensor, bundle: PromptBundle) -> torch.Tensor:
        """CoCoOp: context shifted by meta_net(frozen image feature), text encoded per image."""
        img = self.image_features(x, bundle)  # (B, E)
        shift = self.prompt_learner.meta_net(img)  # (B, Dt)
        feats = [self.text_features(PromptBundle(text_ctx=bundle.text_ctx + s, text_deep=bundle.text_deep))
                 for s in shift]
        return self.logits_from_features(img, torch.stack(feats))  # (B, K)

    def forward(self, x: torch.Tensor, bundle: Optional[PromptBundle] = None,
                text_features: Optional[torch.Tensor] = None) -> torch.Tensor:
        bundle = bundle if bundle is not None else self.prompts()
        if self.spec.conditional:
            return self.conditional_logits(x, bundle)
        if text_features is None:
            text_features = self.text_features(bundle)
        return self.logits_from_features(self.image_features(x, bundle), text_features)

    def classifier(self, bundle: Optional[PromptBundle] = None, detach: bool = True) -> Logits:
        """A logits function for attacks and evaluation: prompts and text features computed once here."""
        with torch.set_grad_enabled(not detach and torch.is_grad_enabled()):
            bundle = bundle if bundle is not None else self.prompts()
            if detach:
                bundle = bundle.detached()
            if self.spec.conditional:
                return lambda x: self.conditional_logits(x, bundle)
            text = self.text_features(bundle)
        return lambda x: self.logits_from_features(self.image_features(x, bundle), text)


class FrozenZeroShot(nn.Module):
    """The frozen CLIP's hand-crafted zero-shot classifier (text features computed once per run)."""

    def __init__(self, backbone: PromptableCLIP, classnames: Sequence[str], templates: Sequence[str]) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():
            feats = []
            for template in templates:
                cp = ClassPrompts(backbone, classnames, 0, template=template)
                feats.append(F.normalize(backbone.encode_text(cp.tokens), dim=-1))
            text = F.normalize(torch.stack(feats).mean(0), dim=-1)  # (K, E): template ensemble
        self.register_buffer("text_features", text, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = F.normalize(self.backbone.encode_image(x), dim=-1)
        return self.backbone.logit_scale * img @ self.text_features.t()
