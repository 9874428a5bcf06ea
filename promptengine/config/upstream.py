"""Upstream compatibility: CoOp, MaPLe, APT and FAP configs and scripts load unchanged.

Called by ``promptengine.config.merge`` at three points (file, trailing opts, final config):
- integer values for float keys (FAP's ``ATTACK.PGD.EPS 1``) become floats;
- FAP's config nodes ``TRAINER.ZSROBUST`` and ``TRAINER.ADVIVLP`` are read as ``TRAINER.ADVVP`` and ``TRAINER.IVLP``;
- FAP's trainer names (``ADVIVLP``, ``advMaPLe``, ``zsrobust``, ``AdvZeroshotCLIP``) name our trainers;
- FAP's attack keys ``ATTACK.PGD.*`` become ``ATTACK.TRAIN.*`` (its training attack), the first test attack
  (PGD-TEST_ITER CE) and ``TRAINER.FAP.LAMBDA/ADV_TERM``, so trainers and the attack core read one namespace.
Every translation prints one ``Note:`` line on stderr, so ``--print-config`` output stays a clean YAML dump.
"""

from __future__ import annotations

import sys
from ast import literal_eval
from typing import Dict, List, Sequence

from yacs.config import CfgNode as CN

from ..clip.pixels import CLIP_MEAN, CLIP_STD
from ..errors import UserError

# FAP's node name -> ours (same keys; ZSROBUST.VISUAL_PROMPT_METHOD is declared by AdvVP)
NODE_ALIASES: Dict[str, str] = {"ZSROBUST": "ADVVP", "ADVIVLP": "IVLP"}
# upstream trainer names (compared case-insensitively, as FAP's scripts spell them in lower case) -> ours
TRAINER_ALIASES: Dict[str, str] = {
    "advivlp": "AdvVLP",
    "advmaple": "AdvMaPLe",
    "zsrobust": "AdvVP",
    "advzeroshotclip": "ZeroshotCLIP",
}


def note(text: str) -> None:
    """One translation note on stderr (stdout may be a --print-config dump)."""
    print(f"Note: {text}", file=sys.stderr)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def coerce_ints(default, value):
    """``value`` as a float where the default is a float and ``value`` an int (also inside lists/tuples)."""
    if isinstance(default, float) and _is_int(value):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)) and default:
        if all(isinstance(d, float) for d in default):
            return type(value)(float(v) if _is_int(v) else v for v in value)
    return value


def _rename_nodes(loaded: dict, source: str) -> None:
    trainer = loaded.get("TRAINER")
    if not isinstance(trainer, dict):
        return
    for old, new in NODE_ALIASES.items():
        if old in trainer:
            if new in trainer:
                trainer[new] = {**trainer.pop(old), **trainer[new]}
            else:
                trainer[new] = trainer.pop(old)
            note(f"TRAINER.{old} in {source} is read as TRAINER.{new} (FAP's node name)")


def _coerce_tree(cfg: CN, loaded: dict) -> None:
    for k, v in loaded.items():
        if k not in cfg:
            continue  # the unknown-key check names it
        if isinstance(v, dict) and isinstance(cfg[k], CN):
            _coerce_tree(cfg[k], v)
        else:
            loaded[k] = coerce_ints(cfg[k], v)


def translate_file(cfg: CN, loaded: dict, source: str) -> dict:
    """A loaded YAML dict in our vocabulary: FAP's node names renamed, ints for float keys made floats."""
    if not isinstance(loaded, dict):
        return loaded
    _rename_nodes(loaded, source)
    _coerce_tree(cfg, loaded)
    return loaded


def _rename_key(key: str) -> str:
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "TRAINER" and parts[1] in NODE_ALIASES:
        new = ".".join([parts[0], NODE_ALIASES[parts[1]], *parts[2:]])
        note(f"{key} is read as {new} (FAP's node name)")
        return new
    return key


def _default_of(cfg: CN, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, CN) or part not in node:
            return None
        node = node[part]
    return node


