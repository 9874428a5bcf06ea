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


TRAINERS = ["ZeroshotCLIP", "CoOp", "CoCoOp", "VPT", "IVLP", "MaPLe", "APT", "AdvVP", "AdvVLP", "AdvMaPLe", "FAP", "CAPT"]
SMALL = ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.ADVMAPLE.PROMPT_DEPTH", "2", "TRAINER.FAP.PROMPT_DEPTH", "2",
         "TRAINER.CAPT.PROMPT_DEPTH", "2", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2",
         "TRAINER.COCOOP.N_CTX", "2", "TRAINER.COCOOP.CTX_INIT", "''", "ATTACK.TRAIN.ENABLED", "True",
         "ATTACK.TRAIN.STEPS", "1", "DATASET.NUM_SHOTS", "2"]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_on_a_coop_layout_tree(tmp_path, trainer):
    make_tree(tmp_path / "data", "oxford_pets")
    flags = ["--eval-only"] if trainer == "ZeroshotCLIP" else []
    args = [*flags, "--root", tmp_path / "data", "--seed", "1", "--trainer", trainer, "--output-dir", tmp_path / "o",
            "--dataset-config-file", os.path.join(ROOT, "configs/datasets/oxford_pets.yaml"), *OPTS, *SMALL]
    assert run_train(args) == 0
    record = json.loads((tmp_path / "o" / "results.json").read_text())
    assert record["trainer"] == trainer and record["robust"] and record["clean"]["total"] > 0


def test_cli_attacks_zero_shot_with_pgd_cw_and_autoattack(tmp_path):
    make_tree(tmp_path / "data", "oxford_pets")
    attacks = "('pgd:steps=3,eps=4,norm=l2', 'cw:steps=3,eps=4', 'aa:attacks=apgd-ce,eps=4,iters=3')"
    args = ["--eval-only", "--root", tmp_path / "data", "--trainer", "ZeroshotCLIP", "--output-dir", tmp_path / "o",
            "--dataset-config-file", os.path.join(ROOT, "configs/datasets/oxford_pets.yaml"), *OPTS,
            "ATTACK.TEST.ATTACKS", attacks, "TEST.MAX_IMAGES", "12"]
    assert run_train(args) == 0
    record = json.loads((tmp_path / "o" / "results.json").read_text())
    names = [r["name"] for r in record["robust"]]
    assert len(names) == 4 and any("cw" in n for n in names) and any("autoattack" in n for n in names)
    assert any("l2" in n for n in names)
    assert record["worst_case"]["total"] == record["clean"]["total"]  # its per-sample logic: tests/test_robust_eval.py
    log = (tmp_path / "o" / "log.txt").read_text()
    assert log.count("* robust_accuracy (") == 4


@pytest.mark.slow
def test_capt_base2new_script_on_a_coop_layout_tree(tmp_path):
    import subprocess

    make_tree(tmp_path / "data", "oxford_pets")
    env = dict(os.environ, DATA=str(tmp_path / "data"), OUTPUT=str(tmp_path / "out"), CFG="synth", SHOTS="2",
               BACKBONE="tiny-p8-32", OMP_NUM_THREADS="1",
               EXTRA_OPTS="OPTIM.MAX_EPOCH 1 ATTACK.TRAIN.STEPS 1 ATTACK.TEST.STEPS 1 DATALOADER.TRAIN_X.BATCH_SIZE 2")
    res = subprocess.run(["bash", os.path.join(ROOT, "scripts/capt/base2new.sh"), "oxford_pets", "1"], env=env,
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-1500:]
    for phase, subsample in (("test_base", "base"), ("test_new", "new")):
        method_dir = tmp_path / "out" / "base2new" / phase / "oxford_pets" / "shots_2" / "CAPT"
        (cfg_dir,) = method_dir.glob("synth@*")  # EXTRA_OPTS and BACKBONE give the runs their own folder
        path = cfg_dir / "seed1" / "results.json"
        record = json.loads(path.read_text())
        assert record["subsample"] == subsample and record["dataset"] == "OxfordPets" and record["robust"]
