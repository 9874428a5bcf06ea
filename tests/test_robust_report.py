"""Robustness reports: gradient-masking flags fire on a masked model and stay quiet on healthy ones; the eps curve of
zero-shot SynthCLIP falls monotonically to ~0; the CLI writes the report and honours --strict."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from promptengine.attacks import AttackSpec, attack
from promptengine.evaluation.imageset import ImageSetEvaluator
from promptengine.robustness.evaluate import evaluate_part
from promptengine.robustness.flags import masking_flags
from promptengine.robustness.settings import ReportSettings
from promptengine.robustness.subset import balanced_indices
from promptengine.robustness.target import Part
from tests.weights_fakes import REFUSAL, TOWER, pinned_tower, swap_for_another

DIRECTIONS = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]])  # (K=4, C=3)
TOY = ReportSettings(images_per_class=5, max_images=20, eps=(0, 2, 4, 8, 16), steps=(1, 5, 20), restarts=(1, 2),
                     restart_steps=5, curve_steps=5, aa_iters=5, large_eps=64, large_eps_steps=10, transfer_steps=5)


class ColourClassifier(torch.nn.Module):
    """Logits from the mean colour; ``quantise`` rounds the input to 1/64 steps first (zero gradient everywhere)."""

    def __init__(self, quantise: bool) -> None:
        super().__init__()
        self.quantise = quantise

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 4)
        if self.quantise:
            x = torch.round(x * 64) / 64
        return 40 * (x.mean(dim=(2, 3)) - 0.5) @ DIRECTIONS.t()


def toy_part(model: torch.nn.Module) -> Part:
    labels = [i % 4 for i in range(40)]
    g = torch.Generator().manual_seed(0)
    images = [(0.5 + 0.03 * DIRECTIONS[c].view(3, 1, 1) + 0.01 * torch.randn(3, 8, 8, generator=g)).clamp(0, 1)
              for c in labels]
    return Part("all", model, model, None, ["red", "green", "blue", "grey"], labels, lambda i: images[i])


def raised(result, settings=TOY):
    return {f.check for f in masking_flags(result, settings) if f.raised}


def test_masked_model_raises_flags_and_healthy_one_does_not():
    healthy = evaluate_part(toy_part(ColourClassifier(quantise=False)), TOY, headline=8.0, progress=False)
    masked = evaluate_part(toy_part(ColourClassifier(quantise=True)), TOY, headline=8.0, progress=False)
    assert healthy["clean"] == masked["clean"] == 100.0
    assert raised(healthy) == set()
    assert healthy["eps_curve"]["linf"][-1]["accuracy"] == 0.0
    assert raised(masked) == {"white-box PGD beats the black-box and transfer attacks",
                              "accuracy is near 0 at a very large eps", "input gradients are non-zero",
                              "AutoAttack is close to PGD"}
    assert masked["zero_gradient_fraction"] == 1.0
    assert masked["square"] < masked["pgd"]  # the black-box attack is not fooled by the missing gradient


class RepredictingEvaluator(ImageSetEvaluator):
    """The report's former white-box scoring: re-predict ``x_adv`` in a forward of its own (transfer unchanged)."""

    def robust(self, spec, source=None):
        if source is not None:
            return super().robust(spec, source)
        out = []
        for x, y, ids, _ in self._batches():
            x_adv = attack(self.classifier, x, y, spec, module=self.module, sample_ids=ids)
            out.append((self._predict(x_adv) == y).cpu())
        return torch.cat(out)


