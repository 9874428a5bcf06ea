"""Process start-up: torchvision's package ``__init__`` executes ``torchvision.models`` and ``torchvision.ops``, and
``ops`` imports ``torch._dynamo``: about 1.5-2 s of every ``train.py`` process on a CPU, for modules the engine never
uses. ``defer_unused_torchvision`` makes those two submodules lazy (``importlib.util.LazyLoader``): they are created
but executed only on first attribute access, so code that uses them (``torchvision.models.resnet18``,
``torchvision.ops.nms``) works unchanged. ``PROMPTENGINE_EAGER_IMPORTS=1`` turns it off (docs/PERFORMANCE.md).
Processes started by torchrun (``WORLD_SIZE`` > 1) keep the eager imports: once, under load, a rank of a 2-rank CPU
test run with the deferral aborted at exit ("terminate called without an active exception") after finishing its
work; the cause is not established, and a multi-process run pays its start-up once per rank, not per run.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

DEFERRED = ("torchvision.models", "torchvision.ops")
OPT_OUT = "PROMPTENGINE_EAGER_IMPORTS"


class _DeferredTorchvision:
    """A meta-path finder that hands out lazy specs for ``DEFERRED`` and nothing else."""

    def find_spec(self, name, path, target=None):
        if name not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_unused_torchvision() -> bool:
    """Install the finder unless opted out or torchvision is already imported; True when installed."""
    if os.environ.get(OPT_OUT, "") not in ("", "0") or "torchvision" in sys.modules:
        return False
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "1"):  # torchrun's ranks: eager, as before (docstring)
        return False
    if not any(isinstance(f, _DeferredTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferredTorchvision())
    return True
