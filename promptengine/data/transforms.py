"""Transforms by Dassl name, producing [0, 1] tensors (normalisation happens inside the model)."""

from __future__ import annotations

from typing import List

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from ..errors import UserError

INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}
AVAILABLE = (
    "random_flip", "random_resized_crop", "normalize", "instance_norm", "random_crop", "random_translation",
    "center_crop", "cutout", "imagenet_policy", "randaugment", "gaussian_noise", "colorjitter",
    "randomgrayscale", "gaussian_blur",
)
_NOTED = {"normalize": False}


class GaussianNoise:
    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return (img + torch.randn_like(img) * self.std + self.mean).clamp(0, 1)


class Cutout:
    """Zero out ``n`` square patches of side ``length`` (on the tensor)."""

    def __init__(self, n: int, length: int) -> None:
        self.n, self.length = n, length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        mask = torch.ones(h, w)
        for _ in range(self.n):
            y, x = int(torch.randint(h, ()).item()), int(torch.randint(w, ()).item())
            mask[max(0, y - self.length // 2) : y + self.length // 2, max(0, x - self.length // 2) : x + self.length // 2] = 0
        return img * mask


def build_transform(cfg, is_train: bool = True) -> T.Compose:
    """Dassl's pipeline order; ``normalize`` is accepted and skipped (the model normalises once)."""
    names: List[str] = list(cfg.INPUT.TRANSFORMS)
    unknown = [n for n in names if n not in AVAILABLE]
    if unknown:
        raise UserError(f"unknown transform '{unknown[0]}' in INPUT.TRANSFORMS (available: {', '.join(AVAILABLE)})")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATIONS:
        raise UserError(f"INPUT.INTERPOLATION must be one of {', '.join(INTERPOLATIONS)}, got '{cfg.INPUT.INTERPOLATION}'")
    if "normalize" in names and not _NOTED["normalize"]:
        print("Note: 'normalize' in INPUT.TRANSFORMS is skipped: CLIP normalisation happens once, inside the model")
        _NOTED["normalize"] = True
    interp = INTERPOLATIONS[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    tfms: list = []
    if not is_train or cfg.INPUT.NO_TRANSFORM:
        tfms += [T.Resize(max(size), interpolation=interp), T.CenterCrop(size)]
        return T.Compose(tfms + [T.ToTensor()])
    if "random_crop" not in names and "random_resized_crop" not in names:
        tfms.append(T.Resize(size, interpolation=interp))
    if "random_translation" in names:
        tfms.append(T.RandomAffine(degrees=0, translate=(0.125, 0.125)))
    if "random_crop" in names:
        tfms.append(T.RandomCrop(size, padding=cfg.INPUT.CROP_PADDING))
    if "random_resized_crop" in names:
        tfms.append(T.RandomResizedCrop(size, scale=tuple(cfg.INPUT.RRCROP_SCALE), interpolation=interp))
    if "random_flip" in names:
        tfms.append(T.RandomHorizontalFlip())
    if "imagenet_policy" in names:
        tfms.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET))
    if "randaugment" in names:
        tfms.append(T.RandAugment(cfg.INPUT.RANDAUGMENT_N, cfg.INPUT.RANDAUGMENT_M))
    if "colorjitter" in names:
        tfms.append(T.ColorJitter(cfg.INPUT.COLORJITTER_B, cfg.INPUT.COLORJITTER_C, cfg.INPUT.COLORJITTER_S,
                                  cfg.INPUT.COLORJITTER_H))
    if "randomgrayscale" in names:
        tfms.append(T.RandomGrayscale(p=cfg.INPUT.RGS_P))
    if "gaussian_blur" in names:
        tfms.append(T.RandomApply([T.GaussianBlur(cfg.INPUT.GB_K)], p=cfg.INPUT.GB_P))
    tfms.append(T.ToTensor())
    if "cutout" in names:
        tfms.append(Cutout(cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN))
    if "gaussian_noise" in names:
        tfms.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    return T.Compose(tfms)
