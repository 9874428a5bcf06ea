"""The toolbox's own methods (``trainers``) and dataset loaders (``datasets``), from a checkout or a wheel.

In a checkout they are the top-level packages next to ``promptengine/`` (``python train.py`` from the repository, as
in CoOp). An installed wheel ships the same folders as ``promptengine.methods`` and ``promptengine.benchmarks``, so
nothing named ``datasets`` is installed beside other libraries of that name.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from .errors import UserError

REPO = Path(__file__).resolve().parents[1]
CHECKOUT = (REPO / "trainers" / "__init__.py").is_file() and (REPO / "datasets" / "__init__.py").is_file()
PACKAGES = {"trainers": "promptengine.methods", "datasets": "promptengine.benchmarks"}
#: modules of the user's own trainers and dataset loaders, imported after the built-ins (docs/METHODS.md)
PLUGINS_VARIABLE = "PROMPTENGINE_PLUGINS"
#: where the protocol scripts (``scripts/``) and tools (``tools/``) live: the checkout, or their copy in the wheel
HOME = REPO if CHECKOUT else Path(__file__).resolve().parent / "_home"


def builtin_package(name: str) -> ModuleType:
    """``trainers`` or ``datasets``: imported (which registers every trainer or loader) and returned."""
    if CHECKOUT:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        return importlib.import_module(name)
    return importlib.import_module(PACKAGES[name])


def import_plugins() -> None:
    """Import the modules named in $PROMPTENGINE_PLUGINS (commas or spaces between names; importable from sys.path,
    e.g. through PYTHONPATH), so that a method or dataset outside the toolbox registers itself as the built-ins do."""
    for name in re.split(r"[,\s]+", os.environ.get(PLUGINS_VARIABLE, "")):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"{PLUGINS_VARIABLE}: cannot import '{name}' ({exc}); put its folder on PYTHONPATH or "
                            "correct the module name") from exc


def import_builtin() -> None:
    """Register every built-in trainer and dataset loader, then the user's plug-ins."""
    builtin_package("datasets")
    builtin_package("trainers")
    import_plugins()


def method_module(name: str) -> ModuleType:
    """A module of the methods package, e.g. ``method_module("capt_loss")``."""
    return importlib.import_module(f"{builtin_package('trainers').__name__}.{name}")
