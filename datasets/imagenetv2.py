"""ImageNetV2 (matched-frequency), test only: evaluates a model trained on ImageNet."""

import os

from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.splits import dataset_folder, listdir_nohidden, require
from promptengine.registry import DATASET_REGISTRY

from .imagenet import read_classnames


@DATASET_REGISTRY.register()
class ImageNetV2(DatasetBase):
    """Folders are named 0..999: folder ``i`` holds the class on line ``i`` of classnames.txt, so the
    file must keep imagenet/classnames.txt's line order. train_x = test = all images."""

    dataset_dir = "imagenetv2"
    template = "a photo of a {}."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "imagenetv2-matched-frequency-format-val")
        classnames = read_classnames(os.path.join(self.dataset_dir, "classnames.txt"), name)
        require(name, self.image_dir, "the extracted matched-frequency folders 0..999", folder=True)
        data = []
        for label, cname in enumerate(classnames.values()):
            cdir = require(name, os.path.join(self.image_dir, str(label)), f"the images of class {label}", True)
            data.extend(Datum(os.path.join(cdir, im), label, classname=cname) for im in listdir_nohidden(cdir))
        super().__init__(train_x=data, test=data)
