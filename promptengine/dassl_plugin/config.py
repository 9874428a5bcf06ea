"""The user's Dassl cfg gets this toolbox's keys (``ATTACK.*``, trainer subtrees, engine keys the methods read).

Only missing keys are added: the user's values and their own trainers' subtrees are never changed. Call it from
the ``extend_cfg`` of a Dassl ``train.py``, before the YAMLs and options are merged (Dassl's pattern).
"""

from __future__ import annotations

import copy

from yacs.config import CfgNode as CN

from ..registry import builtin_methods


def toolbox_defaults() -> CN:
    """Our defaults with every method's subtree."""
    from ..config.defaults import get_cfg_default
    from ..config.merge import extend_cfg_all_trainers

    builtin_methods()  # every method's extend_cfg is registered
    cfg = get_cfg_default()
    extend_cfg_all_trainers(cfg)
    return cfg


def add_missing(dst: CN, src: CN) -> None:
    for key, value in src.items():
        if key not in dst:
            dst[key] = copy.deepcopy(value)
        elif isinstance(value, CN) and isinstance(dst[key], CN):
            add_missing(dst[key], value)


def extend_cfg(cfg: CN) -> None:
    """Add the toolbox's missing keys to a Dassl cfg (not frozen yet)."""
    add_missing(cfg, toolbox_defaults())
