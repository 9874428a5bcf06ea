"""Caltech-101: 100 object classes (the background class and Faces_easy are left out, as in CoOp)."""

from promptengine.data.splits import (
    SplitDataset,
    read_and_split_data,
    require,
)
from promptengine.registry import DATASET_REGISTRY

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitDataset):
    dataset_dir = "caltech-101"
    split_file = "split_zhou_Caltech101.json"
    template = "a photo of a {}."
    image_subdir = "101_ObjectCategories"

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the extracted 101_ObjectCategories.tar.gz", folder=True)
        return read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)
