"""Dataset loaders, registered in DATASET_REGISTRY by class name on import."""

import sys as _sys

from promptengine.autoimport import import_submodules

import_submodules(_sys.modules[__name__])
