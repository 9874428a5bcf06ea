"""Evaluation's per-sample verdicts: an image is robust only if it is right on clean input and the attack's own
verdict says it was not fooled; the worst case over attacks starts from clean correctness."""

import pytest
import torch
from torch import nn

from promptengine.attacks import AttackSpec, attack_outcome
from promptengine.evaluation.metrics import worst_case
from promptengine.evaluation.robust import attack_correct, clean_correct, evaluate

DEVICE = torch.device("cpu")


class TwoClass(nn.Module):
    """logits = (s, -s) with s = mean(x) - 0.5 + bias; ``batch_bonus`` is added to class 1 when the batch holds a
    single image (a forward whose near-ties depend on batching, as fused kernels can)."""

    def __init__(self, bias: float = 0.0, batch_bonus: float = 0.0) -> None:
        super().__init__()
        self.bias, self.batch_bonus = bias, batch_bonus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1).mean(1) - 0.5 + self.bias  # (B,)
        logits = torch.stack([s, -s], dim=1)  # (B, 2)
        if x.shape[0] == 1:
            logits[:, 1] += self.batch_bonus
        return logits


def loader(x, y):
    return [{"img": x, "label": y, "index": torch.arange(len(y))}]


def test_a_weak_keep_last_attack_never_makes_a_clean_error_robust():
    model = TwoClass()
    # image 0: clean-wrong by a hair (mean 0.499 -> class 1, label 0); image 1: clean-right (mean 0.3 -> class 1)
    x = torch.stack([torch.full((3, 4, 4), 0.499), torch.full((3, 4, 4), 0.3)])
    y = torch.tensor([0, 1])
    # a KL attack keeping its last iterate pushes image 0 away from its (wrong) clean prediction: onto the label
    weak = AttackSpec(loss="kl", keep="last", eps=4 / 255, alpha=1 / 255, steps=4, random_start=False)
    x_adv, fooled = attack_outcome(model, x, y, weak)
    with torch.no_grad():
        assert model(x_adv).argmax(1)[0] == 0 and not fooled[0]  # the adversarial image 0 is classified right
    out = evaluate(model, loader(x, y), [weak], DEVICE, show_progress=False)
    assert out["pred"].tolist() == [1, 1]
    assert out["correct_0"].tolist() == [False, True]  # ...but image 0 was wrong on clean input: not robust
    assert worst_case([clean_correct(out), *attack_correct(out, 1)]).tolist() == [False, True]


def test_worst_case_starts_from_clean_correctness():
    per_sample = {"pred": torch.tensor([0, 1, 1, 0]), "label": torch.tensor([0, 1, 0, 0]),
                  "correct_0": torch.tensor([True, True, True, False]), "correct_1": torch.tensor([True, False, True, True])}
    clean = clean_correct(per_sample)
    assert worst_case([clean, *attack_correct(per_sample, 2)]).tolist() == [True, False, False, False]  # 2: clean-wrong
    assert worst_case([clean]).tolist() == clean.tolist() == [True, True, False, True]  # no attack: clean correctness
    with pytest.raises(ValueError):
        worst_case([])


def test_the_attacks_own_verdict_is_counted_not_a_rebatched_forward():
    # image 0 is right by 0.01 in a batch of two; alone in a batch the model adds 0.05 to class 1 and it flips.
    # image 1 is wrong on clean input, so the attack's working batch holds image 0 alone
    model = TwoClass(bias=0.01, batch_bonus=0.05)
    x = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.1)])
    y = torch.tensor([0, 0])
    spec = AttackSpec(eps=0.0, alpha=0.0, steps=1, random_start=False)
    x_adv, fooled = attack_outcome(model, x, y, spec)
    assert fooled.tolist() == [True, True]  # the attack judged image 0 fooled in its own (one-image) forward
    with torch.no_grad():
        assert model(x_adv).argmax(1).tolist() == [0, 1]  # a re-batched forward of x_adv would call image 0 robust
    out = evaluate(model, loader(x, y), [spec], DEVICE, show_progress=False)
    assert out["pred"].tolist() == [0, 1] and out["correct_0"].tolist() == [False, False]
