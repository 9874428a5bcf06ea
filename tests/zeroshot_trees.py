"""Miniature copies of the zero-shot benchmarks' own datasets, in their real on-disk formats.

CIFAR batches are Python-2 pickles written opcode by opcode (as the official files are: byte strings, and numpy
arrays that name ``numpy.core.multiarray``); STL-10 is raw column-major bytes; PCAM is HDF5 (needs h5py); Tiny
ImageNet and Caltech-256 are folders of small JPEGs with their text files. Each builder returns a ``Tree`` (see
``tests/dataset_trees.py``). ``pixel(label, row, col)`` is the colour every array image has at (row, col), so a test
can check that images come out with the right orientation and channel order.
"""

from __future__ import annotations

import os
import struct
from typing import Dict, List, Sequence

import numpy as np

from tests.dataset_trees import Tree, write_image, write_text

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_NAMES = """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant
flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree
motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel
streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trolleybus tulip turtle wardrobe
whale willow_tree wolf woman worm""".split()
STL10_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def pixel(label: int, row: int, col: int) -> tuple:
    return (label * 11 % 256, row * 2 % 256, col * 3 % 256)


def image(label: int, side: int) -> np.ndarray:
    """side x side x 3 uint8 with ``pixel(label, row, col)`` everywhere."""
    label = int(label)
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    return np.stack([np.full((side, side), label * 11 % 256), rows * 2 % 256, cols * 3 % 256], -1).astype(np.uint8)


# ---- Python 2 pickles (the CIFAR python version) --------------------------------------------------------------------
def _py2_str(data: bytes) -> bytes:
    return (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))) + data


def _py2(obj) -> bytes:
    if isinstance(obj, str):
        return _py2_str(obj.encode("latin1"))
    if isinstance(obj, int):
        return b"J" + struct.pack("<i", obj)
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(x) for x in obj) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, np.ndarray):  # numpy 1.x's reduce of a C-order uint8 array, as Python 2 wrote it
        minus_one = b"J" + struct.pack("<i", -1)
        dtype = b"cnumpy\ndtype\n" + _py2("u1") + b"K\x00K\x01\x87R(K\x03" + _py2("|") + b"NNN" + minus_one * 2 + b"K\x00tb"
        shape = b"(" + b"".join(_py2(int(n)) for n in obj.shape) + b"t"
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2("b") + b"\x87R"
                + b"(K\x01" + shape + dtype + b"\x89" + _py2_str(obj.astype(np.uint8).tobytes()) + b"tb")
    raise TypeError(type(obj))


