"""The 15 benchmark loaders on miniature copies of their real layouts, the split helpers, the error
catalogue and tools/check_datasets.py."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

import promptengine.benchmarks  # noqa: F401
from promptengine.config.merge import build_cfg
from promptengine.data.dataset import DatasetBase
from promptengine.data.datum import Datum
from promptengine.data.splits import (
    SPLIT_SEED,
    read_and_split_data,
    read_split,
    save_split,
    seeded_random,
    split_trainval,
)
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY
from tests.dataset_trees import DATASET_IDS, GENERATABLE, IMAGENET_CLASSES, make_tree

REPO = Path(__file__).resolve().parents[1]
TEST_ONLY = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
NEEDS_MAT = ("stanford_cars", "oxford_flowers")


def load(data, name: str, *opts: str):
    """Build ``name`` with DATASET.ROOT = ``data`` and the few-shot cache beside it (outside the root)."""
    cache = str(Path(data).parent / "cache")
    cfg = build_cfg(opts=["DATASET.ROOT", str(data), "DATASET.NAME", name, "DATASET.FEWSHOT_CACHE_DIR", cache, *opts])
    return DATASET_REGISTRY.get(name)(cfg)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def per_class(items) -> Counter:
    return Counter(d.label for d in items)


@pytest.fixture
def data(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


# ---------------------------------------------------------------------------------------------
# Every loader on its miniature layout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_loader_reads_its_layout(data, dataset_id):
    tree = make_tree(data, dataset_id)
    ds = load(data, tree.name)
    assert ds.classnames == tree.classnames
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == tree.counts
    n = len(tree.classnames)
    assert ds.num_classes == n
    for split in (ds.train_x, ds.val, ds.test):
        assert {d.label for d in split} <= set(range(n))
        assert all(d.classname == tree.classnames[d.label] and os.path.isfile(d.impath) for d in split)
    if tree.test_only:
        assert ds.train_x == ds.test and ds.val == []
    if dataset_id == "imagenet":
        assert ds.val == ds.test  # the val set is the test set
    assert "{}" in type(ds).template


@pytest.mark.parametrize("dataset_id", [d for d in DATASET_IDS if d not in TEST_ONLY])
def test_fewshot_and_base_new(data, dataset_id):
    tree = make_tree(data, dataset_id)
    before = snapshot(data)
    ds = load(data, tree.name, "DATASET.NUM_SHOTS", "2", "SEED", "1")
    assert per_class(ds.train_x) == {y: 2 for y in range(4)}
    if dataset_id == "imagenet":
        assert len(ds.val) == len(ds.test) == tree.counts[2]  # few-shot on train only
    else:
        assert per_class(ds.val) == {y: 2 for y in range(4)}  # min(K, 4) per class
        assert len(ds.test) == tree.counts[2]
    again = load(data, tree.name, "DATASET.NUM_SHOTS", "2", "SEED", "1")  # from the JSON cache
    assert again.train_x == ds.train_x and again.val == ds.val
    assert list((data.parent / "cache" / tree.name).glob("shot_2-seed_1.json"))

    base = load(data, tree.name, "DATASET.NUM_SHOTS", "2", "SEED", "1", "DATASET.SUBSAMPLE_CLASSES", "base")
    new = load(data, tree.name, "DATASET.NUM_SHOTS", "2", "SEED", "1", "DATASET.SUBSAMPLE_CLASSES", "new")
    assert base.classnames == tree.classnames[:2] and new.classnames == tree.classnames[2:]
    assert {d.label for d in new.test} == {0, 1}
    assert [d.impath for d in new.train_x] == [d.impath for d in ds.train_x if d.label >= 2]
    assert snapshot(data) == before  # nothing written into the data root


@pytest.mark.parametrize("dataset_id", TEST_ONLY)
def test_variants_are_test_only(data, dataset_id):
    tree = make_tree(data, dataset_id)
    ds = load(data, tree.name, "DATASET.NUM_SHOTS", "1", "SEED", "1")
    assert len(ds.test) == tree.counts[2] and ds.train_x == ds.test


def test_imagenet_a_labels_follow_sorted_present_wnids(data):
    make_tree(data, "imagenet_a")
    ds = load(data, "ImageNetA")
    names = dict(IMAGENET_CLASSES)
    assert ds.classnames == [names["n01443537"], names["n01491361"], names["n01496331"]]
    assert all(os.path.basename(os.path.dirname(d.impath)) == sorted(["n01443537", "n01491361", "n01496331"])[d.label]
               for d in ds.test)  # fmt: skip


def test_imagenetv2_folder_index_is_classnames_line(data):
    tree = make_tree(data, "imagenetv2")
    lines = (Path(tree.dataset_dir) / "classnames.txt").read_text().splitlines()
    (Path(tree.dataset_dir) / "classnames.txt").write_text("\n".join(reversed(lines)) + "\n")
    ds = load(data, "ImageNetV2")
    assert ds.classnames == [line.split(" ", 1)[1] for line in reversed(lines)]
    assert all(os.path.basename(os.path.dirname(d.impath)) == str(d.label) for d in ds.test)


def test_templates():
    expected = {
        "ImageNet": "a photo of a {}.", "Caltech101": "a photo of a {}.", "StanfordCars": "a photo of a {}.",
        "SUN397": "a photo of a {}.", "DescribableTextures": "{} texture.",
        "EuroSAT": "a centered satellite photo of {}.", "OxfordPets": "a photo of a {}, a type of pet.",
        "FGVCAircraft": "a photo of a {}, a type of aircraft.", "Food101": "a photo of {}, a type of food.",
        "OxfordFlowers": "a photo of a {}, a type of flower.", "UCF101": "a photo of a person doing {}.",
        "ImageNetV2": "a photo of a {}.", "ImageNetSketch": "a photo of a {}.", "ImageNetA": "a photo of a {}.",
        "ImageNetR": "a photo of a {}.",
    }  # fmt: skip
    assert {n: DATASET_REGISTRY.get(n).template for n in expected} == expected


def test_dataset_yamls_name_the_registered_loaders():
    check = _check_tool()
    for bench in check.BENCHMARKS:
        cfg = build_cfg(dataset_config_file=str(REPO / "configs" / "datasets" / f"{bench.id}.yaml"))
        assert cfg.DATASET.NAME == bench.name and bench.name in DATASET_REGISTRY
    assert [b.id for b in check.BENCHMARKS] == list(DATASET_IDS)
    assert len(list((REPO / "configs" / "datasets").glob("*.yaml"))) >= 15


# ---------------------------------------------------------------------------------------------
# Generated splits (no split JSON) and the split helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", GENERATABLE)
def test_generated_split_follows_coop_rules(data, dataset_id, capsys):
    if dataset_id in NEEDS_MAT:
        pytest.importorskip("scipy")
    tree = make_tree(data, dataset_id, split_json=False, mat=True)
    json_path = Path(tree.dataset_dir) / DATASET_REGISTRY.get(tree.name).split_file
    state = random.getstate()
    before = snapshot(data)
    ds = load(data, tree.name)
    assert random.getstate() == state  # the split is drawn with its own seed; the run's stream is untouched
    assert "generating the split" in capsys.readouterr().out
    assert ds.classnames == tree.classnames
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == tree.counts
    paths = [{d.impath for d in s} for s in (ds.train_x, ds.val, ds.test)]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    assert snapshot(data) == before and not json_path.exists()  # WRITE_SPLITS is off by default

    random.seed(123)
    again = load(data, tree.name)  # the same split every time, whatever the run seed
    assert (again.train_x, again.val, again.test) == (ds.train_x, ds.val, ds.test)

    written = load(data, tree.name, "DATASET.WRITE_SPLITS", "True")
    assert json_path.is_file()
    reread = load(data, tree.name)
    assert (reread.train_x, reread.val, reread.test) == (written.train_x, written.val, written.test)
    assert (written.train_x, written.val, written.test) == (ds.train_x, ds.val, ds.test)


def test_read_and_split_data_matches_coop_procedure(tmp_path):
    for c, n in (("b_cls", 9), ("a_cls", 7), ("c_cls", 4)):
        for i in range(n):
            (tmp_path / c).mkdir(exist_ok=True)
            (tmp_path / c / f"{i}.jpg").write_bytes(b"x")
    with seeded_random(SPLIT_SEED):
        train, val, test = read_and_split_data(str(tmp_path), new_cnames={"a_cls": "A"})
    # CoOp's procedure, written out: sorted classes, one shuffle per class, round() of each share.
    random.seed(SPLIT_SEED)
    want = ([], [], [])
    for label, c in enumerate(sorted(["a_cls", "b_cls", "c_cls"])):
        ims = sorted(os.listdir(tmp_path / c))
        random.shuffle(ims)
        n_tr, n_va = round(len(ims) * 0.5), round(len(ims) * 0.2)
        for part, chunk in zip(want, (ims[:n_tr], ims[n_tr : n_tr + n_va], ims[n_tr + n_va :]), strict=True):
            part.extend((os.path.join(str(tmp_path), c, im), label) for im in chunk)
    assert [[(d.impath, d.label) for d in s] for s in (train, val, test)] == [list(w) for w in want]
    assert {d.classname for d in train if d.label == 0} == {"A"}


def test_split_trainval_matches_coop_procedure():
    trainval = [Datum(f"/x/{y}_{i}.jpg", y, classname=str(y)) for y in (2, 0, 1) for i in range(6 + y)]
    random.seed(7)
    train, val = split_trainval(trainval)
    random.seed(7)
    want_val = []
    for y in (2, 0, 1):
        idxs = [i for i, d in enumerate(trainval) if d.label == y]
        n_val = round(len(idxs) * 0.2)
        random.shuffle(idxs)
        want_val += [trainval[i] for i in idxs[:n_val]]
    assert val == want_val and len(train) + len(val) == len(trainval)


def test_split_json_roundtrip(tmp_path):
    image_dir = str(tmp_path / "images")
    items = [Datum(os.path.join(image_dir, "a", f"{i}.jpg"), i % 2, classname=f"c{i % 2}") for i in range(6)]
    path = tmp_path / "split_zhou_X.json"
    save_split(items[:2], items[2:4], items[4:], str(path), image_dir)
    raw = json.loads(path.read_text())
    assert raw["train"][0] == ["a/0.jpg", 0, "c0"] and path.read_text().startswith('{\n    "train"')
    assert list(tmp_path.glob("*.tmp*")) == []
    assert read_split(str(path), image_dir) == (items[:2], items[2:4], items[4:])


def test_few_classes_images_is_a_user_error(tmp_path):
    for i in range(3):
        (tmp_path / "tiny").mkdir(exist_ok=True)
        (tmp_path / "tiny" / f"{i}.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="'tiny' has only 3 images"):
        read_and_split_data(str(tmp_path))
    with pytest.raises(UserError, match="at least 3 per class"):
        split_trainval([Datum("/a.jpg", 0), Datum("/b.jpg", 0)])


# ---------------------------------------------------------------------------------------------
# Error catalogue: one UserError line naming the path and what belongs there
# ---------------------------------------------------------------------------------------------


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_root_not_set_or_absent(data):
    with pytest.raises(UserError) as e:
        load("", "OxfordPets")
    assert "--root" in one_line(e) and "DATASET.ROOT" in one_line(e)
    with pytest.raises(UserError) as e:
        load(data / "nope", "OxfordPets")
    assert str(data / "nope") in one_line(e)


def test_root_expands_user_and_env(data, monkeypatch):
    make_tree(data, "dtd")
    monkeypatch.setenv("PE_TEST_DATA", str(data))
    assert len(load("$PE_TEST_DATA", "DescribableTextures").test) == 8


def test_missing_dataset_folder(data):
    with pytest.raises(UserError) as e:
        load(data, "OxfordPets")
    assert str(data / "oxford_pets") in one_line(e) and "DATASETS.md#oxfordpets" in one_line(e)


def test_missing_split_file_that_cannot_be_generated(data):
    make_tree(data, "oxford_pets", split_json=False)
    (data / "oxford_pets" / "annotations" / "trainval.txt").unlink()
    with pytest.raises(UserError) as e:
        load(data, "OxfordPets")
    msg = one_line(e)
    assert str(data / "oxford_pets" / "split_zhou_OxfordPets.json") in msg
    assert str(data / "oxford_pets" / "annotations" / "trainval.txt") in msg


def test_missing_official_list(data):
    make_tree(data, "fgvc_aircraft")
    (data / "fgvc_aircraft" / "images_variant_val.txt").unlink()
    with pytest.raises(UserError, match="images_variant_val.txt"):
        load(data, "FGVCAircraft")


def test_split_entry_without_image(data):
    make_tree(data, "caltech101")
    victim = data / "caltech-101" / "101_ObjectCategories" / "accordion" / "accordion_0007.jpg"
    victim.unlink()
    with pytest.raises(UserError) as e:
        load(data, "Caltech101")
    assert f"image not found: {victim}" in one_line(e)


def test_missing_image_folder_is_named(data):
    make_tree(data, "eurosat")
    import shutil

    shutil.rmtree(data / "eurosat" / "2750")
    with pytest.raises(UserError) as e:
        load(data, "EuroSAT")
    assert f"folder not found: {data / 'eurosat' / '2750'} " in one_line(e)


def test_unreadable_image(data):
    make_tree(data, "dtd")
    ds = load(data, "DescribableTextures")
    bad = ds.test[0].impath
    Path(bad).write_bytes(b"not an image")
    with pytest.raises(UserError, match="cannot read image"):
        ds.read_image(bad)
    png = data / "ok.png"
    from tests.dataset_trees import write_image

    write_image(str(png), 1, "PNG")
    assert DatasetBase().read_image(str(png)).size == (8, 8)


def test_classnames_bad_line_names_the_line(data):
    tree = make_tree(data, "imagenet_sketch")
    path = Path(tree.dataset_dir) / "classnames.txt"
    lines = path.read_text().splitlines()
    lines[2] = "n01484850"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as e:
        load(data, "ImageNetSketch")
    assert f"{path} line 3 is malformed" in one_line(e)


def test_annotation_bad_line_names_the_line(data):
    make_tree(data, "oxford_pets", split_json=False)
    path = data / "oxford_pets" / "annotations" / "test.txt"
    path.write_text(path.read_text() + "garbage\n")
    with pytest.raises(UserError, match=f"{path} line 9 is malformed"):
        load(data, "OxfordPets")


def test_bad_split_json(data):
    make_tree(data, "dtd")
    path = data / "dtd" / "split_zhou_DescribableTextures.json"
    path.write_text('{"train": [')
    with pytest.raises(UserError, match="is not valid JSON"):
        load(data, "DescribableTextures")
    path.write_text('{"train": [], "val": []}')
    with pytest.raises(UserError, match="has no 'test' list"):
        load(data, "DescribableTextures")


def test_imagenet_flat_val_and_unknown_wnid(data):
    import shutil

    make_tree(data, "imagenet")
    val = data / "imagenet" / "images" / "val"
    for f in list(val.rglob("*.JPEG")):
        f.rename(val / f.name)
    for d in [d for d in val.iterdir() if d.is_dir()]:
        shutil.rmtree(d)
    with pytest.raises(UserError, match="valprep"):
        load(data, "ImageNet")
    make_tree(data, "imagenet_r")
    (data / "imagenet-rendition" / "imagenet-r" / "n99999999").mkdir()
    with pytest.raises(UserError, match="n99999999 is not listed in classnames.txt"):
        load(data, "ImageNetR")


def test_mat_without_scipy_says_pip_install(data, monkeypatch):
    make_tree(data, "oxford_flowers", split_json=False)
    (data / "oxford_flowers" / "imagelabels.mat").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(UserError, match="pip install scipy"):
        load(data, "OxfordFlowers")


# ---------------------------------------------------------------------------------------------
# tools/check_datasets.py
# ---------------------------------------------------------------------------------------------


def _check_tool():
    if "check_datasets" not in sys.modules:
        spec = importlib.util.spec_from_file_location("check_datasets", REPO / "tools" / "check_datasets.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["check_datasets"] = module
        spec.loader.exec_module(module)
    return sys.modules["check_datasets"]


def test_check_tool_good_tree(data, capsys):
    for d in ("oxford_pets", "imagenet_a"):
        make_tree(data, d)
    make_tree(data, "dtd", split_json=False)
    before = snapshot(data)
    assert _check_tool().main(["--root", str(data), "oxford_pets", "DescribableTextures", "imagenet_a"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert rows["oxford_pets"][1:6] == ["present", "4", "24", "8", "8"]
    assert "37 cls, 2944/736/3669" in out and "split_zhou_OxfordPets.json" in out
    assert rows["dtd"][1] == "present" and "generated (no JSON)" in out
    assert "200 cls, 7500 test" in out and "3/3 datasets present" in out
    assert snapshot(data) == before


def test_check_tool_broken_and_missing(data, capsys):
    make_tree(data, "oxford_pets")
    victim = data / "oxford_pets" / "images" / "basset_hound_2.jpg"
    victim.unlink()
    assert _check_tool().main(["--root", str(data), "oxford_pets", "food101"]) == 1
    out = capsys.readouterr().out
    assert "broken" in out and f"image not found: {victim}" in out
    assert "(24 in split)" in out  # what the split file lists, since nothing loaded
    assert f"food101 missing: expected the folder {data / 'food-101'}" in out and "DATASETS.md#food101" in out
    assert _check_tool().main(["--root", str(data), "no_such_set"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_datasets_md_has_a_section_per_loader():
    text = (REPO / "DATASETS.md").read_text()
    for bench in _check_tool().BENCHMARKS:
        assert f"\n### {bench.name}\n" in text and f"`{bench.id}`" in text


def test_write_splits_failure_is_a_user_error(data):
    make_tree(data, "dtd", split_json=False)
    (data / "dtd" / "split_zhou_DescribableTextures.json").mkdir()  # cannot be replaced by a file
    with pytest.raises(UserError, match="cannot write the generated split"):
        load(data, "DescribableTextures", "DATASET.WRITE_SPLITS", "True")
