"""How text and vision prompts relate, one small class per coupling (a new coupling is one new class).

Each coupling creates its parameters on the prompt learner (``build``; the attribute names are the checkpoint
keys: ``text_deep``, ``vision_shallow``, ``vision_deep``, ``proj_shallow``, ``proj_deep``) and fills the
parameter-only ``PromptBundle`` from them (``fill``). The learnable text context ``ctx`` is the learner's own. A coupling
sees the learner as a plain module (it adds parameters to it and reads them back), so it does not import it.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from .backbone import PromptBundle


def normal_param(*shape: int, std: float = 0.02) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * std)


class Coupling:
    """Base: ``coupled`` couplings derive one side's prompts from the other's (same length and depth needed)."""

    name = ""
    coupled = True

    def build(self, pl: nn.Module, n_t: int, n_v: int, depth_t: int, depth_v: int, dt: int, dv: int,
              vision_std: float) -> None:
        raise NotImplementedError

    def fill(self, pl: nn.Module, bundle: PromptBundle) -> None:
        raise NotImplementedError


class Independent(Coupling):
    """IVLP/VPT/CoOp: text and vision prompts are separate parameters."""

    name, coupled = "independent", False

    def build(self, pl, n_t, n_v, depth_t, depth_v, dt, dv, vision_std) -> None:
        pl.text_deep.extend(normal_param(n_t, dt) for _ in range(max(0, depth_t - 1)))
        if depth_v:
            pl.vision_shallow = normal_param(n_v, dv, std=vision_std)
            pl.vision_deep.extend(normal_param(n_v, dv, std=vision_std) for _ in range(depth_v - 1))

    def fill(self, pl, bundle) -> None:
        bundle.text_deep = list(pl.text_deep)
        bundle.vision_shallow = pl.vision_shallow
        bundle.vision_deep = list(pl.vision_deep)


class TextToVision(Coupling):
    """MaPLe: vision prompts are per-layer linear projections of the text prompts."""

    name = "text_to_vision"

    def build(self, pl, n_t, n_v, depth_t, depth_v, dt, dv, vision_std) -> None:
        pl.text_deep.extend(normal_param(n_t, dt) for _ in range(depth_t - 1))
        pl.proj_shallow = nn.Linear(dt, dv)
        pl.proj_deep.extend(nn.Linear(dt, dv) for _ in range(depth_t - 1))

    def fill(self, pl, bundle) -> None:
        bundle.text_deep = list(pl.text_deep)
        bundle.vision_shallow = pl.proj_shallow(pl.ctx)  # (n, Dv)
        bundle.vision_deep = [proj(p) for proj, p in zip(pl.proj_deep, pl.text_deep)]


class VisionToText(Coupling):
    """FAP/CAPT: deep vision prompts are learnable and the deep text prompts are their projections; the first text
    context is learnable and projected to the vision input (FAP's layout)."""

    name = "vision_to_text"

    def build(self, pl, n_t, n_v, depth_t, depth_v, dt, dv, vision_std) -> None:
        pl.proj_shallow = nn.Linear(dt, dv)
        pl.vision_deep.extend(normal_param(n_v, dv) for _ in range(depth_v - 1))
        pl.proj_deep.extend(nn.Linear(dv, dt) for _ in range(depth_v - 1))

    def fill(self, pl, bundle) -> None:
        bundle.vision_shallow = pl.proj_shallow(pl.ctx)  # (n, Dv)
        bundle.vision_deep = list(pl.vision_deep)
        bundle.text_deep = [proj(p) for proj, p in zip(pl.proj_deep, pl.vision_deep)]  # (n, Dt) each


COUPLINGS: Dict[str, Coupling] = {c.name: c for c in (Independent(), TextToVision(), VisionToText())}
