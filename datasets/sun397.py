"""SUN397: 397 scene categories."""

import os

from promptengine.data.datum import Datum
from promptengine.data.splits import (
    SplitDataset,
    bad_line,
    read_lines,
    require,
    split_trainval,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    """Without the JSON: partition 01 (``Training_01.txt`` cut 80/20 per class, ``Testing_01.txt``),
    labels in ``ClassName.txt`` order. A class path such as ``/a/apartment_building/outdoor`` loses
    its letter level and is read backwards: "outdoor apartment_building"."""

    dataset_dir = "sun397"
    split_file = "split_zhou_SUN397.json"
    template = "a photo of a {}."
    image_subdir = "SUN397"

    def _generate(self):
        path = require(type(self).__name__, os.path.join(self.dataset_dir, "ClassName.txt"), "Partitions.zip's files")
        cname2lab = {line.lstrip("/"): i for i, (_, line) in enumerate(read_lines(path))}
        train, val = split_trainval(self.read_partition(cname2lab, "Training_01.txt"))
        return train, val, self.read_partition(cname2lab, "Testing_01.txt")

    def read_partition(self, cname2lab, filename):
        path = require(type(self).__name__, os.path.join(self.dataset_dir, filename), "Partitions.zip's files")
        items = []
        for lineno, line in read_lines(path):
            imname = line.lstrip("/")
            folder = os.path.dirname(imname)
            if folder not in cname2lab:
                raise bad_line(path, lineno, "'/<letter>/<class>/<image>.jpg' of a class in ClassName.txt", line)
            classname = " ".join(folder.split("/")[1:][::-1])
            items.append(Datum(os.path.join(self.image_dir, imname), cname2lab[folder], classname=classname))
        return items
