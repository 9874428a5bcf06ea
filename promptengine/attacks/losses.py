"""Per-sample attack objectives: each returns a (B,) tensor that the attack maximises.

The attack sums them over the batch, so the gradient of sample i depends only on sample i (no batch-size
scaling; sign and L2-normalised steps ignore the scale anyway).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

LOSSES = ("ce", "kl", "cw")


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Untargeted cross-entropy CE(z, y) per sample."""
    return F.cross_entropy(logits, y, reduction="none")


def cw_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin max_{j != y} z_j - z_y per sample (confidence 0); > 0 means misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


def kl_to_clean(logits: torch.Tensor, clean_logp: torch.Tensor) -> torch.Tensor:
    """KL(p_clean || p_adv) per sample (TRADES / FAP direction), summed over classes.

    ``clean_logp`` is ``log_softmax`` of the clean logits, detached by the caller.
    """
    return F.kl_div(F.log_softmax(logits, dim=1), clean_logp, reduction="none", log_target=True).sum(dim=1)


def per_sample_loss(
    name: str, logits: torch.Tensor, y: torch.Tensor, clean_logp: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The objective ``name`` (one of :data:`LOSSES`) per sample, computed in fp32."""
    logits = logits.float()
    if name == "ce":
        return ce_loss(logits, y)
    if name == "cw":
        return cw_margin(logits, y)
    if name == "kl":
        if clean_logp is None:
            raise ValueError("the kl loss needs the clean log-probabilities")
        return kl_to_clean(logits, clean_logp)
    raise ValueError(f"unknown attack loss '{name}' (use one of: {', '.join(LOSSES)})")
