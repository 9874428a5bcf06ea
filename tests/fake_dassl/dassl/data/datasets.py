"""``dassl.data.datasets``: ``DATASET_REGISTRY``, ``Datum`` and ``DatasetBase`` (train_x / val / test lists)."""

from __future__ import annotations

from ..utils import Registry

DATASET_REGISTRY = Registry("DATASET")


class Datum:
    def __init__(self, impath="", label=0, domain=0, classname=""):
        self.impath, self.label, self.domain, self.classname = impath, label, domain, classname


class DatasetBase:
    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self.train_x, self.train_u, self.val, self.test = train_x, train_u, val, test
        pairs = sorted({(d.label, d.classname) for d in train_x})
        self.lab2cname = dict(pairs)
        self.classnames = [name for _, name in pairs]
        self.num_classes = len(pairs)
