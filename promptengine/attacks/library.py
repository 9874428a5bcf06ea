"""The optional ``pyautoattack`` package: imported when an AutoAttack runs, its version recorded with every result."""

from __future__ import annotations

import logging
from importlib import metadata
from types import ModuleType
from typing import Optional

from ..errors import UserError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install pyautoattack==0.2.0 (it is listed in requirements-dev.txt)"
TESTED_VERSION = "0.2.0"


def import_library() -> ModuleType:
    """``pyautoattack``, or a one-line UserError saying how to install it."""
    try:
        import pyautoattack  # an optional dependency: imported only when an AutoAttack runs
    except ImportError:
        raise UserError(f"AutoAttack needs the 'pyautoattack' package, which is not installed: {INSTALL_HINT}") from None
    version = getattr(pyautoattack, "__version__", "?")
    if version != TESTED_VERSION:
        logger.warning("pyautoattack %s is installed; this toolbox is tested with %s (%s)", version, TESTED_VERSION,
                       INSTALL_HINT)
    return pyautoattack


def library_version() -> Optional[str]:
    """The installed pyautoattack version, or None when it is missing (for result files)."""
    try:
        return metadata.version("pyautoattack")
    except Exception:
        return None
