"""One configurable prompt learner for every method: a method picks its ``PromptSpec``.

- CoOp/APT: text context (shared or class-specific), depth 1, no vision prompts.
- CoCoOp: text context shifted per image by a small meta-net on the frozen image feature.
- VPT: vision prompts only (shallow or deep), hand-crafted text.
- IVLP / AdvVLP: independent text and vision deep prompts.
- MaPLe / AdvMaPLe: text prompts, vision prompts = per-layer linear projections of them (text -> vision).
- FAP / CAPT (default): vision deep prompts, text deep prompts = per-layer projections of them
  (vision -> text); the first text context is learnable and projected to the vision side (FAP's layout).
- AdvVP: a pixel padding prompt plus shallow vision tokens, hand-crafted text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import UserError
from .backbone import PromptableCLIP, PromptBundle
from .couplings import COUPLINGS, normal_param
from .text_prompts import ClassPrompts


@dataclass(frozen=True)
class PromptSpec:
    """What is learnable. Depth counts layers that receive prompts (1 = input layer only)."""

    text_n_ctx: int = 0
    text_depth: int = 1
    text_ctx_init: str = ""
    text_csc: bool = False
    class_token_position: str = "end"
    vision_n_ctx: int = 0
    vision_depth: int = 0
    coupling: str = "independent"
    conditional: bool = False  # CoCoOp meta-net
    pixel_pad: int = 0  # AdvVP padding prompt width in pixels (at the input size)
    pixel_space: str = "normalized"  # the pad is added after CLIP's normalisation ("normalized") or before ("pixel")
    pixel_init_std: float = 0.0  # pad init: N(0, std^2) (AdvVP's code: 1.0); 0 = zeros
    vision_init_std: float = 0.02  # vision prompt token init std (AdvVP's code: 1.0)
    template: str = "a photo of a {}."  # fixed prompts when text_n_ctx == 0

    def validate(self, backbone: PromptableCLIP) -> None:
        if self.coupling not in COUPLINGS:
            raise UserError(f"prompt coupling must be one of {'/'.join(COUPLINGS)}, got '{self.coupling}'")
        if self.text_n_ctx < 0 or self.vision_n_ctx < 0 or self.text_depth < 0 or self.vision_depth < 0:
            raise UserError("prompt lengths and depths must be >= 0")
        if self.text_depth > backbone.text_layers or self.vision_depth > backbone.vision_layers:
            raise UserError(
                f"prompt depth (text {self.text_depth}, vision {self.vision_depth}) exceeds the CLIP layers "
                f"(text {backbone.text_layers}, vision {backbone.vision_layers}); lower PROMPT_DEPTH"
            )
        if COUPLINGS[self.coupling].coupled:
            if self.text_n_ctx == 0 or self.text_n_ctx != self.vision_n_ctx or self.text_depth != self.vision_depth:
                raise UserError("coupled prompts need the same number of text and vision tokens and the same depth")
        if self.text_depth > 1 and self.class_token_position != "end":
            raise UserError("deep text prompts need CLASS_TOKEN_POSITION end")
        if self.pixel_space not in ("normalized", "pixel"):
            raise UserError(f"pixel prompt space must be normalized or pixel, got '{self.pixel_space}'")
        if self.text_csc and COUPLINGS[self.coupling].coupled:
            raise UserError("class-specific context cannot be coupled to vision prompts")


class PromptLearner(nn.Module):
    """Holds the learnable prompt parameters; ``forward()`` returns the parameter-only PromptBundle."""

    def __init__(self, spec: PromptSpec, backbone: PromptableCLIP, classnames: Sequence[str]) -> None:
        super().__init__()
        spec.validate(backbone)
        self.spec = spec
        dt, dv = backbone.text_width, backbone.vision_width
        self.class_prompts = ClassPrompts(
            backbone, classnames, spec.text_n_ctx, spec.text_ctx_init, spec.class_token_position, spec.template
        )
        n_t, n_v = spec.text_n_ctx, spec.vision_n_ctx
        self.ctx: Optional[nn.Parameter] = None
        if n_t:
            if self.class_prompts.init_ctx is not None and not spec.text_csc:
                init = self.class_prompts.init_ctx.clone()
                self.ctx = nn.Parameter(init)  # (n_ctx, Dt)
            else:
                self.ctx = normal_param(len(classnames), n_t, dt) if spec.text_csc else normal_param(n_t, dt)
        depth_t, depth_v = (spec.text_depth if n_t else 0), (spec.vision_depth if n_v else 0)
        self.text_deep = nn.ParameterList()
        self.vision_shallow: Optional[nn.Parameter] = None
        self.vision_deep = nn.ParameterList()
        self.proj_shallow: Optional[nn.Linear] = None
        self.proj_deep = nn.ModuleList()
        self.coupling = COUPLINGS[spec.coupling]
        self.coupling.build(self, n_t, n_v, depth_t, depth_v, dt, dv, spec.vision_init_std)
        self.pixel_prompt: Optional[nn.Parameter] = None
        if spec.pixel_pad > 0:
            size = backbone.resolution
            self.pixel_prompt = nn.Parameter(torch.randn(3, size, size) * spec.pixel_init_std)
            mask = torch.ones(1, size, size)
            mask[:, spec.pixel_pad : size - spec.pixel_pad, spec.pixel_pad : size - spec.pixel_pad] = 0
            self.register_buffer("pixel_mask", mask, persistent=False)
        self.meta_net: Optional[nn.Module] = None
        if spec.conditional:
            embed = backbone.clip.text_projection.shape[1]
            hidden = max(1, embed // 16)
            self.meta_net = nn.Sequential(nn.Linear(embed, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dt))

    def forward(self) -> PromptBundle:
        """Prompts that depend on parameters only (computed once per step and reused by every PGD iteration)."""
        spec = self.spec
        bundle = PromptBundle(text_ctx=self.ctx)
        self.coupling.fill(self, bundle)
        if self.pixel_prompt is not None:
            bundle.pixel_prompt = self.pixel_prompt * self.pixel_mask  # (3, res, res), zero inside the pad
            bundle.pixel_space = spec.pixel_space
        return bundle
