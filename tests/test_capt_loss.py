"""CAPT's loss pinned on hand-computed tiny examples: each KL term, every alpha option, lambda, detaching."""

import math
from types import SimpleNamespace

import pytest
import torch

from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from promptengine.methods.capt import CAPT
from promptengine.methods.capt_loss import CAPTLossConfig, alpha_cons, capt_loss, consistency, kl

Y = torch.tensor([0, 1])
CLEAN = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
ADV = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
FROZEN = torch.tensor([[1.0, 0.0], [0.0, 3.0]])


def softmax2(a, b):
    e = [math.exp(a), math.exp(b)]
    return [v / sum(e) for v in e]


def kl_hand(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_kl_per_sample_by_hand():
    got = kl(CLEAN, ADV)
    expected = [kl_hand(softmax2(2, 0), softmax2(0, 0)), kl_hand(softmax2(0, 1), softmax2(1, 0))]
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(consistency(CLEAN, ADV, "adv_target"), kl(ADV, CLEAN))
    assert torch.allclose(kl(CLEAN, CLEAN), torch.zeros(2), atol=1e-7)


def hand_terms():
    tr = [kl_hand(softmax2(*CLEAN[i].tolist()), softmax2(*ADV[i].tolist())) for i in range(2)]
    frz = [kl_hand(softmax2(*FROZEN[i].tolist()), softmax2(*ADV[i].tolist())) for i in range(2)]
    ce = -(math.log(softmax2(2, 0)[0]) + math.log(softmax2(0, 1)[1])) / 2
    return tr, frz, ce


@pytest.mark.parametrize("lam,alpha", [(1.5, 0.0), (1.5, 1.0), (2.0, 0.25)])
def test_total_with_fixed_alpha_and_lambda(lam, alpha):
    tr, frz, ce = hand_terms()
    cfg = CAPTLossConfig(lam=lam, alpha_mode="fixed", alpha_fixed=alpha)
    total, terms = capt_loss(cfg, Y, CLEAN, ADV, FROZEN)
    expected = ce + lam * sum((1 - alpha) * t + alpha * f for t, f in zip(tr, frz)) / 2
    assert total.item() == pytest.approx(expected, abs=1e-6)
    assert terms["cons_train"].item() == pytest.approx(sum(tr) / 2, abs=1e-6)
    assert terms["cons_frz"].item() == pytest.approx(sum(frz) / 2, abs=1e-6)
    assert terms["ce"].item() == pytest.approx(ce, abs=1e-6)


def test_alpha_confidence_per_sample_and_batch():
    tr, frz, _ = hand_terms()
    p_frz = [softmax2(1, 0)[0], softmax2(0, 3)[1]]
    p_tr = [softmax2(2, 0)[0], softmax2(0, 1)[1]]
    expected = [f / (f + t) for f, t in zip(p_frz, p_tr)]
    a = alpha_cons(CAPTLossConfig(), Y, CLEAN, FROZEN, torch.tensor(tr), torch.tensor(frz))
    assert torch.allclose(a, torch.tensor(expected), atol=1e-6)
    b = alpha_cons(CAPTLossConfig(alpha_reduction="batch"), Y, CLEAN, FROZEN, torch.tensor(tr), torch.tensor(frz))
    assert torch.allclose(b, torch.full((2,), sum(expected) / 2), atol=1e-6)


def test_alpha_loss_ratio_and_agreement():
    tr, frz, _ = hand_terms()
    a = alpha_cons(CAPTLossConfig(alpha_mode="loss_ratio"), Y, CLEAN, FROZEN, torch.tensor(tr), torch.tensor(frz))
    assert torch.allclose(a, torch.tensor([f / (f + t) for f, t in zip(frz, tr)]), atol=1e-6)
    g = alpha_cons(CAPTLossConfig(alpha_mode="agreement"), Y, CLEAN, FROZEN, torch.tensor(tr), torch.tensor(frz))
    for i in range(2):
        p, q = softmax2(*CLEAN[i].tolist()), softmax2(*FROZEN[i].tolist())
        cos = sum(x * y for x, y in zip(p, q)) / math.sqrt(sum(x * x for x in p) * sum(y * y for y in q))
        assert g[i].item() == pytest.approx(cos, abs=1e-6)


def test_alpha_is_detached_by_default_and_gradients_flow_otherwise():
    clean = CLEAN.clone().requires_grad_(True)
    adv = ADV.clone().requires_grad_(True)
    for detach in (True, False):
        cfg = CAPTLossConfig(alpha_mode="confidence", alpha_detach=detach)
        _, terms = capt_loss(cfg, Y, clean, adv, FROZEN)
        assert terms["alpha"].requires_grad is (not detach)


def test_frozen_branch_never_gets_gradients_and_clean_detach_option():
    frozen = FROZEN.clone().requires_grad_(True)
    clean = CLEAN.clone().requires_grad_(True)
    cfg = CAPTLossConfig(alpha_mode="fixed", alpha_fixed=0.5, lam=1.0)
    total, _ = capt_loss(cfg, Y, clean, ADV.clone().requires_grad_(True), frozen)
    total.backward()
    assert frozen.grad is None or torch.count_nonzero(frozen.grad) == 0
    g_full = clean.grad.clone()
    clean.grad = None
    total, _ = capt_loss(CAPTLossConfig(alpha_mode="fixed", alpha_fixed=0.5, lam=1.0, clean_detach=True), Y, clean,
                         ADV, FROZEN)
    total.backward()
    assert not torch.allclose(g_full, clean.grad)  # the KL no longer pulls the clean branch


@pytest.mark.parametrize("key,value", [("ALPHA_MODE", "'magic'"), ("KL_DIRECTION", "'both'"),
                                       ("ALPHA_REDUCTION", "'x'"), ("ALPHA_FIXED", "1.5"), ("LAMBDA", "-1.0")])
def test_bad_options_are_user_errors(key, value):
    """The objective's settings are checked once, by CAPT's config domains, when the config is built."""
    with pytest.raises(UserError, match=rf"^TRAINER\.CAPT\.{key} = .* is not allowed: it must be .*; set "):
        build_cfg(opts=[f"TRAINER.CAPT.{key}", value])


def test_trainer_defaults_are_the_objectives_defaults():
    """TRAINER.CAPT's loss keys take their defaults from CAPTLossConfig (one default per key)."""
    assert CAPT.loss_cfg(SimpleNamespace(cfg=build_cfg())) == CAPTLossConfig()
