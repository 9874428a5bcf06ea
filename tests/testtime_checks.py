"""Shared check for test-time defenses: adaptation never leaks across images, batches or the test set's order."""

from __future__ import annotations

from typing import List

import torch


def assert_order_free(defense, x: torch.Tensor, trained: List[torch.Tensor], batch: int = 3) -> torch.Tensor:
    """The defense's logits of ``x`` at once equal those of ``x`` shuffled and cut into batches of ``batch``, and the
    tensors in ``trained`` (the state adaptation starts from) are back to their values afterwards. Returns the
    logits (so a caller can check that adaptation changed anything at all)."""
    before = [t.detach().clone() for t in trained]
    with torch.no_grad():
        together = defense(x)
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(1))
        shuffled = torch.cat([defense(x[perm][i:i + batch]) for i in range(0, x.shape[0], batch)])
    back = torch.empty_like(shuffled)
    back[perm] = shuffled
    assert torch.equal(back, together), "reordering or rebatching the test images changed a logit"
    assert all(torch.equal(t, b) for t, b in zip(trained, before)), "the trained state is not restored"
    return together
