"""Run setup shared by train.py: output-dir checks, the log header, building the trainer."""

from __future__ import annotations

import os
import platform
import tempfile

import torch

from ..errors import UserError


def check_output_dir(path: str) -> None:
    """The output dir (or its nearest existing parent) must be writable."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK) or not _can_create_file(probe):
        raise UserError(f"output dir {path} is not writable ({probe} does not allow writing); pass another --output-dir")


def _can_create_file(folder: str) -> bool:
    """Whether a file can really be created in ``folder`` (``os.access`` says yes to root even on /proc)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def describe_run(args, cfg) -> None:
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(vars(args)):
        print(f"{key}: {getattr(args, key)}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg.dump())
    print("** System info **")
    print(f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {torch.cuda.is_available()}")


def build_trainer(cfg, trainer_cls):
    print(f"Loading trainer: {cfg.TRAINER.NAME}")
    print(f"Loading dataset: {cfg.DATASET.NAME}")
    return trainer_cls(cfg)
