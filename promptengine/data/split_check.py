"""The one split validator, run when a split is read or generated and when a dataset is built.

Errors (one ``UserError`` line naming the split, the entry and the fix): a required split that is empty (an
evaluation on zero images is not a result), labels that are not exactly 0..K-1, a label with two class names,
a class name that is empty or not encodable as UTF-8, a path that leaves the dataset folder. Warnings (one
line each): the same image listed twice, two labels sharing a class name.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from typing import Dict, Mapping, Sequence

from ..errors import UserError
from .datum import Datum

FIX = "fix the split file (or delete it to have the split regenerated from the raw files)"


def relative_path_inside(relpath: str, where: str) -> str:
    """``relpath`` if it stays inside its base folder, else a ``UserError`` naming it (``where`` = which entry)."""
    norm = os.path.normpath(relpath.replace("\\", "/"))
    if os.path.isabs(relpath) or norm == ".." or norm.startswith("../"):
        raise UserError(f"{where}: path '{relpath[:120]}' points outside the dataset folder; split paths must be "
                        f"relative to it ({FIX})")
    return relpath


def integer_label(value: object, where: str) -> int:
    """A split file's label as an int: an integer (or an integral number / numeric string), never 1.5, inf or True."""
    if isinstance(value, bool) or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise UserError(f"{where} has the label {value!r}; labels are integers 0..K-1 ({FIX})")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{where} has a non-integer label {value!r}; labels are integers 0..K-1 ({FIX})") from None


def check_split(source: str, splits: Mapping[str, Sequence[Datum]], required: Sequence[str] = ("test",),
                warn: bool = True) -> None:
    """Validate ``{"train": [...], "val": [...], "test": [...]}`` read from (or generated for) ``source``."""
    for key in required:
        if not splits.get(key):
            raise UserError(f"{source}: the '{key}' split is empty; a run needs images there (an evaluation on zero "
                            f"images is not a result); {FIX}")
    names: Dict[int, str] = {}
    for key, items in splits.items():
        for i, d in enumerate(items):
            _check_classname(source, key, i, d)
            first = names.setdefault(d.label, d.classname)
            if first != d.classname:
                raise UserError(f"{source}: label {d.label} has two class names, '{first}' and '{d.classname}' "
                                f"({key} entry {i}); every label needs exactly one class name; {FIX}")
    _check_contiguous(source, splits, names)
    if warn:
        _warn_duplicates(source, splits, names)


def _check_classname(source: str, key: str, i: int, d: Datum) -> None:
    name = d.classname
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{source}: {key} entry {i} ({d.impath}) has an empty class name; {FIX}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{source}: {key} entry {i} has a class name that is not valid text ({name!r}); "
                        f"{FIX}") from None


def _check_contiguous(source: str, splits: Mapping[str, Sequence[Datum]], names: Dict[int, str]) -> None:
    k = len(names)
    if set(names) == set(range(k)):
        return
    wrong = sorted(y for y in names if not 0 <= y < k)
    missing = sorted(set(range(k)) - set(names))
    key, i = next((key, i) for key, items in splits.items() for i, d in enumerate(items) if d.label == wrong[0])
    raise UserError(f"{source}: label {wrong[0]} ({key} entry {i}) breaks the label rule: the split uses {k} distinct "
                    f"labels, so labels must be exactly 0..{k - 1} (missing: {missing[:5]}); {FIX}")


def _warn_duplicates(source: str, splits: Mapping[str, Sequence[Datum]], names: Dict[int, str]) -> None:
    for key, items in splits.items():
        counts = Counter(d.impath for d in items)
        dups = [p for p, n in counts.items() if n > 1]
        if dups:
            print(f"Warning: {source}: {len(dups)} images are listed more than once in '{key}' (e.g. {dups[0]}); "
                  "they count more than once")
    train, test = {d.impath for d in splits.get("train", ())}, {d.impath for d in splits.get("test", ())}
    both = (train & test) if splits.get("train") is not splits.get("test") else set()
    if both:
        print(f"Warning: {source}: {len(both)} images are in both 'train' and 'test' (e.g. {sorted(both)[0]}); "
              "test accuracy on them is not a held-out result")
    shared = [n for n, c in Counter(names.values()).items() if c > 1]
    if shared:
        print(f"Warning: {source}: the class name '{shared[0]}' belongs to more than one label; prompts cannot tell "
              "those classes apart")
