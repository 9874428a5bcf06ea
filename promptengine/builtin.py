"""The toolbox's own methods (``trainers``) and dataset loaders (``datasets``), from a checkout or a wheel.

In a checkout they are the top-level packages next to ``promptengine/`` (``python train.py`` from the repository, as
in CoOp). An installed wheel ships the same folders as ``promptengine.methods`` and ``promptengine.benchmarks``, so
nothing named ``datasets`` is installed beside other libraries of that name.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
CHECKOUT = (REPO / "trainers" / "__init__.py").is_file() and (REPO / "datasets" / "__init__.py").is_file()
PACKAGES = {"trainers": "promptengine.methods", "datasets": "promptengine.benchmarks"}
#: where the protocol scripts (``scripts/``) and tools (``tools/``) live: the checkout, or their copy in the wheel
HOME = REPO if CHECKOUT else Path(__file__).resolve().parent / "_home"


def builtin_package(name: str) -> ModuleType:
    """``trainers`` or ``datasets``: imported (which registers every trainer or loader) and returned."""
    if CHECKOUT:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        return importlib.import_module(name)
    return importlib.import_module(PACKAGES[name])


def import_builtin() -> None:
    """Register every built-in trainer and dataset loader."""
    builtin_package("datasets")
    builtin_package("trainers")


def method_module(name: str) -> ModuleType:
    """A module of the methods package, e.g. ``method_module("capt_loss")``."""
    return importlib.import_module(f"{builtin_package('trainers').__name__}.{name}")
