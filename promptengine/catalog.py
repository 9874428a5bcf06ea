"""The registered methods as one list, for the protocol runner, the tests and the docs checks.

A trainer class names its protocol scripts and default config itself (``script_folder``, ``default_config``), so
adding a method never means editing a list elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

from .builtin import builtin_package, import_plugins
from .registry import TRAINER_REGISTRY
from .resources import configs_root


@dataclass(frozen=True)
class Method:
    trainer: str  # registered class name (--trainer)
    script_folder: str  # scripts/<folder>/*.sh; "" when the method has no protocol scripts
    default_config: str  # <config_dir>/<default_config>.yaml used by its scripts
    config_dir: Path  # its configs: configs/trainers/<trainer>/, or the folder its class names (a plug-in's)
    training_free: bool = False  # nothing to train: the protocols only evaluate it


def registered_methods(with_scripts: bool = False) -> List[Method]:
    """Every registered trainer, in registration order (only those with protocol scripts when ``with_scripts``)."""
    builtin_package("trainers")  # registers the built-in trainers (checkout or wheel)
    import_plugins()  # and the user's own ($PROMPTENGINE_PLUGINS)
    out = []
    for name in TRAINER_REGISTRY.registered_names():
        cls = TRAINER_REGISTRY.get(name)
        own = vars(cls)  # a subclass does not inherit its parent's scripts or configs
        config_dir = Path(own["config_dir"]) if own.get("config_dir") else configs_root() / "trainers" / name
        method = Method(name, own.get("script_folder", ""), own.get("default_config", ""), config_dir,
                        bool(getattr(cls, "training_free", False)))
        if method.script_folder or not with_scripts:
            out.append(method)
    return out