class TinyMLP(torch.nn.Module):
    """A tiny random network (two linear layers) on 8x8 images: float rounding as in a real model."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) * 30)


@pytest.mark.parametrize("model", ["healthy", "masked", "mlp"])
def test_report_numbers_equal_those_of_the_former_repredicting_scoring(model, monkeypatch):
    """The report judges white-box robustness as evaluation during training does (the attack's own verdict, clean
    correctness first) instead of re-predicting x_adv: on these tiny models every number is unchanged, including on
    images that are wrong on clean input (the MLP's), with a transfer source, and on a masked model."""
    from promptengine.robustness import evaluate as report_evaluate

    if model == "mlp":
        part = replace(toy_part(TinyMLP(0)), transfer_source=TinyMLP(1))
        settings, headline = replace(TOY, eps=(0, 0.5, 1, 2)), 1.0
    else:
        part, settings, headline = toy_part(ColourClassifier(quantise=model == "masked")), TOY, 8.0
    new = evaluate_part(part, settings, headline=headline, progress=False)
    monkeypatch.setattr(report_evaluate, "ImageSetEvaluator", RepredictingEvaluator)
    old = evaluate_part(part, settings, headline=headline, progress=False)
    for result in (new, old):
        result.pop("timings_s"), result.pop("seconds")
    assert new == old
    if model == "mlp":  # clean errors, attacks that succeed on some images only, and a transfer number
        assert 0 < new["clean"] < 100 and 0 < new["autoattack_worst"] < new["pgd"] < new["clean"]
        assert new["transfer"] is not None


def test_report_counts_the_attacks_own_verdict_like_evaluation_during_training():
    """A forward whose near-ties depend on batching: the report takes the attack's verdict, as training-time evaluation
    does (tests/test_robust_eval.py), not a re-batched forward of x_adv."""
    from tests.test_robust_eval import TwoClass

    model = TwoClass(bias=0.01, batch_bonus=0.05)  # image 0 right in a batch of two, wrong alone
    x = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.1)])
    y, ids = torch.tensor([0, 0]), torch.arange(2)
    spec = AttackSpec(eps=0.0, alpha=0.0, steps=1, random_start=False)
    ev = ImageSetEvaluator(model, x, y, ids, progress=False)
    assert ev.clean().tolist() == [True, False]
    assert ev.robust(spec).tolist() == [False, False]
    assert RepredictingEvaluator(model, x, y, ids, progress=False).robust(spec).tolist() == [True, False]


def test_rising_curve_raises_the_monotonicity_flag():
    result = evaluate_part(toy_part(ColourClassifier(quantise=False)), TOY, headline=8.0, progress=False)
    assert "accuracy falls as eps, steps and restarts grow" not in raised(result)
    result["steps_curve"][-1]["accuracy"] = result["steps_curve"][0]["accuracy"] + 10.0
    assert "accuracy falls as eps, steps and restarts grow" in raised(result)


def test_balanced_subset_is_fixed_and_balanced():
    labels = [i % 3 for i in range(30)] + [3] * 2
    chosen = balanced_indices(labels, per_class=4, max_images=100, seed=0)
    counts = torch.bincount(torch.tensor([labels[i] for i in chosen]))
    assert counts.tolist() == [4, 4, 4, 2]
    assert chosen == balanced_indices(labels, per_class=4, max_images=100, seed=0) == sorted(chosen)
    capped = [labels[i] for i in balanced_indices(labels, per_class=4, max_images=6, seed=0)]
    assert sorted(capped) == [0, 0, 1, 1, 2, 3]  # round-robin over classes before the cap


def test_zero_shot_synthclip_report_is_clean_and_monotone(tmp_path):
    from promptengine.robustness import cli

    out = tmp_path / "report"
    argv = ["--zero-shot", "configs/datasets/synth_shapes.yaml", "--config-file",
            "configs/trainers/ZeroshotCLIP/synth.yaml", "--out", str(out), "--quick", "--images", "24",
            "--eps", "0", "1", "2", "8", "--steps", "1", "5", "10", "--restarts", "1", "2", "--aa-iters", "3",
            "--no-plots", "--no-progress", "--strict"]
    assert cli.main(argv) == 0  # --strict: no flag raised on the healthy zero-shot model
    report = json.loads((out / "report.json").read_text())
    part = report["parts"]["all"]
    assert report["flags_raised"] == 0 and part["n_images"] == 24
    curve = [p["accuracy"] for p in part["eps_curve"]["linf"]]
    assert curve == sorted(curve, reverse=True) and curve[0] > 40 and curve[-1] <= 5
    assert "No gradient-masking flag raised" in (out / "report.md").read_text()


