"""torchrun data parallelism: rank-0 output, one gradient all-reduce per step, sharded evaluation.

``torchrun --nproc_per_node=N train.py ...`` starts N processes; ``init_from_env`` joins them. Only the prompt
learner is trained and its tensors are tiny, so instead of wrapping a module in DistributedDataParallel the
trainer averages the prompt gradients itself with one all-reduce of one flat buffer per step (what DDP's
reducer does, without its bucketing, forward hooks or unused-parameter bookkeeping, which would buy nothing for
a few thousand parameters and would have to be taught that the PGD attack runs the model several times per
step). The frozen CLIP is never wrapped or synchronised: every rank loads the same weights.

Evaluation shards the test set by index (rank r takes items r, r+W, ...) and ``gather_per_sample`` puts the
per-sample results back in dataset order on rank 0, which alone prints, logs and writes files.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sys
from typing import Dict, List, Sequence

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


def _backend() -> str:
    """gloo for CPU tensors, NCCL for CUDA ones (both registered, so ``USE_CUDA False`` on a GPU host works)."""
    override = os.environ.get("PROMPTENGINE_DIST_BACKEND", "")
    if override:
        return override
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def init_from_env(quiet_non_main: bool = True) -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op for a single process.

    With ``quiet_non_main`` the other ranks' stdout goes to /dev/null (rank 0 prints the log once; errors still
    reach stderr from every rank).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_initialized():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    tdist.init_process_group(backend=_backend())
    atexit.register(shutdown)
    if quiet_non_main and not is_main():
        sys.stdout = open(os.devnull, "w")  # lives as long as the process
    return True


def shutdown() -> None:
    """Leave the process group (registered at exit by ``init_from_env``)."""
    if is_initialized():
        tdist.destroy_process_group()


def barrier() -> None:
    if is_initialized():
        tdist.barrier()


def device(cfg) -> torch.device:
    if cfg.USE_CUDA and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def average_gradients(params: Sequence[torch.nn.Parameter], ok: bool = True) -> bool:
    """Average ``p.grad`` over ranks with one all-reduce; returns whether every rank passed ``ok``.

    The flag rides in the same buffer (one extra element), so a rank that saw a non-finite loss can make every
    rank skip or stop the step together instead of leaving the others blocked in a collective.
    """
    if not is_initialized():
        return ok
    ref = params[0].grad if params else None
    dev = ref.device if ref is not None else torch.device("cuda" if tdist.get_backend() == "nccl" else "cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    pieces = [p.grad.reshape(-1).to(dtype) for p in params]
    pieces.append(torch.tensor([0.0 if ok else 1.0], device=dev, dtype=dtype))
    flat = torch.cat(pieces)
    tdist.all_reduce(flat)
    bad = float(flat[-1].item())
    flat = flat[:-1] / world_size()
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
    return bad == 0.0


def broadcast_parameters(params: Sequence[torch.Tensor], src: int = 0) -> None:
    """Copy rank ``src``'s values into every rank's tensors (one broadcast), as DDP does at construction.

    Needed when ranks could start from different prompts (an unseeded run draws its initial context per process).
    """
    if not is_initialized() or not params:
        return
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        tdist.broadcast(flat, src=src)
        offset = 0
        for p in params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def reduce_metrics(values: Dict[str, float]) -> Dict[str, float]:
    """The mean of each metric over ranks (one all-reduce). Every rank has the same per-rank batch size, so the
    mean of per-rank batch means is the global batch mean: the log reads as in a single-process run."""
    if not is_initialized() or not values:
        return values
    keys = list(values)
    dev = torch.device("cuda", torch.cuda.current_device()) if tdist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(values[k]) for k in keys] + [float(len(keys))], dtype=torch.float64, device=dev)
    tdist.all_reduce(t)
    if int(round(t[-1].item())) != len(keys) * world_size():
        raise RuntimeError(f"ranks logged different metric sets ({keys} on rank {rank()})")
    return {k: float(v) / world_size() for k, v in zip(keys, t[:-1].tolist())}


def gather_per_sample(per_sample: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """All ranks' per-sample tensors, merged and ordered by dataset index (rank 0 gets the result)."""
    if not is_initialized():
        return per_sample
    gathered: List[Dict[str, torch.Tensor]] = [None] * world_size()  # type: ignore[list-item]
    tdist.all_gather_object(gathered, {k: v.cpu() for k, v in per_sample.items()})
    merged = {k: torch.cat([g[k] for g in gathered]) for k in per_sample}
    order = torch.argsort(merged["index"])
    return {k: v[order] for k, v in merged.items()}


def broadcast_flag(flag: bool, src: int = 0) -> bool:
    """Rank ``src``'s decision on every rank (e.g. "this run is already done"), so all ranks take the same path."""
    if not is_initialized():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    tdist.broadcast(t, src=src)
    return bool(t.item())


def broadcast_object(holder: List) -> None:
    """Replace ``holder``'s items on every rank by rank 0's (picklable objects; a no-op for one process)."""
    if is_initialized():
        tdist.broadcast_object_list(holder, src=0)


def global_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` (n,) over every rank's ``values`` (one all-reduce of the sum and the count).

    The result keeps the local values' autograd graph: gradients flow to this rank's own entries only (the other
    ranks' sum enters as a constant), so it is exact for detached uses and the per-rank part of the gradient otherwise.
    """
    if not is_initialized():
        return values.mean()
    local = values.sum()
    stats = torch.stack([local.detach().double(), torch.tensor(float(values.numel()), dtype=torch.float64,
                                                                device=values.device)])
    tdist.all_reduce(stats)
    others = (stats[0] - local.detach().double()).to(values.dtype)
    return (local + others) / stats[1].to(values.dtype)


def rank_seed(base: int, rank_id: int = -1) -> int:
    """A seed for this rank's own random stream (data augmentation): ``base`` itself on rank 0, so a single process
    and rank 0 draw the same stream, and a hash of (base, rank) elsewhere, so ranks do not repeat each other's draws.
    A function of (base, rank) only: a run is reproducible for a given world size."""
    r = rank() if rank_id < 0 else rank_id
    if r == 0:
        return int(base)
    h = hashlib.blake2b(f"{int(base)}/{r}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 2
