"""TTC (test-time counterattacks): its loss, noise sensitivity and step weights, pinned on hand-computed values."""

from __future__ import annotations

import math

import torch
from torch import nn

from promptengine.evaluation.testtime import Budget
from promptengine.methods.ttc import Counterattack, embedding_shift, noise_sensitivity, step_weights


def test_loss_sensitivity_and_weights_by_hand():
    ref = torch.tensor([[3.0, 4.0]])
    assert torch.equal(embedding_shift(torch.tensor([[4.0, 6.0]]), ref), torch.tensor([5.0]))  # 1 + 4
    assert torch.allclose(noise_sensitivity(torch.tensor([[3.0, 5.0]]), ref), torch.tensor([0.2]))  # 1 / 5
    w = step_weights(torch.tensor([0.1, 0.3]), tau_thres=0.2, beta=2.0, steps=2)
    z = 1 + math.e ** 2 + math.e ** 4
    assert torch.allclose(w[0], torch.tensor([1 / z, math.e ** 2 / z, math.e ** 4 / z]))  # falsely stable: counter
    assert torch.equal(w[1], torch.tensor([1.0, 0.0, 0.0]))  # sensitive to noise: the random start only


class Recorder(nn.Module):
    """Two-class linear model that remembers the input it last classified."""

    def forward(self, x):
        self.seen = x.detach().clone()
        return torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], dim=1)


def test_counterattack_end_to_end_by_hand():
    """Identity embedding: the loss ||d||^2 pushes every pixel of d0 out to +-eps along its own sign in one step of
    size eps, so the counterattacked input is x + w0 d0 + (w1 + w2) eps sign(d0)."""
    x = torch.full((1, 1, 2, 2), 0.5)
    eps = 0.1
    flat = lambda z: z.flatten(1)  # noqa: E731
    base = Recorder()
    Counterattack(base, flat, Budget(steps=0, lr=eps), eps, tau_thres=0.2, beta=2.0, seed=3)(x)
    d0 = base.seen - x  # the random start alone (0 steps)
    assert 0 < d0.abs().max() <= eps
    Counterattack(base, flat, Budget(steps=2, lr=eps), eps, tau_thres=0.2, beta=2.0, seed=3)(x)
    tau = d0.flatten().norm() / x.flatten().norm()  # <= 0.2 / 1: below the threshold
    assert tau < 0.2
    z = 1 + math.e ** 2 + math.e ** 4
    want = x + d0 / z + (math.e ** 2 + math.e ** 4) / z * eps * d0.sign()
    assert torch.allclose(base.seen, want, atol=1e-6)
    Counterattack(base, flat, Budget(steps=2, lr=eps), eps, tau_thres=0.01, beta=2.0, seed=3)(x)
    assert torch.allclose(base.seen, x + d0)  # above the threshold: the random start only


def test_counterattack_depends_on_neither_batch_nor_order():
    x = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    encoder = nn.Linear(48, 6)
    defense = Counterattack(Recorder(), lambda z: encoder(z.flatten(1)), Budget(steps=2, lr=1 / 255), 4 / 255,
                            tau_thres=0.2, beta=2.0, seed=1)
    together = defense(x)
    alone = torch.cat([defense(x[i:i + 1]) for i in reversed(range(5))]).flip(0)
    assert torch.equal(together, alone)
    other_seed = Counterattack(Recorder(), lambda z: encoder(z.flatten(1)), Budget(steps=2, lr=1 / 255), 4 / 255,
                               tau_thres=0.2, beta=2.0, seed=2)(x)
    assert not torch.equal(other_seed, together)  # the run seed does draw the randomness
