"""Datasets stored as arrays of pixels in a few files (CIFAR pickles, STL-10 binaries, PCAM HDF5), not one file per image.

An image's path is virtual: ``<file>#<row>`` (for example ``$DATA/cifar-10-batches-py/test_batch#17``), so few-shot
draws, caches and per-image records name it like any image file. ``ArrayDataset.read_image`` opens the file once per
process (data-loader workers reopen it after a fork; HDF5 handles must not be shared across processes) and turns
the row into RGB with the one conversion every reader uses (``images.to_rgb8``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

from ..errors import UserError
from .dataset import DatasetBase
from .datum import Datum
from .fewshot import prepare_splits
from .images import to_rgb8
from .splits import dataset_folder, docs_ref

SEP = "#"
Splits = Tuple[List[Datum], List[Datum], List[Datum]]


def array_path(source: str, row: int) -> str:
    """The virtual path of row ``row`` of the array file ``source``."""
    return f"{source}{SEP}{row}"


def parse_array_path(impath: str) -> Tuple[str, int]:
    """``<file>#<row>`` -> (file, row); anything else is a one-line error."""
    source, sep, row = impath.rpartition(SEP)
    if not sep or not source or not row.isdigit():
        raise UserError(f"not an array image path: {impath} (expected <array file>{SEP}<row>, as the loader writes it)")
    return source, int(row)


def array_items(source: str, labels: Sequence[int], classnames: Sequence[str]) -> List[Datum]:
    """One Datum per row of ``source``; labels must index ``classnames`` (else one line naming the file)."""
    k = len(classnames)
    bad = [y for y in labels if not 0 <= int(y) < k]
    if bad:
        raise UserError(f"{source} holds the label {int(bad[0])}, outside 0..{k - 1}: the file does not belong to "
                        "this dataset or is damaged (re-download it)")
    return [Datum(array_path(source, i), int(y), classname=classnames[int(y)]) for i, y in enumerate(labels)]


class ArrayDataset(DatasetBase):
    """Base of the array-file datasets. Subclasses set ``dataset_dir`` and implement ``_splits`` (Datum lists of
    virtual paths; return the test list itself as val where the format has no validation set) and ``_open`` (an
    indexable of HxWx3 uint8 rows for one file; it may also be called for files ``_splits`` already read)."""

    split_source = "official files"

    def __init__(self, cfg) -> None:
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self._arrays: Dict[str, Any] = {}
        self._pid = os.getpid()
        train, val, test = self._splits()
        val_is_test = val is test
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test, fewshot_val=not val_is_test)
        super().__init__(train_x=train, val=test if val_is_test else val, test=test)

    def _splits(self) -> Splits:
        raise NotImplementedError

    def _open(self, source: str) -> Any:
        raise NotImplementedError

    def keep_open(self, source: str, rows: Any) -> None:
        """Remember rows already read while building the splits (CIFAR: labels and pixels share one pickle)."""
        self._arrays[source] = rows

    def rows(self, source: str) -> Any:
        """The open rows of ``source`` in this process."""
        if self._pid != os.getpid():  # a forked worker: do not reuse the parent's handles
            self._arrays, self._pid = {}, os.getpid()
        if source not in self._arrays:
            self._arrays[source] = self._open(source)
        return self._arrays[source]

    def read_image(self, impath: str) -> Image.Image:
        source, row = parse_array_path(impath)
        rows = self.rows(source)
        if row >= len(rows):
            raise UserError(f"{impath}: {source} has only {len(rows)} images (the file was replaced or truncated; "
                            f"re-download it, see {docs_ref(type(self).__name__)})")
        pixels = np.asarray(rows[row])
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise UserError(f"{impath}: expected an HxWx3 uint8 image, got {pixels.dtype} {pixels.shape} "
                            f"(re-download {source}; see {docs_ref(type(self).__name__)})")
        return to_rgb8(Image.fromarray(np.ascontiguousarray(pixels)))

    def __getstate__(self) -> dict:
        """Open files stay behind when the dataset is sent to a spawned worker; it reopens them."""
        state = self.__dict__.copy()
        state["_arrays"] = {}
        return state
