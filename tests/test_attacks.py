"""Unit tests of the attack core: specs, config mapping, projections, losses, AutoAttack wrapper."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
from torch import nn

from promptengine.attacks import AttackSpec, attack, parse_spec, train_spec
from promptengine.attacks import test_specs as specs_for_testing  # aliased: pytest would collect test_*
from promptengine.attacks.losses import ce_loss, cw_margin, kl_to_clean, per_sample_loss
from promptengine.config.merge import build_cfg
from promptengine.errors import UserError


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


class Affine(nn.Module):
    """logits = W x + b on flattened [0, 1] images; gradients are known in closed form."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]) if bias is None else bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.t() + self.bias


# ---------------------------------------------------------------------- spec strings
def test_parse_pgd_spec_units_and_fields():
    s = parse_spec("pgd:steps=100,eps=4,alpha=1,norm=linf,loss=ce,restarts=2")
    assert (s.method, s.norm, s.steps, s.restarts, s.loss, s.keep) == ("pgd", "linf", 100, 2, "ce", "fooled")
    assert s.eps == pytest.approx(4 / 255) and s.alpha == pytest.approx(1 / 255)


def test_parse_defaults_alpha_quarter_eps_and_cw_kind():
    s = parse_spec("cw:steps=30,eps=1")
    assert s.loss == "cw" and s.steps == 30 and s.alpha == pytest.approx(0.25 / 255)
    assert parse_spec(" pgd : eps = 8 , rs = false ").random_start is False


def test_parse_autoattack_specs():
    s = parse_spec("aa:version=standard,eps=4")
    assert s.method == "autoattack" and s.aa_version == "standard"
    assert s.aa_effective_attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
    c = parse_spec("aa:attacks=apgd-ce+apgd-dlr,eps=1")
    assert c.aa_version == "custom" and c.aa_attacks == ("apgd-ce", "apgd-dlr")
    assert parse_spec("autoattack:attacks=apgd-ce,iters=5,eps=1").aa_iters == 5


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("fgsm:eps=4", "unknown attack"),
        ("pgd:eps=-1", "eps"),
        ("pgd:steps=-3", "steps"),
        ("pgd:alpha=-1", "alpha"),
        ("pgd:norm=l1", "norm"),
        ("pgd:loss=dlr", "loss"),
        ("pgd:steps=2.5", "integer"),
        ("pgd:eps=four", "number"),
        ("pgd:restarts=0", "restarts"),
        ("pgd:restarts=2,rs=false", "random start"),
        ("pgd:bogus=1", "unknown key 'bogus'"),
        ("pgd:eps=1,eps=2", "twice"),
        ("pgd:eps", "KEY=VALUE"),
        ("pgd:eps=300", "exceeds"),
        ("pgd:keep=best", "keep"),
        ("cw:loss=ce", "CW"),
        ("aa:version=fancy", "version"),
        ("aa:attacks=apgd-ce+pgd", "attacks"),
        ("aa:version=standard,attacks=apgd-ce", "version=custom"),
        ("aa:version=custom", "attacks="),
        ("aa:alpha=1", "unknown key 'alpha'"),
    ],
)
def test_bad_spec_strings_give_one_line_user_errors(text, words):
    with pytest.raises(UserError) as exc:
        parse_spec(text)
    assert words in one_line(exc)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(eps=-0.1), "AttackSpec.eps"),
        (dict(alpha=-1.0), "AttackSpec.alpha"),
        (dict(steps=-1), "AttackSpec.steps"),
        (dict(norm="l3"), "AttackSpec.norm"),
        (dict(loss="hinge"), "AttackSpec.loss"),
        (dict(method="fgsm"), "AttackSpec.method"),
        (dict(eps=4.0), "4/255"),  # a /255 value passed where [0, 1] units are expected
        (dict(eps=float("nan")), "finite"),
        (dict(random_start="yes"), "random_start"),
    ],
)
def test_bad_attack_spec_fields(kwargs, words):
    with pytest.raises(UserError) as exc:
        AttackSpec(**kwargs)
    assert words in one_line(exc)


