"""torchrun / DistributedDataParallel plumbing: rank-0 logging, gradient averaging, sharded evaluation.

Learnable prompt tensors are tiny, so data parallelism averages their gradients with one all-reduce per
step (what DDP's reducer does, without wrapping the frozen CLIP). Evaluation shards the test set by
index (rank r takes items r, r+W, ...) and gathers per-sample results back in dataset order.
"""

from __future__ import annotations

import os
from typing import Dict, List

import torch
import torch.distributed as tdist


def is_initialized() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def world_size() -> int:
    return tdist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return tdist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env() -> bool:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    tdist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def device(cfg) -> torch.device:
    if cfg.USE_CUDA and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def average_gradients(params: List[torch.nn.Parameter]) -> None:
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    tdist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def gather_per_sample(per_sample: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """All ranks' per-sample tensors, merged and ordered by dataset index (rank 0 gets the result)."""
    if not is_initialized():
        return per_sample
    gathered: List[Dict[str, torch.Tensor]] = [None] * world_size()  # type: ignore[list-item]
    tdist.all_gather_object(gathered, {k: v.cpu() for k, v in per_sample.items()})
    merged = {k: torch.cat([g[k] for g in gathered]) for k in per_sample}
    order = torch.argsort(merged["index"])
    return {k: v[order] for k, v in merged.items()}


def all_reduce_mean(value: float) -> float:
    if not is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    tdist.all_reduce(t)
    return float(t.item() / world_size())
