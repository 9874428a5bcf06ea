"""The Dassl plug-in through the stand-in package (tests/fake_dassl): a CAPT step and a robust test on Dassl's
engine, eps in pixel units under a normalising pipeline, refused pipelines, no import-time dependency, Dassl's
warm-up schedule on this torch, exact resume."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from promptengine.errors import UserError
from promptengine.reporting.logs import parse_log, robust_key
from tests.dassl_fork import write_squares
from tests.weights_fakes import REFUSAL, TOWER, fake_tower, pinned_tower, swap_for_another

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_DASSL = os.path.join(ROOT, "tests", "fake_dassl")
IMAGENET_MEAN, IMAGENET_STD = "[0.485, 0.456, 0.406]", "[0.229, 0.224, 0.225]"  # Dassl's defaults, not CLIP's


@pytest.fixture(scope="module")
def dassl(tmp_path_factory):
    """The stand-in Dassl, the plug-in imported as a Dassl train.py does, and a small PNG dataset registered the
    way a CoOp-style repository registers its datasets."""
    sys.path.insert(0, FAKE_DASSL)
    import dassl.engine
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

    import promptengine.dassl_plugin  # noqa: F401  (registers the trainers)

    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)

    def split(name, n):
        return [Datum(impath=path, label=label, classname=f"{colour} square")
                for path, label, colour in write_squares(root / name, n, rng)]

    data = (split("train", 4), split("test", 3))
    if "Squares" not in DATASET_REGISTRY.registered_names():

        @DATASET_REGISTRY.register()
        class Squares(DatasetBase):
            def __init__(self, cfg):
                super().__init__(train_x=data[0], val=None, test=data[1])

    yield dassl
    sys.path.remove(FAKE_DASSL)


def dassl_cfg(tmp_path, trainer="CAPT", opts=()):
    """A CoOp-style setup_cfg: Dassl's defaults, extend_cfg (with the plug-in's keys), options, freeze."""
    from dassl.config import get_cfg_default

    import promptengine.dassl_plugin as capt_plugin

    cfg = get_cfg_default()
    capt_plugin.extend_cfg(cfg)
    cfg.merge_from_list([
        "TRAINER.NAME", trainer, "DATASET.NAME", "Squares", "MODEL.BACKBONE.NAME", "tiny-p8-32", "INPUT.SIZE", "(32,32)",
        "INPUT.TRANSFORMS", "('normalize',)", "INPUT.PIXEL_MEAN", IMAGENET_MEAN, "INPUT.PIXEL_STD", IMAGENET_STD,
        "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "DATALOADER.TEST.BATCH_SIZE", "6", "OPTIM.NAME", "sgd",
        "OPTIM.LR", "0.01", "OPTIM.MAX_EPOCH", "1", "OPTIM.LR_SCHEDULER", "cosine", "OUTPUT_DIR", str(tmp_path),
        "TRAINER.CAPT.PROMPT_DEPTH", "2", "ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "2",
        "ATTACK.TRAIN.EPS", "4.0", "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "3", "ATTACK.TEST.EPS", "4.0",
        *opts])
    cfg.freeze()
    return cfg


def test_engine_imports_no_dassl():
    """``import promptengine, promptengine.methods`` (and the engine) never import dassl, even where it is importable; the
    plug-in does."""
    code = ("import sys, promptengine, promptengine.methods, promptengine.prompting, promptengine.engine.trainer\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dassl'))\n"
            "import promptengine.dassl_plugin\n"
            "print('dassl' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, FAKE_DASSL]), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout + out.stderr


def test_repository_with_its_own_trainers_package(tmp_path):
    """In a CoOp-style repository, ``trainers`` is the repository's own package: the plug-in leaves it alone, loads
    this toolbox's methods as ``promptengine.methods``, and skips a name the repository registered itself."""
    theirs = tmp_path / "trainers"
    theirs.mkdir()
    (theirs / "__init__.py").write_text("MARK = 'theirs'\n")
    (theirs / "coop.py").write_text("from dassl.engine import TRAINER_REGISTRY, TrainerX\n\n\n"
                                   "@TRAINER_REGISTRY.register()\nclass CoOp(TrainerX):\n    pass\n")
    code = ("import trainers, trainers.coop\n"
            "import promptengine.dassl_plugin\n"
            "from dassl.engine import TRAINER_REGISTRY as R\n"
            "print(trainers.MARK, R.get('CoOp') is trainers.coop.CoOp, R.get('CAPT').__mro__[2].__module__)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, FAKE_DASSL]), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-3:] == ["theirs", "True", "promptengine.methods.capt"], out.stdout + out.stderr
    assert "already has 'CoOp'" in out.stdout


def test_capt_trains_and_tests_on_dassl_engine(dassl, tmp_path, capsys):
    """Dassl's build_trainer builds our CAPT as a Dassl TrainerX; one epoch trains the prompts through Dassl's loop
    (LR stepped by update_lr, checkpoint by Dassl's save_model), and Dassl's test() prints the robust line."""
    cfg = dassl_cfg(tmp_path)
    trainer = dassl.engine.build_trainer(cfg)
    assert isinstance(trainer, dassl.engine.TrainerX)
    before = {k: v.clone() for k, v in trainer._models["prompt_learner"].state_dict().items()}
    trainer.train()
    out = capsys.readouterr().out
    after = trainer._models["prompt_learner"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no prompt parameter moved"
    assert trainer.get_current_lr() == pytest.approx(0.0, abs=1e-12)  # cosine over 1 epoch, stepped once
    assert {"cons_train", "cons_frz", "adv_acc"} <= set(trainer.epoch_summary)  # CAPT's after_epoch reads these
    assert "* accuracy:" in out  # Dassl's evaluator block
    robust = re.findall(r"^\* robust_accuracy \((.+)\): ([0-9.]+)%$", out, flags=re.M)
    assert [name for name, _ in robust] == [trainer.test_attacks[0].label()]
    log = tmp_path / "log.txt"  # the Dassl run's log, as its logger would write it
    log.write_text(out)
    metrics = parse_log(log).values
    assert metrics["accuracy"] == pytest.approx(float(re.search(r"\* accuracy: ([0-9.]+)%", out).group(1)))
    assert metrics[robust_key(robust[0][0])] == pytest.approx(float(robust[0][1]))
    ckpt = tmp_path / "prompt_learner" / "model.pth.tar-1"
    assert ckpt.exists()
    fresh = dassl.engine.build_trainer(cfg)
    fresh.load_model(str(tmp_path), epoch=1)
    learnable = [n for n, p in trainer._models["prompt_learner"].named_parameters() if p.requires_grad]
    loaded = fresh._models["prompt_learner"].state_dict()
    assert learnable and all(torch.equal(after[n], loaded[n]) for n in learnable)


def test_eps_is_in_pixel_units_under_normalising_pipeline(dassl, tmp_path, monkeypatch):
    """With 'normalize' (ImageNet statistics) in the transforms, the images reaching the model are the PNGs' own
    [0, 1] pixels and the training attack's perturbation is at most, and reaches, eps/255 in pixel space."""
    import promptengine.prompting as prompting

    seen = []
    real_attack = prompting.attack

    def spy(forward, x, y, spec, **kw):
        x_adv = real_attack(forward, x, y, spec, **kw)
        seen.append((x.detach().clone(), x_adv.detach().clone(), spec.eps))
        return x_adv

    monkeypatch.setattr(prompting, "attack", spy)
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path))
    batch = next(iter(trainer.train_loader_x))
    raw = torch.stack([TF.to_tensor(Image.open(p).convert("RGB")) for p in batch["impath"]])  # (B, 3, 32, 32)
    x, _ = trainer.parse_batch_train(batch)
    assert batch["img"].min() < -0.5  # the pipeline really normalised
    assert torch.allclose(x, raw, atol=1e-5)
    steps = []
    trainer.after_step = steps.append  # the main engine's per-step hook, called on Dassl's engine too
    trainer.batch_idx, trainer.num_batches = 0, 1
    trainer.forward_backward(batch)
    assert len(steps) == 1 and "loss" in steps[0]
    x_in, x_adv, eps = seen[0]
    assert eps == pytest.approx(4.0 / 255)
    assert torch.allclose(x_in, raw, atol=1e-5)
    assert (x_adv - raw).abs().max().item() == pytest.approx(eps, abs=1e-5)


