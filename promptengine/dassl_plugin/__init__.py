"""This toolbox's trainers inside an existing Dassl repository (Dassl installed from its repository).

In a CoOp-style ``train.py``, next to the repository's own trainer imports::

    import promptengine.dassl_plugin as capt_plugin     # registers CAPT, APT, FAP, AdvVP, AdvVLP, AdvMaPLe, ...

    def extend_cfg(cfg):
        ...                                             # the repository's own keys
        capt_plugin.extend_cfg(cfg)                     # ATTACK.* and our TRAINER.<NAME> subtrees (missing keys only)

Importing this module imports ``dassl``; nothing else in the toolbox does. Names the repository already registered
(its own CoOp, MaPLe, ...) are kept and ours skipped, with one note. Our methods are the package
``promptengine.methods``, so the repository's own ``trainers`` package is left alone. The Dassl symbols used are listed in
docs/DASSL_PLUGIN.md.
"""

from __future__ import annotations

from typing import Iterable, List, Optional

from dassl.engine import TRAINER_REGISTRY as DASSL_TRAINER_REGISTRY

from ..prompting import PromptTrainer
from ..registry import TRAINER_REGISTRY, builtin_methods
from .bridge import dassl_trainer
from .config import extend_cfg

__all__ = ["extend_cfg", "register"]


def register(names: Optional[Iterable[str]] = None) -> List[str]:
    """Register our prompt-learning trainers (all by default) in Dassl's TRAINER_REGISTRY; returns the names added."""
    builtin_methods()
    wanted = list(names) if names is not None else [
        n for n in TRAINER_REGISTRY.registered_names() if issubclass(TRAINER_REGISTRY.get(n), PromptTrainer)]
    added = []
    for name in wanted:
        method = TRAINER_REGISTRY.get(name)
        if name in DASSL_TRAINER_REGISTRY.registered_names():
            existing = DASSL_TRAINER_REGISTRY.get(name)
            if getattr(existing, "__module__", "") != dassl_trainer.__module__:
                print(f"Note: Dassl's TRAINER_REGISTRY already has '{name}' (the repository's own); ours is not registered")
            continue
        DASSL_TRAINER_REGISTRY.register(dassl_trainer(method))
        added.append(name)
    return added


register()
