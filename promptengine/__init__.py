"""A small Dassl-compatible engine for (adversarial) prompt tuning of CLIP.

The engine holds configuration, data, training loop, checkpoints, CLIP loading, the shared
prompt-injection mechanism and the shared attack core. Methods live in ``trainers/``.
"""

__version__ = "0.1.0"

from ._startup import defer_unused_torchvision

defer_unused_torchvision()  # torchvision.models / .ops (and torch._dynamo) only when used: ~2 s less per process
