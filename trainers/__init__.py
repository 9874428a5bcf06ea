"""The built-in methods, imported as ``promptengine.methods``; each trainer registers itself in TRAINER_REGISTRY."""

import sys as _sys

from promptengine.registry import import_submodules

import_submodules(_sys.modules[__name__])
