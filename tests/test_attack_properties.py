"""Property tests of the attack core on tiny models (a conv net with BatchNorm/Dropout and a random tiny CLIP).

Robust accuracy is always measured the way an evaluator does it: one eval-mode forward of ``x_adv`` on the whole
batch, so these tests also check that the attack's internal decisions agree with that forward.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from promptengine.attacks import AttackSpec, attack, attack_outcome

FAST = settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
CLASSES = 5
BATCH = 8


class ConvNet(nn.Module):
    """3x8x8 -> 5 logits; BatchNorm and Dropout make train-mode forwards batch-dependent and random."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 8 * 8, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ZeroShotCLIP(nn.Module):
    """A tiny random ``clip.model.CLIP`` as a zero-shot classifier; [0, 1] images are normalised inside."""

    MEAN = (0.48145466, 0.4578275, 0.40821073)
    STD = (0.26862954, 0.26130258, 0.27577711)

    def __init__(self) -> None:
        super().__init__()
        from promptengine.clip.openai_clip import CLIP, clip

        self.clip = CLIP(embed_dim=64, image_resolution=16, vision_layers=2, vision_width=64, vision_patch_size=8,
                         context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                         transformer_layers=2).float()
        with torch.no_grad():
            text = self.clip.encode_text(clip.tokenize([f"a photo of a thing number {i}." for i in range(CLASSES)]))
        self.register_buffer("text", text / text.norm(dim=-1, keepdim=True))
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.clip.encode_image((x - self.mean) / self.std)
        z = z / z.norm(dim=-1, keepdim=True)
        return self.clip.logit_scale.exp() * z @ self.text.t()


@functools.cache
def setup(name: str):
    """(model in eval mode, images, labels): labels are the clean predictions with two of them changed."""
    torch.manual_seed(0)
    model = (ConvNet() if name == "conv" else ZeroShotCLIP()).eval()
    size = 8 if name == "conv" else 16
    x = torch.rand(BATCH, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:2] = (y[:2] + 1) % CLASSES
    return model, x, y


def correct(model, x_adv, y) -> torch.Tensor:
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


IDS = torch.arange(100, 100 + BATCH)
models = st.sampled_from(["conv", "clip"])
norms = st.sampled_from(["linf", "l2"])


@st.composite
def specs(draw, loss=st.sampled_from(["ce", "cw", "kl"]), keep=st.sampled_from(["fooled", "last"])):
    norm = draw(norms)
    top = 16 / 255 if norm == "linf" else 1.0
    eps = draw(st.floats(0, top))
    return AttackSpec(norm=norm, eps=eps, alpha=eps * draw(st.floats(0.1, 1.5)), steps=draw(st.integers(0, 5)),
                      restarts=draw(st.integers(1, 3)), loss=draw(loss), keep=draw(keep),
                      seed=draw(st.integers(0, 3)))


@FAST
@given(name=models, spec=specs(), random_start=st.booleans())
def test_perturbation_stays_in_the_ball_and_the_box(name, spec, random_start):
    model, x, y = setup(name)
    spec = replace(spec, random_start=random_start or spec.restarts > 1)
    x_adv = attack(model, x, y, spec, sample_ids=IDS)
    d = (x_adv - x).flatten(1)
    size = d.abs().amax(dim=1) if spec.norm == "linf" else d.norm(dim=1)
    assert (size <= spec.eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and x_adv.dtype == torch.float32


@FAST
@given(name=models, spec=specs())
def test_zero_budget_gives_the_clean_result(name, spec):
    model, x, y = setup(name)
    zero = replace(spec, eps=0.0)
    x_adv = attack(model, x, y, zero, sample_ids=IDS)
    assert torch.equal(x_adv, x)
    assert torch.equal(correct(model, x_adv, y), correct(model, x, y))


@FAST
@given(name=models, spec=specs(loss=st.sampled_from(["ce", "cw"]), keep=st.just("fooled")))
def test_robust_never_beats_clean_per_sample(name, spec):
    model, x, y = setup(name)
    clean = correct(model, x, y)
    robust = correct(model, attack(model, x, y, spec, sample_ids=IDS), y)
    assert not (robust & ~clean).any()


@FAST
@given(name=models, spec=specs(loss=st.sampled_from(["ce", "cw"]), keep=st.just("fooled")),
       more_steps=st.integers(0, 4), more_restarts=st.integers(0, 2))
def test_more_steps_or_restarts_never_raise_robust_accuracy(name, spec, more_steps, more_restarts):
    model, x, y = setup(name)
    stronger = replace(spec, steps=spec.steps + more_steps, restarts=spec.restarts + more_restarts)
    weak = correct(model, attack(model, x, y, spec, sample_ids=IDS), y)
    strong = correct(model, attack(model, x, y, stronger, sample_ids=IDS), y)
    assert not (strong & ~weak).any()


@FAST
@given(name=models, spec=specs())
def test_attack_outcome_returns_the_attacks_examples_and_their_verdicts(name, spec):
    model, x, y = setup(name)
    x_adv, fooled = attack_outcome(model, x, y, spec, sample_ids=IDS)
    assert torch.equal(x_adv, attack(model, x, y, spec, sample_ids=IDS))
    assert fooled.dtype == torch.bool and torch.equal(fooled, ~correct(model, x_adv, y))  # these eval-mode models
    # do not depend on batching, so the attack's own verdicts agree with one forward of the whole batch


@settings(FAST, max_examples=5)
@given(name=models, spec=specs())
def test_results_do_not_depend_on_the_batch_size(name, spec):
    model, x, y = setup(name)
    robust = {}
    for bs in (1, 3, 8):
        parts = [attack(model, x[i:i + bs], y[i:i + bs], spec, sample_ids=IDS[i:i + bs]) for i in range(0, BATCH, bs)]
        robust[bs] = correct(model, torch.cat(parts), y)
    assert torch.equal(robust[1], robust[8]) and torch.equal(robust[3], robust[8])


@settings(FAST, max_examples=4)
@given(name=models, spec=specs())
def test_model_mode_parameters_and_grads_are_left_alone(name, spec):
    model, x, y = setup(name)
    model.train()
    first = next(model.children())
    first.eval()  # a mixed state, as in CoOp (frozen CLIP in eval, prompt learner in train)
    modes = [m.training for m in model.modules()]
    params = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    buffers = [b.clone() for b in model.buffers()]
    try:
        attack(model.forward, x, y, spec, module=model, sample_ids=IDS)
        assert [m.training for m in model.modules()] == modes
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
        assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
        assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers))  # BatchNorm statistics
    finally:
        model.eval()
        for p in model.parameters():
            p.grad = None
