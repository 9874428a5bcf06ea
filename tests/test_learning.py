"""Learning-effect tests on the embedded world (SynthCLIP + synthetic datasets): methods really learn and really
become robust. Each run uses the method's `synth.yaml` recipe (eps 2/255 for training and test) on 16-shot base
classes with a short budget; comparisons are between runs on the same test images with the same attack (PGD-5).

SynthCLIP's zero-shot accuracy on SynthShapes base classes is ~92%, at the ceiling of what its frozen image features
separate, so clean prompt learning is tested where zero-shot is weaker: the cluttered-scene domain (~61%).
"""

import json
import os

import pytest

from tests.conftest import ROOT, run_train

pytestmark = pytest.mark.slow

COMMON = ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "5", "TEST.MAX_IMAGES", "480",
          "ATTACK.TEST.STEPS", "5", "ATTACK.TRAIN.STEPS", "2"]


def synth_run(root, trainer, dataset):
    out = root / f"{trainer}_{dataset}"
    flags = ["--eval-only"] if trainer == "ZeroshotCLIP" else []
    args = [*flags, "--trainer", trainer, "--seed", "1", "--output-dir", out,
            "--dataset-config-file", os.path.join(ROOT, f"configs/datasets/{dataset}.yaml"),
            "--config-file", os.path.join(ROOT, f"configs/trainers/{trainer}/synth.yaml"), *COMMON]
    assert run_train(args) == 0
    record = json.loads((out / "results.json").read_text())
    log = (out / "log.txt").read_text()
    losses = [float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " summary: " in line]
    return {"clean": record["clean"]["accuracy"], "robust": record["worst_case"]["accuracy"], "losses": losses}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    cache = {}

    def get(trainer, dataset="synth_shapes"):
        if (trainer, dataset) not in cache:
            cache[trainer, dataset] = synth_run(root, trainer, dataset)
        return cache[trainer, dataset]

    return get


def test_zero_shot_is_far_above_chance_and_fragile(results):
    zs = results("ZeroshotCLIP")
    assert zs["clean"] > 5 * 100 / 24  # 24 base classes
    assert zs["robust"] < zs["clean"] / 1.5  # PGD at 2/255 breaks the undefended model


@pytest.mark.parametrize("trainer", ["CoOp", "CoCoOp", "IVLP", "MaPLe"])
def test_clean_prompt_learners_beat_zero_shot(results, trainer):
    run, zs = results(trainer, "synth_shapes_clutter"), results("ZeroshotCLIP", "synth_shapes_clutter")
    assert run["losses"][-1] < run["losses"][0]
    assert run["clean"] > zs["clean"] + 3


def test_vpt_learns(results):
    run = results("VPT", "synth_shapes_clutter")
    assert run["losses"][-1] < run["losses"][0]


@pytest.mark.parametrize("adv,twin", [("APT", "CoOp"), ("AdvVLP", "IVLP"), ("AdvMaPLe", "MaPLe"), ("FAP", "MaPLe"),
                                      ("CAPT", "MaPLe"), ("AdvVP", "VPT")])
def test_adversarial_methods_are_more_robust_than_their_clean_twin(results, adv, twin):
    assert results(adv)["robust"] > results(twin)["robust"] + 1


def test_capt_is_more_robust_than_zero_shot(results):
    capt, zs = results("CAPT"), results("ZeroshotCLIP")
    assert capt["robust"] > zs["robust"] + 2
    assert capt["losses"][-1] < capt["losses"][0]
