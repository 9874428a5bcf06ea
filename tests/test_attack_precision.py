"""Attacks run in fp32 by default whatever the training precision, because half-precision autocast corrupts the
input gradient of a confident model (CLIP's logit scale is 100): measured here through the attack core itself.

One PGD step of size alpha from the clean image (no random start, interior pixels) moves each pixel by
alpha * sign(gradient), so ``(x_adv - x) * 255 / alpha`` reads back the sign of the gradient the attack used.
"""

import pytest
import torch
from torch import nn

from promptengine.attacks import AttackSpec, attack
from promptengine.config.merge import build_cfg
from promptengine.engine.precision import attack_autocast
from promptengine.errors import UserError

CPU = torch.device("cpu")
SPEC = AttackSpec(eps=1 / 255, alpha=1 / 255, steps=1, random_start=False, keep="last")


class Confident(nn.Module):
    """A linear classifier with CLIP-like logit scale: top-2 margins of 0.7 to 98 logits on these images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3 * 8 * 8, 10)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(10, 3 * 8 * 8) * 10)  # = 0.5 * logit scale 20
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))


def setup():
    model = Confident().eval()
    x = 0.1 + 0.8 * torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def step_signs(model, x, y, autocast, outer=None) -> torch.Tensor:
    """sign of the input gradient the attack used, as -1/0/+1 per pixel; ``outer``: the training step's autocast."""
    if outer is None:
        x_adv = attack(model, x, y, SPEC, autocast=autocast)
    else:
        with outer():
            x_adv = attack(model, x, y, SPEC, autocast=autocast)
    return torch.round((x_adv - x) / SPEC.alpha)


def cfg_with(section: str, precision: str = ""):
    return build_cfg(opts=[f"ATTACK.{section}.PRECISION", precision] if precision else [])


def test_default_attack_precision_is_fp32_even_inside_a_bf16_training_step():
    model, x, y = setup()
    reference = step_signs(model, x, y, None)  # plain fp32, no autocast anywhere
    assert (reference != 0).all()  # fp32: every pixel gets a step
    bf16_step = lambda: torch.autocast("cpu", torch.bfloat16)  # TRAIN.PRECISION bf16 wraps the whole step
    for section in ("TRAIN", "TEST"):
        cfg = cfg_with(section)
        assert cfg.ATTACK[section].PRECISION == "fp32"
        assert torch.equal(step_signs(model, x, y, attack_autocast(cfg, section, CPU), outer=bf16_step), reference)
    # the step's autocast does not leak into an attack given no autocast either: the attack core shields itself
    assert torch.equal(step_signs(model, x, y, None, outer=bf16_step), reference)
    # and asking for bf16 changes the steps (the comparison can fail)
    bf16 = attack_autocast(cfg_with("TRAIN", "bf16"), "TRAIN", CPU)
    assert not torch.equal(step_signs(model, x, y, bf16, outer=bf16_step), reference)


def test_bf16_attack_gradient_loses_a_sample_that_fp32_attacks():
    model, x, y = setup()
    reference = step_signs(model, x, y, None)
    bf16 = step_signs(model, x, y, attack_autocast(cfg_with("TRAIN", "bf16"), "TRAIN", CPU))
    zero_rows = (bf16.flatten(1).abs().amax(1) == 0).sum().item()
    # measured: the most confident image (margin 98 logits) gets an all-zero bf16 gradient (fp32 steps every pixel
    # of it), and one more pixel steps the wrong way
    assert zero_rows >= 1 and (bf16 * reference < 0).any(), zero_rows


def test_fp16_attack_gradient_underflows_where_fp32_does_not():
    model, x, y = setup()
    try:
        fp16 = step_signs(model, x, y, attack_autocast(cfg_with("TEST", "fp16"), "TEST", CPU))
    except RuntimeError as exc:  # an old CPU autocast without fp16 kernels
        pytest.skip(f"no fp16 autocast on this CPU build: {exc}")
    zero_rows = (fp16.flatten(1).abs().amax(1) == 0).float().mean().item()
    assert zero_rows >= 4 / 16, zero_rows  # measured: 6 of 16 images get an all-zero gradient (fp32: none)


def test_attack_precision_warns_and_rejects_unknown_values(capsys):
    attack_autocast(cfg_with("TEST", "bf16"), "TEST", CPU)
    assert "Warning: ATTACK.TEST.PRECISION bf16" in capsys.readouterr().out
    attack_autocast(cfg_with("TRAIN"), "TRAIN", CPU)
    assert "Warning" not in capsys.readouterr().out
    refused = "ATTACK.TRAIN.PRECISION.*(must be fp32, bf16 or amp|must be one of .fp32., .bf16., .amp.)"
    with pytest.raises(UserError, match=refused):  # by the config domains, or by the attack's own check
        attack_autocast(cfg_with("TRAIN", "fp8"), "TRAIN", CPU)
