"""SynthCLIP: OpenAI's CLIP architecture (``clip.model.CLIP``) at a tiny size, with the real BPE tokenizer.

The token embedding keeps CLIP's full 49,408-token vocabulary so ``clip.tokenize`` works unchanged;
only the few hundred rows for the world's words are ever trained. Every other row keeps a fixed
deterministic initialisation (:func:`token_init`), so a checkpoint can be shipped as the trained
rows alone and expanded bit-exactly (see :mod:`promptengine.synth.weights`).
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from ..clip.openai_clip import CLIP, convert_weights
from ..clip.pixels import CLIP_MEAN, CLIP_STD

# widths are multiples of 64: clip.model.build_model infers heads = width // 64 for both towers.
# context_length stays 77 so clip.load + build_model round-trip and any CLIP prompt fits.
SYNTHCLIP_CONFIG: Dict[str, int] = dict(
    embed_dim=128,
    image_resolution=32,
    vision_layers=4,
    vision_width=128,
    vision_patch_size=8,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=4,
)

TOKEN_INIT_SEED = 20240517
TOKEN_INIT_STD = 0.02



def model_config(**overrides) -> Dict[str, int]:
    cfg = dict(SYNTHCLIP_CONFIG)
    cfg.update(overrides)
    for key in ("vision_width", "transformer_width"):
        if cfg[key] % 64:
            raise ValueError(f"{key}={cfg[key]} must be a multiple of 64 (build_model sets heads = width // 64)")
    cfg["transformer_heads"] = cfg["transformer_width"] // 64
    return cfg


def token_init(vocab_size: int, width: int, seed: int = TOKEN_INIT_SEED, std: float = TOKEN_INIT_STD) -> torch.Tensor:
    """The fixed initial token-embedding table: uniform with standard deviation ``std``.

    Built from ``torch.randint`` (integers, exact) times one constant, so it is identical on every
    machine and torch version that keeps the mt19937 stream.
    """
    g = torch.Generator().manual_seed(seed)
    ints = torch.randint(-(1 << 15), 1 << 15, (vocab_size, width), generator=g, dtype=torch.int32)
    return (ints.float() + 0.5) * (std * math.sqrt(3.0) / float(1 << 15))


def build_synthclip(seed: int = 0, cfg: Optional[Dict[str, int]] = None):
    """A fresh fp32 SynthCLIP (``clip.model.CLIP``) with the fixed token-embedding initialisation."""
    cfg = dict(cfg or SYNTHCLIP_CONFIG)
    torch.manual_seed(seed)
    model = CLIP(**cfg).float()
    with torch.no_grad():
        model.token_embedding.weight.copy_(token_init(cfg["vocab_size"], cfg["transformer_width"]))
    return model


def fp16_keys(cfg: Optional[Dict[str, int]] = None):
    """State-dict keys that ``clip.model.build_model`` stores in fp16 (``convert_weights``)."""
    cfg = dict(cfg or SYNTHCLIP_CONFIG)
    small = dict(cfg, vocab_size=8)  # same module structure, cheap to build
    model = CLIP(**small)
    convert_weights(model)
    return sorted(k for k, v in model.state_dict().items() if v.dtype == torch.float16)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """CLIP's mean/std normalisation of ``(N, 3, H, W)`` images in [0, 1]."""
    mean = torch.tensor(CLIP_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def uint8_to_float(images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float in [0, 1] (what ``ToTensor`` gives)."""
    return images.permute(0, 3, 1, 2).float() / 255.0
