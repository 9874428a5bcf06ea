"""The zero-shot benchmarks' own datasets (CIFAR-10/100, STL-10, PCAM, Tiny ImageNet, Caltech-256) read from miniature
trees in their real on-disk formats, and the dataset check tool on them."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import promptengine.benchmarks  # noqa: F401
from promptengine.apps import check_datasets as check
from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY
from tests.conftest import ROOT, run_train
from tests.zeroshot_trees import IDS, make_zeroshot_tree, pixel

ARRAY_IDS = ("cifar10", "cifar100", "stl10", "pcam")


def load(data: Path, name: str, *opts: str):
    cfg = build_cfg(opts=["DATASET.ROOT", str(data), "DATASET.NAME", name,
                          "DATASET.FEWSHOT_CACHE_DIR", str(data.parent / "cache"), *opts])
    return DATASET_REGISTRY.get(name)(cfg)


def tree_for(tmp_path: Path, dataset_id: str):
    if dataset_id == "pcam":
        pytest.importorskip("h5py", reason="PCAM's HDF5 files need h5py (pip install h5py)")
    return make_zeroshot_tree(tmp_path / "data", dataset_id)


@pytest.mark.parametrize("dataset_id", IDS)
def test_loader_reads_the_real_format(tmp_path, dataset_id):
    tree = tree_for(tmp_path, dataset_id)
    ds = load(tmp_path / "data", tree.name)
    assert ds.classnames == tree.classnames and ds.num_classes == len(tree.classnames)
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == tree.counts
    for split in (ds.train_x, ds.val, ds.test):
        assert all(d.classname == tree.classnames[d.label] for d in split)
    for d in ds.test[:3] + ds.train_x[-2:]:  # every image shows its own label's colour, upright, in RGB order
        img = np.asarray(ds.read_image(d.impath))
        if dataset_id in ARRAY_IDS:
            assert img.shape[2] == 3 and tuple(img[5, 7]) == pixel(d.label, 5, 7)
            assert tuple(img[-1, 0]) == pixel(d.label, img.shape[0] - 1, 0)
        else:
            assert img.shape == (8, 8, 3)
    if dataset_id in ("cifar10", "cifar100", "stl10", "tiny_imagenet"):
        assert ds.val == ds.test  # no official validation set: the test set serves as val


def test_labels_come_from_the_files_not_the_order(tmp_path):
    """Labels are read per image: CIFAR-10's test batch lists classes 9, 8, ... and STL-10's labels are 1-based."""
    make_zeroshot_tree(tmp_path / "data", "cifar10")
    make_zeroshot_tree(tmp_path / "data", "stl10")
    cifar = load(tmp_path / "data", "CIFAR10")
    assert [d.label for d in cifar.test[:3]] == [9, 8, 7] and cifar.test[0].classname == "truck"
    stl = load(tmp_path / "data", "STL10")
    assert [(d.label, d.classname) for d in stl.test[:2]] == [(9, "truck"), (8, "ship")]


def test_tiny_imagenet_names_labels_and_relaid_val(tmp_path):
    tree = make_zeroshot_tree(tmp_path / "data", "tiny_imagenet")
    ds = load(tmp_path / "data", "TinyImageNet")
    by_name = {d.classname: d.label for d in ds.test}
    assert by_name == {"goldfish": 0, "european fire salamander": 1, "egyptian cat": 2, "go kart": 3}
    assert {os.path.basename(d.impath): d.classname for d in ds.test}["val_0.JPEG"] == "egyptian cat"
    # The robust fine-tuning repositories re-lay val/ out by wnid for ImageFolder: that layout reads the same.
    val = Path(tree.dataset_dir) / "val"
    for line in (val / "val_annotations.txt").read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        (val / wnid).mkdir(exist_ok=True)
        (val / "images" / name).rename(val / wnid / name)
    (val / "val_annotations.txt").unlink()
    again = load(tmp_path / "data", "TinyImageNet")
    assert sorted((os.path.basename(d.impath), d.label) for d in again.test) == \
        sorted((os.path.basename(d.impath), d.label) for d in ds.test)


def test_caltech256_split_is_seeded_and_skips_stray_files(tmp_path):
    make_zeroshot_tree(tmp_path / "data", "caltech256")
    first, second = load(tmp_path / "data", "Caltech256"), load(tmp_path / "data", "Caltech256")
    assert (first.train_x, first.val, first.test) == (second.train_x, second.val, second.test)
    paths = [d.impath for s in (first.train_x, first.val, first.test) for d in s]
    assert len(paths) == len(set(paths)) == 32 and all(p.endswith(".jpg") and "greg" not in p for p in paths)


@pytest.mark.parametrize("dataset_id", ["cifar10", "tiny_imagenet"])
def test_fewshot_and_base_new(tmp_path, dataset_id):
    tree = make_zeroshot_tree(tmp_path / "data", dataset_id)
    ds = load(tmp_path / "data", tree.name, "DATASET.NUM_SHOTS", "1", "SEED", "1")
    assert len(ds.train_x) == len(tree.classnames) and ds.test == ds.val and len(ds.test) == tree.counts[2]
    again = load(tmp_path / "data", tree.name, "DATASET.NUM_SHOTS", "1", "SEED", "1")  # from the few-shot cache
    assert again.train_x == ds.train_x
    base = load(tmp_path / "data", tree.name, "DATASET.SUBSAMPLE_CLASSES", "base")
    new = load(tmp_path / "data", tree.name, "DATASET.SUBSAMPLE_CLASSES", "new")
    n = len(tree.classnames)
    assert base.classnames == tree.classnames[: (n + 1) // 2] and new.classnames == tree.classnames[(n + 1) // 2:]


def test_cifar_pickle_that_calls_code_is_refused(tmp_path):
    tree = make_zeroshot_tree(tmp_path / "data", "cifar10")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    Path(tree.dataset_dir, "batches.meta").write_bytes(pickle.dumps({"label_names": Payload()}, protocol=2))
    with pytest.raises(UserError, match=r"cannot read .*batches.meta as a CIFAR pickle .*posix.system"):
        load(tmp_path / "data", "CIFAR10")
    assert not marker.exists()


def test_pcam_without_h5py_is_one_line(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "data" / "pcam")
    for part in ("train", "valid", "test"):
        for xy in "xy":
            (tmp_path / "data" / "pcam" / f"camelyonpatch_level_2_split_{part}_{xy}.h5").write_bytes(b"\x89HDF")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(UserError, match=r"^PCAM: reading \S+_train_y.h5 needs the h5py package: pip install h5py"):
        load(tmp_path / "data", "PCAM")


# ---- the check tool ------------------------------------------------------------------------------------------------
def break_tree(tree, dataset_id: str) -> str:
    """Damage one file the way downloads get damaged; returns what the one-line report must name."""
    d = Path(tree.dataset_dir)
    if dataset_id in ("cifar10", "cifar100"):
        victim = d / ("test_batch" if dataset_id == "cifar10" else "test")
        victim.write_bytes(victim.read_bytes()[:1000])  # truncated
    elif dataset_id == "stl10":
        victim = d / "test_X.bin"
        victim.write_bytes(victim.read_bytes()[:-5])
    elif dataset_id == "pcam":
        victim = d / "camelyonpatch_level_2_split_valid_y.h5"
        victim.unlink()
    elif dataset_id == "tiny_imagenet":
        victim = d / "val" / "images" / "val_5.JPEG"
        victim.unlink()
    else:
        victim = d / "256_ObjectCategories" / "001.ak47" / "001_0003.jpg"
        victim.write_bytes(b"\xff\xd8 not a jpeg")
    return str(victim)


@pytest.mark.parametrize("dataset_id", IDS)
def test_check_tool_passes_then_names_the_broken_file(tmp_path, dataset_id, capsys):
    tree = tree_for(tmp_path, dataset_id)
    data = str(tmp_path / "data")
    assert check.main(["--root", data, "--check-images", dataset_id]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith(dataset_id + " "))
    assert row[1:6] == ["present", str(len(tree.classnames)), *map(str, tree.counts)]
    victim = break_tree(tree, dataset_id)
    assert check.main(["--root", data, "--check-images", dataset_id]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{dataset_id} b")]
    assert len(problems) == 1 + (dataset_id == "caltech256") and victim in problems[-1], problems


def test_check_tool_default_is_coop_only_and_knows_the_new_ids(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert [b.id for b in check.resolve_names([])] == [b.id for b in check.BENCHMARKS]
    assert [b.name for b in check.resolve_names(["CIFAR10", "tiny-imagenet"])] == ["CIFAR10", "TinyImageNet"]
    text = (Path(ROOT) / "DATASETS.md").read_text()
    for bench in check.ZEROSHOT_BENCHMARKS:
        assert f"\n### {bench.name}\n" in text and f"`{bench.id}`" in text
        cfg = build_cfg(dataset_config_file=os.path.join(ROOT, "configs", "datasets", f"{bench.id}.yaml"))
        assert cfg.DATASET.NAME == bench.name


def test_train_py_on_an_array_dataset(tmp_path):
    """CoOp trains few-shot on CIFAR-10's pickles and evaluates clean and robust through the usual CLI."""
    make_zeroshot_tree(tmp_path / "data", "cifar10")
    args = ["--root", tmp_path / "data", "--seed", "1", "--trainer", "CoOp", "--output-dir", tmp_path / "out",
            "--dataset-config-file", os.path.join(ROOT, "configs/datasets/cifar10.yaml"),
            "MODEL.BACKBONE.NAME", "tiny-p8-16", "INPUT.SIZE", "(16,16)", "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "OPTIM.MAX_EPOCH", "1", "OPTIM.NAME", "sgd", "OPTIM.LR", "0.01",
            "TRAINER.COOP.N_CTX", "2", "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "1", "DATASET.NUM_SHOTS", "2"]
    assert run_train(args) == 0
    import json

    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert record["dataset"] == "CIFAR10" and record["clean"]["total"] == 20 and record["robust"]


def test_reference_counts_of_the_new_sets():
    """Caltech-256 has no official split: only its classes and its 30,607 images over the three splits compare."""
    def result(name, counts, classes):
        bench = next(b for b in check.ZEROSHOT_BENCHMARKS if b.name == name)
        return check.Result(bench, "present", "", classes=classes, counts=dict(zip(check.SPLITS, counts)))

    assert check.counts_match(result("Caltech256", (15304, 6121, 9182), 257))
    assert not check.counts_match(result("Caltech256", (15304, 6121, 9181), 257))
    assert check.counts_match(result("CIFAR10", (50000, 10000, 10000), 10))  # val is the test set
    assert not check.counts_match(result("PCAM", (262144, 32768, 32767), 2))
