"""``dassl.utils``: the registry, the checkpoint helpers, seeding and the log file a fork's train.py uses."""

from __future__ import annotations

import os
import random
import shutil
import sys
import time

import numpy as np
import torch


def set_random_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


class _Tee:
    """Dassl's ``Logger``: everything printed goes to the console and to the log file."""

    def __init__(self, console, path):
        self.console, self.file = console, open(path, "w")

    def write(self, text):
        self.console.write(text)
        self.file.write(text)

    def flush(self):
        self.console.flush()
        self.file.flush()


def setup_logger(output=None):
    """``sys.stdout`` tees into ``<output>/log.txt`` (a time-stamped name when that file exists)."""
    if output is None:
        return
    path = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
    if os.path.exists(path):
        path += time.strftime("-%Y-%m-%d-%H-%M-%S")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sys.stdout = _Tee(sys.stdout, path)


def collect_env_info():
    return f"PyTorch version: {torch.__version__}"


class Registry:
    """Name -> object; ``register()`` as a decorator or a call; a duplicate name is a KeyError unless ``force``."""

    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _add(self, obj, force):
        if obj.__name__ in self._obj_map and not force:
            raise KeyError(f'"{obj.__name__}" is already registered in "{self._name}"')
        self._obj_map[obj.__name__] = obj
        return obj

    def register(self, obj=None, force=False):
        if obj is None:
            return lambda o: self._add(o, force)
        self._add(obj, force)

    def get(self, name):
        if name not in self._obj_map:
            raise KeyError(f'"{name}" is not registered in "{self._name}"')
        return self._obj_map[name]

    def registered_names(self):
        return list(self._obj_map)


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Writes ``model.pth.tar-<epoch>`` (or ``model_name``) and a ``checkpoint`` file naming it."""
    os.makedirs(save_dir, exist_ok=True)
    name = model_name or f"model.pth.tar-{state['epoch']}"
    path = os.path.join(save_dir, name)
    torch.save(state, path)
    with open(os.path.join(save_dir, "checkpoint"), "w") as f:
        f.write(name + "\n")
    if is_best:
        shutil.copy(path, os.path.join(save_dir, "model-best.pth.tar"))


def load_checkpoint(fpath):
    if not os.path.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    return torch.load(fpath, map_location=None if torch.cuda.is_available() else "cpu")


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Loads the file named by ``fdir/checkpoint``; returns the epoch to start from."""
    with open(os.path.join(fdir, "checkpoint")) as f:
        name = f.readline().strip()
    state = load_checkpoint(os.path.join(fdir, name))
    print(f'Loading checkpoint from "{os.path.join(fdir, name)}"')
    model.load_state_dict(state["state_dict"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state["epoch"]
