"""Provenance of a result: code version, library versions, device, precision, command and wall time.

Unlike the run identity, provenance does not decide whether a run may be reused; it lets a table cell be traced back.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from typing import Any, Dict, Optional, Sequence

import torch

from .. import __version__

# the real checkout, also when the package is reached through the tools/promptengine link
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> Dict[str, Any]:
    """The git commit and dirty flag when running from a checkout, else the package version."""
    commit = _git("rev-parse", "HEAD") if os.path.isdir(os.path.join(REPO, ".git")) or os.path.isfile(
        os.path.join(REPO, ".git")) else None
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        return {"package": __version__, "git_commit": commit, "git_dirty": bool(status)}
    return {"package": __version__, "git_commit": None, "git_dirty": None}


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device, precision: str, world_size: int, wall_time_s: float,
               command: Sequence[str] = ()) -> Dict[str, Any]:
    return {
        "code": code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "clip": _version("clip-anytorch"),
        "device": device_name(device),
        "world_size": world_size,
        "precision": precision,
        "host": socket.gethostname(),
        "command": list(command),
        "wall_time_s": round(wall_time_s, 1),
    }