def test_spec_normalises_aliases_and_is_hashable():
    s = AttackSpec(method="AA", norm="Linf", loss="trades", aa_attacks=["apgd-ce"], aa_version="custom")
    assert (s.method, s.norm, s.loss, s.aa_attacks) == ("autoattack", "linf", "kl", ("apgd-ce",))
    assert len({s, dataclasses.replace(s)}) == 1


def test_labels_and_records():
    assert parse_spec("pgd:steps=100,eps=1").label() == "pgd100, linf, eps=1/255, alpha=0.25/255"
    assert parse_spec("pgd:steps=10,eps=128,norm=l2,loss=kl").label() == "pgd10-kl, l2, eps=128/255, alpha=32/255"
    assert parse_spec("aa:version=standard,eps=4").label() == "autoattack-standard, linf, eps=4/255"
    assert parse_spec("aa:attacks=apgd-ce+apgd-dlr,eps=1,iters=5").label() == (
        "autoattack-custom(apgd-ce+apgd-dlr), linf, eps=1/255, iters=5")
    assert parse_spec("pgd:steps=10,eps=4,alpha=2.6667,restarts=3,seed=1").label() == (
        "pgd10, linf, eps=4/255, alpha=2.667/255, restarts=3")
    d = parse_spec("pgd:steps=100,eps=4").to_dict()
    assert d == {"method": "pgd", "norm": "linf", "eps": 4 / 255, "alpha": 1 / 255, "steps": 100, "restarts": 1,
                 "random_start": True, "loss": "ce", "keep": "fooled", "seed": 0}
    # records of the same attack at two budgets differ only in eps and alpha (the reporting's eps-curve families)
    other = parse_spec("pgd:steps=100,eps=8").to_dict()
    assert {k for k in d if d[k] != other[k]} == {"eps", "alpha"}
    aa = parse_spec("aa:eps=4").to_dict()
    assert aa["aa_attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"] and "alpha" not in aa


# ---------------------------------------------------------------------- config mapping
def test_config_defaults_give_no_attacks():
    cfg = build_cfg()
    assert train_spec(cfg) is None and specs_for_testing(cfg) == []


def test_default_alpha_train_two_thirds_test_quarter():
    cfg = build_cfg(opts=["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.EPS", "4.0",
                          "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.EPS", "4.0", "ATTACK.TEST.STEPS", "100"])
    tr = train_spec(cfg)
    assert tr.steps == 3 and tr.alpha == pytest.approx(2 / 3 * 4 / 255) and tr.keep == "last"
    (te,) = specs_for_testing(cfg)
    assert te.steps == 100 and te.alpha == pytest.approx(1 / 255) and te.keep == "fooled"
    explicit = build_cfg(opts=["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.ALPHA", "0.5"])
    assert train_spec(explicit).alpha == pytest.approx(0.5 / 255)


