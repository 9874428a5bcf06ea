"""Wiring of every adversarial trainer, observed with spies on one real training step (tiny CLIP, toy data):
which images reach the frozen CLIP, which model the training attack attacks (the step's current prompts), which
logits enter each loss term, that gradients reach exactly the learnable prompt tensors, and that the training
attack runs in fp32 inside a bf16 training step. Each step runs twice with the prompts moved in between, so an
attack on stale (cached) prompts is caught. The optimiser step is a no-op here, so the prompts of a step equal the
reference's (a learning rate of 0 is refused by the config check)."""

import pytest
import torch
import torch.nn.functional as F

import promptengine.methods.capt as capt_module
import promptengine.methods.objectives as fap_module  # FAP's loss (objectives.fap_loss) calls its kl_per_sample
import promptengine.prompting as prompting
from promptengine.attacks import eval_mode
from promptengine.config.merge import build_cfg
from promptengine.engine.trainer import set_random_seed
from promptengine.registry import TRAINER_REGISTRY
from tests.conftest import TOY_OPTS

SMALL = ["TRAINER.ADVMAPLE.PROMPT_DEPTH", "2", "TRAINER.FAP.PROMPT_DEPTH", "2", "TRAINER.CAPT.PROMPT_DEPTH", "2",
         "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2", "ATTACK.TRAIN.ENABLED", "True",
         "ATTACK.TRAIN.STEPS", "2", "ATTACK.TRAIN.EPS", "8.0", "DATASET.NUM_SHOTS", "4"]
ADVERSARIAL = ["APT", "AdvVP", "AdvVLP", "AdvMaPLe", "FAP", "CAPT"]
TECOA = ("APT", "AdvVP", "AdvVLP", "AdvMaPLe")


def build(name, tmp_path, *extra):
    cfg = build_cfg(opts=[*TOY_OPTS, *SMALL, "TRAINER.NAME", name, "SEED", "1", "OUTPUT_DIR", str(tmp_path), *extra])
    set_random_seed(1)
    trainer = TRAINER_REGISTRY.get(name)(cfg)
    for optim in trainer._optims.values():  # a step leaves the prompts as they were (what LR 0 used to do)
        if optim is not None:
            optim.step = lambda *args, **kwargs: None
    return trainer


class Spies:
    """Records the training attack's calls, the loss-term inputs and the frozen CLIP's inputs of one step."""

    def __init__(self, trainer, monkeypatch) -> None:
        self.trainer, self.attacks, self.ce, self.kl, self.capt, self.frozen = trainer, [], [], [], [], []
        real_attack, real_ce, real_kl, real_capt = prompting.attack, F.cross_entropy, fap_module.kl_per_sample, \
            capt_module.capt_loss

        def attack(classifier, x, y, spec, **kw):
            autocast_seen = []

            def watched(z):
                autocast_seen.append(torch.is_autocast_enabled("cpu"))
                return classifier(z)

            x_adv = real_attack(watched, x, y, spec, **kw)
            with torch.no_grad(), eval_mode(trainer.model):
                attacked, current = classifier(x), self.target()(x)
            self.attacks.append({"x": x.clone(), "x_adv": x_adv.clone(), "attacked": attacked, "current": current,
                                 "autocast": autocast_seen, "seed": spec.seed})
            return x_adv

        def ce(logits, y, *args, **kw):
            if kw.get("reduction", "mean") == "mean":  # a loss term, not the attack's per-sample objective
                self.ce.append(logits.detach().float().clone())
            return real_ce(logits, y, *args, **kw)

        def kl(target, inp):
            self.kl.append((target.detach().clone(), inp.detach().clone()))
            return real_kl(target, inp)

        def capt_loss(cfg, y, clean, adv, frozen):
            self.capt.append((clean.detach().clone(), adv.detach().clone(), frozen.detach().clone()))
            return real_capt(cfg, y, clean, adv, frozen)

        monkeypatch.setattr(prompting, "attack", attack)
        monkeypatch.setattr(F, "cross_entropy", ce)
        monkeypatch.setattr(fap_module, "kl_per_sample", kl)
        monkeypatch.setattr(capt_module, "capt_loss", capt_loss)
        if hasattr(trainer, "frozen"):
            trainer.frozen.register_forward_hook(lambda m, inp, out: self.frozen.append(inp[0].detach().clone()))

    def target(self):
        """What the training attack must attack: the step's current prompts (APT 'constant': the fixed prompt)."""
        if getattr(self.trainer, "constant_target", None) is not None:
            return self.trainer.constant_target
        return lambda x: self.trainer.model(x)

    def clear(self) -> None:
        for calls in (self.attacks, self.ce, self.kl, self.capt, self.frozen):
            calls.clear()


