"""Food-101: 101 dishes. CoOp's split is its own 50/20/30 cut, not the official train/test lists."""

import os

from promptengine.data.datum import DatasetBase
from promptengine.data.fewshot import prepare_splits
from promptengine.data.splits import (
    check_images_exist,
    dataset_folder,
    load_or_generate_split,
    read_and_split_data,
    require,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(DatasetBase):
    dataset_dir = "food-101"
    split_file = "split_zhou_Food101.json"
    template = "a photo of {}, a type of food."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "images")
        train, val, test = load_or_generate_split(cfg, self, self.image_dir, self._generate)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the images/ folder of food-101.tar.gz", folder=True)
        return read_and_split_data(self.image_dir)