def write_py2_pickle(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x80\x02" + _py2(obj) + b".")


def cifar_batch(labels: Sequence[int], label_key: str, extra: Dict[str, list] | None = None) -> dict:
    data = np.stack([image(y, 32).transpose(2, 0, 1).reshape(-1) for y in labels])  # 1024 R, then G, then B
    batch = {"batch_label": "training batch 1 of 5", label_key: list(labels), "data": data,
             "filenames": [f"img_{i:04d}.png" for i in range(len(labels))]}
    batch.update(extra or {})
    return batch


def _cifar10(root: str) -> Tree:
    d = os.path.join(root, "cifar-10-batches-py")
    write_py2_pickle(os.path.join(d, "batches.meta"), {"num_cases_per_batch": 10000, "label_names": CIFAR10_NAMES,
                                                        "num_vis": 3072})
    for i in range(1, 6):  # two images per class over the five batches
        write_py2_pickle(os.path.join(d, f"data_batch_{i}"), cifar_batch([(2 * i + j) % 10 for j in range(4)], "labels"))
    write_py2_pickle(os.path.join(d, "test_batch"), cifar_batch([9 - j % 10 for j in range(20)], "labels"))
    return Tree("CIFAR10", d, CIFAR10_NAMES, (20, 20, 20))


def _cifar100(root: str) -> Tree:
    d = os.path.join(root, "cifar-100-python")
    write_py2_pickle(os.path.join(d, "meta"), {"fine_label_names": CIFAR100_NAMES,
                                               "coarse_label_names": [f"coarse_{i}" for i in range(20)]})
    train = list(range(100)) * 2
    write_py2_pickle(os.path.join(d, "train"), cifar_batch(train, "fine_labels", {"coarse_labels": [y // 5 for y in train]}))
    test = list(range(99, -1, -1))
    write_py2_pickle(os.path.join(d, "test"), cifar_batch(test, "fine_labels", {"coarse_labels": [y // 5 for y in test]}))
    return Tree("CIFAR100", d, [n.replace("_", " ") for n in CIFAR100_NAMES], (200, 100, 100))


def _stl10(root: str) -> Tree:
    d = os.path.join(root, "stl10_binary")
    write_text(os.path.join(d, "class_names.txt"), STL10_NAMES)
    for part, labels in (("train", [j % 10 for j in range(20)]), ("test", [9 - j for j in range(10)])):
        # channel by channel, each channel column by column
        pixels = np.stack([image(y, 96).transpose(2, 1, 0) for y in labels])
        pixels.tofile(os.path.join(d, f"{part}_X.bin"))
        (np.array(labels, dtype=np.uint8) + 1).tofile(os.path.join(d, f"{part}_y.bin"))
    write_text(os.path.join(d, "fold_indices.txt"), [" ".join(str(i) for i in range(0, 20, 2))])
    return Tree("STL10", d, STL10_NAMES, (20, 10, 10))


def _pcam(root: str) -> Tree:
    import h5py

    d = os.path.join(root, "pcam")
    os.makedirs(d)
    for part, n in (("train", 8), ("valid", 4), ("test", 6)):
        labels = np.array([i % 2 for i in range(n)], dtype=np.uint8)
        with h5py.File(os.path.join(d, f"camelyonpatch_level_2_split_{part}_x.h5"), "w") as f:
            f.create_dataset("x", data=np.stack([image(y, 96) for y in labels]), chunks=(1, 96, 96, 3), compression="gzip")
        with h5py.File(os.path.join(d, f"camelyonpatch_level_2_split_{part}_y.h5"), "w") as f:
            f.create_dataset("y", data=labels.reshape(-1, 1, 1, 1))
    return Tree("PCAM", d, ["healthy lymph node tissue", "lymph node tumor tissue"], (8, 4, 6))


TINY_WNIDS = [  # wnids.txt is not sorted; labels follow the sorted wnids
    ("n02124075", "Egyptian cat"), ("n01443537", "goldfish, Carassius auratus"),
    ("n03444034", "go-kart"), ("n01629819", "European fire salamander, Salamandra salamandra"),
]


def _tiny_imagenet(root: str) -> Tree:
    d = os.path.join(root, "tiny-imagenet-200")
    write_text(os.path.join(d, "wnids.txt"), [w for w, _ in TINY_WNIDS])
    write_text(os.path.join(d, "words.txt"), ["n00001740\tentity", *(f"{w}\t{words}" for w, words in TINY_WNIDS),
                                              "n15300051\tspring, springtime"])
    labels = {w: i for i, w in enumerate(sorted(w for w, _ in TINY_WNIDS))}
    for wnid, label in labels.items():
        for i in range(3):
            write_image(os.path.join(d, "train", wnid, "images", f"{wnid}_{i}.JPEG"), label)
        write_text(os.path.join(d, "train", wnid, f"{wnid}_boxes.txt"), [f"{wnid}_{i}.JPEG\t0\t0\t7\t7" for i in range(3)])
    lines: List[str] = []
    for i, wnid in enumerate(w for w, _ in TINY_WNIDS * 2):
        write_image(os.path.join(d, "val", "images", f"val_{i}.JPEG"), labels[wnid])
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t7\t7")
    write_text(os.path.join(d, "val", "val_annotations.txt"), lines)
    write_image(os.path.join(d, "test", "images", "test_0.JPEG"), 0)
    names = ["goldfish", "european fire salamander", "egyptian cat", "go kart"]  # by sorted wnid
    return Tree("TinyImageNet", d, names, (12, 8, 8))


CALTECH256_FOLDERS = ["001.ak47", "002.american-flag", "252.car-side-101", "257.clutter"]


def _caltech256(root: str) -> Tree:
    d = os.path.join(root, "caltech256")
    image_dir = os.path.join(d, "256_ObjectCategories")
    for label, folder in enumerate(CALTECH256_FOLDERS):
        for i in range(1, 9):
            write_image(os.path.join(image_dir, folder, f"{folder[:3]}_{i:04d}.jpg"), label)
    write_text(os.path.join(image_dir, "002.american-flag", "RENAME2"), ["a stray file of the archive"])
    write_image(os.path.join(image_dir, "002.american-flag", "greg", "extra.jpg"), 1)  # a stray sub-folder
    return Tree("Caltech256", d, ["ak47", "american flag", "car side", "clutter"], (16, 8, 8))


BUILDERS = {"cifar10": _cifar10, "cifar100": _cifar100, "stl10": _stl10, "pcam": _pcam,
            "tiny_imagenet": _tiny_imagenet, "caltech256": _caltech256}
IDS = tuple(BUILDERS)


def make_zeroshot_tree(root, dataset_id: str) -> Tree:
    """Build the miniature ``dataset_id`` tree under ``root`` (PCAM needs h5py)."""
    return BUILDERS[dataset_id](os.fspath(root))
