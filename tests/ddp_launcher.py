"""``train.py`` for multi-process tests: registers the in-memory toy dataset, then runs ``train.main``.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_launcher.py --trainer CAPT ...

With ``PE_WRITE_AUDIT=<dir>`` each rank records, through a Python audit hook, every file it creates, opens for
writing, renames or removes under the run's ``--output-dir`` into ``<dir>/writes-rank<R>.txt`` (written after the
run), so a test can check that only rank 0 writes outputs; the seeds of the RNG streams its training images'
augmentations were drawn from and the training images it read go to ``<dir>/augseeds-rank<R>.txt`` and
``<dir>/trainitems-rank<R>.txt``; and after training each rank exercises the collectives
of ``promptengine.distributed`` and saves what it got to ``<dir>/collectives-rank<R>.pt`` (no extra
process start-up for that check).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

torch.set_num_threads(1)

import tests.toy_data  # noqa: E402,F401  (registers ToyColors)
import train  # noqa: E402
from promptengine.cli import run_main  # noqa: E402

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _watch_writes(root: str, seen: list) -> None:
    root = os.path.abspath(root)

    def under(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(root)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
            if writes and under(path):
                seen.append(f"open {path}")
        elif event in ("os.mkdir", "os.remove", "os.rmdir") and under(args[0]):
            seen.append(f"{event} {args[0]}")
        elif event == "os.rename" and (under(args[0]) or under(args[1])):
            seen.append(f"{event} {args[0]} -> {args[1]}")

    sys.addaudithook(hook)


def _check_collectives(out_dir: str) -> None:
    """Known inputs per rank through each collective; the test compares the outputs with hand-computed values."""
    from promptengine import distributed as dist

    rank = dist.rank()
    p1, p2 = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))
    p1.grad, p2.grad = torch.full((3,), float(rank + 1)), torch.full((2, 2), 10.0 * rank)
    ok_all = dist.average_gradients([p1, p2])
    ok_one = dist.average_gradients([p1, p2], ok=rank == 0)  # as if rank 1 saw a non-finite loss
    w = torch.full((4,), float(rank))
    dist.broadcast_parameters([w], src=0)
    metrics = dist.reduce_metrics({"loss": 1.0 + rank, "acc": 50.0 * rank})
    gathered = dist.gather_per_sample({"index": torch.tensor([rank, rank + 2]), "pred": torch.tensor([10 + rank] * 2)})
    torch.save({"world": dist.world_size(), "g1": p1.grad, "g2": p2.grad, "ok_all": ok_all, "ok_one": ok_one, "w": w,
                "metrics": metrics, "gathered": gathered}, os.path.join(out_dir, f"collectives-rank{rank}.pt"))


def _watch_training_items(seeds: list, paths: list) -> None:
    """Record, for each training item read, its path and the seed of the torch RNG its augmentation draws from."""
    from promptengine.data.manager import DatasetWrapper

    real = DatasetWrapper.__getitem__

    def getitem(self, idx):
        if self.data_source is self.dataset.train_x:
            seeds.append(torch.initial_seed())
            paths.append(self.data_source[idx].impath)
        return real(self, idx)

    DatasetWrapper.__getitem__ = getitem


def main(argv: list) -> int:
    audit_dir = os.environ.get("PE_WRITE_AUDIT", "")
    seen: list = []
    aug_seeds: list = []
    train_paths: list = []
    if audit_dir and "--output-dir" in argv:
        _watch_writes(argv[argv.index("--output-dir") + 1], seen)
        _watch_training_items(aug_seeds, train_paths)
    code = run_main(lambda: train.main(argv))
    if audit_dir:
        rank = os.environ.get("RANK", "0")
        with open(os.path.join(audit_dir, f"writes-rank{rank}.txt"), "w") as f:
            f.write("".join(line + "\n" for line in seen))
        with open(os.path.join(audit_dir, f"augseeds-rank{rank}.txt"), "w") as f:
            f.write(" ".join(str(s) for s in sorted(set(aug_seeds))))
        with open(os.path.join(audit_dir, f"trainitems-rank{rank}.txt"), "w") as f:
            f.write("\n".join(sorted(set(train_paths))))
        if code == 0 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            _check_collectives(audit_dir)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
