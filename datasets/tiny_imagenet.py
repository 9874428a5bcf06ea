"""Tiny ImageNet (``tiny-imagenet-200/``): 200 ImageNet classes at 64x64, the source set of TeCoA, PMG-AFT and TGA-ZSR."""

from __future__ import annotations

import os
from typing import Dict, List

from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.fewshot import prepare_splits
from promptengine.data.splits import (
    bad_line,
    check_images_exist,
    dataset_folder,
    docs_ref,
    listdir_nohidden,
    read_lines,
    require,
)
from promptengine.data.zeroshot_names import zeroshot_classname
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY


def first_lemmas(path: str, wnids: List[str], name: str) -> Dict[str, str]:
    """``words.txt`` (``<wnid>\\t<lemma>, <lemma>, ...`` for all of WordNet): the first lemma of each wanted wnid."""
    wanted, names = set(wnids), {}
    for lineno, line in read_lines(require(name, path, "words.txt of tiny-imagenet-200.zip")):
        wnid, _, lemmas = line.partition("\t")
        if not lemmas.strip():
            raise bad_line(path, lineno, "'<wnid><TAB><lemma>, <lemma>, ...'", line)
        if wnid in wanted:
            names[wnid] = lemmas.split(",")[0].strip()
    missing = [w for w in wnids if w not in names]
    if missing:
        raise UserError(f"{name}: {path} has no line for {missing[0]} (and {len(missing) - 1} more wnids of "
                        f"wnids.txt); re-download tiny-imagenet-200.zip (see {docs_ref(name)})")
    return names


def class_images(folder: str) -> List[str]:
    """The images of one class folder: ``<folder>/images/`` (the official layout) or the folder itself."""
    inner = os.path.join(folder, "images")
    where = inner if os.path.isdir(inner) else folder
    return [os.path.join(where, f) for f in listdir_nohidden(where) if os.path.isfile(os.path.join(where, f))]


@DATASET_REGISTRY.register()
class TinyImageNet(DatasetBase):
    """Labels follow the sorted wnids (as ``ImageFolder`` on ``train/`` gives them, which the robust fine-tuning
    code uses); class names are the first WordNet lemma of ``words.txt`` ("goldfish", "european fire salamander").
    The official 100,000 train images train; the 10,000 labelled val images are val and test (the test images
    have no labels; selecting on val selects on the test set). Few-shot sampling applies to train only."""

    dataset_dir = "tiny-imagenet-200"
    template = "a photo of a {}."
    split_source = "official files"  # what tools/check_datasets.py reports as the split's origin

    def __init__(self, cfg) -> None:
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        wnid_path = require(name, os.path.join(self.dataset_dir, "wnids.txt"), "wnids.txt of tiny-imagenet-200.zip")
        wnids = sorted({line for _, line in read_lines(wnid_path)})
        names = first_lemmas(os.path.join(self.dataset_dir, "words.txt"), wnids, name)
        self._labels = {w: i for i, w in enumerate(wnids)}
        self._names = {w: zeroshot_classname(names[w]) for w in wnids}
        train = self._train()
        test = self._val()
        check_images_exist(name, test)
        train, _, test = prepare_splits(cfg, name, self.dataset_dir, train, test, test, fewshot_val=False)
        super().__init__(train_x=train, val=test, test=test)

    def _datum(self, path: str, wnid: str) -> Datum:
        return Datum(path, self._labels[wnid], classname=self._names[wnid])

    def _train(self) -> List[Datum]:
        name = type(self).__name__
        train_dir = require(name, os.path.join(self.dataset_dir, "train"), "one train/<wnid>/images/ per class",
                            folder=True)
        items = []
        for wnid in self._labels:
            folder = require(name, os.path.join(train_dir, wnid), f"the training images of {wnid} (wnids.txt)",
                             folder=True)
            items.extend(self._datum(p, wnid) for p in class_images(folder))
        return items

    def _val(self) -> List[Datum]:
        """``val/images`` + ``val/val_annotations.txt`` (official), or ``val/<wnid>/`` folders (re-laid out)."""
        name = type(self).__name__
        val_dir = require(name, os.path.join(self.dataset_dir, "val"), "val/images and val/val_annotations.txt",
                          folder=True)
        annotations = os.path.join(val_dir, "val_annotations.txt")
        if not os.path.isfile(annotations):
            folders = [f for f in listdir_nohidden(val_dir) if f in self._labels and os.path.isdir(os.path.join(val_dir, f))]
            if not folders:
                raise UserError(f"{name}: {annotations} not found and {val_dir} has no wnid folders; expected the "
                                f"official val/images + val_annotations.txt (see {docs_ref(name)})")
            return [self._datum(p, w) for w in folders for p in class_images(os.path.join(val_dir, w))]
        items = []
        for lineno, line in read_lines(annotations):
            fields = line.split("\t")
            if len(fields) < 2:
                raise bad_line(annotations, lineno, "'<file><TAB><wnid><TAB><box>'", line)
            if fields[1] not in self._labels:
                raise UserError(f"{annotations} line {lineno} labels {fields[0]} with {fields[1]}, which wnids.txt "
                                f"does not list; re-download tiny-imagenet-200.zip (see {docs_ref(name)})")
            items.append(self._datum(os.path.join(val_dir, "images", fields[0]), fields[1]))
        return items
