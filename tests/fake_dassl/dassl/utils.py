"""``dassl.utils``: the registry and the checkpoint helpers."""

from __future__ import annotations

import os
import shutil

import torch


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
        state = load_checkpoint(os.path.join(fdir, f.readline().strip()))
    model.load_state_dict(state["state_dict"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state["epoch"]
