"""A small Dassl-compatible engine for (adversarial) prompt tuning of CLIP.

The engine holds configuration, data, training loop, checkpoints, CLIP loading, the shared
prompt-injection mechanism and the shared attack core. Methods live in ``trainers/``.
"""

__version__ = "0.1.0"
