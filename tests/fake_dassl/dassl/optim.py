"""``dassl.optim``: optimiser and LR-scheduler builders (the subset the tests use)."""

from __future__ import annotations

import torch
from torch import nn


def build_optimizer(model, optim_cfg, param_groups=None):
    params = param_groups if param_groups is not None else (
        model.parameters() if isinstance(model, nn.Module) else model)
    if optim_cfg.NAME == "sgd":
        return torch.optim.SGD(params, lr=optim_cfg.LR, momentum=optim_cfg.MOMENTUM,
                               weight_decay=optim_cfg.WEIGHT_DECAY)
    if optim_cfg.NAME == "adam":
        return torch.optim.Adam(params, lr=optim_cfg.LR, weight_decay=optim_cfg.WEIGHT_DECAY)
    raise ValueError(f"optim must be sgd or adam in the stand-in, got {optim_cfg.NAME}")


def build_lr_scheduler(optimizer, optim_cfg):
    if optim_cfg.LR_SCHEDULER == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(optim_cfg.MAX_EPOCH))
    if optim_cfg.LR_SCHEDULER == "single_step":
        step = optim_cfg.STEPSIZE[0] if optim_cfg.STEPSIZE[0] > 0 else optim_cfg.MAX_EPOCH
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=optim_cfg.GAMMA)
    raise ValueError(f"unsupported scheduler {optim_cfg.LR_SCHEDULER} in the stand-in")