def translate_opts(cfg: CN, opts: Sequence[str]) -> List[str]:
    """Trailing ``KEY VALUE`` options in our vocabulary (values stay strings; ``1`` -> ``1.0`` for float keys)."""
    out: List[str] = []
    for i, item in enumerate(opts):
        if i % 2 == 0:
            out.append(_rename_key(str(item)))
            continue
        default = _default_of(cfg, out[-1])
        try:
            parsed = literal_eval(item) if isinstance(item, str) else item
        except (ValueError, SyntaxError):
            out.append(item)
            continue
        coerced = coerce_ints(default, parsed)
        out.append(repr(coerced) if coerced is not parsed else item)
    return out


def resolve_trainer_alias(cfg: CN) -> None:
    """Replace an upstream trainer name by ours (one note)."""
    name = cfg.TRAINER.NAME
    ours = TRAINER_ALIASES.get(str(name).lower())
    if ours and ours != name:
        note(f"trainer '{name}' (FAP's name) runs as '{ours}'")
        cfg.TRAINER.NAME = ours


def check_pixel_stats(cfg: CN) -> None:
    """INPUT.PIXEL_MEAN/STD must be CLIP's: normalisation happens once, inside the model, with CLIP's values."""
    for key, clip_values in (("PIXEL_MEAN", CLIP_MEAN), ("PIXEL_STD", CLIP_STD)):
        given = [float(v) for v in cfg.INPUT[key]]
        if len(given) != 3 or any(abs(a - b) > 1e-6 for a, b in zip(given, clip_values)):
            raise UserError(f"INPUT.{key} {given} differs from CLIP's {list(clip_values)}: images are normalised "
                            f"inside the model with CLIP's values only; remove INPUT.{key} or set CLIP's values")


def translate_fap_attack(cfg: CN) -> None:
    """FAP's ``ATTACK.PGD.*`` (``USE`` is set when a YAML or opts name any of them) in our namespace, once, after the
    domain check has accepted their values.

    Training attack: eps EPS, step ALPHA, TRAIN_ITER steps, KL(clean || adv) unless ADV_TERM is ce (FAP's TRADES
    option). Test: PGD-TEST_ITER CE as the first ``ATTACK.TEST.ATTACKS`` string (first of all test attacks unless the
    ``ATTACK.TEST`` section is enabled too). FAP's loss: LAMBDA_1, and the cos-weighted KL when ADV_TERM is cos or ce.
    """
    p = cfg.ATTACK.PGD
    if not p.USE:
        return
    train = cfg.ATTACK.TRAIN
    adv_term = str(p.ADV_TERM).strip().lower()
    train.update(ENABLED=True, METHOD="pgd", NORM="linf", EPS=float(p.EPS), ALPHA=float(p.ALPHA),
                 STEPS=int(p.TRAIN_ITER), RESTARTS=1, RANDOM_START=True, LOSS="ce" if adv_term == "ce" else "kl")
    if p.TEST_ITER > 0:  # a reloaded config.yaml already holds it: never twice
        text = f"pgd:steps={p.TEST_ITER},eps={float(p.EPS)!r},alpha={float(p.ALPHA)!r},loss=ce"
        cfg.ATTACK.TEST.ATTACKS = (text, *[a for a in cfg.ATTACK.TEST.ATTACKS if a != text])
    if "FAP" in cfg.TRAINER:
        cfg.TRAINER.FAP.LAMBDA = float(p.LAMBDA_1)
        if adv_term in ("cos", "ce"):
            cfg.TRAINER.FAP.ADV_TERM = "cos"
    note("FAP's ATTACK.PGD.* keys set the training attack (ATTACK.TRAIN.*), the first test attack and "
         "TRAINER.FAP.LAMBDA/ADV_TERM")


def with_fap_translated(cfg: CN) -> CN:
    """``cfg``, or a copy with FAP's keys translated when a config merged outside ``build_cfg`` (a Dassl
    ``train.py``) asks for them with ``ATTACK.PGD.USE True``; the copy is frozen when ``cfg`` was."""
    if not cfg.ATTACK.PGD.USE:
        return cfg
    out = cfg.clone()
    out.defrost()
    translate_fap_attack(out)
    if cfg.is_frozen():
        out.freeze()
    return out


def finalize(cfg: CN) -> None:
    """Before the domain check: upstream trainer names, and the normalisation check."""
    resolve_trainer_alias(cfg)
    check_pixel_stats(cfg)
