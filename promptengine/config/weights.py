"""The vision-tower weights a run loads over CLIP's (every method): ``MODEL.BACKBONE.PATH``, or with
``MODEL.BACKBONE.ROBUST`` the robust (TeCoA) file at APT's default location."""

from __future__ import annotations

import os

from ..errors import UserError


def robust_weights_path(cfg) -> str:
    """The vision-tower weights to load over CLIP's: MODEL.BACKBONE.PATH, else (ROBUST True) APT's file
    ``backbone/{vitb32|rn50}_eps{int(eps)}.pth.tar`` (relative to the working directory, as APT), else ''."""
    bcfg = cfg.MODEL.BACKBONE
    if bcfg.PATH:
        return bcfg.PATH
    if not bcfg.ROBUST:
        return ""
    arch = "vitb32" if bcfg.NAME == "ViT-B/32" else "rn50"
    path = os.path.join("backbone", f"{arch}_eps{int(cfg.ATTACK.TRAIN.EPS)}.pth.tar")
    if not os.path.isfile(path):
        raise UserError(f"MODEL.BACKBONE.ROBUST True (APT's default) needs the robust (TeCoA) vision weights, not "
                        f"found at {path} (APT's location): put the file there, set MODEL.BACKBONE.PATH, or pass "
                        "MODEL.BACKBONE.ROBUST False for the OpenAI weights")
    return path
