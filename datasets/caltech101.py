"""Caltech-101: 100 object classes (the background class and Faces_easy are left out, as in CoOp)."""

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

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(DatasetBase):
    dataset_dir = "caltech-101"
    split_file = "split_zhou_Caltech101.json"
    template = "a photo of a {}."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "101_ObjectCategories")
        train, val, test = load_or_generate_split(cfg, self, self.image_dir, self._generate)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the extracted 101_ObjectCategories.tar.gz", folder=True)
        return read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)
