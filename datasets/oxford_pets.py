"""Oxford-IIIT Pet: 37 cat and dog breeds."""

import os

from promptengine.data.datum import DatasetBase, Datum
from promptengine.data.fewshot import prepare_splits
from promptengine.data.splits import (
    bad_line,
    check_images_exist,
    dataset_folder,
    load_or_generate_split,
    read_lines,
    require,
    split_trainval,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class OxfordPets(DatasetBase):
    """Without the split JSON: the official ``trainval.txt`` cut 80/20 per class, and ``test.txt``.
    The breed is the image name without its trailing ``_<n>``, lowercased."""

    dataset_dir = "oxford_pets"
    split_file = "split_zhou_OxfordPets.json"
    template = "a photo of a {}, a type of pet."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.anno_dir = os.path.join(self.dataset_dir, "annotations")
        train, val, test = load_or_generate_split(cfg, self, self.image_dir, self._generate)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

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