@pytest.mark.parametrize("transforms,words", [("('normalize', 'instance_norm')", "instance_norm"),
                                              ("('normalize', 'gaussian_noise')", "gaussian_noise")])
def test_unhandled_pipelines_are_refused(dassl, tmp_path, transforms, words):
    with pytest.raises(UserError, match=words):
        dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=["INPUT.TRANSFORMS", transforms]))


def test_batches_outside_pixel_range_are_refused():
    """A custom transform the stats do not undo (here: normalised twice) stops with one line."""
    from promptengine.dassl_plugin.pixels import to_pixels

    stats = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(to_pixels((x - 0.5) / 0.25, stats), x, atol=1e-6)
    with pytest.raises(UserError, match="cannot undo"):
        to_pixels(((x - 0.5) / 0.25 - 0.5) / 0.25, stats)


def test_cfg_without_plugin_keys_is_refused(dassl, tmp_path):
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    cfg.TRAINER.NAME = "CAPT"
    with pytest.raises(UserError, match="extend_cfg"):
        dassl.engine.build_trainer(cfg)


@pytest.mark.parametrize("key,value", [("TRAINER.CAPT.ALPHA_MODE", "magic"), ("ATTACK.TEST.STEPS", "-1")])
def test_dassl_config_gets_the_same_domain_check(dassl, tmp_path, key, value):
    """A Dassl train.py merges the config itself: the bridge runs build_cfg's domain check on the toolbox's keys,
    before anything is built, and names the Dassl config as the value's source."""
    with pytest.raises(UserError, match=rf"^{re.escape(key)} = .* \(from the Dassl config: its YAML files or "
                                        r"options\) is not allowed: it must be "):
        dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=[key, value]))


