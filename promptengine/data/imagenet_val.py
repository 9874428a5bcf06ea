"""ImageNet's validation images come as one flat folder of 50,000 JPEGs; the loader needs one folder per wnid.

``check_val_layout`` turns a flat ``val/`` into one error line naming the fix (a flat folder would otherwise give
an empty test split). ``layout_val_by_class`` is the fix: it reads the labels from a standard ground-truth file
(Kaggle's ``LOC_val_solution.csv``, or the devkit's ``ILSVRC2012_validation_ground_truth.txt`` with its
``meta.mat``) and lays the images out by wnid without ever leaving a half-sorted folder: the sorted tree is built
beside ``val/`` with hard links (copies where the file system has none), then swapped in by two renames; the flat
folder is removed afterwards (or kept as ``val.flat`` on request). A folder already laid out is refused.
"""

from __future__ import annotations

import csv
import os
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UserError
from .splits import docs_ref, listdir_nohidden, load_mat, read_lines

STAGING, FLAT = ".by-class.tmp", ".flat"
FIX = "python tools/imagenet_val_layout.py --root <imagenet folder> --labels LOC_val_solution.csv"


def loose_files(folder: str) -> List[str]:
    """The files (not folders) directly inside ``folder``, sorted."""
    return [f for f in listdir_nohidden(folder) if os.path.isfile(os.path.join(folder, f))]


def check_val_layout(name: str, val_dir: str) -> None:
    """One line when ``val_dir`` holds images directly instead of (only) in wnid folders."""
    if not os.path.isdir(val_dir):
        return  # the class-folder reader names the missing folder
    loose = loose_files(val_dir)
    if not loose:
        return
    folders = len(listdir_nohidden(val_dir)) - len(loose)
    state = (f"is flat ({len(loose)} loose images, e.g. {loose[0]}, no class folders)" if not folders else
             f"holds {len(loose)} loose images (e.g. {loose[0]}) beside {folders} class folders")
    raise UserError(f"{name}: {val_dir} {state}; the loader reads one "
                    f"folder per wnid, so lay it out by class with: {FIX} (or the devkit's "
                    f"ILSVRC2012_validation_ground_truth.txt, or the widely used valprep.sh; see {docs_ref(name)})")


def _stem(filename: str) -> str:
    return os.path.splitext(os.path.basename(filename))[0]


def read_kaggle_solution(path: str) -> Dict[str, str]:
    """``LOC_val_solution.csv`` (Kaggle's ImageNet release): ``ImageId,PredictionString``; the wnid is the first
    word of the prediction string. Returns image name without extension -> wnid."""
    labels: Dict[str, str] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:2]] != ["ImageId", "PredictionString"]:
        raise UserError(f"{path} is not LOC_val_solution.csv: its first line must be 'ImageId,PredictionString' "
                        "(use the file from the Kaggle ImageNet release)")
    for lineno, row in enumerate(rows[1:], 2):
        words = row[1].split() if len(row) >= 2 else []
        if not row or not row[0].strip() or not words or not words[0].startswith("n"):
            raise UserError(f"{path} line {lineno} is malformed: expected '<image id>,<wnid> <box> ...', got "
                            f"'{','.join(row)[:80]}' (re-download the file)")
        labels[_stem(row[0].strip())] = words[0]
    return labels


def read_devkit_ground_truth(path: str, meta_path: str) -> Dict[str, str]:
    """The devkit's ``ILSVRC2012_validation_ground_truth.txt`` (line i: the ILSVRC2012_ID of
    ``ILSVRC2012_val_<i, 8 digits>``) with ``meta.mat`` (its ``synsets`` map each ILSVRC2012_ID to a wnid)."""
    if not os.path.isfile(meta_path):
        raise UserError(f"not found: {meta_path}; the devkit's ground truth needs the devkit's meta.mat to name its "
                        "classes (pass --meta, or use LOC_val_solution.csv)")
    synsets = load_mat(meta_path).get("synsets")
    if synsets is None or not getattr(synsets.dtype, "names", None) or not {"ILSVRC2012_ID", "WNID"} <= set(synsets.dtype.names):
        raise UserError(f"{meta_path} has no synsets with ILSVRC2012_ID and WNID: it is not the devkit's meta.mat")
    wnids = {int(np.asarray(s["ILSVRC2012_ID"]).reshape(-1)[0]): str(np.asarray(s["WNID"]).reshape(-1)[0])
             for s in synsets.reshape(-1)}
    labels: Dict[str, str] = {}
    for lineno, line in read_lines(path):
        if not line.isdigit() or int(line) not in wnids:
            raise UserError(f"{path} line {lineno} is '{line[:40]}', not an ILSVRC2012_ID of {meta_path} (use the "
                            "devkit's ILSVRC2012_validation_ground_truth.txt)")
        labels[f"ILSVRC2012_val_{lineno:08d}"] = wnids[int(line)]
    return labels


