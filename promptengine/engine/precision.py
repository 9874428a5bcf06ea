"""Precision: fp32, bf16 autocast, or fp16 autocast with a gradient scaler; parameters stay fp32.

Attacks have their own precision (``ATTACK.TRAIN.PRECISION``, ``ATTACK.TEST.PRECISION``; fp32 by default whatever
the training precision): a confident model's input gradient underflows or changes sign under half-precision
autocast, which weakens PGD without any error (see docs/ATTACKS.md, "Precision").
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch

from ..errors import UserError

CHOICES = ("fp32", "bf16", "amp")


def resolve_precision(cfg, trainer_prec: str = "fp32", device: torch.device | None = None) -> str:
    """TRAIN.PRECISION wins; else the trainer's PREC. ``fp16`` (the field's default) means fp16 autocast
    here, because learnable tensors are never stored in half precision. A PREC of fp16/amp coming from a
    trainer YAML runs in fp32 on a CPU (fp16 autocast is slow there); ask for bf16 explicitly instead."""
    explicit = bool(cfg.TRAIN.PRECISION)
    prec = cfg.TRAIN.PRECISION or trainer_prec or "fp32"
    if prec == "fp16":
        prec = "amp"
    if prec not in CHOICES:
        raise UserError(f"precision must be one of fp32/bf16/amp (or fp16 = amp), got '{prec}'")
    if prec == "amp" and not explicit and device is not None and device.type == "cpu":
        print("Note: PREC fp16/amp from the trainer config runs as fp32 on the CPU (set TRAIN.PRECISION bf16 for speed)")
        prec = "fp32"
    return prec


def autocast_factory(precision: str, device: torch.device) -> Callable[[], ContextManager]:
    """A zero-argument factory of the autocast context (the attack core calls it per forward)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device):
    return torch.amp.GradScaler(device.type, enabled=precision == "amp")


def attack_precision(cfg, section: str) -> str:
    """``ATTACK.<section>.PRECISION`` checked (fp32 | bf16 | amp, fp16 = amp); a warning when it is not fp32."""
    raw = str(cfg.ATTACK[section].PRECISION).strip().lower()
    prec = "amp" if raw == "fp16" else raw
    if prec not in CHOICES:
        raise UserError(f"ATTACK.{section}.PRECISION must be fp32, bf16 or amp (fp16 = amp), got '{raw}'; "
                        "fp32 is the safe default for attacks")
    if prec != "fp32":
        print(f"Warning: ATTACK.{section}.PRECISION {raw}: the {section.lower()} attack runs under half-precision "
              "autocast; input gradients of confident models can underflow or flip sign there (weaker attacks)")
    return prec


def attack_autocast(cfg, section: str, device: torch.device) -> Callable[[], ContextManager]:
    """The autocast factory the ``section`` (TRAIN or TEST) attack runs its forwards under.

    fp32 *disables* autocast rather than adding nothing: the training attack is called inside the training step's
    autocast region, which would otherwise leak into the attack's forwards."""
    prec = attack_precision(cfg, section)
    if prec == "fp32":
        return lambda: torch.autocast(device_type=device.type, enabled=False)
    return autocast_factory(prec, device)
