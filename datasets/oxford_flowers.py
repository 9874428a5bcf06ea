"""Oxford Flowers-102: 102 flower species."""

import os
from collections import defaultdict

from promptengine.data.splits import (
    SplitDataset,
    load_mat,
    read_json,
    require,
    split_per_class,
)
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    """Without the JSON: ``imagelabels.mat`` (1-based label of ``jpg/image_<i:05d>.jpg``) cut 50/20/30
    per class; names from ``cat_to_name.json`` ("1".."102")."""

    dataset_dir = "oxford_flowers"
    split_file = "split_zhou_OxfordFlowers.json"
    template = "a photo of a {}, a type of flower."
    image_subdir = "jpg"

    def _generate(self):
        name = type(self).__name__
        label_file = require(name, os.path.join(self.dataset_dir, "imagelabels.mat"), "imagelabels.mat")
        cname_file = require(name, os.path.join(self.dataset_dir, "cat_to_name.json"), "cat_to_name.json")
        lab2cname = read_json(cname_file)
        by_label = defaultdict(list)
        for i, label in enumerate(load_mat(label_file)["labels"][0]):
            by_label[int(label)].append(os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg"))
        missing = [y for y in by_label if str(y) not in lab2cname]
        if missing:
            raise UserError(f"{cname_file} has no name for label {missing[0]}; expected keys '1'..'102'")
        print("Splitting data into 50% train, 20% val, and 30% test")
        return split_per_class((y - 1, lab2cname[str(y)], paths) for y, paths in by_label.items())
