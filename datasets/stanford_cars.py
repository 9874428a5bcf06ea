"""Stanford Cars: 196 car models."""

import os

from promptengine.data.datum import Datum
from promptengine.data.splits import (
    SplitDataset,
    load_mat,
    require,
    split_trainval,
)
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    """Split JSON paths are relative to the dataset folder (``cars_train/...``, ``cars_test/...``).
    Without the JSON: the devkit's train annotations cut 80/20 per class, and the labelled test
    annotations. Class names move the trailing year to the front ("2012 Tesla Model S Sedan")."""

    dataset_dir = "stanford_cars"
    split_file = "split_zhou_StanfordCars.json"
    template = "a photo of a {}."

    def _generate(self):
        name, d = type(self).__name__, self.dataset_dir
        meta = require(name, os.path.join(d, "devkit", "cars_meta.mat"), "cars_meta.mat from car_devkit.tgz")
        train_annos = require(name, os.path.join(d, "devkit", "cars_train_annos.mat"), "the devkit train annotations")
        test_annos = require(name, os.path.join(d, "cars_test_annos_withlabels.mat"), "the labelled test annotations")
        train, val = split_trainval(self.read_annotations("cars_train", train_annos, meta))
        return train, val, self.read_annotations("cars_test", test_annos, meta)

    def read_annotations(self, image_folder, anno_file, meta_file):
        try:
            annos = load_mat(anno_file)["annotations"][0]
            names = load_mat(meta_file)["class_names"][0]
        except (KeyError, IndexError) as exc:
            raise UserError(f"{anno_file} or {meta_file} lacks the expected fields; re-download the devkit") from exc
        items = []
        for anno in annos:
            label = int(anno["class"][0, 0]) - 1
            words = str(names[label][0]).split(" ")
            classname = " ".join(words[-1:] + words[:-1])
            impath = os.path.join(self.dataset_dir, image_folder, str(anno["fname"][0]))
            items.append(Datum(impath, label, classname=classname))
        return items