def test_steps_zero_turns_attacks_off_and_autoattack_needs_no_steps():
    cfg = build_cfg(opts=["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "0", "ATTACK.TEST.ENABLED", "True"])
    assert train_spec(cfg) is None and specs_for_testing(cfg) == []
    aa = build_cfg(opts=["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.METHOD", "autoattack", "ATTACK.TEST.EPS", "4.0"])
    (spec,) = specs_for_testing(aa)
    assert spec.method == "autoattack" and spec.aa_iters == 0 and spec.eps == pytest.approx(4 / 255)


def test_fap_keys_drive_train_and_test_attacks():
    cfg = build_cfg(opts=["ATTACK.PGD.EPS", "4.0", "ATTACK.PGD.ALPHA", "0.5", "ATTACK.PGD.TRAIN_ITER", "2",
                          "ATTACK.PGD.TEST_ITER", "100", "ATTACK.PGD.ADV_TERM", "cos"])
    assert cfg.ATTACK.PGD.USE
    tr = train_spec(cfg)
    assert (tr.steps, tr.loss, tr.keep) == (2, "kl", "last")
    assert tr.eps == pytest.approx(4 / 255) and tr.alpha == pytest.approx(0.5 / 255)
    (te,) = specs_for_testing(cfg)
    assert (te.steps, te.loss, te.keep) == (100, "ce", "fooled")
    assert te.eps == pytest.approx(4 / 255) and te.alpha == pytest.approx(0.5 / 255)
    ce = build_cfg(opts=["ATTACK.PGD.ADV_TERM", "ce"])
    assert train_spec(ce).loss == "ce" and train_spec(ce).eps == pytest.approx(1 / 255)


def test_extra_test_attack_strings_are_appended_without_duplicates():
    cfg = build_cfg(opts=["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "100", "ATTACK.TEST.EPS", "4.0",
                          "ATTACK.TEST.ATTACKS", "('pgd:steps=100,eps=4', 'cw:steps=30,eps=4', 'aa:eps=4')"])
    labels = [s.label() for s in specs_for_testing(cfg)]
    assert labels == ["pgd100, linf, eps=4/255, alpha=1/255", "pgd30-cw, linf, eps=4/255, alpha=1/255",
                      "autoattack-standard, linf, eps=4/255"]


@pytest.mark.parametrize(
    "opts, words",
    [
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.EPS", "-1.0"], "ATTACK.TRAIN.EPS"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.ALPHA", "-2.0"], "ATTACK.TRAIN.ALPHA"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "-2"], "ATTACK.TRAIN.STEPS"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.NORM", "l1"], "ATTACK.TRAIN.NORM"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.LOSS", "dlr"], "ATTACK.TRAIN.LOSS"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.METHOD", "fgsm"], "ATTACK.TRAIN.METHOD"),
        (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.METHOD", "autoattack"], "evaluation attack"),
        (["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "10", "ATTACK.TEST.RESTARTS", "0"],
         "ATTACK.TEST.RESTARTS"),
        (["ATTACK.PGD.TRAIN_ITER", "-1"], "ATTACK.PGD.TRAIN_ITER"),
        (["ATTACK.PGD.EPS", "-4.0"], "ATTACK.PGD.EPS"),
        (["ATTACK.TEST.ATTACKS", "('pgd:eps=-4',)"], "ATTACK.TEST.ATTACKS[0]"),
    ],
)
def test_bad_config_values_name_the_key(opts, words):
    with pytest.raises(UserError) as exc:  # from the config's domain check, or from building the attack specs
        cfg = build_cfg(opts=opts)
        train_spec(cfg)
        specs_for_testing(cfg)
    assert words in one_line(exc)


# ---------------------------------------------------------------------- losses
def test_cw_margin_hand_computed():
    z = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    assert cw_margin(z, torch.tensor([0, 1])).tolist() == [2.0, -1.0]


def test_kl_to_clean_hand_computed():
    clean = torch.log_softmax(torch.tensor([[0.0, 0.0]]), dim=1)  # p = (1/2, 1/2)
    adv = torch.tensor([[math.log(3.0), 0.0]])  # q = (3/4, 1/4)
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert kl_to_clean(adv, clean).item() == pytest.approx(expected, abs=1e-6)
    assert kl_to_clean(clean, clean).item() == pytest.approx(0.0, abs=1e-7)


def test_per_sample_losses_do_not_depend_on_the_batch():
    z = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    assert torch.allclose(per_sample_loss("ce", z, y)[:2], ce_loss(z[:2], y[:2]))
    with pytest.raises(ValueError):
        per_sample_loss("kl", z, y)


# ---------------------------------------------------------------------- projections and steps
def linear_two_class(d: int) -> Affine:
    w = torch.linspace(-1, 1, d).repeat(2, 1)
    w[1] = -w[1]
    return Affine(w)


def test_linf_step_is_sign_gradient_clipped_to_ball_and_box():
    model = linear_two_class(3 * 2 * 2)
    x = torch.full((2, 3, 2, 2), 0.5)
    x[1] = 0.999  # near the top of the box
    y = torch.zeros(2, dtype=torch.long)
    eps = 4 / 255
    one = AttackSpec(eps=eps, alpha=1 / 255, steps=1, random_start=False, keep="last")
    x_adv = attack(model, x, y, one)
    g_sign = -model.weight[0].detach().sign().view(3, 2, 2)  # d CE / dx for class 0 points along w1 - w0 = -2 w0
    assert torch.allclose(x_adv[0] - x[0], g_sign / 255, atol=1e-7)
    big = dataclasses.replace(one, alpha=10 / 255)
    x_adv = attack(model, x, y, big)
    assert torch.allclose((x_adv[0] - x[0]).abs()[g_sign != 0], torch.tensor(eps), atol=1e-7)
    assert x_adv.max() <= 1.0 and (x_adv[1] - x[1]).max() <= 1 - 0.999 + 1e-7


def test_l2_step_and_projection():
    model = linear_two_class(3 * 4 * 4)
    x = torch.full((1, 3, 4, 4), 0.5)
    y = torch.zeros(1, dtype=torch.long)
    spec = AttackSpec(norm="l2", eps=0.5, alpha=0.2, steps=1, random_start=False, keep="last")
    d = attack(model, x, y, spec) - x
    g = -model.weight[0].detach().view_as(d)  # gradient direction of CE for class 0
    assert d.norm().item() == pytest.approx(0.2, abs=1e-6)
    assert torch.allclose(d / d.norm(), g / g.norm(), atol=1e-6)
    far = dataclasses.replace(spec, alpha=3.0, steps=2)
    assert (attack(model, x, y, far) - x).norm().item() == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.3)])
