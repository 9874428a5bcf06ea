"""Upstream compatibility: CoOp, MaPLe, APT and FAP configs and scripts load unchanged.

Called by ``promptengine.config.merge`` at three points (file, trailing opts, final config). What is translated is
declared by the trainer that owns it (class attributes read here through ``TRAINER_REGISTRY``):
- ``upstream_nodes``: upstream config nodes read as the method's (FAP's ``TRAINER.ZSROBUST`` as ``TRAINER.ADVVP``);
- ``upstream_names``: upstream trainer names of the method (FAP's ``zsrobust``), compared case-insensitively;
- ``upstream_unused``: keys upstream configs carry that the method does not read, accepted and dropped;
- ``removed_keys``: the method's own keys that are gone, ``{key: (old default, what to use instead)}``: a set value
  is a one-line error saying what replaces it; the old default (every earlier run's config.yaml holds it) is dropped;
- ``from_fap_attack(cfg, lambda_1, adv_term)``: FAP's loss keys (``ATTACK.PGD.LAMBDA_1/ADV_TERM``, read here) as
  the method's own keys (it returns the keys it set, for the note). This module turns the rest of ``ATTACK.PGD.*``
  into ``ATTACK.TRAIN.*`` (FAP's training attack) and the first test attack (PGD-TEST_ITER CE), so trainers and
  the attack core read one namespace.
Integer values for float keys (FAP's ``ATTACK.PGD.EPS 1``) are made floats where every value is set
(``merge.coerce``). Every translation prints one ``Note:`` line on stderr, so ``--print-config`` output stays a
clean YAML dump.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from yacs.config import CfgNode as CN

from ..clip.pixels import CLIP_MEAN, CLIP_STD
from ..errors import UserError
from ..registry import TRAINER_REGISTRY

FAP_KEYS = "ATTACK.PGD."  # FAP's attack namespace; setting any of its keys switches its translation on (USE)


def note(text: str) -> None:
    """One translation note on stderr (stdout may be a --print-config dump)."""
    print(f"Note: {text}", file=sys.stderr)


def declared(attribute: str) -> Iterator[Tuple[type, Any]]:
    """(trainer class, value) for every registered trainer that declares ``attribute`` itself (not inherited)."""
    for name in TRAINER_REGISTRY.registered_names():
        cls = TRAINER_REGISTRY.get(name)
        if attribute in vars(cls):
            yield cls, getattr(cls, attribute)


def node_aliases() -> Dict[str, str]:
    """Upstream node name -> ours (``TRAINER.<upstream>`` is read as ``TRAINER.<ours>``)."""
    return {old: new for _, nodes in declared("upstream_nodes") for old, new in nodes.items()}


def trainer_aliases() -> Dict[str, str]:
    """Upstream trainer name (lower case) -> our registered name."""
    return {alias.lower(): cls.__name__ for cls, names in declared("upstream_names") for alias in names}


def unused_keys() -> List[str]:
    return [key for _, keys in declared("upstream_unused") for key in keys]


def removed_keys() -> Dict[str, Tuple[Any, str]]:
    return {key: spec for _, keys in declared("removed_keys") for key, spec in keys.items()}


def _removed(key: str, source: str) -> UserError:
    """The one line for a removed key: where it was set and what replaces it."""
    return UserError(f"{key} (set in {source}) was removed; {removed_keys()[key][1]}")


def _check_removed(key: str, value: Any, source: str) -> None:
    """A removed key in a file: an error unless it holds its old default (an earlier run's config.yaml)."""
    if value != removed_keys()[key][0]:
        raise _removed(key, source)


def _pop_leaf(loaded: dict, key: str) -> Tuple[bool, Any]:
    """Remove the dotted ``key`` from a loaded YAML dict: (whether it was there, its value)."""
    *parents, leaf = key.split(".")
    node = loaded
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        return True, node.pop(leaf)
    return False, None


def _rename_nodes(loaded: dict, source: str) -> None:
    trainer = loaded.get("TRAINER")
    if not isinstance(trainer, dict):
        return
    for old, new in node_aliases().items():
        if old in trainer:
            if new in trainer:
                trainer[new] = {**trainer.pop(old), **trainer[new]}
            else:
                trainer[new] = trainer.pop(old)
            note(f"TRAINER.{old} in {source} is read as TRAINER.{new} (FAP's node name)")


def _unused_note(key: str, source: str) -> None:
    note(f"{key} in {source} is an upstream key this toolbox does not read; ignored")


def _drop_unused(loaded: dict, source: str) -> None:
    for key in unused_keys():
        if _pop_leaf(loaded, key)[0]:
            _unused_note(key, source)
    for key in removed_keys():
        found, value = _pop_leaf(loaded, key)
        if found:
            _check_removed(key, value, source)


def translate_file(loaded: dict, source: str) -> dict:
    """A loaded YAML dict in our vocabulary: upstream node names renamed, upstream keys nobody reads dropped (and
    removed keys at their old default; set, they are an error)."""
    if not isinstance(loaded, dict):
        return loaded
    _rename_nodes(loaded, source)
    _drop_unused(loaded, source)
    return loaded


def _rename_key(key: str, aliases: Dict[str, str]) -> str:
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "TRAINER" and parts[1] in aliases:
        new = ".".join([parts[0], aliases[parts[1]], *parts[2:]])
        note(f"{key} is read as {new} (FAP's node name)")
        return new
    return key


def translate_opts(opts: Sequence[str], source: str) -> List[str]:
    """Trailing ``KEY VALUE`` options in our vocabulary: upstream node names renamed, unread upstream keys dropped
    (values are left as given: ``merge.set_value`` parses them once); a removed key is an error."""
    aliases, unused, removed = node_aliases(), set(unused_keys()), removed_keys()
    out: List[str] = []
    for key, value in zip(opts[0::2], opts[1::2]):
        key = _rename_key(str(key), aliases)
        if key in unused:
            _unused_note(key, source)
            continue
        if key in removed:
            raise _removed(key, source)
        out += [key, value]
    return out


def switch_on_fap_attack(cfg: CN, key: str, source: str, provenance: Dict[str, str]) -> None:
    """A value set for one of FAP's ``ATTACK.PGD.*`` keys makes them drive the attack settings (``USE``, translated
    after the domain check)."""
    if key.startswith(FAP_KEYS) and key != FAP_KEYS + "USE":
        cfg.ATTACK.PGD.USE = True
        provenance.setdefault(FAP_KEYS + "USE", source)


def resolve_trainer_alias(cfg: CN) -> None:
    """Replace an upstream trainer name by ours (one note)."""
    name = cfg.TRAINER.NAME
    ours = trainer_aliases().get(str(name).lower())
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
    ``ATTACK.TEST`` section is enabled too). The rest (FAP's LAMBDA_1 and loss) is read by the trainers that declare
    ``from_fap_attack``.
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
    written = [read(cfg, float(p.LAMBDA_1), adv_term) for _, read in declared("from_fap_attack")]  # keys set
    also = "".join(f" and {keys}" for keys in written if keys)
    note(f"FAP's ATTACK.PGD.* keys set the training attack (ATTACK.TRAIN.*), the first test attack{also}")


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