def test_dassls_own_keys_are_left_to_dassl(dassl):
    """Dassl's engine reads its own keys with its own choices (e.g. OPTIM.NAME radam): only the keys the toolbox
    adds are checked against its domains."""
    from promptengine.dassl_plugin.config import plugin_domains

    checked = plugin_domains()
    assert {"TRAINER.CAPT.ALPHA_MODE", "ATTACK.TEST.EPS", "ATTACK.PGD.EPS"} <= set(checked)
    assert not {"OPTIM.NAME", "INPUT.SIZE", "DATASET.NUM_SHOTS"} & set(checked)


def test_fp16_prec_keeps_learnable_tensors_fp32(dassl, tmp_path):
    """Dassl's TRAINER.<NAME>.PREC fp16 becomes fp16 autocast (fp32 on a CPU); nothing learnable is half."""
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=["TRAINER.CAPT.PREC", "fp16"]))
    assert trainer.precision in ("amp", "fp32")
    params = list(trainer.model.parameters())
    assert params and all(p.dtype == torch.float32 for p in params)


def test_robust_evaluation_runs_in_fp32_under_half_precision_training(dassl, tmp_path, monkeypatch):
    """Training in bf16 (explicit TRAIN.PRECISION on a CPU): the robust test's forwards still return fp32 logits
    (ATTACK.TEST.PRECISION fp32, the default)."""
    import promptengine.dassl_plugin.bridge as bridge

    dtypes = []
    real_evaluate = bridge.evaluate

    def spy(classifier, *args, **kw):
        def recorded(z):
            out = classifier(z)
            dtypes.append(out.dtype)
            return out

        return real_evaluate(recorded, *args, **kw)

    monkeypatch.setattr(bridge, "evaluate", spy)
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=["TRAIN.PRECISION", "bf16"]))
    assert trainer.precision == "bf16"
    trainer.robust_accuracy(trainer.test_loader)
    assert dtypes and set(dtypes) == {torch.float32}


def test_training_attack_runs_in_fp32_under_half_precision_step(dassl, tmp_path, monkeypatch):
    """The step runs under bf16 autocast (explicit TRAIN.PRECISION on a CPU); every forward of the training attack
    returns fp32 logits (ATTACK.TRAIN.PRECISION fp32, the default, honoured on Dassl's engine too)."""
    import promptengine.prompting as prompting

    dtypes = []
    real_attack = prompting.attack

    def spy(forward, x, y, spec, **kw):
        def recorded(z):
            out = forward(z)
            dtypes.append(out.dtype)
            return out

        return real_attack(recorded, x, y, spec, **kw)

    monkeypatch.setattr(prompting, "attack", spy)
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=["TRAIN.PRECISION", "bf16"]))
    trainer.batch_idx, trainer.num_batches = 0, 1
    trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert dtypes and set(dtypes) == {torch.float32}