def test_random_start_stays_in_ball_and_box_and_is_seeded(norm, eps):
    model = linear_two_class(3 * 8 * 8)
    x = torch.rand(5, 3, 8, 8)
    x[0] = 0.0
    y = torch.zeros(5, dtype=torch.long)
    spec = AttackSpec(norm=norm, eps=eps, alpha=0.0, steps=0, keep="last")
    a, b = attack(model, x, y, spec), attack(model, x, y, spec)
    assert torch.equal(a, b) and not torch.equal(a, x)
    d = (a - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all() and a.min() >= 0 and a.max() <= 1
    other = attack(model, x, y, dataclasses.replace(spec, seed=1))
    assert not torch.equal(a, other)
    ids = torch.arange(10, 15)
    assert torch.equal(attack(model, x[2:], y[2:], spec, sample_ids=ids[2:]), attack(model, x, y, spec, sample_ids=ids)[2:])


def test_first_fooled_iterate_is_kept_and_clean_errors_return_the_clean_image():
    model = linear_two_class(3 * 2 * 2)
    x = torch.full((2, 3, 2, 2), 0.5)
    y = torch.tensor([0, 1])
    with torch.no_grad():
        model.bias.copy_(torch.tensor([0.02, 0.0]))  # sample 0 correct with a small margin, sample 1 wrong
    spec = AttackSpec(eps=16 / 255, alpha=1 / 255, steps=50, random_start=False)
    x_adv = attack(model, x, y, spec)
    assert torch.equal(x_adv[1], x[1])
    fooled_at = (x_adv[0] - x[0]).abs().max().item() * 255
    assert model(x_adv).argmax(1)[0] == 1 and fooled_at < 16 - 0.5  # stopped at the first fooling iterate


def test_kl_attack_moves_away_from_the_clean_prediction():
    torch.manual_seed(0)
    model = Affine(torch.randn(4, 48) * 3)
    x = torch.rand(3, 3, 4, 4)
    y = torch.zeros(3, dtype=torch.long)
    spec = AttackSpec(loss="kl", eps=8 / 255, alpha=2 / 255, steps=5)
    clean = model(x).detach()
    x_adv = attack(model, x, y, spec, clean_logits=clean)
    kl = kl_to_clean(model(x_adv), torch.log_softmax(clean, 1))
    start = attack(model, x, y, dataclasses.replace(spec, steps=0), clean_logits=clean)  # the random start alone
    kl_start = kl_to_clean(model(start), torch.log_softmax(clean, 1))
    # the ascent, not the random start, moves the prediction: measured 27x to 770x the start's KL per sample
    assert (kl > 10 * kl_start).all() and (kl_start > 0).all(), (kl, kl_start)
    assert torch.equal(x_adv, attack(model, x, y, spec))  # clean logits computed internally when not given


def test_attack_works_inside_no_grad_and_inference_mode():
    model = linear_two_class(12)
    x = torch.rand(2, 3, 2, 2)
    y = torch.zeros(2, dtype=torch.long)
    spec = AttackSpec(eps=4 / 255, alpha=1 / 255, steps=2, keep="last")
    ref = attack(model, x, y, spec)
    with torch.no_grad():
        assert torch.equal(attack(model, x, y, spec), ref)
    with torch.inference_mode():
        x_inf = x.clone()
        assert torch.equal(attack(model, x_inf, y, spec), ref)
        kl = dataclasses.replace(spec, loss="kl")
        assert torch.equal(attack(model, x_inf, y, kl, clean_logits=model(x_inf)), attack(model, x, y, kl))


def test_autocast_factory_is_used_and_inputs_stay_fp32():
    model = linear_two_class(12)
    seen = []

    def forward(inp):
        seen.append((inp.dtype, torch.is_autocast_enabled("cpu")))
        return model(inp)

    x, y = torch.rand(2, 3, 2, 2), torch.zeros(2, dtype=torch.long)
    out = attack(forward, x, y, AttackSpec(eps=4 / 255, alpha=1 / 255, steps=2),
                 autocast=lambda: torch.autocast("cpu", torch.bfloat16))
    assert out.dtype == torch.float32 and seen and all(s == (torch.float32, True) for s in seen)


def test_input_validation():
    model = linear_two_class(12)
    y = torch.zeros(2, dtype=torch.long)
    spec = AttackSpec()
    with pytest.raises(UserError, match=r"\[0, 1\] images"):
        attack(model, torch.rand(2, 3, 2, 2) * 2 - 0.5, y, spec)
    with pytest.raises(UserError, match="labels"):
        attack(model, torch.rand(2, 3, 2, 2), torch.zeros(3, dtype=torch.long), spec)
    with pytest.raises(UserError, match=r"logits of shape \(B, K\)"):
        attack(lambda inp: model(inp).sum(), torch.rand(2, 3, 2, 2), y, spec)
    with pytest.raises(TypeError):
        attack(model, torch.rand(2, 3, 2, 2), y, "pgd:steps=10")
    assert attack(model, torch.rand(0, 3, 2, 2), y[:0], spec).shape == (0, 3, 2, 2)


def test_global_rng_is_not_consumed():
    model = linear_two_class(12)
    x = torch.rand(2, 3, 2, 2)
    state = torch.random.get_rng_state()
    attack(model, x, torch.zeros(2, dtype=torch.long), AttackSpec(steps=2, restarts=2))
    assert torch.equal(state, torch.random.get_rng_state())


# ---------------------------------------------------------------------- AutoAttack
class TinyNet(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, classes))

    def forward(self, x):
        return self.body(x)


def test_autoattack_smoke_apgd_ce():
    pytest.importorskip("pyautoattack")
    model = TinyNet(5)
    x = torch.rand(4, 3, 8, 8)
    y = model(x).argmax(1).detach()
    model.train()
    state = torch.random.get_rng_state()
    spec = parse_spec("aa:attacks=apgd-ce,eps=8,iters=5")
    x_adv = attack(model, x, y, spec)
    assert model.training and torch.equal(state, torch.random.get_rng_state())
    assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    model.eval()
    assert (model(x_adv).argmax(1) == y).sum() < 4


def test_autoattack_needs_four_classes_for_targeted_dlr():
    pytest.importorskip("pyautoattack")
    model = TinyNet(3)
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(UserError) as exc:
        attack(model, x, torch.zeros(2, dtype=torch.long), parse_spec("aa:version=standard,eps=4"))
    assert ">= 4 classes" in one_line(exc)


def test_autoattack_missing_package_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyautoattack", None)
    with pytest.raises(UserError) as exc:
        attack(TinyNet(5), torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), parse_spec("aa:eps=4"))
    assert "pip install pyautoattack==0.2.0" in one_line(exc)
