"""ImageNet-A (natural adversarial examples), test only: evaluates a model trained on ImageNet."""

import os

from promptengine.data.dataset import DatasetBase
from promptengine.data.splits import dataset_folder
from promptengine.registry import DATASET_REGISTRY

from .imagenet import read_class_folders, read_classnames


@DATASET_REGISTRY.register()
class ImageNetA(DatasetBase):
    """200 of the 1,000 ImageNet classes: labels 0..199 follow the sorted wnid folders (not the
    ImageNet label ids); names come from the full classnames.txt. train_x = test = all images."""

    dataset_dir = "imagenet-adversarial"
    template = "a photo of a {}."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "imagenet-a")
        classnames = read_classnames(os.path.join(self.dataset_dir, "classnames.txt"), name)
        data = read_class_folders(name, self.image_dir, classnames)
        super().__init__(train_x=data, test=data)
