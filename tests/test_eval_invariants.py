"""Two evaluation invariants users of robust CLIP repositories asked for: the reported accuracies, clean and robust,
do not change with the test batch size (PMG-AFT issue 1: a double normalisation made them do so), and every
results.json says which model generated each attack's examples (FAP issue 4, ZSRobust issue 4): the evaluated model,
or the named surrogate a test-time defense is attacked through."""

import json
import os

import pytest

from tests.conftest import ROOT, run_train

#: SynthCLIP on SynthShapes (the embedded world's recipes), the first 20 test images
WORLD = ["--dataset-config-file", os.path.join(ROOT, "configs/datasets/synth_shapes.yaml"), "TEST.MAX_IMAGES", "20"]
#: two test attacks (PGD with CE, PGD with the CW margin)
ATTACKS = ["ATTACK.TEST.ENABLED", "False",
           "ATTACK.TEST.ATTACKS", "('pgd:steps=2,eps=2,alpha=1', 'cw:steps=2,eps=2,alpha=1')"]


def evaluate(out, trainer, *opts) -> dict:
    """``trainer`` evaluated (--eval-only, its configs/trainers/<trainer>/synth.yaml) on SynthShapes; its results."""
    recipe = os.path.join(ROOT, f"configs/trainers/{trainer}/synth.yaml")
    assert run_train(["--trainer", trainer, "--eval-only", "--seed", "1", "--output-dir", out, "--config-file", recipe,
                      *WORLD, *ATTACKS, *opts]) == 0
    return json.loads((out / "results.json").read_text())


def measured(results: dict) -> tuple:
    """Everything a results.json reports about accuracy: clean, each attack, the worst case and the per-image bits."""
    per_image = results["per_image"]
    return (results["clean"]["accuracy"], [r["accuracy"] for r in results["robust"]],
            results["worst_case"]["accuracy"], per_image["clean"], per_image["robust"], per_image["worst_case"])


@pytest.mark.parametrize("trainer", ["ZeroshotCLIP", "TTC"])
def test_clean_and_robust_accuracy_do_not_depend_on_the_test_batch_size(tmp_path, trainer):
    """The same 20 images in one batch of 20 and in batches of 3 (the last one ragged): every accuracy and every
    image's verdict are equal, for the frozen model and for a test-time defense that adapts a whole batch at once."""
    whole = evaluate(tmp_path / "b20", trainer, "DATALOADER.TEST.BATCH_SIZE", "20")
    small = evaluate(tmp_path / "b3", trainer, "DATALOADER.TEST.BATCH_SIZE", "3")
    assert measured(small) == measured(whole)
    clean, robust, *_ = measured(whole)
    assert min(robust) < clean and max(robust) > 0  # attacks fool some images, not all: no trivial comparison


def test_every_results_json_names_the_model_that_generated_each_attack(tmp_path):
    """A plain model is attacked white-box (the evaluated model); a test-time defense is attacked through its
    undefended model (a surrogate, named) or through the defense itself (adaptive), per attack."""
    plain = evaluate(tmp_path / "zs", "ZeroshotCLIP")
    assert [r["attack_model"] for r in plain["robust"]] == ["the evaluated model (white-box)"] * 2
    defended = evaluate(tmp_path / "ttc", "TTC", "ATTACK.TEST.ATTACKS",
                        "('pgd:steps=2,eps=2,alpha=1', 'through:steps=2,eps=2,alpha=1,unroll=1')")
    assert [r["attack_model"] for r in defended["robust"]] == [
        "the undefended model (non-adaptive)", "the defense, unrolled through 1 adaptation step(s)"]
