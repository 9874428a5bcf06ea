"""CIFAR-10 from the python version's pickle batches (``cifar-10-batches-py/``, torchvision's on-disk format)."""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, Dict, List

import numpy as np

from promptengine.data.array_images import ArrayDataset, Splits, array_items
from promptengine.data.datum import Datum
from promptengine.data.splits import docs_ref, require
from promptengine.data.zeroshot_names import zeroshot_classname
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY

# The only globals a CIFAR pickle refers to (numpy arrays; byte strings as written by protocol-2 pickles of Python 3).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: a pickle that asks for anything else is refused, not run."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR batch never does")
        return super().find_class(module, name)


def read_cifar_pickle(path: str, name: str) -> Dict[str, Any]:
    """One batch or meta file as a dict with text keys (the files were written by Python 2: latin-1 strings)."""
    require(name, path, f"the {os.path.basename(path)} file of the python version")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise UserError(f"{name}: cannot read {path} as a CIFAR pickle ({exc}); re-download the python version "
                        f"(see {docs_ref(name)})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{name}: {path} is not a CIFAR pickle (expected a dict); re-download it (see {docs_ref(name)})")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def batch_field(batch: Dict[str, Any], key: str, path: str, name: str) -> Any:
    if key not in batch:
        raise UserError(f"{name}: {path} has no '{key}' entry; it is not the python version of the dataset "
                        f"(see {docs_ref(name)})")
    return batch[key]


def batch_rows(batch: Dict[str, Any], label_key: str, path: str, name: str):
    """(pixels as N x 32 x 32 x 3 uint8, labels) of one batch; CIFAR stores each image as 1024 R, G, B values."""
    data = np.asarray(batch_field(batch, "data", path, name))
    labels = [int(y) for y in batch_field(batch, label_key, path, name)]
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise UserError(f"{name}: {path} holds data {data.dtype} {data.shape} for {len(labels)} labels; expected "
                        f"N x 3072 uint8 for N labels (re-download it, see {docs_ref(name)})")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def label_names(path: str, key: str, name: str) -> List[str]:
    names = batch_field(read_cifar_pickle(path, name), key, path, name)
    return [zeroshot_classname(n.decode() if isinstance(n, bytes) else str(n)) for n in names]


class CifarDataset(ArrayDataset):
    """CIFAR-10 and -100: the official train set for training, the official test set as val and test (the format
    has no validation set; as for ImageNet, selecting on val selects on the test set)."""

    train_files: tuple = ()
    test_file = ""
    meta_file = ""
    names_key = ""
    label_key = ""

    def _batch(self, filename: str) -> List[Datum]:
        path = os.path.join(self.dataset_dir, filename)
        rows, labels = batch_rows(read_cifar_pickle(path, type(self).__name__), self.label_key, path,
                                  type(self).__name__)
        self.keep_open(path, rows)
        return array_items(path, labels, self._names)

    def _splits(self) -> Splits:
        name = type(self).__name__
        self._names = label_names(os.path.join(self.dataset_dir, self.meta_file), self.names_key, name)
        train = [d for f in self.train_files for d in self._batch(f)]
        test = self._batch(self.test_file)
        return train, test, test

    def _open(self, source: str):
        return batch_rows(read_cifar_pickle(source, type(self).__name__), self.label_key, source, type(self).__name__)[0]


@DATASET_REGISTRY.register()
class CIFAR10(CifarDataset):
    dataset_dir = "cifar-10-batches-py"
    template = "a photo of a {}."
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_file = "test_batch"
    meta_file = "batches.meta"
    names_key = "label_names"
    label_key = "labels"
