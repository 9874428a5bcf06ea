"""Per-sample attack objectives: each returns a (B,) tensor that the attack maximises.

The attack sums them over the batch, so the gradient of sample i depends only on sample i (no batch-size
scaling; sign and L2-normalised steps ignore the scale anyway).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

LOSSES = ("ce", "kl", "cw", "embed")
#: losses measured against a reference (the clean log-probabilities, a target embedding), with no "fooled" notion
REFERENCE_LOSSES = ("kl", "embed")


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Untargeted cross-entropy CE(z, y) per sample."""
    return F.cross_entropy(logits, y, reduction="none")


def cw_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin max_{j != y} z_j - z_y per sample (confidence 0); > 0 means misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


def kl_from_log_probs(target_logp: torch.Tensor, input_logp: torch.Tensor) -> torch.Tensor:
    """KL(p_target || p_input) per sample from (B, K) log-probabilities, summed over classes -> (B,).

    The toolbox's only KL: the KL training attack, FAP's and CAPT's objectives all reduce to it.
    """
    return (target_logp.exp() * (target_logp - input_logp)).sum(dim=1)


def kl_per_sample(target_logits: torch.Tensor, input_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(target) || softmax(input)) per sample from (B, K) logits, computed in fp32 -> (B,)."""
    return kl_from_log_probs(F.log_softmax(target_logits.float(), dim=1), F.log_softmax(input_logits.float(), dim=1))


def kl_to_clean(logits: torch.Tensor, clean_logp: torch.Tensor) -> torch.Tensor:
    """KL(p_clean || p_adv) per sample (TRADES / FAP direction), summed over classes.

    ``clean_logp`` is ``log_softmax`` of the clean logits, detached by the caller.
    """
    return kl_from_log_probs(clean_logp, F.log_softmax(logits, dim=1))


def embedding_sq_l2(embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance ||e - t||^2 per sample, summed over the embedding dimensions (not averaged) -> (B,).

    An unsupervised objective: the attack maximises it, a trainer may minimise its batch mean.
    """
    return (embedding.float() - target.float()).pow(2).sum(dim=1)


def per_sample_loss(
    name: str, logits: torch.Tensor, y: torch.Tensor, clean_logp: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The objective ``name`` (one of :data:`LOSSES`) per sample, computed in fp32.

    ``clean_logp`` is the reference of the reference losses: the clean log-probabilities for "kl", the target
    embedding (B, E) for "embed" (then ``logits`` is the attacked forward's embedding).
    """
    logits = logits.float()
    if name == "embed":
        if clean_logp is None:
            raise ValueError("the embed loss needs the target embedding")
        return embedding_sq_l2(logits, clean_logp)
    if name == "ce":
        return ce_loss(logits, y)
    if name == "cw":
        return cw_margin(logits, y)
    if name == "kl":
        if clean_logp is None:
            raise ValueError("the kl loss needs the clean log-probabilities")
        return kl_to_clean(logits, clean_logp)
    raise ValueError(f"unknown attack loss '{name}' (use one of: {', '.join(LOSSES)})")
