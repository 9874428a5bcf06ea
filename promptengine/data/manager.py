"""DataManager: builds the dataset from the registry, the transforms and the loaders."""

from __future__ import annotations

from typing import Optional

import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset, Subset

from ..distributed import rank_seed
from ..errors import UserError
from ..registry import DATASET_REGISTRY, builtin_benchmarks
from .dataset import DatasetBase
from .transforms import build_transform


class DatasetWrapper(Dataset):
    """Items as Dassl dicts: img, label, domain, impath, index."""

    def __init__(self, dataset: DatasetBase, data_source: list, transform) -> None:
        self.dataset, self.data_source, self.transform = dataset, data_source, transform

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        item = self.data_source[idx]
        img = self.dataset.read_image(item.impath)
        return {
            "img": self.transform(img),
            "label": item.label,
            "domain": item.domain,
            "impath": item.impath,
            "index": idx,
        }


def build_dataset(cfg) -> DatasetBase:
    builtin_benchmarks()  # registers the loaders

    if not cfg.DATASET.NAME:
        raise UserError("DATASET.NAME is empty (pass --dataset-config-file configs/datasets/<id>.yaml)")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)


class DataManager:
    """Owns the dataset, transforms and loaders (train_loader_x, val_loader, test_loader)."""

    def __init__(self, cfg, dataset: Optional[DatasetBase] = None, world_size: int = 1, rank: int = 0) -> None:
        self.cfg = cfg
        self.dataset = dataset or build_dataset(cfg)
        self.tfm_train = build_transform(cfg, is_train=True)
        self.tfm_test = build_transform(cfg, is_train=False)
        workers = int(cfg.DATALOADER.NUM_WORKERS)
        self.world_size, self.rank = world_size, rank
        ds = self.dataset
        self.train_set = DatasetWrapper(ds, ds.train_x, self.tfm_train) if ds.train_x else None
        self.val_set = DatasetWrapper(ds, ds.val, self.tfm_test) if ds.val else None
        test_source = ds.test if cfg.TEST.SPLIT == "test" or not ds.val else ds.val
        test_set: Dataset = DatasetWrapper(ds, test_source, self.tfm_test)
        if cfg.TEST.MAX_IMAGES > 0 and cfg.TEST.MAX_IMAGES < len(test_set):
            test_set = Subset(test_set, range(int(cfg.TEST.MAX_IMAGES)))  # the first N images, a fixed subset
        self.test_set = test_set
        self.train_batch = int(cfg.DATALOADER.TRAIN_X.BATCH_SIZE)
        self.test_batch = int(cfg.DATALOADER.TEST.BATCH_SIZE)
        self.workers = workers
        self.test_loader = self._eval_loader(self.test_set)
        self.val_loader = self._eval_loader(self.val_set) if self.val_set is not None else None

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def lab2cname(self) -> dict:
        return self.dataset.lab2cname

    @property
    def classnames(self) -> list:
        return self.dataset.classnames

    def test_items(self) -> list:
        """The Datum items evaluated by ``test_loader``, in order (the run identity digests them)."""
        data = self.test_set
        if isinstance(data, Subset):
            return [data.dataset.data_source[i] for i in data.indices]
        return list(data.data_source)

    def _eval_loader(self, data: Dataset) -> DataLoader:
        if self.world_size > 1:  # shard evaluation: rank r takes items r, r+W, ... (gathered later)
            data = Subset(data, range(self.rank, len(data), self.world_size))
        return DataLoader(data, batch_size=self.test_batch, shuffle=False, num_workers=self.workers, drop_last=False)

    def train_loader(self, epoch: int, seed: int) -> DataLoader:
        """Loader for one epoch; its order is a function of (seed, epoch) so a resumed run sees the same batches."""
        if self.train_set is None:
            raise UserError(f"dataset {self.cfg.DATASET.NAME} has no training split (it is test-only)")
        gen = torch.Generator().manual_seed(max(seed, 0) * 100003 + epoch)
        n = len(self.train_set)
        order = torch.randperm(n, generator=gen).tolist()
        drop_last = n >= self.train_batch  # Dassl: drop the last partial batch only if one full batch exists
        batch = self.train_batch
        per_rank = order
        if self.world_size > 1:
            if self.train_batch % self.world_size:
                raise UserError(f"DATALOADER.TRAIN_X.BATCH_SIZE {self.train_batch} is the global batch: it must be "
                                f"divisible by the {self.world_size} processes")
            # Every rank must run the same number of steps (each step is a collective): keep whole global batches
            # (or, below one batch, a multiple of the world size), then deal them out; rank r gets items r, r+W, ...
            keep = n - n % self.train_batch if drop_last else n - n % self.world_size
            if keep == 0:
                raise UserError(f"{n} training images cannot be split over {self.world_size} processes")
            per_rank = order[:keep][self.rank :: self.world_size]
            batch = self.train_batch // self.world_size
        return DataLoader(
            Subset(self.train_set, per_rank),
            batch_size=max(1, batch),
            shuffle=False,
            num_workers=self.workers,
            drop_last=drop_last,
            generator=torch.Generator().manual_seed(rank_seed(max(seed, 0) * 7919 + epoch, self.rank)),  # workers
        )

    def show_summary(self) -> None:
        ds, cfg = self.dataset, self.cfg
        rows = [
            ["Dataset", cfg.DATASET.NAME],
            ["# classes", f"{ds.num_classes:,}"],
            ["# train_x", f"{len(ds.train_x):,}"],
            ["# val", f"{len(ds.val):,}"],
            ["# test", f"{len(self.test_set):,}"],
        ]
        print(tabulate(rows))
