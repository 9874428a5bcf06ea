"""The user's Dassl cfg gets this toolbox's keys (``ATTACK.*``, trainer subtrees, engine keys the methods read).

Only missing keys are added: the user's values and their own trainers' subtrees are never changed. Call it from
the ``extend_cfg`` of a Dassl ``train.py``, before the YAMLs and options are merged (Dassl's pattern).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from types import ModuleType

from yacs.config import CfgNode as CN

from ..builtin import CHECKOUT, REPO, builtin_package
from ..config.defaults import get_cfg_default
from ..config.merge import extend_cfg_all_trainers

METHODS_ALIAS = "promptengine_methods"  # our trainers/ package when a Dassl repository's own trainers/ shadows it


def methods_package() -> ModuleType:
    """This toolbox's methods package, imported once (every method registers itself in our registry).

    An installed wheel ships it as ``promptengine.methods``. In a checkout it is the top-level ``trainers`` folder,
    which a CoOp-style repository's own ``trainers`` package shadows: ours is then loaded from its path under
    another module name, and theirs is left alone."""
    if not CHECKOUT:
        return builtin_package("trainers")
    path = REPO / "trainers"
    loaded = sys.modules.get("trainers")
    if loaded is not None and os.path.realpath(list(loaded.__path__)[0]) == os.path.realpath(path):
        return loaded
    if METHODS_ALIAS in sys.modules:
        return sys.modules[METHODS_ALIAS]
    spec = importlib.util.spec_from_file_location(METHODS_ALIAS, path / "__init__.py",
                                                  submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[METHODS_ALIAS] = module
    spec.loader.exec_module(module)
    return module


def toolbox_defaults() -> CN:
    """Our defaults with every method's subtree."""
    methods_package()
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
