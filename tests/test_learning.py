"""Learning-effect tests on the embedded world (SynthCLIP + synthetic datasets): methods really learn and, where
the measurements on two seeds support it, really become robust (the measured numbers are written next to each test).
Each run uses the method's `synth.yaml` recipe (eps 2/255 for training and test) on 16-shot base classes with a short
budget; comparisons are between runs on the same test images with the same attack (PGD-5).

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


def synth_run(root, trainer, dataset, seed="1", extra=()):
    out = root / f"{trainer}_{dataset}_{seed}_{'_'.join(extra)}"
    flags = ["--eval-only"] if trainer == "ZeroshotCLIP" else []
    args = [*flags, "--trainer", trainer, "--seed", seed, "--output-dir", out,
            "--dataset-config-file", os.path.join(ROOT, f"configs/datasets/{dataset}.yaml"),
            "--config-file", os.path.join(ROOT, f"configs/trainers/{trainer}/synth.yaml"), *COMMON, *extra]
    assert run_train(args) == 0
    record = json.loads((out / "results.json").read_text())
    log = (out / "log.txt").read_text()
    losses = [float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " summary: " in line]
    return {"clean": record["clean"]["accuracy"], "robust": record["worst_case"]["accuracy"], "losses": losses}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    cache = {}

    def get(trainer, dataset="synth_shapes", seed="1", extra=()):
        key = (trainer, dataset, seed, tuple(extra))
        if key not in cache:
            cache[key] = synth_run(root, trainer, dataset, seed, extra)
        return cache[key]

    return get


SEEDS = ("1", "2")


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


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


# Adversarial training vs the same prompts trained clean: robust accuracy gain (points), seeds 1 and 2:
#   AdvVP vs VPT +8.3, +6.0; AdvVLP vs IVLP +7.7, +6.5; AdvMaPLe vs MaPLe +1.9, +10.6; FAP vs MaPLe -2.7, +5.4;
#   APT vs CoOp +3.3, -9.6 (APT's seed-2 run collapsed to 36% clean accuracy); CAPT vs MaPLe -1.7, +1.3.
# Only gains that held on both seeds by more than their seed-to-seed spread are asserted; AdvVP (the slowest run)
# is asserted on seed 1 only. The others are not claimed at this budget (5 epochs, PGD-2 training at 2/255).
def test_adversarial_vlp_is_more_robust_than_its_clean_twin_on_two_seeds(results):
    gains = [results("AdvVLP", seed=s)["robust"] - results("IVLP", seed=s)["robust"] for s in SEEDS]
    assert mean(gains) > 3, gains  # measured 7.7 and 6.5


def test_adversarial_visual_prompting_is_more_robust_than_vpt(results):
    assert results("AdvVP")["robust"] > results("VPT")["robust"] + 3  # measured +8.3 (seed 2: +6.0)


# CAPT's own claims, on two seeds (the run seed also changes the training attack's random starts).
# Measured (clean / robust, 480 images; zero-shot CLIP: 91.7 / 37.3 whatever the seed):
#   seed 1: CAPT 90.6 / 37.5, alpha = 0: 72.7 / 35.8, alpha = 1: 91.0 / 39.2
#   seed 2: CAPT 89.2 / 37.3, alpha = 0: 82.3 / 41.0, alpha = 1: 88.8 / 40.2
# Supported here: CAPT stays near zero-shot clean accuracy, and its frozen-CLIP term is what keeps it there (alpha = 0,
# the train-consistency term alone, loses 7-18 points). NOT supported at this budget: CAPT more robust than its
# alpha = 0 or alpha = 1 variants, or than zero-shot CLIP. Changing only the training attack's random-start stream moved
# CAPT's seed-1 robust accuracy from 42.9 to 37.5 (docs/CAPT.md), so robust differences of a few points are noise here.
ALPHA_0 = ("TRAINER.CAPT.ALPHA_MODE", "fixed", "TRAINER.CAPT.ALPHA_FIXED", "0.0")


def test_capt_keeps_clean_accuracy_near_zero_shot(results):
    zs = results("ZeroshotCLIP")["clean"]
    capt = [results("CAPT", seed=s) for s in SEEDS]
    assert mean(r["clean"] for r in capt) > zs - 4  # measured: 1.8 points below on average (1.0 and 2.5)
    assert all(r["losses"][-1] < r["losses"][0] for r in capt)


def test_capt_frozen_term_keeps_the_clean_accuracy_that_alpha_zero_loses(results):
    capt = mean(results("CAPT", seed=s)["clean"] for s in SEEDS)
    alpha_0 = mean(results("CAPT", seed=s, extra=ALPHA_0)["clean"] for s in SEEDS)
    assert capt > alpha_0 + 5  # measured: 89.9 vs 77.5 (12.4 points)
