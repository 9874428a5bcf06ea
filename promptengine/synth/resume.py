"""Checkpoints of a SynthCLIP pretraining run, so that an interrupted run resumes where it stopped.

Pretraining takes about half an hour of CPU; on a shared machine a run can be killed. A checkpoint holds everything
the training loop carries from one step to the next (model, compact token rows, AdamW state, the loss average, the
evaluation history, the seconds spent); the data stream is a pure function of the step, so a resumed run gives the
same weights, bit for bit, as one that was never interrupted (same machine, same thread count).
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import torch

from ..errors import UserError

FORMAT = "synthclip-pretrain-checkpoint/1"


def save_checkpoint(path: str, config: dict, step: int, model, emb, opt, loss_ema: Optional[float],
                    history: list, seconds: float, cpu_seconds: float) -> None:
    """Write the training state after ``step`` steps (atomic: a kill mid-write leaves the previous checkpoint)."""
    state = {
        "format": FORMAT,
        "config": config,
        "step": step,
        "model": model.state_dict(),
        "emb": emb.weight.detach().clone(),
        "opt": opt.state_dict(),
        "loss_ema": loss_ema,
        "history": list(history),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, config: dict) -> Dict:
    """The training state in ``path``; an error naming the differing settings if it is another run's."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"pretraining checkpoint {path} is unreadable ({exc}); delete it to start afresh") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a SynthCLIP pretraining checkpoint; delete it or pass another --checkpoint")
    theirs = state["config"]
    differ = sorted(k for k in set(config) | set(theirs) if config.get(k) != theirs.get(k))
    if differ:
        detail = ", ".join(f"{k}: checkpoint {theirs.get(k)!r} vs now {config.get(k)!r}" for k in differ)
        raise UserError(f"pretraining checkpoint {path} is from other settings ({detail}); "
                        "pass the same flags to resume it, or delete it to start afresh")
    return state
