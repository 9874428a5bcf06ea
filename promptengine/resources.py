"""Files the toolbox ships: the configs, found by path or by name, from a checkout or an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

from .builtin import CHECKOUT, REPO
from .errors import UserError


def configs_root() -> Path:
    """``configs/`` of the checkout, or the copy inside the installed package."""
    if CHECKOUT:
        return REPO / "configs"
    return Path(__file__).resolve().parent / "configs"


def shipped_configs(kind: str, trainer: str = "") -> List[str]:
    """Names of the shipped dataset configs, or of one trainer's configs (``kind``: dataset | trainer)."""
    folder = configs_root() / ("datasets" if kind == "dataset" else os.path.join("trainers", trainer))
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_config(value: str, kind: str, trainer: str = "") -> str:
    """A config file given by path (as always), or by its name among the shipped configs so the toolbox works from
    any directory: ``oxford_pets`` / ``configs/datasets/oxford_pets.yaml``; ``synth`` or ``CAPT/synth`` for a
    trainer config. A path that exists wins; a name that matches nothing is a one-line error listing the names."""
    if not value or os.path.isfile(value):
        return value
    candidates: List[Path] = []
    rel = Path(value)
    candidates.append(configs_root().parent / rel if rel.parts[:1] == ("configs",) else configs_root() / rel)
    stem = rel.name[:-5] if rel.name.endswith(".yaml") else rel.name
    if kind == "dataset":
        candidates.append(configs_root() / "datasets" / f"{stem}.yaml")
    else:
        owner = rel.parent.name if len(rel.parts) > 1 else trainer
        if owner:
            candidates.append(configs_root() / "trainers" / owner / f"{stem}.yaml")
    found: Optional[Path] = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return str(found)
    flag = "--dataset-config-file" if kind == "dataset" else "--config-file"
    names = shipped_configs(kind, trainer)
    known = f"; shipped names: {' '.join(names)}" if names else ""
    raise UserError(f"config file not found: {value} (give a path, or a shipped config name to {flag}{known})")
