"""Split files and CoOp's split rules, shared by every benchmark loader in ``datasets/``.

* ``read_split`` / ``save_split``: CoOp's ``split_zhou_<Dataset>.json`` (keys ``train``/``val``/``test``,
  each a list of ``[relative_path, label, classname]``; written with indent 4).
* ``split_trainval``: CoOp's per-class 80/20 train/val split of an official trainval list.
* ``read_and_split_data``: CoOp's per-class 50/20/30 shuffle of a folder-per-class dataset.
* ``load_or_generate_split``: read the JSON, or generate the split by CoOp's rules when it is missing
  (written into the data root only if ``DATASET.WRITE_SPLITS`` is True).
* ``check_images_exist``: one ``UserError`` line naming the first image a split lists but the disk lacks.

The two split rules make the same ``random`` calls in the same order as CoOp. A generated split is
drawn with the global ``random`` seeded to ``SPLIT_SEED`` (the seed of CoOp's first run, which wrote
its JSON) and the global state is restored afterwards: every run seed sees the same train/val/test
split, and few-shot sampling afterwards is the same as with a JSON on disk. One deliberate difference:
image files are listed in sorted order (Dassl lists them in file-system order), so a split generated
here does not depend on the file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections import defaultdict
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..errors import UserError
from .dataset import DatasetBase
from .datum import Datum
from .fewshot import prepare_splits
from .split_check import FIX, check_split, integer_label, relative_path_inside

Split = Tuple[List[Datum], List[Datum], List[Datum]]

SPLIT_SEED = 1
DOCS = "DATASETS.md"


def docs_ref(name: str) -> str:
    """Where DATASETS.md describes dataset ``name`` (its section anchor)."""
    return f"{DOCS}#{name.lower()}"


# ---------------------------------------------------------------------------------------------
# Paths and small readers with one-line errors
# ---------------------------------------------------------------------------------------------


def resolve_root(cfg) -> str:
    """``DATASET.ROOT`` with ``~`` and environment variables expanded; it must be an existing folder."""
    raw = str(cfg.DATASET.ROOT or "").strip()
    if not raw:
        raise UserError(
            "DATASET.ROOT is not set: pass --root /path/to/data (or set DATASET.ROOT) to the folder "
            f"that holds the datasets (see {DOCS})"
        )
    root = os.path.abspath(os.path.expandvars(os.path.expanduser(raw)))
    if not os.path.isdir(root):
        raise UserError(
            f"data root not found: {root} (DATASET.ROOT / --root must be an existing folder that holds "
            f"the dataset folders; see {DOCS})"
        )
    return root


def dataset_folder(cfg, cls: type) -> str:
    """``<root>/<cls.dataset_dir>``; a missing folder is an error naming it."""
    path = os.path.join(resolve_root(cfg), cls.dataset_dir)
    if not os.path.isdir(path):
        raise UserError(
            f"{cls.__name__}: dataset folder not found: {path} (expected the {cls.__name__} files there, "
            f"or a symlink to them; see {docs_ref(cls.__name__)})"
        )
    return path


class MissingFile(UserError):
    """A file or folder a loader needs is absent; ``load_or_generate_split`` adds the split-file context."""

    def __init__(self, name: str, path: str, expected: str) -> None:
        self.name, self.path, self.expected = name, path, expected
        super().__init__(f"{name}: not found: {path} (expected {expected} there; see {docs_ref(name)})")


def require(name: str, path: str, expected: str, folder: bool = False) -> str:
    """Return ``path`` if it exists (as a folder when ``folder``), else raise ``MissingFile``."""
    if not (os.path.isdir(path) if folder else os.path.isfile(path)):
        raise MissingFile(name, path, expected)
    return path


def listdir_nohidden(path: str, sort: bool = True) -> List[str]:
    """Entries of ``path`` that do not start with a dot (sorted by default)."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}): replace it with a complete copy") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a UTF-8 JSON file: replace it with a complete copy") from exc


def write_json_atomic(obj, path: str, indent: int = 4) -> None:
    """Write JSON through a temporary file and ``os.replace`` (no half-written file on interruption)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, separators=(",", ": "))
    os.replace(tmp, path)


def read_lines(path: str) -> List[Tuple[int, str]]:
    """``(line_number, stripped_text)`` for every non-blank line (1-based numbers, for error messages)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [(i, line.strip()) for i, line in enumerate(f, 1) if line.strip()]


def bad_line(path: str, lineno: int, expected: str, got: str) -> UserError:
    return UserError(f"{path} line {lineno} is malformed: expected {expected}, got '{got[:80]}' (fix or re-download the file)")


