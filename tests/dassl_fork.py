"""Helpers for the Dassl tests: the stand-in Dassl, a scratch copy of the stand-in fork (tests/fake_dassl/fork:
its own ``clip/``, ``trainers/``, ``datasets/``, CoOp's YAML and a CoOp-style ``train.py``) with a tiny image tree
and tiny CLIP weights, and the command of docs/DASSL_PLUGIN.md as the reader copies it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FAKE_DASSL = ROOT / "tests" / "fake_dassl"
FORK = FAKE_DASSL / "fork"
DOC = ROOT / "docs" / "DASSL_PLUGIN.md"
COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}


def write_squares(folder, n: int, rng: np.random.Generator) -> List[Tuple[str, int, str]]:
    """``n`` noisy 32x32 squares per colour as ``<folder>/<colour>/<i>.png``; returns (path, label, colour)."""
    items = []
    for label, (colour, rgb) in enumerate(COLORS.items()):
        os.makedirs(os.path.join(folder, colour), exist_ok=True)
        for i in range(n):
            path = os.path.join(folder, colour, f"{i}.png")
            arr = np.clip(np.array(rgb)[None, None] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(path)
            items.append((path, label, colour))
    return items


def make_fork(tmp: Path) -> Dict[str, Path]:
    """A scratch fork (copy of the stand-in), its data root (``oxford_pets`` squares, 4 train / 3 test per class)
    and a tiny CLIP weights file loaded through ``clip.load``."""
    from promptengine.clip.loading import random_clip

    fork = tmp / "fork"
    shutil.copytree(FORK, fork)
    data = tmp / "data"
    rng = np.random.default_rng(0)
    write_squares(data / "oxford_pets" / "train", 4, rng)
    write_squares(data / "oxford_pets" / "test", 3, rng)
    weights = tmp / "tiny-clip.pt"
    torch.save(random_clip("tiny-p8-32", seed=3).state_dict(), weights)
    return {"fork": fork, "data": data, "weights": weights}


def docs_command() -> str:
    """The ``python train.py ...`` command of docs/DASSL_PLUGIN.md, its continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    command = next(b for b in blocks if b.lstrip().startswith("python train.py"))
    return re.sub(r"\\\n\s*", "", command).strip()


def python_on_path(tmp: Path) -> str:
    """A folder whose ``python`` is this interpreter (its environment), for commands run as a shell would."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def fork_env(tmp: Path, data: Path) -> Dict[str, str]:
    """The fork's environment: ``dassl`` and this toolbox importable (as if installed), ``$DATA`` set."""
    path = os.pathsep.join([str(FAKE_DASSL), str(ROOT)])
    return dict(os.environ, PYTHONPATH=path, DATA=str(data), OMP_NUM_THREADS="1",
                PATH=os.pathsep.join([python_on_path(tmp), os.environ.get("PATH", "")]))


def run_shell(command: str, cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
