"""ImageNet (ILSVRC-2012): official train for training, the val set as both val and test (as CoOp)."""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.fewshot import prepare_splits
from promptengine.data.imagenet_val import check_val_layout
from promptengine.data.splits import bad_line, dataset_folder, docs_ref, listdir_nohidden, read_lines, require
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY


def read_classnames(path: str, name: str) -> Dict[str, str]:
    """``classnames.txt``: one ``<wnid> <class name>`` per line, in file order (the order matters for V2)."""
    require(name, path, "classnames.txt (one '<wnid> <class name>' per line, copied from imagenet/)")
    classnames: Dict[str, str] = {}
    for lineno, line in read_lines(path):
        wnid, _, cname = line.partition(" ")
        if not cname.strip():
            raise bad_line(path, lineno, "'<wnid> <class name>'", line)
        if wnid in classnames:
            raise UserError(f"{path} line {lineno} repeats {wnid}: each wnid must appear once (re-download it)")
        classnames[wnid] = cname.strip()
    return classnames


def wnid_folders(name: str, image_dir: str) -> List[str]:
    """The sorted class sub-folders of ``image_dir``; loose files (ImageNet-A's README.txt) are skipped."""
    require(name, image_dir, "one sub-folder per class (wnid)", folder=True)
    folders = [f for f in listdir_nohidden(image_dir) if os.path.isdir(os.path.join(image_dir, f))]
    if not folders:
        raise UserError(
            f"{name}: {image_dir} has no class folders; expected one folder per wnid (ImageNet val must be "
            f"sorted into wnid folders, e.g. with valprep.sh; see {docs_ref(name)})"
        )
    return folders


def read_class_folders(
    name: str, image_dir: str, classnames: Dict[str, str], labels: Optional[Dict[str, int]] = None
) -> List[Datum]:
    """Items of a folder-per-wnid tree, labelled by ``labels`` or else by the sorted folder order."""
    folders = wnid_folders(name, image_dir)
    labels = labels if labels is not None else {f: i for i, f in enumerate(folders)}
    items = []
    for folder in folders:
        if folder not in classnames or folder not in labels:
            where = "classnames.txt" if folder not in classnames else "images/train"
            raise UserError(
                f"{name}: class folder {os.path.join(image_dir, folder)} is not listed in {where}; expected "
                f"wnid folders that match imagenet/classnames.txt (see {docs_ref(name)})"
            )
        cdir = os.path.join(image_dir, folder)
        label, cname = labels[folder], classnames[folder]
        items.extend(Datum(os.path.join(cdir, im), label, classname=cname) for im in listdir_nohidden(cdir))
    return items


@DATASET_REGISTRY.register()
class ImageNet(DatasetBase):
    """Labels follow the sorted wnid folders of ``images/train``; few-shot sampling applies to train
    only. Selecting on val selects on the test set (it is the same data)."""

    dataset_dir = "imagenet"
    template = "a photo of a {}."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "images")
        classnames = read_classnames(os.path.join(self.dataset_dir, "classnames.txt"), name)
        train_dir, val_dir = os.path.join(self.image_dir, "train"), os.path.join(self.image_dir, "val")
        check_val_layout(name, val_dir)  # a flat val/ (the download's) is one line naming the fix, not an empty test set
        labels = {wnid: i for i, wnid in enumerate(wnid_folders(name, train_dir))}
        train = read_class_folders(name, train_dir, classnames, labels)
        test = read_class_folders(name, val_dir, classnames, labels)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, test, test, fewshot_val=False)
        super().__init__(train_x=train, val=val, test=test)