def step(trainer, spies, batch):
    """Move the prompts, clear the spies, run one training step."""
    with torch.no_grad():
        for p in trainer.model.prompt_learner.parameters():
            p.add_(0.05 * torch.randn_like(p))
    spies.clear()
    trainer.set_model_mode("train")
    trainer.batch_idx = 0
    trainer.forward_backward(batch)


def close(a, b) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_trainer_wiring(tmp_path, monkeypatch, name):
    trainer = build(name, tmp_path)
    spies = Spies(trainer, monkeypatch)
    batch = next(iter(trainer.dm.train_loader(0, 1)))
    x = batch["img"]
    for _ in range(2):  # the second step runs after the prompts moved: cached prompts would show
        step(trainer, spies, batch)
        assert len(spies.attacks) == 1
        call, frozen_inputs = spies.attacks[0], list(spies.frozen)
        assert torch.equal(call["x"], x) and not torch.equal(call["x_adv"], x)
        assert close(call["attacked"], call["current"]), "the training attack does not attack the step's prompts"
        x_adv = call["x_adv"]
        with torch.no_grad():
            clean, adv = trainer.model(x), trainer.model(x_adv)  # the step's prompts (the no-op optimiser step left them)
        if name in TECOA:
            assert len(spies.ce) == 1 and close(spies.ce[0], adv)  # TeCoA: CE on the adversarial logits only
        elif name == "FAP":
            assert len(spies.ce) == 1 and close(spies.ce[0], clean)  # natural term on clean logits
            (target, inp), = spies.kl
            assert close(target, clean) and close(inp, adv)  # KL(clean || adv)
        else:
            (l_clean, l_adv, l_frz), = spies.capt
            assert close(l_clean, clean) and close(l_adv, adv)
            with torch.no_grad():
                assert close(l_frz, trainer.frozen(x)) and not close(l_frz, trainer.frozen(x_adv))
            assert len(frozen_inputs) == 1 and torch.equal(frozen_inputs[0], x)  # the step's one frozen call: clean x
    # gradients reach every learnable prompt tensor and nothing else
    learnable = {id(p) for p in trainer.model.prompt_learner.parameters()}
    assert learnable
    for pname, p in trainer.model.named_parameters():
        if id(p) in learnable:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, pname
        else:
            assert not p.requires_grad and p.grad is None, pname


def test_apt_constant_mode_attacks_the_fixed_prompt(tmp_path, monkeypatch):
    trainer = build("APT", tmp_path, "TRAINER.APT.ATTACK_PROMPT", "constant")
    spies = Spies(trainer, monkeypatch)
    batch = next(iter(trainer.dm.train_loader(0, 1)))
    step(trainer, spies, batch)
    call = spies.attacks[0]
    with torch.no_grad():
        prompted = trainer.model(batch["img"])
    assert close(call["attacked"], call["current"]) and not close(call["attacked"], prompted)


def test_training_attack_runs_in_fp32_inside_a_bf16_step_and_mixes_the_run_seed(tmp_path, monkeypatch):
    trainer = build("CAPT", tmp_path, "TRAIN.PRECISION", "bf16")
    spies = Spies(trainer, monkeypatch)
    batch = next(iter(trainer.dm.train_loader(0, 1)))
    step(trainer, spies, batch)
    assert spies.attacks[0]["autocast"] and not any(spies.attacks[0]["autocast"])  # fp32 attack forwards
    seed_1 = spies.attacks[0]["seed"]
    trainer.cfg.defrost()
    trainer.cfg.ATTACK.TRAIN.PRECISION = "bf16"
    trainer.cfg.SEED = 2
    del trainer.train_attack_autocast  # a cached property: re-read the key
    step(trainer, spies, batch)
    assert all(spies.attacks[0]["autocast"])  # asked for: bf16 autocast
    assert spies.attacks[0]["seed"] != seed_1  # another run seed, other random starts for the same images


def test_training_attack_random_starts_depend_on_run_seed_epoch_and_image(tmp_path):
    trainer = build("CAPT", tmp_path)
    x = torch.full((2, 3, 32, 32), 0.5)
    y = torch.zeros(2, dtype=torch.long)
    start = lambda: trainer.training_attack(lambda z: z.flatten(1)[:, :4], x, y,
                                            spec=trainer.train_attack.__class__(eps=8 / 255, steps=0))
    trainer.batch_index, trainer.epoch = torch.tensor([5, 6]), 0
    a = start()
    trainer.batch_index = torch.tensor([6, 5])
    assert torch.equal(start(), a.flip(0))  # per image, not per batch position
    trainer.epoch = 1
    b = start()
    trainer.cfg.defrost()
    trainer.cfg.SEED, trainer.epoch = 2, 0
    c = start()
    trainer.batch_index = torch.tensor([5, 6])
    assert not torch.equal(a, b) and not torch.equal(start(), a) and torch.equal(c.flip(0), start())