def load_mat(path: str) -> dict:
    """``scipy.io.loadmat`` with scipy imported lazily (only Cars/Flowers without split JSON need it)."""
    try:
        from scipy.io import loadmat  # optional dependency (only some datasets' .mat annotations need it)
    except ImportError as exc:
        raise UserError(
            f"reading {path} needs scipy: pip install scipy (or download the dataset's split_zhou_*.json, "
            "which needs no .mat file)"
        ) from exc
    try:
        return loadmat(path)
    except (ValueError, OSError, TypeError) as exc:
        raise UserError(f"cannot read MATLAB file {path}: {exc} (re-download it)") from exc


# ---------------------------------------------------------------------------------------------
# Split JSON files
# ---------------------------------------------------------------------------------------------


def read_split(json_path: str, image_dir: str) -> Split:
    """Read a CoOp split JSON; each relative path is joined to ``image_dir`` (the path prefix)."""
    print(f"Reading split from {json_path}")
    data = read_json(json_path)
    if not isinstance(data, dict):
        raise UserError(f"{json_path} is not a split file: expected an object with keys train, val and test")
    out = []
    for key in ("train", "val", "test"):
        entries = data.get(key)
        if not isinstance(entries, list):
            raise UserError(f"{json_path} has no '{key}' list: a split file holds train, val and test lists")
        items = []
        for i, entry in enumerate(entries):
            if not (isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[0], str)):
                raise UserError(f"{json_path}: {key} entry {i} is {str(entry)[:80]}; expected [relative_path, label, classname]")
            relpath, label, classname = entry
            where = f"{json_path}: {key} entry {i}"
            if not isinstance(classname, str):
                raise UserError(f"{where} has the class name {classname!r}; class names are strings ({FIX})")
            relative_path_inside(relpath, where)
            items.append(Datum(impath=os.path.join(image_dir, relpath), label=integer_label(label, where),
                               classname=classname))
        out.append(items)
    check_split(json_path, dict(zip(("train", "val", "test"), out)), required=("train", "test"))
    return out[0], out[1], out[2]


def save_split(train: List[Datum], val: List[Datum], test: List[Datum], json_path: str, image_dir: str) -> None:
    """Write a CoOp split JSON with paths relative to ``image_dir`` (indent 4, atomic)."""

    def rel(items: Sequence[Datum]) -> list:
        return [[os.path.relpath(d.impath, image_dir).replace(os.sep, "/"), d.label, d.classname] for d in items]

    write_json_atomic({"train": rel(train), "val": rel(val), "test": rel(test)}, json_path)
    print(f"Saved split to {json_path}")


