"""STL-10 from its binary release (``stl10_binary/``, torchvision's on-disk format); the unlabelled images are not used."""

from __future__ import annotations

import os
from typing import List

import numpy as np

from promptengine.data.array_images import ArrayDataset, Splits, array_items
from promptengine.data.datum import Datum
from promptengine.data.splits import docs_ref, read_lines, require
from promptengine.data.zeroshot_names import zeroshot_classname
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY

SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE


@DATASET_REGISTRY.register()
class STL10(ArrayDataset):
    """The 5,000 labelled train images for training, the 8,000 test images as val and test (the format has no
    validation set; selecting on val selects on the test set). Labels 1..10 in ``*_y.bin`` become 0..9."""

    dataset_dir = "stl10_binary"
    template = "a photo of a {}."

    def _splits(self) -> Splits:
        name = type(self).__name__
        path = require(name, os.path.join(self.dataset_dir, "class_names.txt"), "class_names.txt of stl10_binary.tar.gz")
        self._names = [zeroshot_classname(line) for _, line in read_lines(path)]
        train = self._part("train")
        test = self._part("test")
        return train, test, test

    def _part(self, part: str) -> List[Datum]:
        name = type(self).__name__
        x_path = os.path.join(self.dataset_dir, f"{part}_X.bin")
        y_path = require(name, os.path.join(self.dataset_dir, f"{part}_y.bin"), f"{part}_y.bin of stl10_binary.tar.gz")
        labels = np.fromfile(y_path, dtype=np.uint8).astype(int) - 1
        rows = self._open(x_path)
        if len(rows) != len(labels):
            raise UserError(f"{name}: {x_path} holds {len(rows)} images but {y_path} {len(labels)} labels; "
                            f"re-download stl10_binary.tar.gz (see {docs_ref(name)})")
        self.keep_open(x_path, rows)
        return array_items(x_path, labels, self._names)

    def _open(self, source: str):
        """The images of ``source`` mapped from disk (no copy), as N x 96 x 96 x 3 views."""
        name = type(self).__name__
        require(name, source, f"{os.path.basename(source)} of stl10_binary.tar.gz")
        size = os.path.getsize(source)
        if size == 0 or size % IMAGE_BYTES:
            raise UserError(f"{name}: {source} has {size} bytes, not a multiple of {IMAGE_BYTES} (one 3x96x96 "
                            f"image): the file is truncated; re-download it (see {docs_ref(name)})")
        # Each image is stored channel by channel, each channel column by column.
        return np.memmap(source, dtype=np.uint8, mode="r").reshape(-1, 3, SIDE, SIDE).transpose(0, 3, 2, 1)
