"""Dassl pipelines normalise in the transforms; the attack core needs [0, 1] images (eps in pixel units).

``pipeline_stats`` reads the pipeline from the config once (refusing what cannot be undone) and ``to_pixels``
undoes ``Normalize(PIXEL_MEAN, PIXEL_STD)`` at the model's entry. The model then normalises inside, as everywhere
in this toolbox, so an L-inf budget of eps/255 is eps/255 in pixel space.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..errors import UserError

Stats = Tuple[Tuple[float, ...], Tuple[float, ...]]
RANGE_TOLERANCE = 1e-3  # float rounding of Normalize and its inverse
REFUSED = {
    "instance_norm": "normalises each image by its own statistics, which cannot be undone",
    "gaussian_noise": "adds noise after normalisation, so images leave [0, 1]",
}


def pipeline_stats(cfg) -> Optional[Stats]:
    """(mean, std) to undo when ``normalize`` is among INPUT.TRANSFORMS, None for [0, 1] pipelines."""
    transforms = [str(t) for t in cfg.INPUT.TRANSFORMS]
    for name, why in REFUSED.items():
        if name in transforms:
            raise UserError(f"INPUT.TRANSFORMS has '{name}', which {why}: adversarial training and evaluation need "
                            f"[0, 1] images (eps in pixel units); remove '{name}' from INPUT.TRANSFORMS")
    if bool(getattr(cfg.INPUT, "NO_TRANSFORM", False)):
        raise UserError("INPUT.NO_TRANSFORM True gives PIL images, not tensors: set it False")
    if "normalize" not in transforms:
        return None
    mean, std = tuple(float(v) for v in cfg.INPUT.PIXEL_MEAN), tuple(float(v) for v in cfg.INPUT.PIXEL_STD)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UserError(f"INPUT.PIXEL_MEAN {list(mean)} / INPUT.PIXEL_STD {list(std)} must hold 3 values each, "
                        "with positive stds")
    return mean, std


def to_pixels(x: torch.Tensor, stats: Optional[Stats]) -> torch.Tensor:
    """(B, 3, H, W) transform output -> fp32 [0, 1] images; refuses a batch a custom transform left elsewhere."""
    x = x.float()
    if stats is not None:
        mean = x.new_tensor(stats[0]).view(1, -1, 1, 1)  # (1, 3, 1, 1)
        std = x.new_tensor(stats[1]).view(1, -1, 1, 1)
        x = x * std + mean
    if x.numel() and (x.min() < -RANGE_TOLERANCE or x.max() > 1 + RANGE_TOLERANCE):
        raise UserError(f"images are in [{x.min().item():.3g}, {x.max().item():.3g}] after undoing "
                        "INPUT.PIXEL_MEAN/STD, not [0, 1]: the data pipeline transforms images in a way the plug-in "
                        "cannot undo (use Dassl's standard transforms with 'normalize', or none)")
    return x.clamp(0, 1)
