"""PatchCamelyon (PCAM) from its HDF5 files (``pcam/camelyonpatch_level_2_split_*_{x,y}.h5``, torchvision's layout).

Reading HDF5 needs the ``h5py`` package; without it the loader stops with one line saying so.
"""

from __future__ import annotations

import os
from typing import Any, List

import numpy as np

from promptengine.data.array_images import ArrayDataset, Splits, array_items
from promptengine.data.datum import Datum
from promptengine.data.splits import docs_ref, require
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY

PARTS = {"train": "train", "val": "valid", "test": "test"}
# TeCoA / PMG-AFT / TGA-ZSR prompt "this is a photo of healthy lymph node tissue." and "... lymph node tumor tissue.":
CLASSNAMES = ("healthy lymph node tissue", "lymph node tumor tissue")
# RobustVLM (CLIP_benchmark) names the same two labels
ROBUSTVLM_CLASSNAMES = ("lymph node", "lymph node containing metastatic tumor tissue")


def import_h5py(name: str, path: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise UserError(f"{name}: reading {path} needs the h5py package: pip install h5py (see {docs_ref(name)})") from None
    return h5py


def h5_dataset(name: str, path: str, key: str) -> Any:
    """The dataset ``key`` of the HDF5 file ``path``, left open (rows are read on demand)."""
    require(name, path, f"{os.path.basename(path)} (decompressed from its .h5.gz download)")
    h5py = import_h5py(name, path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{name}: cannot open {path} as HDF5 ({exc}); the file is truncated or still gzipped: "
                        f"re-download and gunzip it (see {docs_ref(name)})") from None
    if key not in f:
        raise UserError(f"{name}: {path} has no dataset '{key}' (keys: {sorted(f)[:4]}); it is not a PCAM file "
                        f"(see {docs_ref(name)})")
    return f[key]


@DATASET_REGISTRY.register()
class PCAM(ArrayDataset):
    """The official train / valid / test files as train / val / test; label 1 = metastatic tissue in the centre."""

    dataset_dir = "pcam"
    template = "this is a photo of {}."

    def _file(self, part: str, xy: str) -> str:
        return os.path.join(self.dataset_dir, f"camelyonpatch_level_2_split_{PARTS[part]}_{xy}.h5")

    def _splits(self) -> Splits:
        train, val, test = (self._part(p) for p in ("train", "val", "test"))
        return train, val, test

    def _part(self, part: str) -> List[Datum]:
        name = type(self).__name__
        x_path, y_path = self._file(part, "x"), self._file(part, "y")
        y = h5_dataset(name, y_path, "y")
        labels = np.asarray(y[()]).reshape(-1)
        y.file.close()
        x = self._open(x_path)
        shape = tuple(x.shape)
        x.file.close()  # reopened on first read, in the process that reads (HDF5 handles must not cross a fork)
        if shape[:1] != labels.shape or shape[1:] != (96, 96, 3):
            raise UserError(f"{name}: {x_path} holds images of shape {shape} for {len(labels)} labels in {y_path}; "
                            f"expected N x 96 x 96 x 3 for N labels (re-download them, see {docs_ref(name)})")
        return array_items(x_path, labels.tolist(), CLASSNAMES)

    def _open(self, source: str) -> Any:
        return h5_dataset(type(self).__name__, source, "x")
