"""The one image reader: any file PIL can decode -> an 8-bit RGB image, or one ``UserError`` line.

``Image.convert("RGB")`` alone is wrong for several modes: 16-bit and 32-bit integer or float images are clipped
to 255 (a 16-bit PNG turns pure white), and transparent pixels show whatever colour they hide. Here

* ``I;16*`` / ``I`` / ``F`` (16/32-bit integer, float) are scaled linearly from their real [min, max] to 0..255
  (non-finite values ignored; a constant image keeps its level relative to the type's range);
* images with alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency, ...) are composited onto white;
* ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` go through PIL's own conversion.

Decoding is bounded by PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5M pixels by default):
a larger image is an error rather than a memory blow-up. Every decoding failure names the file and the fix.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from ..errors import UserError

BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
TYPE_MAX = {"F": 1.0, "I": float(2**31 - 1)}  # a constant image's level is relative to this (16-bit: 65535)
CHECK_HINT = "python tools/check_datasets.py --check-images lists every bad file"


def read_rgb(path: str) -> Image.Image:
    """Decode ``path`` into an 8-bit RGB image (see the module docstring for each mode)."""
    if not os.path.isfile(path):
        raise UserError(f"image file not found: {path} (the split lists it; restore the file or the split)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. PIL's "Corrupt EXIF data": the pixels decode, no console noise
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return to_rgb8(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"image {path} is too large to decode safely ({' '.join(str(exc).split())[:120]}); resize "
                        "it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.UnidentifiedImageError) as exc:
        reason = " ".join(str(exc).split())[:160] or exc.__class__.__name__
        raise UserError(f"cannot read image {path}: {reason} (the file is truncated or corrupt: replace it; "
                        f"{CHECK_HINT})") from None


def to_rgb8(img: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of a loaded PIL image of any mode."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in HIGH_DEPTH_MODES:
        return Image.fromarray(scale_to_uint8(np.asarray(img), mode)).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "P":
        return img.convert("RGB")
    if img.mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """(H, W) integer or float -> (H, W) uint8, linear from the finite [min, max] to [0, 255]."""
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    values = np.where(finite, values, lo)
    if hi > lo:
        scaled = (values - lo) / (hi - lo)
    else:  # a constant image: keep its level relative to the type's range
        scaled = np.full(values.shape, min(max(lo / TYPE_MAX.get(mode, 65535.0), 0.0), 1.0))
    return np.round(scaled * 255.0).astype(np.uint8)
