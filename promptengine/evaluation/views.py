"""Augmented views of one test image for test-time defenses (TPT-style prompt tuning over many views).

A view is a random resized crop (torchvision's sampling: area share and aspect ratio drawn, up to 10 tries, else the
central crop) resized back to the image's size, then flipped with probability 1/2. Everything is differentiable in
the image (slicing and bilinear resizing), so an adaptive attack can differentiate through the views, and the crop
boxes come from the generator the caller passes (the defense's per-image generator), so the views of an image never
depend on the batch or the test set's order.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F

Box = Tuple[int, int, int, int]  # top, left, height, width


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def crop_box(height: int, width: int, generator: torch.Generator, scale: Tuple[float, float] = (0.08, 1.0),
             ratio: Tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
    """A random resized crop's box (torchvision's rule): area share in ``scale``, log-uniform aspect in ``ratio``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    in_ratio = width / height  # fallback: the central crop at the nearest allowed aspect ratio
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augmented_views(image: torch.Tensor, n_views: int, generator: torch.Generator) -> torch.Tensor:
    """(1 + n_views, C, H, W): the image itself first, then ``n_views`` random resized crops with random flips."""
    if image.dim() == 4:
        image = image[0]
    _, height, width = image.shape
    views: List[torch.Tensor] = [image]
    for _ in range(n_views):
        top, left, h, w = crop_box(height, width, generator)
        crop = image[:, top:top + h, left:left + w].unsqueeze(0)
        view = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)[0]
        if float(torch.rand((), generator=generator)) < 0.5:
            view = view.flip(-1)
        views.append(view)
    return torch.stack(views)
