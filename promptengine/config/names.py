"""Trainer and dataset names checked up front, so ``--print-config`` never prints a config that cannot run."""

from __future__ import annotations

from yacs.config import CfgNode as CN

from ..registry import DATASET_REGISTRY, TRAINER_REGISTRY


def check_names(cfg: CN) -> None:
    """One-line UserError (with a 'did you mean') for an unknown TRAINER.NAME or DATASET.NAME; empty names pass."""
    if cfg.TRAINER.NAME:
        TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    if cfg.DATASET.NAME:
        DATASET_REGISTRY.get(cfg.DATASET.NAME)
