"""train.py works on every benchmark's dataset YAML over a miniature CoOp-layout tree (CoOp trains, eval-only reloads)."""

import json
import os

import pytest

from tests.conftest import ROOT, run_train
from tests.dataset_trees import DATASET_IDS, make_tree

TEST_ONLY = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
OPTS = ["MODEL.BACKBONE.NAME", "tiny-p8-16", "INPUT.SIZE", "(16,16)", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "OPTIM.MAX_EPOCH", "1", "OPTIM.NAME", "sgd", "OPTIM.LR", "0.01",
        "TRAINER.COOP.N_CTX", "2", "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "1"]


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_train_py_on_each_dataset_yaml(tmp_path, dataset_id):
    make_tree(tmp_path / "data", dataset_id)
    common = ["--root", tmp_path / "data", "--seed", "1", "--trainer", "CoOp",
              "--dataset-config-file", os.path.join(ROOT, f"configs/datasets/{dataset_id}.yaml")]
    extra = [] if dataset_id in TEST_ONLY else ["DATASET.NUM_SHOTS", "2"]
    out = tmp_path / "train"
    assert run_train([*common, "--output-dir", out, *OPTS, *extra]) == 0
    trained = json.loads((out / "results.json").read_text())
    ev = tmp_path / "eval"
    assert run_train([*common, "--output-dir", ev, "--eval-only", "--model-dir", out, *OPTS, *extra]) == 0
    again = json.loads((ev / "results.json").read_text())
    assert again["clean"] == trained["clean"] and again["robust"][0]["accuracy"] == trained["robust"][0]["accuracy"]
    assert not any(p.name.startswith("split_fewshot") for p in (tmp_path / "data").rglob("*"))
