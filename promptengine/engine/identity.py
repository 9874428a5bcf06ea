"""Run identity: a fingerprint of everything that determines a run's numbers.

A run's identity is a nested dict of sections; its fingerprint is a short SHA-256 of the canonical JSON.

- ``trainer``: the trainer name.
- ``model``: every ``TRAINER.*`` and ``MODEL.*`` key, the input size, and the backbone (name and a SHA-256 digest of
  the weights file, plus the robust vision tower's file digest when one is loaded).
- ``train``: optimiser, schedule, training batch and augmentation keys, precision, seed and the resolved training
  attack.
- ``data``: ``DATASET.*`` keys, the class names, and digests of the training items (the few-shot selection) and of
  the evaluated test items (after ``TEST.MAX_IMAGES``); paths are taken relative to the data root.
- ``eval``: ``TEST.*``/``ATTACK.TEST.*`` keys, the keys of test-time defenses (``TRAINER.<NODE>.*`` of a trainer
  with a ``test_time_node``: they act only at evaluation) and the resolved test attacks.
- ``weights``: where the evaluated weights come from (trained in this run, or a checkpoint with its training identity).

The *training identity* (``trainer``, ``model``, ``train`` and ``data`` without the test items) is written into
every checkpoint; resuming requires it to be equal. Keys in ``EXCLUDED_KEYS`` cannot change numbers and are left out.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

from yacs.config import CfgNode as CN

from ..registry import test_time_nodes
from .digests import file_digest

#: Config keys that cannot change a run's numbers (why, for docs/GUARANTEES.md).
EXCLUDED_KEYS: Dict[str, str] = {
    "OUTPUT_DIR": "where results are written",
    "RESUME": "where a checkpoint is read from (the checkpoint's own identity is checked)",
    "VERBOSE": "console output",
    "USE_CUDA": "the device is recorded in provenance, not identity",
    "DATALOADER.NUM_WORKERS": "loading parallelism (items and their order do not depend on it)",
    "DATALOADER.TEST.BATCH_SIZE": "evaluation is batch-size independent (attack random starts are seeded per image)",
    "TRAIN.PRINT_FREQ": "console output",
    "TRAIN.CHECKPOINT_FREQ": "how often checkpoints are written (resume is exact)",
    "TEST.NO_TEST": "whether the final test runs, not what it measures",
    "TEST.PER_CLASS_RESULT": "extra printed output",
    "TEST.COMPUTE_CMAT": "extra printed output",
    "DATASET.ROOT": "the data are identified by their items (paths relative to the root) and class names",
    "DATASET.FEWSHOT_CACHE_DIR": "the few-shot selection is identified by its items",
    "DATASET.WRITE_SPLITS": "whether generated splits are saved",
    "MODEL.BACKBONE.DOWNLOAD_ROOT": "the weights are identified by their file digest",
    "MODEL.BACKBONE.PATH": "the robust vision tower is identified by its file digest",
}

EVAL_PREFIXES = ("TEST.", "ATTACK.TEST.", "ATTACK.PGD.TEST_ITER", "DATALOADER.TEST.")
MODEL_PREFIXES = ("TRAINER.", "MODEL.", "INPUT.SIZE", "INPUT.INTERPOLATION", "INPUT.PIXEL_")
DATA_PREFIXES = ("DATASET.",)
#: what the seed changes (dropped for grouping seeds of one setting)
SEED_DEPENDENT = ("train.SEED", "data.train_items")
TRAINING_SECTIONS = ("trainer", "model", "train", "data")


# ---- digests ---------------------------------------------------------------------------------------------------
def fingerprint(obj: Any, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), first ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def items_digest(items: Iterable[Any], root: str = "") -> str:
    """Digest of (path relative to ``root``, label) pairs in order: a split, a few-shot draw, a test subset."""
    h = hashlib.sha256()
    n = 0
    for item in items:
        path = str(item.impath)
        if root and "://" not in path and os.path.isabs(path):
            path = os.path.relpath(path, root)
        h.update(f"{path}|{int(item.label)}\n".encode())
        n += 1
    return f"{n}:{h.hexdigest()[:16]}"


# ---- building ----------------------------------------------------------------------------------------------------
def flat_config(cfg: CN, prefix: str = "") -> Dict[str, Any]:
    """Dotted key -> value (tuples as lists, so YAML round trips compare equal)."""
    out: Dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, CN):
            out.update(flat_config(v, key + "."))
        else:
            out[key] = json.loads(json.dumps(v, default=str))
    return out


def section_of(key: str, test_time: Sequence[str] = ()) -> Optional[str]:
    """The identity section of a config key, or None when the key cannot change numbers; keys under a prefix of
    ``test_time`` (the test-time defenses' nodes) are evaluation settings."""
    if key in EXCLUDED_KEYS:
        return None
    if key.startswith(EVAL_PREFIXES) or key.startswith(tuple(test_time)):
        return "eval"
    if key.startswith(DATA_PREFIXES):
        return "data"
    if key.startswith(MODEL_PREFIXES):
        return "model"
    return "train"


def backbone_identity(cfg: CN, path: Optional[str]) -> Dict[str, Any]:
    """Backbone name plus the digests of the weights files it loads: ``path``, the file ``MODEL.BACKBONE.NAME``
    resolves to (None for a random architecture)."""
    name = str(cfg.MODEL.BACKBONE.NAME)
    out: Dict[str, Any] = {"name": os.path.basename(name) if path and os.path.isfile(os.path.expanduser(name)) else name,
                           "weights_sha256": file_digest(path) if path and os.path.isfile(path) else None}
    robust = str(cfg.MODEL.BACKBONE.PATH)
    if robust and os.path.isfile(os.path.expanduser(robust)):
        out["vision_tower_sha256"] = file_digest(os.path.expanduser(robust))
    return out


def config_sections(cfg: CN) -> Dict[str, Dict[str, Any]]:
    sections: Dict[str, Dict[str, Any]] = {"model": {}, "train": {}, "data": {}, "eval": {}}
    test_time = test_time_nodes()
    for key, value in flat_config(cfg).items():
        section = section_of(key, test_time)
        if section is not None:
            sections[section][key] = value
    return sections


def run_identity(cfg: CN, dataset: Any, test_items: Sequence[Any], train_attack: Any, test_attacks: Sequence[Any],
                 precision: str, data_root: str = "", weights_path: Optional[str] = None) -> Dict[str, Any]:
    """The full identity of a run whose weights are trained here (see ``with_weights`` for evaluations);
    ``weights_path``: the backbone's weights file (``promptengine.clip.loading.weights_file``)."""
    sections = config_sections(cfg)
    sections["model"]["backbone"] = backbone_identity(cfg, weights_path)
    sections["train"]["precision"] = precision
    sections["train"]["attack"] = train_attack.to_dict() if train_attack is not None else None
    sections["data"]["classnames"] = fingerprint(list(dataset.classnames))
    sections["data"]["train_items"] = items_digest(dataset.train_x or [], data_root)
    sections["data"]["test_items"] = items_digest(test_items, data_root)
    sections["eval"]["attacks"] = [spec.to_dict() for spec in test_attacks]
    return {"trainer": str(cfg.TRAINER.NAME), **sections, "weights": {"source": "this run"}}


def training_identity(identity: Dict[str, Any]) -> Dict[str, Any]:
    """What determines the trained weights: the training sections, without the evaluated test items."""
    out = {k: copy.deepcopy(identity[k]) for k in TRAINING_SECTIONS}
    out["data"].pop("test_items", None)
    return out


def without_seed(identity: Dict[str, Any]) -> Dict[str, Any]:
    """The identity with what the seed changes removed: seeds of one setting share it."""
    out = copy.deepcopy(identity)
    for dotted in SEED_DEPENDENT:
        section, key = dotted.split(".", 1)
        out.get(section, {}).pop(key, None)
    weights = out.get("weights", {})
    if "training" in weights:
        weights["training"] = weights.pop("training_group", None)
    return out


def with_weights(identity: Dict[str, Any], checkpoint_training: Optional[Dict[str, Any]], epoch: Optional[int]) -> Dict[str, Any]:
    """An evaluation's identity: its own sections plus the training identity of the weights it loads."""
    out = copy.deepcopy(identity)
    if checkpoint_training is None:
        out["weights"] = {"source": "none (training-free)"}
    else:
        out["weights"] = {"source": "checkpoint", "training": fingerprint(checkpoint_training),
                          "training_group": fingerprint(without_seed(checkpoint_training)), "epoch": epoch}
    return out


def summary(identity: Dict[str, Any]) -> Dict[str, Any]:
    """What results.json and config.yaml carry: fingerprints plus the identity itself."""
    return {
        "fingerprint": fingerprint(identity),
        "training": fingerprint(training_identity(identity)) if identity.get("weights", {}).get("source") == "this run"
        else identity.get("weights", {}).get("training"),
        "group": fingerprint(without_seed(identity)),
        "identity": identity,
    }


# ---- comparing ---------------------------------------------------------------------------------------------------
def _flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(obj, dict):
        out: Dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


_ABSENT = object()


def first_difference(old: Dict[str, Any], new: Dict[str, Any]) -> Optional[Tuple[str, Any, Any]]:
    """(field, old value, new value) of the first differing field in sorted order, or None if equal."""
    a, b = _flatten(old), _flatten(new)
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va != vb:
            return key, va, vb
    return None


def describe_difference(diff: Tuple[str, Any, Any], old_name: str, new_name: str = "this run") -> str:
    key, old, new = diff
    show = lambda v: "(absent: another code version?)" if v is _ABSENT else repr(v)  # noqa: E731
    return f"'{key}' is {show(old)} in {old_name} but {show(new)} in {new_name}"

