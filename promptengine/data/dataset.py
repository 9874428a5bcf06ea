"""``DatasetBase`` with Dassl's attributes (train_x / val / test, num_classes, lab2cname); its items are ``Datum``."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from PIL import Image

from .datum import Datum
from .fewshot import generate_fewshot_dataset, split_by_label
from .images import read_rgb
from .split_check import check_split


class DatasetBase:
    """A labelled dataset with train_x / val / test lists of Datum.

    ``num_classes``, ``lab2cname`` and ``classnames`` come from ``train_x`` (as in Dassl), so after
    base/new subsampling a run sees only the selected classes. Subclasses set ``dataset_dir``
    (the folder under DATASET.ROOT) and may override ``read_image`` (generated datasets do).
    """

    dataset_dir: str = ""
    domains: Sequence[str] = ()

    def __init__(
        self,
        train_x: Optional[List[Datum]] = None,
        val: Optional[List[Datum]] = None,
        test: Optional[List[Datum]] = None,
    ) -> None:
        self._train_x = list(train_x or [])
        self._val = list(val or [])
        self._test = list(test or [])
        if self._train_x or self._val or self._test:
            check_split(f"dataset {type(self).__name__}", {"train": self._train_x, "val": self._val, "test": self._test},
                        warn=False)
        self._lab2cname = self._get_lab2cname(self._train_x or self._test)
        self._num_classes = (max(self._lab2cname) + 1) if self._lab2cname else 0

    train_x = property(lambda self: self._train_x)
    train_u = property(lambda self: [])
    val = property(lambda self: self._val)
    test = property(lambda self: self._test)
    num_classes = property(lambda self: self._num_classes)
    lab2cname = property(lambda self: self._lab2cname)

    @property
    def classnames(self) -> List[str]:
        return [self._lab2cname[i] for i in range(self._num_classes)]

    @staticmethod
    def _get_lab2cname(data: List[Datum]) -> Dict[int, str]:
        mapping: Dict[int, str] = {}
        for item in data:
            mapping.setdefault(item.label, item.classname)
        return dict(sorted(mapping.items()))

    # Dassl name, kept for loaders written against Dassl.
    @staticmethod
    def split_dataset_by_label(data_source: List[Datum]) -> Dict[int, List[Datum]]:
        return split_by_label(data_source)

    def generate_fewshot_dataset(self, *data_sources: List[Datum], num_shots: int = -1, repeat: bool = False):
        return generate_fewshot_dataset(*data_sources, num_shots=num_shots, repeat=repeat)

    def read_image(self, impath: str) -> Image.Image:
        """Open an image as 8-bit RGB (``promptengine.data.images.read_rgb``); problems are one-line UserErrors."""
        return read_rgb(impath)
