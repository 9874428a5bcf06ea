"""The test-time seam (promptengine.evaluation.testtime) and the adaptive attacks of the attack core."""

from __future__ import annotations

import dataclasses
from typing import List

import pytest
import torch
from torch import nn

from promptengine.attacks import attack, parse_spec
from promptengine.errors import UserError
from promptengine.evaluation.robust import robust_correct
from promptengine.evaluation.testtime import Budget, TestTimeDefense, attacked_through
from tests.testtime_checks import assert_order_free


class Affine(nn.Module):
    """logits = W x + b on flattened [0, 1] images."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.t() + self.bias


class EntropyTuning(TestTimeDefense):
    """A TENT/TPT-like defense: a few entropy-minimising steps on the classifier's bias, over noisy views."""

    def adapted_parameters(self) -> List[torch.Tensor]:
        return [self.base.bias]

    def adapt_and_predict(self, x, generators):
        bias = self.base.bias
        for step in range(self.budget.steps):
            noise = torch.randn((self.budget.augmentations, *x.shape[1:]), generator=generators[0]) * 0.05
            probs = (self.base.weight @ (x + noise).flatten(1).t()).t() + bias
            probs = probs.softmax(1)
            entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1).mean()
            (g,) = self.grad(entropy, [bias], step)
            with torch.no_grad():
                bias -= self.budget.lr * g  # in place: what a leaking defense would carry to the next image
        return self.base(x)


class Identity(TestTimeDefense):
    def adapt_and_predict(self, x, generators):
        return self.base(x)


class Noisy(TestTimeDefense):
    """A randomised input defense: adds the image's own noise draw (what EOT averages over)."""

    per_image = False

    def adapt_and_predict(self, x, generators):
        noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators]) * 0.1
        return self.base(x + noise)


def _data(n: int = 12, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, 12, generator=g)
    x = torch.rand(n, 3, 2, 2, generator=g)
    y = (x.flatten(1) @ w.t()).argmax(1)
    return Affine(w), x, y


def test_adaptation_never_leaks_across_batches_or_order():
    model, x, y = _data(n=10)
    defense = EntropyTuning(model, Budget(steps=3, lr=5.0, augmentations=4), seed=7)
    together = assert_order_free(defense, x, [model.bias])  # no logit changes, the trained state is back
    assert not torch.equal(together, model(x))  # adaptation did change the logits (the check is not vacuous)


def test_through_an_identity_defense_is_plain_pgd():
    model, x, y = _data()
    ids = torch.arange(x.shape[0])
    defense = Identity(model, Budget(steps=0, lr=0.0), seed=0)
    plain = parse_spec("pgd:steps=5,eps=16,alpha=4")
    through = parse_spec("through:steps=5,eps=16,alpha=4")
    with defense.attacked(through.unroll):
        adaptive = attack(defense, x, y, through, sample_ids=ids)
    assert torch.equal(adaptive, attack(model, x, y, plain, sample_ids=ids))
    clean = model(x).detach()
    got = robust_correct(defense, x, y, through, clean, sample_ids=ids)
    want = robust_correct(model, x, y, plain, clean, sample_ids=ids)
    assert torch.equal(got, want) and not want.all()  # the attack fools some images


def test_eot_with_one_sample_is_pgd_through_the_defense():
    model, x, y = _data()
    ids = torch.arange(x.shape[0])
    defense = Noisy(model, Budget(steps=0, lr=0.0), seed=3)
    runs = {}
    for text in ("through:steps=5,eps=16,alpha=4", "eot:samples=1,steps=5,eps=16,alpha=4",
                 "eot:samples=4,steps=5,eps=16,alpha=4"):
        spec = parse_spec(text)
        with defense.attacked(spec.unroll):
            runs[spec.eot] = attack(defense, x, y, spec, sample_ids=ids)
    fixed = lambda z: defense(z)  # noqa: E731  (no draws to choose: always the defense's own draw 0)
    assert torch.equal(runs[1], attack(fixed, x, y, parse_spec("pgd:steps=5,eps=16,alpha=4"), sample_ids=ids))
    assert not torch.equal(runs[4], runs[1])  # more draws do change the attack


def test_adaptive_spec_strings_and_records():
    bpda = parse_spec("bpda:steps=3,eps=4")
    assert (bpda.through, bpda.unroll, bpda.eot) == ("defense", 0, 1) and bpda.label().startswith("bpda, pgd3")
    eot = parse_spec("eot:samples=5,unroll=2")
    assert (eot.through, eot.unroll, eot.eot) == ("defense", 2, 5) and "eot5" in eot.label()
    assert "through" not in parse_spec("pgd:steps=3").to_dict()  # older records keep their keys
    assert parse_spec("through:unroll=1").to_dict()["unroll"] == 1
    with pytest.raises(UserError, match="samples"):
        parse_spec("pgd:samples=3")
    with pytest.raises(UserError, match="eot"):
        parse_spec("eot:samples=0")
    model = _data()[0]
    defense = Identity(model, Budget(steps=0, lr=0.0), seed=0)
    assert "undefended" in attacked_through(defense, parse_spec("pgd:"))
    assert "BPDA" in attacked_through(defense, bpda)


# ---------------------------------------------------------------------- gradient masking caught by the report flag
class Quantise(TestTimeDefense):
    """Rounds pixels to 4 levels: no gradient through the rounding, the textbook gradient-masking step."""

    per_image = False

    def adapt_and_predict(self, x, generators):
        return self.base(self.straight_through(x, torch.round(x * 4) / 4))


