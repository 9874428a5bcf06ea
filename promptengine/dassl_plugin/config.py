"""The user's Dassl cfg gets this toolbox's keys (``ATTACK.*``, trainer subtrees, engine keys the methods read).

Only missing keys are added: the user's values and their own trainers' subtrees are never changed. Call it from
the ``extend_cfg`` of a Dassl ``train.py``, before the YAMLs and options are merged (Dassl's pattern).
"""

from __future__ import annotations

import copy
from typing import Dict

from yacs.config import CfgNode as CN

from ..config.defaults import get_cfg_default
from ..config.domains import Domain, declared_domains
from ..config.merge import all_keys, extend_cfg_all_trainers
from ..registry import builtin_methods


def toolbox_defaults() -> CN:
    """Our defaults with every method's subtree."""
    builtin_methods()  # every method's extend_cfg is registered
    cfg = get_cfg_default()
    extend_cfg_all_trainers(cfg)
    return cfg


def plugin_domains() -> Dict[str, Domain]:
    """The declared domains (``promptengine.config.domains``) of the keys this toolbox adds to a Dassl cfg: attack
    keys and method subtrees. Dassl's own keys (``OPTIM.*``, ``INPUT.*``, ...) are read by Dassl's engine, with its
    own choices, and are left to it."""
    from dassl.config import get_cfg_default as dassl_defaults  # optional: the user's Dassl, only in a Dassl repo

    builtin_methods()
    dassl_keys = set(all_keys(dassl_defaults()))
    return {key: d for key, d in declared_domains().items() if key not in dassl_keys}


def add_missing(dst: CN, src: CN) -> None:
    for key, value in src.items():
        if key not in dst:
            dst[key] = copy.deepcopy(value)
        elif isinstance(value, CN) and isinstance(dst[key], CN):
            add_missing(dst[key], value)


def extend_cfg(cfg: CN) -> None:
    """Add the toolbox's missing keys to a Dassl cfg (not frozen yet)."""
    add_missing(cfg, toolbox_defaults())
