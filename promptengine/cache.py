"""Where the toolbox caches what it derives (few-shot splits, file digests, the expanded SynthCLIP weights)."""

from __future__ import annotations

import os


def cache_root() -> str:
    """``$PROMPTENGINE_CACHE`` or ``~/.cache/promptengine``."""
    return os.environ.get("PROMPTENGINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "promptengine")
