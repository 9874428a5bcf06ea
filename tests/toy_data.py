"""An in-memory 4-class colour dataset for fast engine tests (registered as ``ToyColors``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.fewshot import prepare_splits
from promptengine.registry import DATASET_REGISTRY

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}


def toy_split(split: str, n: int) -> list:
    return [Datum(f"toy://{split}/{c}/{i}", label=k, classname=f"{c} square")
            for k, c in enumerate(COLORS) for i in range(n)]


if "ToyColors" not in DATASET_REGISTRY:

    @DATASET_REGISTRY.register()
    class ToyColors(DatasetBase):
        template = "a photo of a {}."

        def __init__(self, cfg) -> None:
            tr, va, te = prepare_splits(cfg, "ToyColors", "", toy_split("train", 20), toy_split("val", 4),
                                        toy_split("test", 10))
            super().__init__(tr, va, te)

        def read_image(self, impath: str) -> Image.Image:
            _, _, split, colour, idx = impath.split("/")
            rng = np.random.default_rng(int(idx) + (1000 if split == "test" else 0))
            arr = np.array(COLORS[colour])[None, None] + rng.normal(0, 40, (32, 32, 3))
            return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
