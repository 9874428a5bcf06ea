"""``dassl.data``: ``DataManager`` (dataset + transforms + loaders) and the batch layout of Dassl's wrapper.

Batches are dicts with ``img`` (after the transforms), ``label``, ``domain``, ``impath`` and ``index``. The
transforms follow Dassl's order: resize, optional flip, to-tensor ([0, 1]), then ``normalize`` with
``INPUT.PIXEL_MEAN/STD`` when listed in ``INPUT.TRANSFORMS``.
"""

from __future__ import annotations

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .datasets import DATASET_REGISTRY


def build_transform(cfg, is_train=True):
    choices = cfg.INPUT.TRANSFORMS
    steps = [T.Resize(tuple(cfg.INPUT.SIZE))]
    if is_train and "random_flip" in choices:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    if "normalize" in choices:
        steps.append(T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
    return T.Compose(steps)


class DatasetWrapper(Dataset):
    def __init__(self, data_source, transform):
        self.data_source, self.transform = data_source, transform

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        img = self.transform(Image.open(item.impath).convert("RGB"))
        return {"img": img, "label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}


def _loader(cfg, data, batch_size, transform, is_train):
    return DataLoader(DatasetWrapper(data, transform), batch_size=batch_size, shuffle=is_train,
                      num_workers=cfg.DATALOADER.NUM_WORKERS, drop_last=is_train and len(data) >= batch_size,
                      pin_memory=torch.cuda.is_available() and cfg.USE_CUDA)


class DataManager:
    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
        tfm_train = custom_tfm_train or build_transform(cfg, is_train=True)
        tfm_test = custom_tfm_test or build_transform(cfg, is_train=False)
        self.dataset = dataset
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self.train_loader_x = _loader(cfg, dataset.train_x, cfg.DATALOADER.TRAIN_X.BATCH_SIZE, tfm_train, True)
        self.train_loader_u = None
        self.val_loader = (_loader(cfg, dataset.val, cfg.DATALOADER.TEST.BATCH_SIZE, tfm_test, False)
                           if dataset.val else None)
        self.test_loader = _loader(cfg, dataset.test, cfg.DATALOADER.TEST.BATCH_SIZE, tfm_test, False)

    @property
    def num_classes(self):
        return self.dataset.num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self.dataset.lab2cname
