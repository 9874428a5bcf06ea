"""What Dassl's checkpoints leave out, saved beside them so a resumed run on Dassl's engine is exact.

Dassl's ``save_model`` stores weights, optimiser and scheduler. It stores no random state, so after a resume the
data order, augmentations and any other random draw differ from the uninterrupted run. Next to every checkpoint
file the plug-in writes ``<file>.state``: the Python, NumPy, torch and CUDA generators, the gradient scaler and
the method's ``extra_state()``. Resuming reads the one beside the file Dassl resumes from (the name in the model's
``checkpoint`` file). The attacks use no generator state of their own (their random starts are drawn from
seeds fixed per sample), so nothing else is needed.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Dict, Optional

import torch

from ..engine import checkpoint as ckpt
from ..errors import UserError

SUFFIX = ".state"


def state_path(directory: str, name: str, fname: str) -> str:
    return os.path.join(directory, name, fname + SUFFIX)


def latest_file(directory: str, name: str) -> Optional[str]:
    """The file name Dassl's resume loads for model ``name`` (first line of ``<dir>/<name>/checkpoint``)."""
    pointer = os.path.join(directory, name, "checkpoint")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        return f.readline().strip() or None


def save(path: str, epoch: int, scaler, extra: Dict[str, Any]) -> None:
    """Write the random state as it is now (after the epoch's training), atomically."""
    ckpt.atomic_save({"format": ckpt.FORMAT, "epoch": int(epoch), "rng": ckpt.rng_state(),
                      "scaler": scaler.state_dict(), "extra": extra}, path)


def load(path: str) -> Optional[Dict[str, Any]]:
    """The saved state, None when there is none (a checkpoint written without the plug-in's state)."""
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"cannot read the random state {path} ({exc.__class__.__name__}); delete that file to resume "
                        "without it (the resumed epochs then draw other random numbers than an uninterrupted run)"
                        ) from exc
    if not isinstance(state, dict) or state.get("format") != ckpt.FORMAT or "rng" not in state:
        raise UserError(f"{path} is not a random-state file of this plug-in; delete it to resume without it")
    return state
