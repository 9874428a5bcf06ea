"""TeCoA: tower fine-tuning through the engine's learnable_modules seam, its exported tower, and its robustness gain.

The fast tests train a tiny random CLIP on the toy dataset; the slow one runs the embedded-world recipe
(configs/trainers/TeCoA/synth.yaml) on SynthShapes with two seeds.
"""

import json
import os

import pytest
import torch

from promptengine.clip.loading import load_clip, load_visual_weights, random_clip
from promptengine.engine.checkpoint import safe_load
from promptengine.methods.tecoa import EXPORT_NAME, TeCoA
from promptengine.registry import TRAINER_REGISTRY
from tests.conftest import TOY_OPTS, run_train
from tests.tower_learning import assert_export_reloads_as_the_tuned_run, robust_gains

ATTACKS = ["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "1", "ATTACK.TRAIN.EPS", "4.0",
           "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "2", "ATTACK.TEST.EPS", "4.0"]
LAST_BLOCK = ["TRAINER.TECOA.TUNE", "vision_last", "TRAINER.TECOA.LAST_N", "1"]


@TRAINER_REGISTRY.register()
class StepCountingTeCoA(TeCoA):
    """TeCoA that counts its optimisation steps in after_step and keeps the count in extra_state."""

    def build_model(self) -> None:
        super().build_model()
        self.steps_done = 0

    def after_step(self, values) -> None:
        self.steps_done += 1

    def extra_state(self):
        return {"steps_done": self.steps_done}

    def load_extra_state(self, state) -> None:
        self.steps_done = int(state.get("steps_done", 0))


def tecoa(out, *opts, trainer="StepCountingTeCoA", flags=()):
    return run_train([*flags, "--trainer", trainer, "--seed", "1", "--output-dir", out, *TOY_OPTS, *ATTACKS,
                      "TRAIN.CHECKPOINT_FREQ", "1", *opts])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tecoa") / "full"
    assert tecoa(out, *LAST_BLOCK) == 0
    return out


def test_checkpoint_holds_the_tuned_blocks_only(full_run):
    state = safe_load(str(full_run / "backbone" / "model.pth.tar-2"))
    visual = random_clip("tiny-p8-32").visual
    last = len(visual.transformer.resblocks) - 1
    expected = {f"clip.visual.{n}" for n, _ in visual.named_parameters()
                if n.startswith((f"transformer.resblocks.{last}.", "ln_post.")) or n == "proj"}
    assert set(state["state_dict"]) == expected
    assert state["trainer"] == "StepCountingTeCoA" and state["extra"]["steps_done"] > 0


def test_exported_tower_is_the_tuned_tower_and_frozen_blocks_stay(full_run):
    exported = torch.load(full_run / EXPORT_NAME, weights_only=True)
    tower, start = exported["vision_encoder_state_dict"], random_clip("tiny-p8-32").visual.state_dict()
    assert exported["epoch"] == 2 and set(tower) == set(start)
    assert torch.equal(tower["transformer.resblocks.0.attn.in_proj_weight"],
                       start["transformer.resblocks.0.attn.in_proj_weight"])  # not in the last block: frozen
    assert not torch.equal(tower["proj"], start["proj"])  # tuned
    tuned = safe_load(str(full_run / "backbone" / "model.pth.tar-2"))["state_dict"]
    assert all(torch.equal(tower[k.removeprefix("clip.visual.")], v) for k, v in tuned.items())


def test_resume_of_a_tower_tuning_run_is_bit_identical(full_run, tmp_path):
    part = tmp_path / "part"
    assert tecoa(part, *LAST_BLOCK) == 0
    os.remove(part / "backbone" / "model.pth.tar-2")  # as if killed after epoch 1
    (part / "backbone" / "checkpoint").write_text("model.pth.tar-1\n")
    os.remove(part / "results.json")
    assert tecoa(part, *LAST_BLOCK) == 0
    assert "Resuming from epoch 1" in next(p for p in part.iterdir() if p.name.startswith("log.txt-")).read_text()
    a = safe_load(str(full_run / "backbone" / "model.pth.tar-2"))
    b = safe_load(str(part / "backbone" / "model.pth.tar-2"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert b["extra"] == a["extra"]  # extra_state came back on resume: the step count continues, not restarts
    full, resumed = (json.loads((d / "results.json").read_text()) for d in (full_run, part))
    assert full["clean"] == resumed["clean"] and full["robust"] == resumed["robust"]


def test_exported_tower_loads_through_backbone_path(full_run, tmp_path):
    path = full_run / EXPORT_NAME
    assert_export_reloads_as_the_tuned_run(full_run, path, tmp_path, *TOY_OPTS, *ATTACKS)
    for trainer, opts in (("APT", []), ("CAPT", ["TRAINER.CAPT.PROMPT_DEPTH", "2"])):
        out = tmp_path / trainer
        assert run_train(["--no-train", "--trainer", trainer, "--output-dir", out, *TOY_OPTS, *ATTACKS, *opts,
                          "MODEL.BACKBONE.PATH", path]) == 0
        assert f"Loading robust vision weights from {path}" in (out / "log.txt").read_text()


def test_a_file_in_tecoas_released_layout_loads(tmp_path):
    """TeCoA's released checkpoints hold the tower under vision_encoder_state_dict next to the prompter's state,
    the epoch, the best accuracy and the optimizer state."""
    source = random_clip("tiny-p8-32", seed=5)
    visual = source.visual.state_dict()
    optim = torch.optim.SGD(source.visual.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 10, "state_dict": {}, "add_prompter": {}, "vision_encoder_state_dict": visual,
                "best_acc1": torch.tensor(38.2), "optimizer": optim.state_dict()}, path)
    model = load_clip("tiny-p8-32")
    load_visual_weights(model, str(path))
    assert all(torch.equal(model.visual.state_dict()[k], v) for k, v in visual.items())


@pytest.mark.slow
def test_tecoa_makes_the_zero_shot_classifier_robust_at_the_training_eps(tmp_path):
    """SynthShapes, eps 4/255 for training and test (the recipe's), PGD-5 on 480 test images, seed 1.

    The recipe's lr 0.006 for 2 of its 6 epochs (tests/tower_learning.py). Measured on the 4,000-step SynthCLIP:
    zero-shot clean / robust 82.1% / 10.4%; TeCoA 48.8% / 20.6% (seed 1), robust 23.5% (seed 2): +10.2 and +13.1
    (at the pre-search lr 0.002: +7.3 and +8.8). The required gain is 5 (seed-to-seed movement 3 points here)."""
    assert min(robust_gains(tmp_path, "TeCoA")) > 5
