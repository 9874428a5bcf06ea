"""APT's train.py flags (``--eps --alpha --steps --adv-prompt --prompt-alpha``), accepted and translated.

APT's released scripts (``scripts/APT.sh``) pass them on every run; APT's train.py then always attacks during
training with its own defaults (eps 1, alpha 2/3, 3 steps, 'onfly') and loads the robust (TeCoA) vision tower
(``MODEL.BACKBONE.ROBUST`` defaults to True there). When any of the flags is given, the same happens here:
the missing flags take APT's defaults, ``ATTACK.TRAIN`` is switched on, and ``MODEL.BACKBONE.ROBUST`` becomes
True unless a config file sets it. The translation is applied where CoOp applies its CLI flags (after the YAML
files, before the trailing options) and printed as one note.
"""

from __future__ import annotations

import argparse
import os
from typing import List, Tuple

import yaml

from .upstream import note

# flag dest -> (our key, APT's default)
APT_FLAGS = {
    "eps": ("ATTACK.TRAIN.EPS", 1.0),
    "alpha": ("ATTACK.TRAIN.ALPHA", 2.0 / 3),
    "steps": ("ATTACK.TRAIN.STEPS", 3),
    "adv_prompt": ("TRAINER.APT.ATTACK_PROMPT", "onfly"),
    "prompt_alpha": ("TRAINER.APT.PROMPT_ALPHA", 0.0),
}


def add_apt_flags(parser: argparse.ArgumentParser) -> None:
    """APT's flags; every default is None so that 'not given' is visible."""
    group = parser.add_argument_group("APT's train.py flags (translated to ATTACK.TRAIN.* / TRAINER.APT.*)")
    group.add_argument("--eps", type=float, default=None, help="training attack eps in /255 (APT default 1)")
    group.add_argument("--alpha", type=float, default=None, help="training attack step in /255 (APT default 2/3)")
    group.add_argument("--steps", type=int, default=None, help="training attack steps (APT default 3)")
    group.add_argument("--adv-prompt", type=str, default=None, help="onfly | constant | perturbed (APT default onfly)")
    group.add_argument("--prompt-alpha", type=float, default=None, help="prompt step size of the 'perturbed' mode")


def _file_sets_robust(path: str) -> bool:
    if not path or not os.path.isfile(path):
        return False
    try:
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
    except yaml.YAMLError:
        return False  # the merger reports it
    backbone = (loaded.get("MODEL") or {}).get("BACKBONE") if isinstance(loaded, dict) else None
    return isinstance(backbone, dict) and "ROBUST" in backbone


def apt_flag_overrides(args: argparse.Namespace) -> List[Tuple[str, object]]:
    """(key, value) pairs for APT's flags, or [] when none is given."""
    given = {dest: getattr(args, dest, None) for dest in APT_FLAGS}
    if all(v is None for v in given.values()):
        return []
    pairs: List[Tuple[str, object]] = [("ATTACK.TRAIN.ENABLED", True)]
    for dest, (key, default) in APT_FLAGS.items():
        value = given[dest] if given[dest] is not None else default
        pairs.append((key, float(value) if isinstance(default, float) else value))
    if not any(_file_sets_robust(p) for p in (args.config_file, args.dataset_config_file)):
        pairs.append(("MODEL.BACKBONE.ROBUST", True))
    note("APT's flags translated: " + ", ".join(f"{k} {v}" for k, v in pairs))
    return pairs

