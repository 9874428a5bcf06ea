"""Miniature copies of the 15 benchmark folder layouts, for tests and end-to-end smoke runs.

``make_tree(root, dataset_id)`` writes ``root/<dataset folder>`` with the real file names and file formats
(split JSON, annotation lists, classnames.txt, cat_to_name.json, optionally ``.mat``) and tiny 8x8 images,
one solid colour per class (so a model can learn them). It returns a ``Tree`` with the class names by
label and the split sizes a loader should produce with ``NUM_SHOTS -1``.

Sizes: folder-split sets have 4 classes x 8 images (4 train / 2 val / 2 test per class, what CoOp's
50/20/30 rule gives for 8), trainval sets 8 trainval (6 train / 2 val) + 2 test per class, ImageNet
4 train + 2 val per class, the test-only variants 2 images per class.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Callable, Dict, List, Sequence, Tuple

from PIL import Image

DATASET_IDS = (
    "imagenet",
    "caltech101",
    "oxford_pets",
    "stanford_cars",
    "oxford_flowers",
    "food101",
    "fgvc_aircraft",
    "sun397",
    "dtd",
    "eurosat",
    "ucf101",
    "imagenetv2",
    "imagenet_sketch",
    "imagenet_a",
    "imagenet_r",
)

# Datasets whose split can be generated without the JSON (Cars and Flowers also need scipy for .mat).
GENERATABLE = (
    "caltech101",
    "oxford_pets",
    "stanford_cars",
    "oxford_flowers",
    "food101",
    "sun397",
    "dtd",
    "eurosat",
    "ucf101",
)

IMAGENET_CLASSES = (
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
    ("n01496331", "electric ray"),
)
# ImageNet-A/R hold a subset of the classes: labels 0.. follow these sorted wnids.
SUBSET_WNIDS = ("n01443537", "n01491361", "n01496331")

PER_CLASS_FOLDER = 8  # 50/20/30 -> 4/2/2
PER_CLASS_TRAINVAL, PER_CLASS_TEST = 8, 2  # 80/20 of 8 -> 6/2


@dataclass
class Tree:
    name: str  # DATASET.NAME (the loader's class name)
    dataset_dir: str
    classnames: List[str]  # by label
    counts: Tuple[int, int, int]  # train, val, test as loaded with NUM_SHOTS -1, SUBSAMPLE all
    test_only: bool = False


COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


@cache
def image_bytes(label: int, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), COLORS[label % len(COLORS)]).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: str, label: int, fmt: str = "JPEG") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(image_bytes(label, fmt))
    return path


def write_text(path: str, lines: Sequence[str]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def write_json(path: str, obj) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=4)
    return path


def write_split(path: str, image_dir: str, parts: Sequence[List[Tuple[str, int, str]]]) -> None:
    """A CoOp split JSON; entries are (absolute path, label, classname), written relative to image_dir."""
    rel = [[[os.path.relpath(p, image_dir), y, c] for p, y, c in part] for part in parts]
    write_json(path, dict(zip(("train", "val", "test"), rel, strict=True)))


def _folder_tree(
    root: str,
    folder: str,
    image_sub: str,
    split_name: str,
    classes: Sequence[Tuple[str, str]],
    split_json: bool,
    name: str,
    extra_folders: Sequence[str] = (),
) -> Tree:
    """Folder-per-class sets (Caltech, DTD, EuroSAT, Food): classes = (folder, class name), in label order."""
    d = os.path.join(root, folder)
    image_dir = os.path.join(d, image_sub)
    parts: List[list] = [[], [], []]
    for label, (cfolder, cname) in enumerate(classes):
        paths = [
            write_image(os.path.join(image_dir, cfolder, f"{cfolder}_{i:04d}.jpg"), label) for i in range(1, PER_CLASS_FOLDER + 1)
        ]
        for part, chunk in zip(parts, (paths[:4], paths[4:6], paths[6:]), strict=True):
            part.extend((p, label, cname) for p in chunk)
    for extra in extra_folders:
        for i in range(2):
            write_image(os.path.join(image_dir, extra, f"image_{i:04d}.jpg"), 5)
    if split_json:
        write_split(os.path.join(d, split_name), image_dir, parts)
    return Tree(name, d, [c for _, c in classes], tuple(len(p) for p in parts))


def _caltech(root, split_json, mat):
    # Sorted folder order puts capitals first: Faces, Leopards, accordion, airplanes.
    classes = [("Faces", "face"), ("Leopards", "leopard"), ("accordion", "accordion"), ("airplanes", "airplane")]
    return _folder_tree(
        root,
        "caltech-101",
        "101_ObjectCategories",
        "split_zhou_Caltech101.json",
        classes,
        split_json,
        "Caltech101",
        extra_folders=("BACKGROUND_Google", "Faces_easy"),
    )


def _dtd(root, split_json, mat):
    classes = [(c, c) for c in ("banded", "blotchy", "braided", "bubbly")]
    return _folder_tree(root, "dtd", "images", "split_zhou_DescribableTextures.json", classes, split_json, "DescribableTextures")


def _eurosat(root, split_json, mat):
    classes = [
        ("AnnualCrop", "Annual Crop Land"),
        ("Forest", "Forest"),
        ("HerbaceousVegetation", "Herbaceous Vegetation Land"),
        ("Highway", "Highway or Road"),
    ]
    return _folder_tree(root, "eurosat", "2750", "split_zhou_EuroSAT.json", classes, split_json, "EuroSAT")


def _food101(root, split_json, mat):
    classes = [(c, c) for c in ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio")]
    return _folder_tree(root, "food-101", "images", "split_zhou_Food101.json", classes, split_json, "Food101")


def _trainval_parts(trainval: List[tuple], test: List[tuple]) -> List[list]:
    """A CoOp-shaped split of per-class trainval lists: the last 2 of each class go to val."""
    train, val = [], []
    by_label: Dict[int, list] = {}
    for item in trainval:
        by_label.setdefault(item[1], []).append(item)
    for items in by_label.values():
        train.extend(items[:-2])
        val.extend(items[-2:])
    return [train, val, test]


def _pets(root, split_json, mat):
    d = os.path.join(root, "oxford_pets")
    image_dir = os.path.join(d, "images")
    breeds = [
        ("Abyssinian", 1, 1),
        ("american_bulldog", 2, 1),
        ("american_pit_bull_terrier", 2, 2),
        ("basset_hound", 2, 3),
    ]
    lines = {"trainval.txt": [], "test.txt": []}
    items = {"trainval.txt": [], "test.txt": []}
    for label, (breed, species, breed_id) in enumerate(breeds):
        for i in range(1, PER_CLASS_TRAINVAL + PER_CLASS_TEST + 1):
            which = "trainval.txt" if i <= PER_CLASS_TRAINVAL else "test.txt"
            imname = f"{breed}_{i}"
            path = write_image(os.path.join(image_dir, imname + ".jpg"), label)
            lines[which].append(f"{imname} {label + 1} {species} {breed_id}")
            items[which].append((path, label, breed.lower()))
    for which, text in lines.items():
        write_text(os.path.join(d, "annotations", which), text)
    parts = _trainval_parts(items["trainval.txt"], items["test.txt"])
    if split_json:
        write_split(os.path.join(d, "split_zhou_OxfordPets.json"), image_dir, parts)
    return Tree("OxfordPets", d, [b.lower() for b, _, _ in breeds], tuple(len(p) for p in parts))


def _cars(root, split_json, mat):
    d = os.path.join(root, "stanford_cars")
    meta = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012", "Acura TL Type-S 2008"]
    annos = {"cars_train": [], "cars_test": []}
    items = {"cars_train": [], "cars_test": []}
    counter = {"cars_train": 0, "cars_test": 0}
    for label, raw in enumerate(meta):
        words = raw.split(" ")
        cname = " ".join(words[-1:] + words[:-1])
        for i in range(PER_CLASS_TRAINVAL + PER_CLASS_TEST):
            folder = "cars_train" if i < PER_CLASS_TRAINVAL else "cars_test"
            counter[folder] += 1
            fname = f"{counter[folder]:05d}.jpg"
            path = write_image(os.path.join(d, folder, fname), label)
            annos[folder].append((fname, label + 1))
            items[folder].append((path, label, cname))
    parts = _trainval_parts(items["cars_train"], items["cars_test"])
    if split_json:  # paths relative to the dataset folder, as in CoOp's file
        write_split(os.path.join(d, "split_zhou_StanfordCars.json"), d, parts)
    if mat:
        import numpy as np
        from scipy.io import savemat

        def struct(rows):
            arr = np.zeros((1, len(rows)), dtype=[("fname", "O"), ("class", "O")])
            for j, (fname, cls) in enumerate(rows):
                arr[0, j] = (np.array([fname]), np.array([[cls]], dtype=np.uint8))
            return arr

        names = np.empty((1, len(meta)), dtype=object)
        for j, raw in enumerate(meta):
            names[0, j] = np.array([raw])
        os.makedirs(os.path.join(d, "devkit"), exist_ok=True)
        savemat(os.path.join(d, "devkit", "cars_meta.mat"), {"class_names": names})
        savemat(os.path.join(d, "devkit", "cars_train_annos.mat"), {"annotations": struct(annos["cars_train"])})
        savemat(os.path.join(d, "cars_test_annos_withlabels.mat"), {"annotations": struct(annos["cars_test"])})
    return Tree("StanfordCars", d, [" ".join(m.split(" ")[-1:] + m.split(" ")[:-1]) for m in meta], tuple(len(p) for p in parts))


def _flowers(root, split_json, mat):
    d = os.path.join(root, "oxford_flowers")
    image_dir = os.path.join(d, "jpg")
    names = {"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells", "4": "sweet pea"}
    write_json(os.path.join(d, "cat_to_name.json"), names)
    labels = [(i % 4) + 1 for i in range(4 * PER_CLASS_FOLDER)]  # interleaved, like imagelabels.mat
    by_label: Dict[int, list] = {}
    for i, y in enumerate(labels):
        path = write_image(os.path.join(image_dir, f"image_{i + 1:05d}.jpg"), y - 1)
        by_label.setdefault(y, []).append((path, y - 1, names[str(y)]))
    parts: List[list] = [[], [], []]
    for y in sorted(by_label):
        its = by_label[y]
        for part, chunk in zip(parts, (its[:4], its[4:6], its[6:]), strict=True):
            part.extend(chunk)
    if split_json:
        write_split(os.path.join(d, "split_zhou_OxfordFlowers.json"), image_dir, parts)
    if mat:
        import numpy as np
        from scipy.io import savemat

        savemat(os.path.join(d, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    return Tree("OxfordFlowers", d, [names[k] for k in ("1", "2", "3", "4")], tuple(len(p) for p in parts))


def _fgvc(root, split_json, mat):
    d = os.path.join(root, "fgvc_aircraft")
    variants = ["707-320", "A300B4", "Cessna 172", "F-16A/B"]
    write_text(os.path.join(d, "variants.txt"), variants)
    lists: Dict[str, List[str]] = {"train": [], "val": [], "test": []}
    image_id = 1000000
    for label, variant in enumerate(variants):
        for which, n in (("train", 4), ("val", 2), ("test", 2)):
            for _ in range(n):
                image_id += 1
                write_image(os.path.join(d, "images", f"{image_id:07d}.jpg"), label)
                lists[which].append(f"{image_id:07d} {variant}")
    for which, lines in lists.items():
        write_text(os.path.join(d, f"images_variant_{which}.txt"), lines)
    return Tree("FGVCAircraft", d, variants, (16, 8, 8))


def _sun397(root, split_json, mat):
    d = os.path.join(root, "sun397")
    image_dir = os.path.join(d, "SUN397")
    classes = ["/a/abbey", "/a/airplane_cabin", "/a/apartment_building/outdoor", "/b/badlands"]
    write_text(os.path.join(d, "ClassName.txt"), classes)
    names = [" ".join(c.strip("/").split("/")[1:][::-1]) for c in classes]
    lines = {"Training_01.txt": [], "Testing_01.txt": []}
    items = {"Training_01.txt": [], "Testing_01.txt": []}
    n = 0
    for label, cpath in enumerate(classes):
        for i in range(PER_CLASS_TRAINVAL + PER_CLASS_TEST):
            which = "Training_01.txt" if i < PER_CLASS_TRAINVAL else "Testing_01.txt"
            n += 1
            rel = f"{cpath}/sun_a{n:07d}.jpg"
            path = write_image(os.path.join(image_dir, rel.lstrip("/")), label)
            lines[which].append(rel)
            items[which].append((path, label, names[label]))
    for which, text in lines.items():
        write_text(os.path.join(d, which), text)
    parts = _trainval_parts(items["Training_01.txt"], items["Testing_01.txt"])
    if split_json:
        write_split(os.path.join(d, "split_zhou_SUN397.json"), image_dir, parts)
    return Tree("SUN397", d, names, tuple(len(p) for p in parts))


def _ucf101(root, split_json, mat):
    d = os.path.join(root, "ucf101")
    image_dir = os.path.join(d, "UCF-101-midframes")
    actions = [
        ("ApplyEyeMakeup", "Apply_Eye_Makeup"),
        ("ApplyLipstick", "Apply_Lipstick"),
        ("Archery", "Archery"),
        ("BabyCrawling", "Baby_Crawling"),
    ]
    lst = os.path.join(d, "ucfTrainTestlist")
    write_text(os.path.join(lst, "classInd.txt"), [f"{i + 1} {a}" for i, (a, _) in enumerate(actions)])
    lines = {"trainlist01.txt": [], "testlist01.txt": []}
    items = {"trainlist01.txt": [], "testlist01.txt": []}
    for label, (action, renamed) in enumerate(actions):
        for g in range(1, PER_CLASS_TRAINVAL + PER_CLASS_TEST + 1):
            which = "trainlist01.txt" if g <= PER_CLASS_TRAINVAL else "testlist01.txt"
            video = f"v_{action}_g{g:02d}_c01"
            path = write_image(os.path.join(image_dir, renamed, video + ".jpg"), label)
            suffix = f" {label + 1}" if which == "trainlist01.txt" else ""
            lines[which].append(f"{action}/{video}.avi{suffix}")
            items[which].append((path, label, renamed))
    for which, text in lines.items():
        write_text(os.path.join(lst, which), text)
    parts = _trainval_parts(items["trainlist01.txt"], items["testlist01.txt"])
    if split_json:
        write_split(os.path.join(d, "split_zhou_UCF101.json"), image_dir, parts)
    return Tree("UCF101", d, [r for _, r in actions], tuple(len(p) for p in parts))


def _classnames_file(d: str, classes=IMAGENET_CLASSES) -> None:
    write_text(os.path.join(d, "classnames.txt"), [f"{w} {c}" for w, c in classes])


def _imagenet(root, split_json, mat):
    d = os.path.join(root, "imagenet")
    classes = IMAGENET_CLASSES[:4]
    _classnames_file(d, classes)
    for label, (wnid, _) in enumerate(classes):
        for i in range(4):
            write_image(os.path.join(d, "images", "train", wnid, f"{wnid}_{i + 1}.JPEG"), label)
        for i in range(2):
            write_image(os.path.join(d, "images", "val", wnid, f"ILSVRC2012_val_{label * 10 + i:08d}.JPEG"), label)
    return Tree("ImageNet", d, [c for _, c in classes], (16, 8, 8))


def _imagenetv2(root, split_json, mat):
    d = os.path.join(root, "imagenetv2")
    classes = IMAGENET_CLASSES[:4]
    _classnames_file(d, classes)
    for label in range(len(classes)):
        for i in range(2):
            write_image(os.path.join(d, "imagenetv2-matched-frequency-format-val", str(label), f"{i:040x}.jpeg"), label)
    return Tree("ImageNetV2", d, [c for _, c in classes], (8, 0, 8), test_only=True)


def _wnid_tree(root, folder, image_sub, name, wnids, readme=False):
    d = os.path.join(root, folder)
    _classnames_file(d)
    names = dict(IMAGENET_CLASSES)
    for label, wnid in enumerate(wnids):
        for i in range(2):
            write_image(os.path.join(d, image_sub, wnid, f"{wnid}_{i}.jpg"), label)
    if readme:
        write_text(os.path.join(d, image_sub, "README.txt"), ["ImageNet-A: 200 classes."])
    return Tree(name, d, [names[w] for w in wnids], (2 * len(wnids), 0, 2 * len(wnids)), test_only=True)


def _imagenet_sketch(root, split_json, mat):
    return _wnid_tree(root, "imagenet-sketch", "images", "ImageNetSketch", [w for w, _ in IMAGENET_CLASSES[:4]])


def _imagenet_a(root, split_json, mat):
    return _wnid_tree(root, "imagenet-adversarial", "imagenet-a", "ImageNetA", SUBSET_WNIDS, readme=True)


def _imagenet_r(root, split_json, mat):
    return _wnid_tree(root, "imagenet-rendition", "imagenet-r", "ImageNetR", SUBSET_WNIDS)


BUILDERS: Dict[str, Callable[[str, bool, bool], Tree]] = {
    "imagenet": _imagenet,
    "caltech101": _caltech,
    "oxford_pets": _pets,
    "stanford_cars": _cars,
    "oxford_flowers": _flowers,
    "food101": _food101,
    "fgvc_aircraft": _fgvc,
    "sun397": _sun397,
    "dtd": _dtd,
    "eurosat": _eurosat,
    "ucf101": _ucf101,
    "imagenetv2": _imagenetv2,
    "imagenet_sketch": _imagenet_sketch,
    "imagenet_a": _imagenet_a,
    "imagenet_r": _imagenet_r,
}


def make_tree(root, dataset_id: str, split_json: bool = True, mat: bool = False) -> Tree:
    """Build the miniature ``dataset_id`` tree under ``root``.

    ``split_json=False`` leaves out the split JSON (the loader then generates the split); ``mat=True``
    also writes the ``.mat`` annotations of Cars/Flowers (needs scipy).
    """
    return BUILDERS[dataset_id](os.fspath(root), split_json, mat)
