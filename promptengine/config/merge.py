"""Building the run config in CoOp's merge order, with one-line errors for bad keys and values.

Order: defaults -> trainer keys (every registered trainer's ``extend_cfg``) -> --dataset-config-file
-> --config-file -> CLI flags -> trailing KEY VALUE opts -> freeze.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Sequence

import yaml
from yacs.config import CfgNode as CN

from ..errors import UserError
from ..registry import TRAINER_REGISTRY, closest
from .defaults import get_cfg_default
from .upstream import finalize, translate_file, translate_opts


def all_keys(cfg: CN, prefix: str = "") -> List[str]:
    keys = []
    for k, v in cfg.items():
        full = f"{prefix}{k}"
        if isinstance(v, CN):
            keys.extend(all_keys(v, full + "."))
        else:
            keys.append(full)
    return keys


def _unknown_key_error(cfg: CN, key: str, source: str) -> UserError:
    hint = closest(key, all_keys(cfg))
    hint_text = f"; did you mean '{hint}'?" if hint else ""
    return UserError(f"unknown config key '{key}' in {source}{hint_text}")


def _check_keys(root: CN, cfg: CN, other: dict, source: str, prefix: str = "") -> None:
    """Walk ``other`` against ``cfg`` so an unknown key is named with its full dotted path."""
    for k, v in other.items():
        full = f"{prefix}{k}"
        if k not in cfg:
            raise _unknown_key_error(root, full, source)
        if isinstance(v, dict) and isinstance(cfg[k], CN):
            _check_keys(root, cfg[k], v, source, full + ".")


def merge_from_file(cfg: CN, path: str) -> None:
    """Merge a YAML file; unknown keys and wrong value types fail with one line naming them."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path} (check the path given to --config-file/--dataset-config-file)")
    with open(path) as f:
        try:
            loaded = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    loaded = translate_file(cfg, loaded, path)  # upstream node names, ints for float keys
    _check_keys(cfg, cfg, loaded, path)
    _note_fap_keys(cfg, loaded)
    try:
        cfg.merge_from_other_cfg(CN(loaded))
    except ValueError as exc:
        raise UserError(f"wrong value type in {path}: {_type_msg(exc)}") from exc


def merge_from_list(cfg: CN, opts: Sequence[str]) -> None:
    """Merge trailing ``KEY VALUE`` pairs with yacs semantics (values parsed as Python literals)."""
    if len(opts) % 2 != 0:
        raise UserError(f"trailing options must be KEY VALUE pairs; got an odd number: {' '.join(opts)}")
    opts = translate_opts(cfg, opts)  # upstream node names, ints for float keys
    for key, _ in zip(opts[0::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CN) or part not in node:
                raise _unknown_key_error(cfg, key, "command-line options")
            node = node[part]
    if any(k.startswith("ATTACK.PGD.") for k in opts[0::2]):
        cfg.ATTACK.PGD.USE = True
    try:
        cfg.merge_from_list(list(opts))
    except ValueError as exc:
        raise UserError(f"wrong value type in command-line options: {_type_msg(exc)}") from exc


def _note_fap_keys(cfg: CN, loaded: dict) -> None:
    """Remember that FAP's ``ATTACK.PGD`` keys were used, so they drive the attack settings."""
    if isinstance(loaded, dict) and isinstance(loaded.get("ATTACK"), dict) and "PGD" in loaded["ATTACK"]:
        cfg.ATTACK.PGD.USE = True


def _type_msg(exc: Exception) -> str:
    text = str(exc).replace("\n", " ")
    return text + " (use a value of the default's type, e.g. 4 vs 4.0 vs '4' vs [4])"


def build_cfg(
    dataset_config_file: str = "",
    config_file: str = "",
    cli_overrides: Iterable[tuple] = (),
    opts: Sequence[str] = (),
    freeze: bool = True,
) -> CN:
    """Defaults -> trainer keys -> dataset YAML -> trainer YAML -> CLI flags -> opts -> freeze."""
    cfg = get_cfg_default()
    extend_cfg_all_trainers(cfg)
    if dataset_config_file:
        merge_from_file(cfg, dataset_config_file)
    if config_file:
        merge_from_file(cfg, config_file)
    for key, value in cli_overrides:
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    if opts:
        merge_from_list(cfg, opts)
    finalize(cfg)  # upstream trainer names, normalisation check
    if freeze:
        cfg.freeze()
    return cfg


def extend_cfg_all_trainers(cfg: CN) -> None:
    """Add every registered trainer's own subtree (``TRAINER.<NAME>.*``)."""
    seen = set()
    for name in TRAINER_REGISTRY.registered_names():
        cls = TRAINER_REGISTRY.get(name)
        fn = getattr(cls, "extend_cfg", None)
        if fn is not None and fn not in seen:
            seen.add(fn)
            fn(cfg)