SMALL_DEPTHS = ["TRAINER.FAP.PROMPT_DEPTH", "2", "TRAINER.ADVMAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PROMPT_DEPTH", "2",
                "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2"]


@pytest.mark.parametrize("name", ["APT", "FAP", "AdvVP", "AdvVLP", "AdvMaPLe", "CoOp", "CoCoOp", "MaPLe", "IVLP", "VPT"])
def test_other_trainers_take_a_step_on_dassl_engine(dassl, tmp_path, name):
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, trainer=name, opts=SMALL_DEPTHS))
    learner = trainer._models["prompt_learner"]
    before = [p.detach().clone() for p in learner.parameters()]
    trainer.batch_idx, trainer.num_batches = 0, 1
    terms = trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert np.isfinite(terms["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters()))


def test_fp16_autocast_step_goes_through_the_gradient_scaler(dassl, tmp_path):
    """fp16 autocast (explicit TRAIN.PRECISION amp, so it also runs on a CPU): every step goes through the gradient
    scaler (which skips a step whose scaled gradients overflow and lowers its scale), the prompts move within a few
    steps and stay fp32 and finite."""
    torch.manual_seed(0)
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, opts=["TRAIN.PRECISION", "amp"]))
    assert trainer.precision == "amp" and trainer.scaler.is_enabled()
    steps = []
    real_step = trainer.scaler.step
    trainer.scaler.step = lambda optim: steps.append(optim) or real_step(optim)
    learner = trainer._models["prompt_learner"]
    before = [p.detach().clone() for p in learner.parameters()]
    batch = next(iter(trainer.train_loader_x))
    trainer.batch_idx, trainer.num_batches = 0, 2  # not the last batch: the LR stays
    taken = 0
    while taken < 10 and all(torch.equal(a, b) for a, b in zip(before, learner.parameters())):
        trainer.forward_backward(batch)
        taken += 1
    assert steps == [trainer._optims["prompt_learner"]] * taken
    after = list(learner.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "no step in 10 was taken"
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in after)


def test_zero_shot_clip_eval_only_on_dassl_engine(dassl, tmp_path, capsys):
    """Dassl's --eval-only path for a training-free trainer: load_model('') is a no-op, test() attacks the frozen CLIP."""
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, trainer="ZeroshotCLIP"))
    trainer.load_model("")
    trainer.test()
    assert re.search(r"^\* robust_accuracy \(pgd3, linf, eps=4/255", capsys.readouterr().out, flags=re.M)


def test_catalogued_tower_names_resolve_on_dassl_engine(dassl, tmp_path):
    """A Dassl train.py merges the config itself: the bridge turns a catalogued name in MODEL.BACKBONE.PATH into its
    verified file (the tower loaded is the pinned copy's), and refuses a copy of another checksum in one line."""
    root = tmp_path / "weights"
    path = pinned_tower(root)
    opts = ["MODEL.BACKBONE.PATH", TOWER, "MODEL.BACKBONE.DOWNLOAD_ROOT", str(root)]
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path / "ok", trainer="ZeroshotCLIP", opts=opts))
    assert trainer.cfg.MODEL.BACKBONE.PATH == str(path)
    assert torch.equal(trainer.backbone.clip.visual.proj, fake_tower(7)["proj"])
    swap_for_another(path)
    with pytest.raises(UserError, match=REFUSAL) as refused:
        dassl.engine.build_trainer(dassl_cfg(tmp_path / "bad", trainer="ZeroshotCLIP", opts=opts))
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)


def test_fap_keys_reach_the_method_on_dassl_engine(dassl, tmp_path):
    """A Dassl train.py merges the YAMLs itself: FAP's ATTACK.PGD.* (with USE True) are translated by the bridge."""
    opts = [*SMALL_DEPTHS, "ATTACK.PGD.USE", "True", "ATTACK.PGD.TRAIN_ITER", "3", "ATTACK.PGD.EPS", "2.0",
            "ATTACK.PGD.LAMBDA_1", "2.5", "ATTACK.PGD.TEST_ITER", "4"]
    trainer = dassl.engine.build_trainer(dassl_cfg(tmp_path, trainer="FAP", opts=opts))
    assert trainer.train_attack.steps == 3 and trainer.train_attack.eps == pytest.approx(2 / 255)
    assert trainer.lam == 2.5 and trainer.test_attacks[-1].steps == 4


