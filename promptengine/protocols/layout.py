"""The five protocols, their phases and the folders their runs write: the one definition that the runner, the sweep,
the generated wrapper scripts and the result readers share.

    <OUTPUT>/<protocol>/<phase>/<DATASET>/shots_<K>/<TRAINER>/<CFG>/seed<S>

``<K>`` is the shot count or ``all``; ``<CFG>`` is the config name plus the options tag (``options_tag``). xd and dg
train their source model once, in ``<OUTPUT>/transfer/train/<SOURCE>/...`` (``TRANSFER``), and both evaluate it;
zsrobust trains its own, in ``<OUTPUT>/zsrobust/train/<SOURCE>/...``, and evaluates it zero-shot on each target.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union


@dataclass(frozen=True)
class ProtocolSpec:
    """One protocol: its name (a folder and a script name), what it measures, its phase folders, the arguments of
    its script and a note on where the rest comes from."""

    name: str
    title: str
    phases: Tuple[str, ...]
    arguments: str
    note: str = ""

    @property
    def synopsis(self) -> str:
        return f"{self.name}.sh {self.arguments}"

    @property
    def usage(self) -> str:
        return f"{self.synopsis} ({self.note})" if self.note else self.synopsis


_SOURCE_NOTE = "source from SOURCE, default imagenet or synth_shapes"
BASE2NEW = ProtocolSpec("base2new", "base-to-new generalization", ("train_base", "test_base", "test_new"),
                        "DATASET SEED [CFG]")
FEWSHOT = ProtocolSpec("fewshot", "few-shot learning", ("train",), "DATASET [SHOTS ...]",
                       "seeds from SEEDS, default '1 2 3'")
XD = ProtocolSpec("xd", "cross-dataset transfer", ("train", "test"), "SEED [TARGET ...]", _SOURCE_NOTE)
DG = ProtocolSpec("dg", "domain generalization", ("train", "test"), "SEED [TARGET ...]", _SOURCE_NOTE)
ZSROBUST = ProtocolSpec("zsrobust", "zero-shot robustness", ("train", "test"), "SEED [TARGET ...]",
                        "preset from PRESET, default tecoa or synth; source from SOURCE")
SPECS: Dict[str, ProtocolSpec] = {spec.name: spec for spec in (BASE2NEW, FEWSHOT, XD, DG, ZSROBUST)}
PROTOCOLS: Tuple[str, ...] = tuple(SPECS)
TRANSFER_PROTOCOLS = (XD.name, DG.name)  # one source model in TRANSFER, shared by both
#: the protocols called ``SEED [TARGET ...]``: one source model, evaluated on targets
TARGET_PROTOCOLS = (XD.name, DG.name, ZSROBUST.name)
#: every method's protocols; a trainer that tunes the vision tower (``tunes_tower``) or needs no training (the
#: zero-shot reference) also gets zsrobust, so a new method opts in by its class attribute, not by a list here
PROMPT_PROTOCOLS = (BASE2NEW.name, FEWSHOT.name, XD.name, DG.name)


def protocols_of(tunes_tower: bool, training_free: bool) -> Tuple[str, ...]:
    """The protocols a method has scripts for."""
    return PROMPT_PROTOCOLS + ((ZSROBUST.name,) if tunes_tower or training_free else ())

TRAIN_BASE, TEST_BASE, TEST_NEW = BASE2NEW.phases
TRAIN, TEST = XD.phases  # fewshot's only phase is TRAIN: the training run's own final test is its result
SUBSAMPLE_OF_PHASE = {TRAIN_BASE: "base", TEST_BASE: "base", TEST_NEW: "new"}
#: the folder of the source model that xd and dg share (``<OUTPUT>/transfer/train/<SOURCE>/...``)
TRANSFER = "transfer"
ALL_SHOTS = -1  # DATASET.NUM_SHOTS of "every image", folder shots_all
LAYOUT = "<protocol>/<phase>/<DATASET>/shots_<K>/<TRAINER>/<CFG>/seed<S>"
_SHOTS_DIR = re.compile(r"^shots_(\d+|all)$")
_SEED_DIR = re.compile(r"^seed(-?\d+)$")


def shots_label(shots: int) -> str:
    """The folder's name for a shot count: ``16``, or ``all`` for every image (0 or less)."""
    return "all" if shots < 1 else str(shots)


def options_tag(options: Mapping[str, str]) -> str:
    """'' without options, else '@' + 8 hex digits of the normalised ``KEY=VALUE`` options (sorted by key), so runs
    with other options never share a config folder."""
    if not options:
        return ""
    text = "\n".join(f"{k}={v}" for k, v in sorted(options.items()))
    return "@" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunFolder:
    """Where one run of a protocol lives in the output tree (``protocol`` is TRANSFER for xd's and dg's source)."""

    protocol: str
    phase: str
    dataset: str
    shots: int
    trainer: str
    config: str  # the config name with its options tag
    seed: int

    def path(self, root: Union[str, Path]) -> Path:
        return Path(root, self.protocol, self.phase, self.dataset, f"shots_{shots_label(self.shots)}", self.trainer,
                    self.config, f"seed{self.seed}")

    @classmethod
    def parse(cls, folder: Union[str, Path]) -> Optional[RunFolder]:
        """The run a folder holds a result of, from its last seven parts (so any root works); None outside the
        protocols' phases."""
        parts = Path(os.path.abspath(folder)).parts
        if len(parts) < 7:
            return None
        protocol, phase, dataset, shots_dir, trainer, config, seed_dir = parts[-7:]
        shots, seed = _SHOTS_DIR.match(shots_dir), _SEED_DIR.match(seed_dir)
        if protocol not in SPECS or phase not in SPECS[protocol].phases or not shots or not seed:
            return None
        count = ALL_SHOTS if shots.group(1) == "all" else int(shots.group(1))
        return cls(protocol, phase, dataset, count, trainer, config, int(seed.group(1)))