def test_strict_exits_nonzero_on_a_flag(tmp_path, monkeypatch, capsys):
    from promptengine.robustness import cli, target

    def fake_zero_shot(*args, **kwargs):
        return target.Target("masked toy", "toy", [toy_part(ColourClassifier(quantise=True))], test_eps=8.0)

    monkeypatch.setattr(target, "zero_shot_target", fake_zero_shot)
    small = ["--images", "20", "--images-per-class", "5", "--eps", "0", "8", "16", "--steps", "1", "5",
             "--restarts", "1", "--aa-iters", "3", "--no-plots", "--no-progress"]
    out = tmp_path / "r"
    assert cli.main(["--zero-shot", "x.yaml", "--out", str(out), *small]) == 0
    assert cli.main(["--zero-shot", "x.yaml", "--out", str(out), *small, "--strict"]) == 1
    assert "FLAG (all): input gradients are non-zero" in capsys.readouterr().out
    assert "**FLAG**" in (out / "report.md").read_text()


def test_bad_arguments_are_one_line_errors(tmp_path):
    from promptengine.errors import UserError
    from promptengine.robustness import cli

    with pytest.raises(UserError, match="either a run folder or --zero-shot"):
        cli.main([])
    with pytest.raises(UserError, match="does not exist"):
        cli.main([str(tmp_path / "missing")])
    with pytest.raises(UserError, match="--eps must list distinct budgets"):
        cli.main([str(tmp_path), "--eps", "4", "2"])
    with pytest.raises(UserError, match="has no config.yaml"):
        cli.main([str(tmp_path)])


def test_model_mismatch_names_what_the_report_takes(tmp_path):
    """The report has no --output-dir or --override-identity: its mismatch error names its own way out."""
    from promptengine.errors import UserError
    from promptengine.robustness import cli
    from tests.conftest import TOY_OPTS, run_train

    run = tmp_path / "run"
    assert run_train(["--trainer", "CoOp", "--seed", "1", "--output-dir", run, *TOY_OPTS, "TRAINER.COOP.N_CTX", "2",
                      "OPTIM.MAX_EPOCH", "1", "TEST.NO_TEST", "True"]) == 0
    with pytest.raises(UserError) as exc:
        cli.main([str(run), "--opts", "OPTIM.LR", "0.5", "--no-plots", "--no-progress"])
    message = str(exc.value)
    assert "'train.OPTIM.LR'" in message and "drop the --opts" in message, message
    assert "--output-dir" not in message and "--override-identity" not in message and "--model-dir" not in message


def test_catalogued_tower_names_resolve_in_the_report(tmp_path, capsys):
    """The report builds its model from a config of its own (--zero-shot, --opts, a run's config.yaml): a catalogued
    name in MODEL.BACKBONE.PATH loads its verified file, and a copy of another checksum is refused in one line
    before anything is written."""
    from promptengine.errors import UserError
    from promptengine.robustness import cli, target
    from tests.conftest import TOY_OPTS

    root = tmp_path / "weights"
    path = pinned_tower(root)
    config = tmp_path / "toy.yaml"
    config.write_text("DATASET:\n  NAME: ToyColors\n")
    opts = [*TOY_OPTS, "MODEL.BACKBONE.PATH", TOWER, "MODEL.BACKBONE.DOWNLOAD_ROOT", str(root)]
    target.zero_shot_target(str(config), opts=opts)
    assert f"Loading robust vision weights from {path}" in capsys.readouterr().out
    swap_for_another(path)
    out = tmp_path / "report"
    with pytest.raises(UserError, match=REFUSAL) as refused:
        cli.main(["--zero-shot", str(config), "--out", str(out), "--no-plots", "--no-progress", "--opts", *opts])
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)
    assert not out.exists()


class RecordingWriter:
    """Stands in for TensorBoard's SummaryWriter (not a dependency): records every scalar."""

    scalars: list = []

    def __init__(self, log_dir: str) -> None:
        pass

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, step))

    def close(self) -> None:
        pass