def warmup_cfg(kind, recount, schedule):
    from dassl.config import get_cfg_default

    cfg = get_cfg_default().OPTIM
    cfg.merge_from_list(["NAME", "sgd", "LR", "0.002", "MAX_EPOCH", "6", "LR_SCHEDULER", schedule,
                         "STEPSIZE", "(2, 4)" if schedule == "multi_step" else "(3,)", "WARMUP_EPOCH", "2",
                         "WARMUP_TYPE", kind, "WARMUP_CONS_LR", "1e-5", "WARMUP_MIN_LR", "1e-4",
                         "WARMUP_RECOUNT", str(recount)])
    cfg.freeze()
    return cfg


def lr_per_epoch(scheduler, optimizer, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: nothing moves; torch expects it before the scheduler's step
        scheduler.step()
    return lrs


@pytest.mark.parametrize("kind,recount,schedule", [("constant", True, "cosine"), ("linear", True, "cosine"),
                                                   ("constant", False, "cosine"), ("linear", False, "multi_step"),
                                                   ("constant", True, "single_step")])
def test_warmup_runs_dassls_schedule_on_this_torch(dassl, monkeypatch, kind, recount, schedule):
    """Dassl's own warm-up wrappers fail on this torch (``verbose`` passed positionally); the plug-in's gives the LR
    of every epoch that Dassl's gives on a torch that still takes ``verbose``, also across a save / weights-only load
    / resume of its state in the middle."""
    from dassl.optim import build_lr_scheduler as dassl_build
    from torch.optim.lr_scheduler import LRScheduler

    from promptengine.dassl_plugin.schedule import build_lr_scheduler

    cfg = warmup_cfg(kind, recount, schedule)
    new_optimizer = lambda: torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=cfg.LR, momentum=0.9)
    with pytest.raises(TypeError, match="positional arguments but 4 were given"):
        dassl_build(new_optimizer(), cfg)
    optimizer = new_optimizer()
    ours = build_lr_scheduler(optimizer, cfg, dassl_build)
    lrs = lr_per_epoch(ours, optimizer, 3)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": ours.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # how Dassl's load_checkpoint reads it on this torch
    optimizer = new_optimizer()
    resumed = build_lr_scheduler(optimizer, cfg, dassl_build)
    optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    lrs += lr_per_epoch(resumed, optimizer, 5)

    init = LRScheduler.__init__
    monkeypatch.setattr(LRScheduler, "__init__",
                        lambda self, optimizer, last_epoch=-1, verbose=False: init(self, optimizer, last_epoch))
    optimizer = new_optimizer()
    assert lrs == lr_per_epoch(dassl_build(optimizer, cfg), optimizer, 8)


def test_resume_on_dassl_engine_is_exact(dassl, tmp_path, capsys):
    """Dassl's checkpoints hold no random state; the plug-in's file beside them makes a run resumed after epoch 1
    (in another random history, as a new process has) end with exactly the prompts of the uninterrupted run."""
    opts = ["OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "1", "TEST.NO_TEST", "True", "OPTIM.WARMUP_EPOCH", "1",
            "OPTIM.WARMUP_TYPE", "constant", "INPUT.TRANSFORMS", "('random_flip', 'normalize')"]
    cfg = dassl_cfg(tmp_path, opts=opts)
    learnable = lambda t: {n: p.detach().clone() for n, p in t._models["prompt_learner"].named_parameters()
                           if p.requires_grad}
    torch.manual_seed(0)
    full = dassl.engine.build_trainer(cfg)
    full.train()
    folder = tmp_path / "prompt_learner"
    for epoch in (2, 3):
        (folder / f"model.pth.tar-{epoch}").unlink()
        (folder / f"model.pth.tar-{epoch}.state").unlink()
    (folder / "checkpoint").write_text("model.pth.tar-1\n")  # as if killed during epoch 2
    torch.manual_seed(12345)
    resumed = dassl.engine.build_trainer(cfg)
    resumed.train()
    assert "Restored the random state of epoch 1" in capsys.readouterr().out
    expected, got = learnable(full), learnable(resumed)
    assert expected.keys() == got.keys() and all(torch.equal(expected[n], got[n]) for n in expected)
