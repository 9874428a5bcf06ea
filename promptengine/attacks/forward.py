"""What an attack calls: a model's forward, returning fp32 logits under an optional autocast."""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

import torch

from ..errors import UserError

Forward = Callable[[torch.Tensor], torch.Tensor]
AutocastFactory = Callable[[], ContextManager]


def draw(forward: Forward, n: int) -> ContextManager:
    """The n-th draw of ``forward``'s randomness (EOT), when it has any (a ``with_draw`` method); else nothing."""
    select = getattr(forward, "with_draw", None)
    return select(n) if callable(select) else contextlib.nullcontext()


def logits_of(forward: Forward, inp: torch.Tensor, autocast: Optional[AutocastFactory]) -> torch.Tensor:
    """fp32 logits of ``forward(inp)``, under ``autocast()`` when given."""
    with autocast() if autocast is not None else contextlib.nullcontext():
        out = forward(inp)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != inp.shape[0]:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"the attacked forward must return logits of shape (B, K); got {got} for a batch of "
                        f"{inp.shape[0]} (a trainer whose forward returns a loss in training mode needs a logits path)")
    return out.float()
