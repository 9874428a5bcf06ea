"""The fork's own CoOp trainer, reduced to what matters here: it imports the fork's CLIP at import time, as CoOp's
``trainers/coop.py`` does, and registers ``CoOp`` in Dassl's registry before the plug-in does."""

from __future__ import annotations

from clip import clip  # noqa: F401  (the fork's clip/, first on the path)
from dassl.engine import TRAINER_REGISTRY, TrainerX


@TRAINER_REGISTRY.register()
class CoOp(TrainerX):
    def build_model(self):
        raise NotImplementedError("the stand-in fork's CoOp is only registered, never built")
