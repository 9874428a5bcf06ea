"""R-TPT (robust test-time prompt tuning): its loss and reliability weights pinned on hand-computed values, its
AdamW written out, no leakage between images, its protocol script, the real CLI on a trained CoOp run behind
TEST.DEFENSE RTPT, and the refusals (no CoOp-style text context to tune; the removed TRAINER.RTPT.PROMPTS keys)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from promptengine.clip.backbone import PromptableCLIP
from promptengine.clip.loading import random_clip
from promptengine.clip.model import PromptedCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from promptengine.evaluation.testtime import Budget
from promptengine.methods.rtpt import (
    ReliableTPT,
    adamw_steps,
    confident_views,
    reliability_weights,
    rtpt_loss,
    tuned_context_model,
)
from tests.conftest import ROOT, TOY_OPTS, run_train


def test_loss_is_the_pointwise_entropy_of_the_confident_views():
    """2 views x 3 classes: softmaxes (1/2, 1/4, 1/4) (entropy 1.5 ln 2) and uniform (entropy ln 3)."""
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])) + torch.tensor([[2.0], [-1.0]])
    both = rtpt_loss(logits, confident_views(logits, fraction=1.0))
    assert torch.allclose(both, torch.tensor((1.5 * math.log(2) + math.log(3)) / 2))
    # not the marginal entropy (TPT's): the entropy of the mean softmax (5/12, 7/24, 7/24)
    mean = torch.tensor([5 / 12, 7 / 24, 7 / 24])
    assert not torch.allclose(both, -(mean * mean.log()).sum(), atol=1e-3)
    # half the views: the more confident one only
    assert confident_views(logits, fraction=0.5).tolist() == [0]
    assert torch.allclose(rtpt_loss(logits, confident_views(logits, 0.5)), torch.tensor(1.5 * math.log(2)))


def test_reliability_weights_by_hand():
    """3 unit embeddings with cosines f1.f2 = 0.6, f1.f3 = 0, f2.f3 = 0.8 (a view's similarity to itself excluded)."""
    feats = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    nearest = reliability_weights(feats, neighbours=1, temperature=0.1)  # scores 0.6, 0.8, 0.8
    z = math.exp(6) + 2 * math.exp(8)
    assert torch.allclose(nearest, torch.tensor([math.exp(6) / z, math.exp(8) / z, math.exp(8) / z]))
    both = reliability_weights(feats, neighbours=20, temperature=1.0)  # k capped at the 2 others: 0.3, 0.7, 0.4
    z = math.exp(0.3) + math.exp(0.7) + math.exp(0.4)
    assert torch.allclose(both, torch.tensor([math.exp(0.3) / z, math.exp(0.7) / z, math.exp(0.4) / z]))


def test_adamw_written_out_equals_torch_adamw():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(4, 6, generator=g)
    grads = [torch.randn(4, 6, generator=g) for _ in range(3)]
    p = torch.nn.Parameter(start.clone())
    opt = torch.optim.AdamW([p], lr=5e-3)
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
    assert torch.allclose(adamw_steps(start, grads, 5e-3), p.detach(), atol=1e-7)


def _tiny_prompted(n_classes: int = 3) -> PromptedCLIP:
    backbone = PromptableCLIP(random_clip("tiny-p8-32", seed=1))
    spec = PromptSpec(text_n_ctx=4, text_ctx_init="a photo of a")
    return PromptedCLIP(backbone, spec, [f"class{i}" for i in range(n_classes)]).eval()


def test_adaptation_depends_on_neither_batch_nor_order_and_leaves_the_prompts():
    model = _tiny_prompted()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    trained = model.prompt_learner.ctx.detach().clone()
    defense = ReliableTPT(model, Budget(steps=2, lr=0.5, augmentations=5), 0.5, 3, 0.05, seed=1)
    with torch.no_grad():
        together = defense(x)
        alone = torch.cat([defense(x[i:i + 1]) for i in reversed(range(4))]).flip(0)
        pairs = torch.cat([defense(x[[2, 3]]), defense(x[[0, 1]])])[[2, 3, 0, 1]]
    assert torch.equal(together, alone) and torch.equal(together, pairs)
    assert torch.equal(model.prompt_learner.ctx, trained)
    unadapted = ReliableTPT(model, Budget(steps=0, lr=0.5, augmentations=5), 0.5, 3, 0.05, seed=1)
    assert not torch.allclose(unadapted(x), together)  # the tuning did change the logits (the check is not vacuous)


def test_base2new_script_evaluates_without_training(tmp_path):
    env = dict(os.environ, OUTPUT=str(tmp_path / "out"), DRY_RUN="1", PYTHON=sys.executable, OMP_NUM_THREADS="1",
               EXTRA_OPTS="TEST.MAX_IMAGES 8")
    proc = subprocess.run(["bash", str(Path(ROOT) / "scripts" / "rtpt" / "base2new.sh"), "synth_shapes", "1", "synth"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("[run]")]
    assert runs == ["eval", "eval"]  # test_base and test_new, no training run
    assert proc.stdout.count("--trainer RTPT ") == 2 and proc.stdout.count("--eval-only") == 2
    assert "configs/trainers/RTPT/synth.yaml" in proc.stdout


def _clean_bits(folder: Path) -> int:
    return json.loads((folder / "results.json").read_text())["per_image"]["clean"]


def test_cli_on_a_trained_coop_run(tmp_path):
    """CoOp trains; evaluated behind TEST.DEFENSE RTPT with no views and no steps it predicts exactly as it does
    (the defense tunes that run's context), and the full defense runs a non-adaptive and an adaptive attack through
    the real CLI; the R-TPT budget is evaluation identity, so the run's checkpoint loads under any."""
    coop = tmp_path / "coop"
    opts = [*TOY_OPTS, "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "2"]
    assert run_train(["--trainer", "CoOp", "--seed", "1", "--output-dir", coop, *opts]) == 0

    def defended(name, *extra):
        out = tmp_path / name
        code = run_train(["--trainer", "CoOp", "--seed", "1", "--output-dir", out, "--eval-only", "--model-dir", coop,
                          *opts, "TEST.DEFENSE", "RTPT", *extra])
        return code, out

    code, plain = defended("plain", "TRAINER.RTPT.VIEWS", "0", "TRAINER.RTPT.STEPS", "0")
    assert code == 0 and _clean_bits(plain) == _clean_bits(coop)
    code, full = defended("full", "TRAINER.RTPT.VIEWS", "3", "TEST.MAX_IMAGES", "6", "ATTACK.TEST.ENABLED", "True",
                          "ATTACK.TEST.STEPS", "1", "ATTACK.TEST.ATTACKS", "['through:steps=1,eps=2']")
    assert code == 0
    result = json.loads((full / "results.json").read_text())
    assert result["trainer"] == "CoOp" and result["num_images"] == 6
    assert [r["name"].split(",")[0] for r in result["robust"]] == ["pgd1", "adaptive"]  # non-adaptive, through


def test_a_model_without_a_text_context_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "zs"
    assert run_train(["--trainer", "ZeroshotCLIP", "--eval-only", "--output-dir", out, *TOY_OPTS,
                      "TEST.DEFENSE", "RTPT"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "TEST.DEFENSE RTPT tunes a CoOp-style text context per image, and the ZeroshotCLIP model has none" in err
    assert "--trainer CoOp --eval-only --model-dir RUN TEST.DEFENSE RTPT" in err
    assert not (out / "results.json").exists()


SPECS = {"coop": PromptSpec(text_n_ctx=4), "no text context (a tuned tower)": PromptSpec(),
         "a meta-net's context (CoCoOp)": PromptSpec(text_n_ctx=4, conditional=True),
         "coupled (MaPLe)": PromptSpec(text_n_ctx=2, vision_n_ctx=2, vision_depth=1, coupling="text_to_vision")}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_only_a_coop_style_text_context_is_tuned(kind):
    backbone = PromptableCLIP(random_clip("tiny-p8-32", seed=1))
    trainer = SimpleNamespace(model=PromptedCLIP(backbone, SPECS[kind], ["a", "b"]))
    if kind == "coop":
        assert tuned_context_model(trainer) is trainer.model
    else:
        with pytest.raises(UserError, match="TEST.DEFENSE RTPT tunes a CoOp-style text context per image"):
            tuned_context_model(trainer)


@pytest.mark.parametrize("where", ["opts", "file"])
def test_the_removed_prompts_keys_name_their_replacement(tmp_path, where):
    """TRAINER.RTPT.PROMPTS/PROMPTS_EPOCH are gone (one mechanism: TEST.DEFENSE); a config that sets them is one line
    saying what to run instead; an earlier run's config.yaml, which holds their defaults, still loads."""
    old = tmp_path / "old.yaml"
    old.write_text("TRAINER:\n  RTPT:\n    PROMPTS: ''\n    PROMPTS_EPOCH: 0\n    VIEWS: 3\n")
    assert build_cfg(config_file=str(old)).TRAINER.RTPT.VIEWS == 3
    for key, value in (("PROMPTS", "output/coop/seed1"), ("PROMPTS_EPOCH", "5")):
        if where == "file":
            old.write_text(f"TRAINER:\n  RTPT:\n    {key}: {value}\n")
            kwargs = {"config_file": str(old)}
        else:
            kwargs = {"opts": [f"TRAINER.RTPT.{key}", value]}
        with pytest.raises(UserError, match=rf"^TRAINER\.RTPT\.{key} \(set in .*\) was removed; evaluate the CoOp "
                                            "run behind R-TPT instead: --trainer CoOp --eval-only --model-dir RUN "
                                            "TEST.DEFENSE RTPT$"):
            build_cfg(**kwargs)


def test_views_start_with_the_image_and_carry_its_gradient():
    from promptengine.evaluation.views import augmented_views

    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    views = augmented_views(image, 6, torch.Generator().manual_seed(4))
    assert views.shape == (7, 3, 16, 16) and torch.equal(views[0], image[0])
    assert 0 <= float(views.detach().min()) and float(views.detach().max()) <= 1  # bilinear resizing stays in the pixel box
    again = augmented_views(image, 6, torch.Generator().manual_seed(4))
    assert torch.equal(views, again) and not torch.equal(views[1:], augmented_views(image, 6, torch.Generator())[1:])
    (grad,) = torch.autograd.grad(views[1:].sum(), image)  # the crops are differentiable in the image
    assert grad.abs().sum() > 0
