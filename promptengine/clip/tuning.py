"""Which parts of CLIP a method trains: prompts only (the default), the vision tower, its last N blocks, or all.

The loader returns CLIP fully frozen; a trainer that tunes CLIP itself calls ``unfreeze`` on the backbone and
returns the module holding those parameters from ``learnable_modules``. Checkpoints then hold exactly the
parameters unfrozen here (``learnable_state`` keeps parameters that require grad), never the frozen rest.
"""

from __future__ import annotations

from typing import List

from torch import nn

from ..errors import UserError
from .backbone import PromptableCLIP

SCOPES = ("prompts", "vision", "vision_last", "all")


def vision_tail(backbone: PromptableCLIP, last_n: int) -> List[nn.Module]:
    """The last ``last_n`` transformer blocks of the vision tower and what follows them (ln_post, proj)."""
    if not backbone.is_vit:
        raise UserError("tuning the last vision blocks needs a ViT CLIP backbone (ResNet CLIPs have no blocks)")
    blocks = backbone.clip.visual.transformer.resblocks
    if not 1 <= last_n <= len(blocks):
        raise UserError(f"the number of tuned vision blocks must be in 1..{len(blocks)} (this CLIP's vision layers), "
                        f"got {last_n}")
    return [*blocks[len(blocks) - last_n:], backbone.clip.visual.ln_post]


def unfreeze(backbone: PromptableCLIP, scope: str, last_n: int = 0) -> int:
    """Make the parameters of ``scope`` learnable; returns how many scalars became learnable."""
    if scope not in SCOPES:
        raise UserError(f"tuning scope must be one of {'/'.join(SCOPES)}, got '{scope}'")
    visual = backbone.clip.visual
    if scope == "prompts":
        return 0
    if scope == "all":
        modules: List[nn.Module] = [backbone.clip]
    elif scope == "vision":
        modules = [visual]
    else:
        modules = vision_tail(backbone, last_n)
    params = [p for m in modules for p in m.parameters()]
    if scope == "vision_last" and getattr(visual, "proj", None) is not None:
        params.append(visual.proj)  # (Dv, E): the projection after ln_post
    for p in params:
        p.requires_grad_(True)
    return sum(p.numel() for p in params)
