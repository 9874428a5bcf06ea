"""The fixed, class-balanced image subset every stage of a report is evaluated on."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, List, Sequence, Tuple

import torch

from ..errors import UserError


def balanced_indices(labels: Sequence[int], per_class: int, max_images: int, seed: int = 0) -> List[int]:
    """Up to ``per_class`` dataset indices per class (a seeded draw, the same every time), round-robin over classes
    until ``max_images``; sorted. Independent of batching and of the model."""
    by_class = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[int(label)].append(i)
    if not by_class:
        raise UserError("the test split is empty: nothing to evaluate (check DATASET.ROOT and the dataset config)")
    g = torch.Generator().manual_seed(seed)
    drawn = {c: [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()[:per_class]]
             for c, idx in sorted(by_class.items())}
    chosen: List[int] = []
    for rank in range(per_class):
        for c in sorted(drawn):
            if rank < len(drawn[c]) and len(chosen) < max_images:
                chosen.append(drawn[c][rank])
    return sorted(chosen)


def load_subset(labels: Sequence[int], fetch: Callable[[int], torch.Tensor], indices: Sequence[int]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) in [0, 1], labels (N,) and dataset indices (N,) of ``indices``."""
    x = torch.stack([fetch(i) for i in indices])
    y = torch.tensor([int(labels[i]) for i in indices], dtype=torch.long)
    return x, y, torch.tensor(list(indices), dtype=torch.long)
