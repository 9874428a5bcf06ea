"""Describable Textures Dataset: 47 texture classes."""

from promptengine.data.splits import (
    SplitDataset,
    read_and_split_data,
    require,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class DescribableTextures(SplitDataset):
    dataset_dir = "dtd"
    split_file = "split_zhou_DescribableTextures.json"
    template = "{} texture."
    image_subdir = "images"

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the images/ folder of dtd-r1.0.1.tar.gz", folder=True)
        return read_and_split_data(self.image_dir)
