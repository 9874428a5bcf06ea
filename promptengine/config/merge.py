"""Building the run config in CoOp's merge order, with one-line errors for bad keys, values and files.

Order: defaults -> trainer keys (every registered trainer's ``extend_cfg``) -> --dataset-config-file
-> --config-file -> CLI flags -> trailing KEY VALUE opts -> domain check (``domains.check_cfg``) -> freeze.
Every value set is recorded with its source (a file or the command line) so that an error names it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import yaml
from yacs.config import CfgNode as CN

from ..errors import UserError
from ..registry import TRAINER_REGISTRY, closest, find_config
from .defaults import get_cfg_default
from .domains import check_and_warn, declared_domains
from .upstream import finalize, switch_on_fap_attack, translate_fap_attack, translate_file, translate_opts

COMMAND_LINE = "the command line"


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


def _leaves(root: CN, cfg: CN, other: dict, source: str, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``(dotted_key, raw_value)`` for every value in ``other``; unknown keys are named with their full path."""
    for k, v in other.items():
        full = f"{prefix}{k}"
        if not isinstance(k, str) or k not in cfg:
            raise _unknown_key_error(root, full, source)
        if isinstance(cfg[k], CN):
            if not isinstance(v, dict):
                raise UserError(f"{full} in {source} is a section of keys, not a value (got {v!r}); write its keys "
                                f"under it, e.g. {full}: {{{next(iter(cfg[k]), 'KEY')}: ...}}")
            yield from _leaves(root, cfg[k], v, source, full + ".")
        else:
            yield full, v


def coerce(value: Any, default: Any) -> Any:
    """The one place where values are coerced to the default's type: int -> float (yacs would refuse it; FAP's
    configs write ``EPS: 1``), also inside a list whose default holds floats, list <-> tuple, None accepted (yacs'
    rule). Anything else must have the default's type."""
    if type(default) is float and type(value) is int:
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        if default and all(type(d) is float for d in default):
            value = [float(v) if type(v) is int else v for v in value]
        return type(default)(value)
    if value is None or type(value) is type(default):
        return value
    raise TypeError


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def set_value(cfg: CN, key: str, raw: Any, source: str, provenance: Dict[str, str], decode: bool = True) -> None:
    """Decode ``raw`` (a YAML value or a command-line string; a CLI flag's value is taken as is), coerce it,
    set ``key`` and record its source."""
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    default = node[leaf]
    value = CN._decode_cfg_value(raw) if decode else raw
    try:
        node[leaf] = coerce(value, default)
    except TypeError:
        raise UserError(f"wrong value type for {key} in {source}: got {value!r} ({type(value).__name__}); "
                        f"expected {_article(type(default).__name__)} like the default {default!r}") from None
    provenance[key] = source
    switch_on_fap_attack(cfg, key, source, provenance)


def utf8_text(data: bytes, what: str) -> str:
    """``data`` decoded as UTF-8 (a BOM dropped), else one line naming ``what``, the byte, its line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, column {col}); "
                        "save it as UTF-8") from None


def load_yaml(path: str) -> dict:
    """A YAML config file as a dict; a missing, non-UTF-8 or malformed file is one line with line and column."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path} (check the path given to --config-file/--dataset-config-file)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UserError(f"cannot read config file {path} ({exc.strerror}); check its permissions") from exc
    text = utf8_text(data, f"config file {path}")
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserError(f"config file {path} is not valid YAML at{at}: {what} (fix the syntax there)") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {path} holds a {type(loaded).__name__}, not a mapping of config keys "
                        "(write KEY: value lines, e.g. OPTIM:\\n  LR: 0.002)")
    return loaded


def merge_from_file(cfg: CN, path: str, provenance: Optional[Dict[str, str]] = None) -> None:
    """Merge a YAML file; unknown keys and wrong value types fail with one line naming them and the file."""
    provenance = {} if provenance is None else provenance
    loaded = translate_file(load_yaml(path), path)  # upstream node names (FAP's ZSROBUST, ...)
    for key, raw in list(_leaves(cfg, cfg, loaded, path)):
        set_value(cfg, key, raw, path, provenance)


def merge_from_list(cfg: CN, opts: Sequence[str], provenance: Optional[Dict[str, str]] = None) -> None:
    """Merge trailing ``KEY VALUE`` pairs with yacs semantics (values parsed as Python literals)."""
    provenance = {} if provenance is None else provenance
    if len(opts) % 2 != 0:
        raise UserError(f"trailing options must be KEY VALUE pairs; got an odd number: {' '.join(opts)}")
    opts = translate_opts(opts, COMMAND_LINE)  # upstream node names
    for key, raw in zip(opts[0::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CN) or part not in node:
                raise _unknown_key_error(cfg, key, "command-line options")
            node = node[part]
        if isinstance(node, CN):
            raise UserError(f"{key} on the command line is a section of keys; give one of its keys, e.g. "
                            f"{key}.{next(iter(node), 'KEY')} VALUE")
        set_value(cfg, key, raw, COMMAND_LINE, provenance)


def build_cfg(
    dataset_config_file: str = "",
    config_file: str = "",
    cli_overrides: Iterable[tuple] = (),
    opts: Sequence[str] = (),
    freeze: bool = True,
) -> CN:
    """Defaults -> trainer keys -> dataset YAML -> trainer YAML -> CLI flags -> opts -> domain check -> freeze.

    Values outside their declared domain raise a one-line ``UserError``; legal but suspicious values print one
    ``warning:`` line each on stderr.
    """
    cfg = get_cfg_default()
    extend_cfg_all_trainers(cfg)
    provenance: Dict[str, str] = {}
    cli_overrides = list(cli_overrides)
    trainer = next((str(v) for k, v in cli_overrides if k == "TRAINER.NAME"), "")
    if dataset_config_file:  # a path, or the name of a shipped config (registry.find_config)
        merge_from_file(cfg, find_config(dataset_config_file, "dataset"), provenance)
    if config_file:
        merge_from_file(cfg, find_config(config_file, "trainer", trainer), provenance)
    for key, value in cli_overrides:
        set_value(cfg, key, value, COMMAND_LINE, provenance, decode=False)
    if opts:
        merge_from_list(cfg, opts, provenance)
    finalize(cfg)  # upstream trainer names, normalisation check
    check_domains(cfg, provenance)
    translate_fap_attack(cfg)  # FAP's checked ATTACK.PGD.* values into ATTACK.TRAIN/TEST and TRAINER.FAP, once
    if freeze:
        cfg.freeze()
    return cfg


def check_domains(cfg: CN, provenance: Dict[str, str]) -> None:
    """The domain check (``domains.check_cfg``) over the core keys and every registered trainer's keys; warnings
    on stderr."""
    check_and_warn(cfg, declared_domains(), provenance)


def extend_cfg_all_trainers(cfg: CN) -> List[type]:
    """Add every registered trainer's own subtree (``TRAINER.<NAME>.*``); return the trainer classes."""
    seen = set()
    classes = []
    for name in TRAINER_REGISTRY.registered_names():
        cls = TRAINER_REGISTRY.get(name)
        classes.append(cls)
        fn = getattr(cls, "extend_cfg", None)
        if fn is not None and fn not in seen:
            seen.add(fn)
            fn(cfg)
    return classes
