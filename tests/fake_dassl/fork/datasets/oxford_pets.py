"""A stand-in for a fork's ``datasets/oxford_pets.py``: registers ``OxfordPets`` in Dassl's registry and reads
``<DATASET.ROOT>/oxford_pets/{train,test}/<class>/*.png`` (a tiny image tree the tests write), keeping the first
``DATASET.NUM_SHOTS`` training images of each class as CoOp's few-shot sampling keeps a subset."""

from __future__ import annotations

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum


def read_split(folder):
    items = []
    for label, classname in enumerate(sorted(os.listdir(folder))):
        for fname in sorted(os.listdir(os.path.join(folder, classname))):
            items.append(Datum(impath=os.path.join(folder, classname, fname), label=label, classname=classname))
    return items


@DATASET_REGISTRY.register()
class OxfordPets(DatasetBase):
    dataset_dir = "oxford_pets"

    def __init__(self, cfg):
        root = os.path.join(os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT)), self.dataset_dir)
        train, test = read_split(os.path.join(root, "train")), read_split(os.path.join(root, "test"))
        shots = cfg.DATASET.NUM_SHOTS
        if shots >= 1:
            kept, counts = [], {}
            for item in train:
                counts[item.label] = counts.get(item.label, 0) + 1
                if counts[item.label] <= shots:
                    kept.append(item)
            train = kept
        super().__init__(train_x=train, val=[], test=test)