def read_val_labels(labels_path: str, meta_path: Optional[str] = None) -> Dict[str, str]:
    """Image name (no extension) -> wnid, from either standard file: ``.csv`` = Kaggle, else the devkit's (with
    ``meta_path``, by default the ``meta.mat`` beside it, as in the devkit's ``data/`` folder)."""
    if not os.path.isfile(labels_path):
        raise UserError(f"labels file not found: {labels_path} (pass LOC_val_solution.csv or the devkit's "
                        "ILSVRC2012_validation_ground_truth.txt)")
    if labels_path.lower().endswith(".csv"):
        labels = read_kaggle_solution(labels_path)
    else:
        labels = read_devkit_ground_truth(labels_path, meta_path or os.path.join(os.path.dirname(labels_path), "meta.mat"))
    if not labels:
        raise UserError(f"{labels_path} lists no images; re-download it")
    return labels


def plan_layout(val_dir: str, labels: Dict[str, str]) -> List[Tuple[str, str]]:
    """(file name, wnid) for every image of a flat ``val_dir``; refuses anything but a flat, fully labelled folder."""
    staging, flat = val_dir + STAGING, val_dir + FLAT
    if not os.path.isdir(val_dir) and os.path.isdir(staging) and os.path.isdir(flat):
        raise UserError(f"an earlier run stopped between its two renames: rename {staging} (the complete by-class "
                        f"tree) to {val_dir}, then remove {flat}")
    if not os.path.isdir(val_dir):
        raise UserError(f"validation folder not found: {val_dir} (pass --root with the ImageNet folder that holds "
                        "images/val)")
    for leftover in (staging, flat):
        if os.path.exists(leftover):
            raise UserError(f"{leftover} exists (left by an earlier run): check that {val_dir} is complete, then "
                            "remove it and run again")
    files = loose_files(val_dir)
    folders = len(listdir_nohidden(val_dir)) - len(files)
    if folders and not files:
        raise UserError(f"{val_dir} is already laid out by class ({folders} folders); nothing to do (the layout "
                        "runs once)")
    if folders:
        raise UserError(f"{val_dir} holds {folders} folders and {len(files)} loose files; expected the flat folder "
                        "of the download only (move the folders out, or start from a fresh copy)")
    if not files:
        raise UserError(f"{val_dir} is empty; extract ILSVRC2012_img_val.tar into it first")
    unlabelled = [f for f in files if _stem(f) not in labels]
    if unlabelled:
        raise UserError(f"{os.path.join(val_dir, unlabelled[0])} (and {len(unlabelled) - 1} more files) has no label "
                        "in the labels file; nothing was moved (use the ground truth of this validation set)")
    return [(f, labels[_stem(f)]) for f in files]


def layout_val_by_class(val_dir: str, labels: Dict[str, str], keep_flat: bool = False) -> Tuple[int, int]:
    """Lay a flat ``val_dir`` out as ``<wnid>/<image>``; returns (images, classes). On any failure before the swap
    the staging tree is removed and ``val_dir`` is untouched."""
    val_dir = os.path.abspath(val_dir).rstrip(os.sep)
    plan = plan_layout(val_dir, labels)
    staging, flat = val_dir + STAGING, val_dir + FLAT
    place = os.link
    try:
        for wnid in sorted({w for _, w in plan}):
            os.makedirs(os.path.join(staging, wnid))
        for filename, wnid in plan:
            src, dst = os.path.join(val_dir, filename), os.path.join(staging, wnid, filename)
            try:
                place(src, dst)
            except OSError:
                if place is not os.link:
                    raise
                place = shutil.copy2  # no hard links on this file system: copy (the flat folder goes afterwards)
                place(src, dst)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot build {staging} ({exc.strerror}: {exc.filename}); nothing was changed in "
                        f"{val_dir} (free space or make the folder writable)") from None
    os.rename(val_dir, flat)
    try:
        os.rename(staging, val_dir)
    except OSError:
        os.rename(flat, val_dir)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_flat:
        shutil.rmtree(flat)
    return len(plan), len({w for _, w in plan})
