"""Checkpoints: learnable parameters + optimizer/scheduler/epoch/RNG state, atomic writes, safe loads.

Layout as Dassl: ``<dir>/<name>/model.pth.tar-<epoch>`` and a ``checkpoint`` file naming the latest.
Files load with ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..errors import UserError

FORMAT = 1


def atomic_save(obj: Any, path: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a kill never leaves a torn file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state() -> Dict[str, Any]:
    """Python/numpy/torch RNG states in weights_only-loadable types."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Dict[str, Any]) -> None:
    pv = state["python"]
    random.setstate((pv[0], tuple(pv[1]), pv[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def learnable_state(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Only parameters that require grad (never the frozen CLIP, never class-dependent buffers)."""
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items() if k in names}


def load_learnable_state(module: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Strict on learnable names and shapes (a mismatch is an error, never silently ignored)."""
    expected = {n: p for n, p in module.named_parameters() if p.requires_grad}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"checkpoint {source} does not match this model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "check --trainer and the prompt settings used for training"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise UserError(
                f"checkpoint {source}: '{name}' has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(expected[name].shape)} (different N_CTX/depth/classes?)"
            )
    module.load_state_dict(state, strict=False)


def safe_load(path: str) -> Dict[str, Any]:
    """torch.load(weights_only=True) with one-line errors for foreign, code-running or corrupt files."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path} (check --model-dir and --load-epoch)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"refusing to load {path}: it is not a plain-weights checkpoint (loading it would run code); "
            "use a checkpoint written by this toolbox"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt or truncated ({exc.__class__.__name__})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or "state_dict" not in obj:
        raise UserError(f"{path} is not a checkpoint of this toolbox (no 'format'/'state_dict' keys)")
    return obj


class CorruptCheckpoint(UserError):
    """A truncated or unreadable checkpoint file."""


def checkpoint_path(directory: str, name: str, epoch: Optional[int] = None) -> str:
    """The file for ``epoch`` (1-based), or the latest one named in ``<dir>/<name>/checkpoint``."""
    folder = os.path.join(directory, name)
    if epoch is not None:
        return os.path.join(folder, f"model.pth.tar-{epoch}")
    pointer = os.path.join(folder, "checkpoint")
    if not os.path.isfile(pointer):
        raise UserError(f"no checkpoint in {folder} (train first, or point --model-dir at a training output dir)")
    with open(pointer) as f:
        return os.path.join(folder, f.readline().strip())


def available_epochs(directory: str, name: str) -> List[int]:
    folder = os.path.join(directory, name)
    if not os.path.isdir(folder):
        return []
    eps = []
    for fname in os.listdir(folder):
        if fname.startswith("model.pth.tar-") and fname.split("-")[-1].isdigit():
            eps.append(int(fname.split("-")[-1]))
    return sorted(eps)


def write_pointer(directory: str, name: str, fname: str) -> None:
    folder = os.path.join(directory, name)
    tmp = os.path.join(folder, f"checkpoint.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(fname + "\n")
    os.replace(tmp, os.path.join(folder, "checkpoint"))
