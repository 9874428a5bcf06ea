"""A frozen OpenAI CLIP whose two towers accept prompts at any layer, for any width and depth.

This is the one prompt-injection mechanism of the project. It runs CLIP's own modules (token
embedding, residual blocks, layer norms, projections) and only decides what enters each block:
- text: learnable context replaces the placeholder tokens at positions ``1..1+n_ctx`` before
  block 0 (shallow) and before blocks ``1..depth-1`` (deep, MaPLe/IVLP style);
- vision: ``n_v`` prompt tokens are appended after the patch tokens before ``ln_pre`` (shallow)
  and replaced before blocks ``1..depth-1`` (deep); an optional additive pixel prompt (AdvVP padding
  prompt) acts on the normalised image, or on the [0, 1] image.
Images enter as [0, 1] tensors; CLIP's mean/std normalisation happens here, exactly once.
The text sequence is cut to the longest prompt (exact because of the causal mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .openai_clip import clip
from .pixels import CLIP_MEAN, CLIP_STD


@dataclass
class PromptBundle:
    """The prompts of one forward pass; every field is optional (empty = plain CLIP)."""

    text_ctx: Optional[torch.Tensor] = None  # (n_ctx, Dt) shared or (K, n_ctx, Dt) class-specific
    text_deep: Sequence[torch.Tensor] = field(default_factory=list)  # blocks 1.. : (n_ctx, Dt)
    vision_shallow: Optional[torch.Tensor] = None  # (n_v, Dv)
    vision_deep: Sequence[torch.Tensor] = field(default_factory=list)  # blocks 1.. : (n_v, Dv)
    pixel_prompt: Optional[torch.Tensor] = None  # (3, H, W), added to the image
    pixel_space: str = "normalized"  # where the pixel prompt is added: "normalized" (after CLIP's mean/std) | "pixel"

    def detached(self) -> PromptBundle:
        """A copy with no autograd history (attacks must not build graphs into parameters)."""
        det = lambda t: None if t is None else t.detach()
        return replace(
            self,
            text_ctx=det(self.text_ctx),
            text_deep=[t.detach() for t in self.text_deep],
            vision_shallow=det(self.vision_shallow),
            vision_deep=[t.detach() for t in self.vision_deep],
            pixel_prompt=det(self.pixel_prompt),
        )


class ImageNormalizer(nn.Module):
    """CLIP mean/std normalisation as a module, so attacks live in [0, 1] pixel space."""

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PromptableCLIP(nn.Module):
    """Frozen CLIP (OpenAI ViT architecture) with prompt-aware text and image encoders."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip = clip_model
        self.is_vit = hasattr(clip_model.visual, "transformer")  # ResNet CLIPs: text prompts only
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.normalizer = ImageNormalizer()
        self._resize_noted = False

    # ---- shapes -----------------------------------------------------------------------------------------------
    @property
    def text_width(self) -> int:
        return self.clip.ln_final.weight.shape[0]

    @property
    def vision_width(self) -> int:
        return self.clip.visual.conv1.out_channels if self.is_vit else 0

    @property
    def text_layers(self) -> int:
        return len(self.clip.transformer.resblocks)

    @property
    def vision_layers(self) -> int:
        return len(self.clip.visual.transformer.resblocks) if self.is_vit else 0

    @property
    def resolution(self) -> int:
        return int(self.clip.visual.input_resolution)

    @property
    def context_length(self) -> int:
        return int(self.clip.positional_embedding.shape[0])

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def train(self, mode: bool = True) -> PromptableCLIP:
        """The frozen CLIP always stays in eval mode (no BN/dropout drift)."""
        super().train(mode)
        self.clip.eval()
        return self

    # ---- text ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: List[str]) -> torch.Tensor:
        """(n, context_length) token ids; a prompt that does not fit is a one-line UserError."""
        try:
            return clip.tokenize(texts, context_length=self.context_length)
        except RuntimeError as exc:
            longest = max(texts, key=len)
            raise UserError(
                f"prompt too long for CLIP's {self.context_length}-token context: '{longest[:80]}' "
                "(shorten the class name or use fewer context tokens)"
            ) from exc

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, L) ids -> (n, L, Dt) token embeddings."""
        return self.clip.token_embedding(tokens.to(self.clip.positional_embedding.device))

    def encode_text_embeddings(
        self,
        embeddings: torch.Tensor,
        eot_index: torch.Tensor,
        deep: Sequence[torch.Tensor] = (),
        ctx_start: int = 1,
    ) -> torch.Tensor:
        """(n, L, Dt) prompt embeddings -> (n, E) text features (not normalised).

        ``deep[i]`` ((n_ctx, Dt) or (n, n_ctx, Dt)) replaces the context tokens before block i+1.
        """
        length = int(eot_index.max()) + 1  # causal mask: tokens after EOT never influence it
        x = embeddings[:, :length] + self.clip.positional_embedding[:length].to(embeddings.dtype)
        x = x.permute(1, 0, 2)  # (L, n, Dt)
        blocks = self.clip.transformer.resblocks
        if len(deep) > len(blocks) - 1:
            raise UserError(f"text prompt depth {len(deep) + 1} exceeds the {len(blocks)} text layers of this CLIP")
        for i, block in enumerate(blocks):
            if 1 <= i <= len(deep):
                prompt = deep[i - 1]
                n_ctx = prompt.shape[-2]
                prompt = prompt.to(x.dtype)
                prompt = prompt.unsqueeze(1).expand(-1, x.shape[1], -1) if prompt.dim() == 2 else prompt.permute(1, 0, 2)
                x = torch.cat([x[:ctx_start], prompt, x[ctx_start + n_ctx :]], dim=0)
            x = block(x)
        x = x.permute(1, 0, 2)  # (n, L, Dt)
        x = self.clip.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot_index.to(x.device)]  # (n, Dt)
        return x @ self.clip.text_projection

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Plain CLIP text features (n, E) for token ids, with the context cut to the longest prompt."""
        return self.encode_text_embeddings(self.embed_tokens(tokens), tokens.argmax(dim=-1))

    # ---- vision ---------------------------------------------------------------------------------------------
    def prepare_images(self, x: torch.Tensor, pixel_prompt: Optional[torch.Tensor] = None,
                       pixel_space: str = "normalized") -> torch.Tensor:
        """[0, 1] images -> normalised images at the model's resolution (resized inside the model if needed);
        a pixel prompt is added after normalisation (AdvVP as in its authors' code) or to the [0, 1] image."""
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            if not self._resize_noted:
                print(f"Note: images of {tuple(x.shape[-2:])} are resized to {self.resolution}px inside the model")
                self._resize_noted = True
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bicubic", align_corners=False,
                              antialias=True)
        if pixel_prompt is None:
            return self.normalizer(x)
        pixel_prompt = pixel_prompt.to(x.dtype)  # (3, res, res) at the model's resolution
        if pixel_space == "pixel":
            return self.normalizer(x + pixel_prompt)
        return self.normalizer(x) + pixel_prompt

    def encode_image(self, x: torch.Tensor, prompts: Optional[PromptBundle] = None) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, E) image features (not normalised)."""
        prompts = prompts or PromptBundle()
        visual = self.clip.visual
        if not self.is_vit:
            if prompts.vision_shallow is not None or prompts.vision_deep:
                raise UserError("vision prompts need a ViT CLIP backbone (ResNet CLIPs have no tokens to prompt)")
            x = self.prepare_images(x, prompts.pixel_prompt, prompts.pixel_space)
            return visual(x.to(visual.conv1.weight.dtype))
        x = visual.ln_post(self._vision_sequence(x, prompts)[0])  # (B, Dv): the class token
        return x @ visual.proj

    def encode_image_tokens(self, x: torch.Tensor, prompts: Optional[PromptBundle] = None) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> (B, L, E): every output token through ``ln_post`` and ``proj`` (the class
        token first, then the ``vision_grid ** 2`` patch tokens row by row, then any vision prompt tokens).

        Token 0 is ``encode_image``'s feature; the patch tokens are what text-guided attention (TGA-ZSR) compares with
        the class text feature."""
        if not self.is_vit:
            raise UserError("image tokens need a ViT CLIP backbone (ResNet CLIPs pool their feature map)")
        visual = self.clip.visual
        x = visual.ln_post(self._vision_sequence(x, prompts or PromptBundle()).permute(1, 0, 2))  # (B, L, Dv)
        return x @ visual.proj

    @property
    def vision_grid(self) -> int:
        """Patch tokens per image side (resolution // patch size); 0 for ResNet CLIPs."""
        return self.resolution // int(self.clip.visual.conv1.kernel_size[0]) if self.is_vit else 0

    def _vision_sequence(self, x: torch.Tensor, prompts: PromptBundle) -> torch.Tensor:
        """[0, 1] images -> (L, B, Dv): the ViT's token sequence after its last block, prompts injected."""
        visual = self.clip.visual
        x = self.prepare_images(x, prompts.pixel_prompt, prompts.pixel_space)
        x = x.to(visual.conv1.weight.dtype)
        x = visual.conv1(x)  # (B, Dv, g, g)
        x = x.flatten(2).permute(0, 2, 1)  # (B, g*g, Dv)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # (B, 1+g*g, Dv)
        if prompts.vision_shallow is not None:
            shallow = prompts.vision_shallow.to(x.dtype)
            shallow = shallow.expand(x.shape[0], -1, -1) if shallow.dim() == 2 else shallow
            x = torch.cat([x, shallow], dim=1)  # (B, 1+g*g+n_v, Dv)
        elif prompts.vision_deep:
            raise UserError("deep vision prompts need shallow vision prompts (vision prompt depth >= 1)")
        x = visual.ln_pre(x).permute(1, 0, 2)  # (L, B, Dv)
        blocks = visual.transformer.resblocks
        if len(prompts.vision_deep) > len(blocks) - 1:
            raise UserError(
                f"vision prompt depth {len(prompts.vision_deep) + 1} exceeds the {len(blocks)} vision layers of this CLIP"
            )
        for i, block in enumerate(blocks):
            if 1 <= i <= len(prompts.vision_deep):
                prompt = prompts.vision_deep[i - 1].to(x.dtype)
                n_v = prompt.shape[-2]
                prompt = prompt.unsqueeze(1).expand(-1, x.shape[1], -1) if prompt.dim() == 2 else prompt.permute(1, 0, 2)
                x = torch.cat([x[:-n_v], prompt], dim=0)
            x = block(x)
        return x
