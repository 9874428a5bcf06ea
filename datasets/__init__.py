"""The built-in dataset loaders, imported as ``promptengine.benchmarks``; each registers itself in DATASET_REGISTRY."""

import sys as _sys

from promptengine.registry import import_submodules

import_submodules(_sys.modules[__name__])