def _grid_data(n: int = 16):
    """Two classes, logits (z, -z) with z = w . (x - 0.5), pixels on the quantisation grid, |z| in [0.25, 1.25]:
    crossing the boundary takes less than half a level per pixel (rounding undoes it), one level fools."""
    g = torch.Generator().manual_seed(0)
    w = torch.where(torch.rand(12, generator=g) < 0.5, -1.0, 1.0)
    xs = []
    while len(xs) < n:
        u = torch.randint(-1, 2, (12,), generator=g).float()
        if 0.25 <= abs(float(0.25 * (w * u).sum())) <= 1.25:
            xs.append(0.5 + 0.25 * u)
    x = torch.stack(xs).view(n, 3, 2, 2)
    model = Affine(torch.stack([w, -w]))
    model.bias.data = torch.stack([-(w * 0.5).sum(), (w * 0.5).sum()])
    return model, x, model(x).argmax(1)


def _defense_report(defense, x, y):
    from promptengine.evaluation.imageset import ImageSetEvaluator
    from promptengine.robustness.defense import defense_specs, evaluate_defense
    from promptengine.robustness.settings import ReportSettings

    ev = ImageSetEvaluator(defense, x, y, torch.arange(x.shape[0]), progress=False)
    s = ReportSettings(eot_samples=2)
    # eps 0.3, steps of 0.02, from the clean image: a crossing of the model's boundary moves pixels < half a level
    specs = {name: dataclasses.replace(spec, eps=0.3, alpha=0.02, steps=40, random_start=False)
             for name, spec in defense_specs(1.0, s).items()}
    return evaluate_defense(ev, 1.0, s, specs)[0], s


def test_a_gradient_masking_defense_is_flagged():
    from promptengine.robustness.flags import adaptive_gap_flag

    model, x, y = _grid_data()
    record, s = _defense_report(Quantise(model, Budget(steps=0, lr=0.0), seed=0), x, y)
    rows = {r["attack"]: r["accuracy"] for r in record["attacks"]}
    assert record["non_adaptive"] == 100.0 and rows["through the defense"] == 100.0  # zero gradient: nothing moves
    assert rows["BPDA"] == 0.0 and record["adaptive_worst"] == 0.0
    flag = adaptive_gap_flag(record, s.adaptive_gap)
    assert flag.raised and "BPDA 0.0%" in flag.evidence and "straight-through" in flag.evidence


def test_an_honest_model_is_not_flagged():
    from promptengine.robustness.flags import adaptive_gap_flag

    model, x, y = _grid_data()
    record, s = _defense_report(Identity(model, Budget(steps=0, lr=0.0), seed=0), x, y)
    assert record["non_adaptive"] == record["adaptive_worst"]
    assert not adaptive_gap_flag(record, s.adaptive_gap).raised


def test_the_evaluator_gives_each_image_the_same_verdicts_in_any_order():
    from promptengine.evaluation.robust import evaluate

    model, x, y = _data(n=10)
    defense = EntropyTuning(model, Budget(steps=2, lr=5.0, augmentations=3), seed=7)
    specs = [parse_spec("pgd:steps=3,eps=16,alpha=4"), parse_spec("through:steps=3,eps=16,alpha=4")]

    def run(order, batch):
        loader = [{"img": x[order[i:i + batch]], "label": y[order[i:i + batch]], "index": order[i:i + batch]}
                  for i in range(0, len(order), batch)]
        out = evaluate(defense, loader, specs, torch.device("cpu"), show_progress=False)
        ranks = out["index"].argsort()
        return {k: v[ranks] for k, v in out.items()}

    forward = run(torch.arange(10), 4)
    backward = run(torch.arange(10).flip(0), 3)
    for key in ("pred", "correct_0", "correct_1"):
        assert torch.equal(forward[key], backward[key]), key


def test_the_report_checks_and_prints_the_defense_stage():
    from promptengine.robustness.flags import masking_flags
    from promptengine.robustness.markdown import render_markdown
    from promptengine.robustness.settings import ReportSettings

    curve = [{"eps": 0, "accuracy": 50.0}, {"eps": 2, "accuracy": 40.0}]
    r = {"n_images": 50, "n_classes": 5, "headline_eps": 2.0, "clean": 50.0, "eps_curve": {"linf": curve}, "eps_curve_steps": 10,
         "steps_curve": [{"steps": 10, "accuracy": 40.0}], "restarts_curve": [{"restarts": 1, "accuracy": 40.0}],
         "restart_steps": 10, "pgd": 40.0, "transfer": None, "square": None, "autoattack": {}, "autoattack_iters": 3,
         "autoattack_worst": 40.0, "worst_case": 0.0, "large_eps": {"eps": 64, "steps": 20, "accuracy": 0.0},
         "zero_gradient_fraction": 0.0, "per_class": [], "timings_s": {}, "seconds": 1,
         "defense": {"non_adaptive": 40.0, "adaptive_worst": 0.0, "attacks": [
             {"attack": "non-adaptive", "label": "pgd10", "through": "the undefended model", "accuracy": 40.0},
             {"attack": "BPDA", "label": "bpda, pgd10", "through": "the defense, straight-through", "accuracy": 0.0}]}}
    s = ReportSettings()
    raised = [f for f in masking_flags(r, s) if f.raised]
    assert [f.check for f in raised] == ["adaptive attacks are close to the non-adaptive one"]
    r["flags"] = [f.to_dict() for f in masking_flags(r, s)]
    text = render_markdown({"target": "t", "source": "s", "time": "now", "settings_text": "", "flags_raised": 1,
                            "parts": {"all": r}}, [])
    assert "| BPDA (bpda, pgd10) | the defense, straight-through | 0.0 |" in text
    del r["defense"]
    assert not any(f.raised for f in masking_flags(r, s))