def test_robust_eval_during_training_logs_and_leaves_training_unchanged(tmp_path, monkeypatch):
    import sys
    import types

    from tests.conftest import TOY_OPTS, run_train

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=RecordingWriter))
    RecordingWriter.scalars = []

    def train(out, freq):
        opts = [*TOY_OPTS, "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "2", "ATTACK.TEST.ENABLED", "True",
                "ATTACK.TEST.STEPS", "2", "ATTACK.TEST.EPS", "4.0", "TEST.ROBUST_EVAL_FREQ", str(freq)]
        assert run_train(["--trainer", "CoOp", "--seed", "1", "--output-dir", out, *opts]) == 0
        return (out / "log.txt").read_text(), json.loads((out / "results.json").read_text())

    log_off, res_off = train(tmp_path / "off", 0)
    log_on, res_on = train(tmp_path / "on", 1)
    lines = [line for line in log_on.splitlines() if "val robust" in line]
    assert [line.split("]")[0] for line in lines] == ["epoch [1/2", "epoch [2/2"]
    assert "pgd2, linf, eps=4/255" in lines[0] and "worst case" in lines[0]
    assert "val robust" not in log_off
    assert (res_on["clean"], res_on["robust"][0]["accuracy"]) == (res_off["clean"], res_off["robust"][0]["accuracy"])
    assert [step for tag, step in RecordingWriter.scalars if tag == "val/worst_case"] == [1, 2]


def test_aa_iters_scale_square_queries_in_the_library_ratio():
    pyautoattack = pytest.importorskip("pyautoattack")
    from promptengine.attacks.autoattack import _set_iterations

    aa = pyautoattack.AutoAttack(ColourClassifier(False), attacks=None, device="cpu", eps=8 / 255, norm="Linf",
                                 seed=0, version="standard")
    assert aa.square.n_queries == 5000 and aa.apgd.n_iter == 100  # the library's defaults: 50 queries per iteration
    _set_iterations(aa, 20)
    assert (aa.apgd.n_iter, aa.square.n_queries) == (20, 1000)


@pytest.mark.slow
def test_trained_capt_run_report_flags_the_pgd_overestimate_on_the_embedded_world(tmp_path):
    """A real (short) CAPT training on SynthShapes base classes, then the report from its run folder, as a user runs it.

    On the first embedded world this report raised no flag. On world v2 (2,000-step SynthCLIP, eps 2/255) AutoAttack
    found far more adversarial examples than the 10-step PGD for every adversarially tuned prompt measured (96 base
    images): CAPT (4 shots, 2 epochs) PGD 17.7% vs AutoAttack 9.4%; APT (16 shots, 6 epochs) 31.2% vs 13.5%
    (docs/ROBUSTNESS.md). On the 4,000-step SynthCLIP at the world's 4/255, with the 48 images used here: CAPT (4 shots,
    2 epochs) base PGD 0.0% = AutoAttack 0.0%, new PGD 16.7% vs AutoAttack 6.2% (gap 10.4): the flag fires on the new
    classes. The report must say so."""
    from promptengine.robustness import cli
    from tests.conftest import run_train

    run = tmp_path / "capt"
    assert run_train(["--trainer", "CAPT", "--seed", "1", "--output-dir", run,
                      "--dataset-config-file", "configs/datasets/synth_shapes.yaml",
                      "--config-file", "configs/trainers/CAPT/synth.yaml", "DATASET.NUM_SHOTS", "4",
                      "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "2", "TEST.NO_TEST", "True"]) == 0
    out = tmp_path / "report"
    argv = [str(run), "--out", str(out), "--quick", "--images", "48", "--eps", "0", "1", "2", "8",
            "--steps", "1", "5", "10", "--restarts", "1", "2", "--aa-iters", "3", "--no-plots", "--no-progress"]
    assert cli.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["flags_raised"] >= 1
    for part in report["parts"].values():
        curve = [p["accuracy"] for p in part["eps_curve"]["linf"]]
        assert curve == sorted(curve, reverse=True) and curve[-1] <= 10, curve
