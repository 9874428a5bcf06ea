"""Food-101: 101 dishes. CoOp's split is its own 50/20/30 cut, not the official train/test lists."""

from promptengine.data.splits import (
    SplitDataset,
    read_and_split_data,
    require,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(SplitDataset):
    dataset_dir = "food-101"
    split_file = "split_zhou_Food101.json"
    template = "a photo of {}, a type of food."
    image_subdir = "images"

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the images/ folder of food-101.tar.gz", folder=True)
        return read_and_split_data(self.image_dir)
