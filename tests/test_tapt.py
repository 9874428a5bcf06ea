"""TAPT (test-time adversarial prompt tuning): each term of its test-time loss on hand-computed examples, its views
and optimiser step, no leakage across test images, its protocol script, and a tiny run through the real CLI; and a
test-time defense (TTC) around a trained run (TEST.DEFENSE)."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest
import torch

from promptengine.clip.backbone import PromptableCLIP
from promptengine.clip.loading import random_clip
from promptengine.clip.model import PromptedCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.evaluation.perimage import KEY
from promptengine.evaluation.testtime import Budget
from promptengine.methods.tapt import (
    FeatureStatistics,
    PromptTuning,
    RunningMoments,
    adamw_step,
    alignment_loss,
    confident_views,
    marginal_entropy,
    resized_crop_views,
    tapt_loss,
    view_moments,
)
from tests.conftest import ROOT, TOY_OPTS, run_train
from tests.testtime_checks import assert_order_free

TWO_VIEWS = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
# the average distribution is (0.7, 0.3): H = -(0.7 ln 0.7 + 0.3 ln 0.3)
MARGINAL = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))


def test_marginal_entropy_is_the_entropy_of_the_average_prediction():
    assert marginal_entropy(TWO_VIEWS).item() == pytest.approx(MARGINAL, abs=1e-6)  # 0.611, not the mean entropy 0.509


def test_the_most_confident_fraction_of_views_is_selected():
    scores = torch.tensor([0, 3, 1, 5, 2, 0.5, 4, 0.2, 6, 0.1])
    logits = torch.stack([scores, torch.zeros(10)], dim=1)  # entropy falls as the score grows
    assert confident_views(logits, 0.1).tolist() == [8]
    assert confident_views(logits, 0.25).tolist() == [8, 3]  # int(2.5) views
    assert confident_views(logits, 0.01).tolist() == [8]  # at least one


def _layers():
    """Three block inputs (T=1, V=2, D=2): block 0 mean (2, 4) var (1, 4); block 1 mean (1, 1) var (1, 1) (biased);
    block 2 (10, 10) with variance 0, outside the aligned range."""
    return [torch.tensor([[[1.0, 2.0], [3.0, 6.0]]]), torch.tensor([[[0.0, 0.0], [2.0, 2.0]]]),
            torch.full((1, 2, 2), 10.0)]


def test_view_moments_and_the_alignment_over_the_authors_layer_range():
    means, variances = view_moments(_layers(), torch.tensor([0, 1]))
    assert torch.equal(means[0], torch.tensor([[2.0, 4.0]])) and torch.equal(variances[0], torch.tensor([[1.0, 4.0]]))
    zeros = (torch.zeros(3, 1, 2), torch.zeros(3, 1, 2))
    # blocks 0 and 1 only (range(0, 3 - 1)): 0.5 * 3 + 0.5 * 2.5 + 0.5 * 1 + 0.5 * 1
    assert alignment_loss((means, variances), zeros, 0, 3).item() == pytest.approx(3.75)
    assert alignment_loss((means, variances), zeros, 1, 3).item() == pytest.approx(1.0)


def test_tapt_loss_weighs_the_adversarial_and_clean_alignment_by_gamma():
    layers = _layers()
    clean = (torch.zeros(3, 1, 2), torch.zeros(3, 1, 2))  # alignment 3.75 (above)
    adv = view_moments(layers, torch.tensor([0, 1]))  # the views' own statistics: alignment 0
    loss = tapt_loss(TWO_VIEWS, layers, clean, adv, entropy_frac=1.0, align_frac=1.0, weight=8.0, gamma=0.25,
                     first=0, last=3)
    # entropy + 8 / 3 * (0.25 * 0 + 0.75 * 3.75)
    assert loss.item() == pytest.approx(MARGINAL + 7.5, abs=1e-5)


def test_the_written_out_adamw_step_is_torch_adamw():
    g = torch.Generator().manual_seed(0)
    p0, grads = torch.randn(5, generator=g), [torch.randn(5, generator=g) for _ in range(3)]
    ref = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([ref], lr=0.1, weight_decay=0.01)
    p, m, v = p0.clone(), torch.zeros(5), torch.zeros(5)
    for t, grad in enumerate(grads, start=1):
        ref.grad = grad.clone()
        opt.step()
        p, m, v = adamw_step(p, grad, m, v, t, lr=0.1, weight_decay=0.01)
    assert torch.allclose(p, ref.detach(), atol=1e-6)


def test_running_moments_are_the_mean_and_sample_variance_over_images():
    g = torch.Generator().manual_seed(0)
    layers = [torch.randn(3, 5, 4, generator=g) for _ in range(2)]  # (T, B, D) per block
    run = RunningMoments()
    run.add([t[:, :2] for t in layers])
    run.add([t[:, 2:] for t in layers])
    mean, var = run.result()  # (L, T, D)
    assert torch.allclose(mean, torch.stack([t.mean(1) for t in layers]), atol=1e-6)
    assert torch.allclose(var, torch.stack([t.var(1) for t in layers]), atol=1e-5)  # n - 1, as the authors


def test_views_are_the_image_then_seeded_differentiable_crops():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    views = resized_crop_views(x, 5, torch.Generator().manual_seed(3))
    assert views.shape == (6, 3, 8, 8) and torch.equal(views[0], x[0])
    assert torch.equal(views, resized_crop_views(x, 5, torch.Generator().manual_seed(3)))
    assert not torch.equal(views[1:], x.expand(5, -1, -1, -1))
    views[1:].sum().backward()
    assert x.grad.abs().sum() > 0  # an adaptive attack differentiates through the views


def _tiny_defense(lr: float = 0.05):
    backbone = PromptableCLIP(random_clip("tiny-p8-32", seed=0))
    spec = PromptSpec(text_n_ctx=2, text_depth=2, text_ctx_init="a photo of a", vision_n_ctx=2, vision_depth=2)
    model = PromptedCLIP(backbone, spec, ["red square", "green square", "blue square"]).eval()
    stats = FeatureStatistics(4, 1 + 16 + 2, 128)
    with torch.no_grad():
        for p in stats.parameters():
            p.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(5))
    defense = PromptTuning(model, model.classifier(), stats.moments(), Budget(steps=2, lr=lr, augmentations=3),
                           weight_decay=0.01, entropy_frac=0.5, align_frac=0.5, weight=100.0, gamma=0.5,
                           layers=(0, 3), seed=1)
    return defense, model


def test_prompt_tuning_never_leaks_across_images_batches_or_order():
    defense, model = _tiny_defense()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    logits = assert_order_free(defense, x, list(model.prompt_learner.parameters()))
    with torch.no_grad():
        assert not torch.allclose(logits, model(x))  # the tuning did change the predictions' logits


def test_tapt_base2new_script_trains_adversarial_prompts_then_evaluates_both_parts(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "OUTPUT": str(tmp_path)}
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "tapt", "base2new.sh"), "synth_shapes", "1", "synth"],
                         env=env, capture_output=True, text=True, check=True).stdout
    runs = [line for line in out.splitlines() if "train.py" in line]
    assert len(runs) == 3 and all("--trainer TAPT" in r and "TAPT/synth.yaml" in r for r in runs)
    assert "TEST.NO_TEST True" in runs[0] and "SUBSAMPLE_CLASSES base" in runs[0]
    assert all("--eval-only --model-dir" in r and "train_base" in r for r in runs[1:])
    assert "SUBSAMPLE_CLASSES new" in runs[2]


ATTACKS = ["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "1", "ATTACK.TRAIN.EPS", "4.0",
           "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "2", "ATTACK.TEST.EPS", "4.0"]


PROMPTS = {"TAPT": ["TRAINER.IVLP.PREC", "fp32", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2",
                    "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2"],
           "TAPTMaPLe": ["TRAINER.ADVMAPLE.PREC", "fp32", "TRAINER.ADVMAPLE.PROMPT_DEPTH", "2"]}


@pytest.mark.parametrize("trainer", sorted(PROMPTS))
def test_a_tiny_tapt_run_through_the_cli_saves_statistics_and_evaluates_adaptively(tmp_path, trainer):
    train, test = tmp_path / "train", tmp_path / "test"
    common = ["--trainer", trainer, "--seed", "1", *TOY_OPTS, *ATTACKS, "OPTIM.MAX_EPOCH", "1", *PROMPTS[trainer]]
    assert run_train(["--output-dir", train, *common, "TEST.NO_TEST", "True"]) == 0
    stats = torch.load(train / "feature_statistics" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert stats["images"].item() == 80 and stats["adv_mean"].shape == (4, 19, 128)
    assert not torch.equal(stats["adv_mean"], stats["clean_mean"])
    # the tuning budget differs from the training run's: evaluation settings, so the checkpoint still loads
    assert run_train(["--output-dir", test, "--eval-only", "--model-dir", train, *common, "TEST.MAX_IMAGES", "4",
                      "TRAINER.TAPT.VIEWS", "4", "TRAINER.TAPT.ALIGN_LAYER_TO", "3",
                      "ATTACK.TEST.ATTACKS", "['through:steps=2,eps=4,alpha=1']"]) == 0
    result = json.loads((test / "results.json").read_text())
    assert result["num_images"] == 4 and [r["name"].startswith("adaptive") for r in result["robust"]] == [False, True]


def test_ttc_around_a_trained_coop_run_predicts_with_its_prompts(tmp_path):
    """TEST.DEFENSE TTC with a zero counterattack budget is the trained CoOp run itself, image by image."""
    train = tmp_path / "coop"
    common = ["--trainer", "CoOp", "--seed", "1", *TOY_OPTS, *ATTACKS[6:], "TRAINER.COOP.N_CTX", "4"]
    assert run_train(["--output-dir", train, *common, "TEST.NO_TEST", "True"]) == 0
    records = []
    for name, opts in (("plain", []), ("ttc", ["TEST.DEFENSE", "TTC", "TRAINER.TTC.EPS", "0"])):
        out = tmp_path / name
        assert run_train(["--output-dir", out, "--eval-only", "--model-dir", train, *common, *opts]) == 0
        records.append(json.loads((out / "results.json").read_text())[KEY])
    assert records[0]["clean"] == records[1]["clean"] and records[0]["robust"] == records[1]["robust"]


def test_a_test_defense_that_is_not_one_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "x"
    assert run_train(["--trainer", "ZeroshotCLIP", "--eval-only", "--output-dir", out, *TOY_OPTS,
                      "TEST.DEFENSE", "CoOp"]) == 2
    assert "TEST.DEFENSE CoOp is not a test-time defense; use one of" in capsys.readouterr().err
    assert not out.exists()


def test_tapt_around_a_run_without_training_statistics_is_refused_in_one_line():
    from promptengine.errors import UserError
    from promptengine.methods.tapt import TAPT

    with pytest.raises(UserError, match="TAPT needs the training statistics a finished TAPT run saves"):
        TAPT.defend(object(), lambda x: x)
