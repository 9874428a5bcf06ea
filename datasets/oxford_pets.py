"""Oxford-IIIT Pet: 37 cat and dog breeds."""

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
class OxfordPets(SplitDataset):
    """Without the split JSON: the official ``trainval.txt`` cut 80/20 per class, and ``test.txt``.
    The breed is the image name without its trailing ``_<n>``, lowercased."""

    dataset_dir = "oxford_pets"
    split_file = "split_zhou_OxfordPets.json"
    template = "a photo of a {}, a type of pet."
    image_subdir = "images"

    @property
    def anno_dir(self) -> str:
        return os.path.join(self.dataset_dir, "annotations")

    def _generate(self):
        train, val = split_trainval(self.read_annotations("trainval.txt"))
        return train, val, self.read_annotations("test.txt")

    def read_annotations(self, filename):
        path = require(type(self).__name__, os.path.join(self.anno_dir, filename), "the official annotations")
        items = []
        for lineno, line in read_lines(path):
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 4 or not fields[1].isdigit() or "_" not in fields[0]:
                raise bad_line(path, lineno, "'<Breed>_<n> <class id> <species> <breed id>'", line)
            imname = fields[0]
            breed = imname.rsplit("_", 1)[0].lower()
            items.append(Datum(os.path.join(self.image_dir, imname + ".jpg"), int(fields[1]) - 1, classname=breed))
        return items
