"""ImageNet's flat val/ folder: one error line naming the fix, and the fix (tools/imagenet_val_layout.py) from either
standard ground-truth file, all or nothing, once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import promptengine.benchmarks  # noqa: F401
from promptengine.apps.imagenet_val_layout import main as layout_main
from promptengine.config.merge import build_cfg
from promptengine.data import imagenet_val
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY
from tests.conftest import ROOT
from tests.dataset_trees import IMAGENET_CLASSES, make_tree

REAL_LINK = os.link


def load_imagenet(data: Path):
    return DATASET_REGISTRY.get("ImageNet")(build_cfg(opts=["DATASET.ROOT", str(data), "DATASET.NAME", "ImageNet"]))


def flat_val(data: Path) -> dict:
    """The miniature ImageNet with its val images flattened and renamed as in the download (1-based ids);
    returns image name -> wnid."""
    make_tree(data, "imagenet")
    val = data / "imagenet" / "images" / "val"
    truth = {}
    for n, image in enumerate(sorted(val.rglob("*.JPEG")), 1):
        name = f"ILSVRC2012_val_{n:08d}.JPEG"
        truth[name] = image.parent.name
        image.rename(val / name)
    for d in [d for d in val.iterdir() if d.is_dir()]:
        d.rmdir()
    return truth


def write_kaggle_csv(path: Path, truth: dict) -> Path:
    rows = ["ImageId,PredictionString"] + [f"{Path(n).stem},{w} 12 20 200 180 {w} 1 2 3 4 " for n, w in truth.items()]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_devkit(folder: Path, truth: dict) -> Path:
    """``data/ILSVRC2012_validation_ground_truth.txt`` and ``data/meta.mat`` as in ILSVRC2012_devkit_t12."""
    from scipy.io import savemat

    synsets = [(i + 1, w, name, 0) for i, (w, name) in enumerate(IMAGENET_CLASSES)] + [(1001, "n00001740", "entity", 3)]
    arr = np.zeros((len(synsets), 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    for j, (sid, wnid, words, children) in enumerate(synsets):
        arr[j, 0] = (np.array([[sid]], dtype=np.uint16), np.array([wnid]), np.array([words]), np.array([[children]]))
    folder.mkdir(parents=True)
    savemat(folder / "meta.mat", {"synsets": arr})
    ids = {w: i + 1 for i, (w, _) in enumerate(IMAGENET_CLASSES)}
    lines = [str(ids[truth[f"ILSVRC2012_val_{n:08d}.JPEG"]]) for n in range(1, len(truth) + 1)]
    (folder / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(lines) + "\n")
    return folder / "ILSVRC2012_validation_ground_truth.txt"


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_ino for p in sorted(root.rglob("*"))}


def test_flat_val_is_one_line_naming_the_helper(tmp_path):
    flat_val(tmp_path / "data")
    with pytest.raises(UserError) as err:
        load_imagenet(tmp_path / "data")
    message = str(err.value)
    assert "\n" not in message and "is flat (8 loose images" in message
    assert "python tools/imagenet_val_layout.py --root" in message and "DATASETS.md#imagenet" in message
    val = tmp_path / "data" / "imagenet" / "images" / "val"
    (val / "n01440764").mkdir()  # half laid out: the loose images would silently be missing from the test set
    (val / "ILSVRC2012_val_00000001.JPEG").rename(val / "n01440764" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(UserError, match=r"holds 7 loose images \(e.g. ILSVRC2012_val_00000002.JPEG\) beside 1 class"):
        load_imagenet(tmp_path / "data")


def test_kaggle_solution_lays_val_out_once(tmp_path, capsys):
    data = tmp_path / "data"
    truth = flat_val(data)
    csv = write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    assert layout_main(["--root", str(data / "imagenet"), "--labels", str(csv)]) == 0
    assert "laid out 8 images into 4 class folders" in capsys.readouterr().out
    ds = load_imagenet(data)
    names = dict(IMAGENET_CLASSES)
    assert sorted((os.path.basename(d.impath), d.classname) for d in ds.test) == \
        sorted((n, names[w]) for n, w in truth.items())
    assert sorted(os.listdir(data / "imagenet" / "images")) == ["train", "val"]  # no staging or flat copy left
    before = snapshot(data)
    with pytest.raises(UserError, match="already laid out by class"):
        layout_main(["--root", str(data / "imagenet"), "--labels", str(csv)])
    assert snapshot(data) == before


def test_devkit_ground_truth_with_meta_mat(tmp_path):
    data = tmp_path / "data"
    truth = flat_val(data)
    gt = write_devkit(tmp_path / "ILSVRC2012_devkit_t12" / "data", truth)
    flat_inodes = {n: (data / "imagenet" / "images" / "val" / n).stat().st_ino for n in truth}
    assert layout_main(["--root", str(data / "imagenet"), "--labels", str(gt), "--keep-flat"]) == 0
    val = data / "imagenet" / "images" / "val"
    assert {p.name: p.parent.name for p in val.rglob("*.JPEG")} == truth
    kept = data / "imagenet" / "images" / "val.flat"
    assert {p.name: p.stat().st_ino for p in kept.iterdir()} == flat_inodes  # hard links: no second copy
    assert {(val / w / n).stat().st_ino for n, w in truth.items()} == set(flat_inodes.values())


def test_unlabelled_image_changes_nothing(tmp_path):
    data = tmp_path / "data"
    truth = flat_val(data)
    csv = write_kaggle_csv(tmp_path / "LOC_val_solution.csv", dict(list(truth.items())[:-1]))
    before = snapshot(data)
    with pytest.raises(UserError, match=r"ILSVRC2012_val_00000008.JPEG \(and 0 more files\) has no label"):
        layout_main(["--root", str(data / "imagenet"), "--labels", str(csv)])
    assert snapshot(data) == before


def test_failure_while_building_leaves_val_as_it_was(tmp_path, monkeypatch):
    data = tmp_path / "data"
    truth = flat_val(data)
    csv = write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    before = snapshot(data)
    calls = []

    def failing_link(src, dst):
        calls.append(src)
        if len(calls) > 3:
            raise OSError(28, "No space left on device", dst)
        return REAL_LINK(src, dst)

    monkeypatch.setattr(os, "link", failing_link)
    monkeypatch.setattr(shutil, "copy2", failing_link)
    with pytest.raises(UserError, match=r"No space left on device: .*nothing was changed in"):
        imagenet_val.layout_val_by_class(str(data / "imagenet" / "images" / "val"), imagenet_val.read_val_labels(str(csv)))
    assert snapshot(data) == before


def test_cli_reports_one_line_and_exit_2(tmp_path):
    (tmp_path / "imagenet" / "images" / "val").mkdir(parents=True)
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "imagenet_val_layout.py"), "--root",
                          str(tmp_path / "imagenet"), "--labels", str(tmp_path / "missing.csv")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: labels file not found:")


def test_a_run_stopped_between_the_renames_says_how_to_finish(tmp_path, monkeypatch):
    data = tmp_path / "data"
    truth = flat_val(data)
    csv = write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    images = data / "imagenet" / "images"
    real_rename = os.rename

    def rename_then_die(src, dst):
        real_rename(src, dst)
        if dst.endswith(".flat"):
            raise KeyboardInterrupt  # killed right after the first rename

    monkeypatch.setattr(os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        layout_main(["--root", str(data / "imagenet"), "--labels", str(csv)])
    monkeypatch.undo()
    with pytest.raises(UserError, match=r"stopped between its two renames: rename .*val.by-class.tmp .* to .*val, then"):
        layout_main(["--root", str(data / "imagenet"), "--labels", str(csv)])
    assert {p.name: p.parent.name for p in (images / "val.by-class.tmp").rglob("*.JPEG")} == truth  # complete