# ---------------------------------------------------------------------------------------------
# CoOp's split rules
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Seed the global ``random`` (CoOp's rules use it) and restore its previous state on exit."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def split_trainval(trainval: List[Datum], p_val: float = 0.2) -> Tuple[List[Datum], List[Datum]]:
    """CoOp's per-class split of a trainval list: ``round(n * p_val)`` random items per class go to val."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    by_label: Dict[int, List[int]] = defaultdict(list)
    for idx, item in enumerate(trainval):
        by_label[item.label].append(idx)
    train, val = [], []
    for label, idxs in by_label.items():
        n_val = round(len(idxs) * p_val)
        if n_val < 1:
            cname = trainval[idxs[0]].classname
            raise UserError(
                f"class {label} ('{cname}') has only {len(idxs)} trainval images; the {1 - p_val:.0%}/{p_val:.0%} "
                "train/val split needs at least 3 per class (check the annotation files)"
            )
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def split_per_class(groups: Iterable[Tuple[int, str, List[str]]], p_trn: float = 0.5, p_val: float = 0.2) -> Split:
    """Shuffle each class's image paths and cut them into train/val/test (``round`` of each share).

    ``groups`` yields ``(label, classname, impaths)``; the shuffles happen in that order, as in CoOp.
    """
    train, val, test = [], [], []
    for label, classname, impaths in groups:
        impaths = list(impaths)
        random.shuffle(impaths)
        n_total = len(impaths)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        if n_train < 1 or n_val < 1 or n_total - n_train - n_val < 1:
            where = os.path.dirname(impaths[0]) if impaths else f"class {label}"
            raise UserError(
                f"class '{classname}' has only {n_total} images ({where}); the "
                f"{p_trn:.0%}/{p_val:.0%}/{1 - p_trn - p_val:.0%} split needs at least one image in each part "
                "(4 or more per class)"
            )
        for part, paths in (
            (train, impaths[:n_train]),
            (val, impaths[n_train : n_train + n_val]),
            (test, impaths[n_train + n_val :]),
        ):
            part.extend(Datum(impath=p, label=label, classname=classname) for p in paths)
    return train, val, test


def read_and_split_data(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: Optional[Mapping[str, str]] = None,
) -> Split:
    """CoOp's folder-per-class split: classes are the sorted sub-folders of ``image_dir`` (minus
    ``ignored``), labelled 0..n-1 in that order and renamed through ``new_cnames``; each class is
    shuffled and cut 50/20/30."""
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    new_cnames = new_cnames or {}
    categories = [c for c in listdir_nohidden(image_dir) if c not in ignored and os.path.isdir(os.path.join(image_dir, c))]

    def groups():
        for label, category in enumerate(categories):
            cdir = os.path.join(image_dir, category)
            impaths = [os.path.join(cdir, im) for im in listdir_nohidden(cdir)]
            yield label, new_cnames.get(category, category), impaths

    return split_per_class(groups(), p_trn, p_val)


def load_or_generate_split(cfg, dataset: object, path_prefix: str, generate: Callable[[], Split]) -> Split:
    """Read ``<dataset.dataset_dir>/<split_file>``; if it is missing, generate the split by CoOp's rules.

    ``dataset`` is the loader being built (its ``dataset_dir`` already resolved); ``path_prefix`` is the
    folder the JSON paths are relative to. The generated split is written into the data root only when
    ``DATASET.WRITE_SPLITS`` is True.
    """
    cls = type(dataset)
    name = cls.__name__
    split_path = os.path.join(dataset.dataset_dir, cls.split_file)
    if os.path.isfile(split_path):
        return read_split(split_path, path_prefix)
    print(f"{name}: no split file at {split_path}; generating the split by CoOp's rules (random seed {SPLIT_SEED})")
    try:
        with seeded_random(SPLIT_SEED):
            train, val, test = generate()
    except MissingFile as exc:
        raise UserError(
            f"{name}: split file not found: {split_path}, and it cannot be generated because {exc.path} is "
            f"missing (expected {exc.expected}); put {cls.split_file} or those files there (see {docs_ref(name)})"
        ) from exc
    check_split(f"{name}: the split generated from {dataset.dataset_dir}", {"train": train, "val": val, "test": test},
                required=("train", "test"))
    if cfg.DATASET.WRITE_SPLITS:
        try:
            save_split(train, val, test, split_path, path_prefix)
        except OSError as exc:
            raise UserError(
                f"{name}: cannot write the generated split to {split_path} ({exc.strerror}); make the folder "
                "writable or leave DATASET.WRITE_SPLITS False (the split is then regenerated identically each run)"
            ) from exc
    else:
        print(f"{name}: the generated split is not saved (set DATASET.WRITE_SPLITS True to write {split_path})")
    return train, val, test


# ---------------------------------------------------------------------------------------------
# Existence check
# ---------------------------------------------------------------------------------------------


def check_images_exist(name: str, *splits: Sequence[Datum]) -> None:
    """Fail with one line on the first listed image that is not a file.

    When whole folders are absent, the highest missing folder is named instead of the image.
    """
    seen = set()
    for items in splits:
        if id(items) in seen:
            continue
        seen.add(id(items))
        for d in items:
            if os.path.isfile(d.impath):
                continue
            top = d.impath
            while os.path.dirname(top) not in ("", top) and not os.path.exists(os.path.dirname(top)):
                top = os.path.dirname(top)
            if top != d.impath:
                raise UserError(
                    f"{name}: folder not found: {top} (the {name} split lists images in it, e.g. {d.impath}; "
                    f"see {docs_ref(name)} for what goes there)"
                )
            raise UserError(
                f"{name}: image not found: {d.impath} (the {name} split lists it; expected the image from the "
                f"official download there, or a split file that matches your copy; see {docs_ref(name)})"
            )


class SplitDataset(DatasetBase):
    """A benchmark stored as CoOp's ``split_zhou_*.json`` (or split by CoOp's rules when the file is missing).

    Subclasses only say what is special: ``dataset_dir``, ``split_file``, ``image_subdir`` (split paths are relative to
    it; "" = the dataset folder) and ``_generate()`` (how CoOp splits the raw files).
    """

    split_file = ""
    image_subdir = ""

    def __init__(self, cfg) -> None:
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, self.image_subdir) if self.image_subdir else self.dataset_dir
        train, val, test = load_or_generate_split(cfg, self, self.image_dir, self._generate)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def _generate(self) -> Split:
        raise NotImplementedError
