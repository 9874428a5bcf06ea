"""FGVC-Aircraft (2013b): 100 aircraft variants, with the official train/val/test lists."""

import os

from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.fewshot import prepare_splits
from promptengine.data.splits import bad_line, check_images_exist, dataset_folder, read_lines, require
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class FGVCAircraft(DatasetBase):
    """``fgvc_aircraft/`` is the ``data/`` folder of fgvc-aircraft-2013b. Labels follow
    ``variants.txt``; each ``images_variant_<split>.txt`` line is an image id, a space, and the variant
    name (which may hold spaces). No split JSON is involved."""

    dataset_dir = "fgvc_aircraft"
    template = "a photo of a {}, a type of aircraft."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "images")
        variants = self._require("variants.txt")
        cname2lab = {line: i for i, (_, line) in enumerate(read_lines(variants))}
        train, val, test = (self.read_list(cname2lab, f"images_variant_{s}.txt") for s in ("train", "val", "test"))
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def _require(self, filename):
        path = os.path.join(self.dataset_dir, filename)
        return require(type(self).__name__, path, "the file from the data/ folder of fgvc-aircraft-2013b.tar.gz")

    def read_list(self, cname2lab, filename):
        path = self._require(filename)
        items = []
        for lineno, line in read_lines(path):
            image_id, _, variant = line.partition(" ")
            if variant not in cname2lab:
                raise bad_line(path, lineno, "'<image id> <variant from variants.txt>'", line)
            items.append(Datum(os.path.join(self.image_dir, image_id + ".jpg"), cname2lab[variant], classname=variant))
        return items
