"""Caltech-256 (``caltech256/256_ObjectCategories/``, torchvision's layout): 257 folders, clutter included."""

from __future__ import annotations

import os

from promptengine.data.splits import SplitDataset, listdir_nohidden, require, split_per_class
from promptengine.data.zeroshot_names import zeroshot_classname
from promptengine.registry import DATASET_REGISTRY


def caltech256_classname(folder: str) -> str:
    """``"252.car-side-101"`` -> "car side": the number and the ``-101`` suffix dropped (as TeCoA's and TGA-ZSR's
    loaders do), then the zero-shot rule."""
    return zeroshot_classname(folder.partition(".")[2].replace("-101", ""))


@DATASET_REGISTRY.register()
class Caltech256(SplitDataset):
    """No official split: without the split JSON each class is cut 50/20/30 by CoOp's rule (seeded, so every run
    sees the same split). Labels follow the sorted folders (``001.ak47`` = 0, ..., ``257.clutter`` = 256). Only
    ``.jpg`` files count (the archive holds a few stray files)."""

    dataset_dir = "caltech256"
    split_file = "split_Caltech256.json"
    template = "a photo of a {}."
    image_subdir = "256_ObjectCategories"

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the extracted 256_ObjectCategories.tar", folder=True)
        folders = [f for f in listdir_nohidden(self.image_dir) if os.path.isdir(os.path.join(self.image_dir, f))]

        def groups():
            for label, folder in enumerate(folders):
                cdir = os.path.join(self.image_dir, folder)
                paths = [os.path.join(cdir, f) for f in listdir_nohidden(cdir) if f.lower().endswith(".jpg")]
                yield label, caltech256_classname(folder), paths

        return split_per_class(groups())
