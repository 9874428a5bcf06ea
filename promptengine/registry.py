"""The registries of methods and dataset loaders, the built-ins that fill them, and where the shipped files are.

The built-in methods, dataset loaders and configs have one name in a checkout and in an installed wheel:
``promptengine.methods``, ``promptengine.benchmarks`` and ``promptengine/configs``. In a checkout these are relative
symlinks to CoOp's top-level ``trainers/``, ``datasets/`` and ``configs/`` folders; the wheel ships copies of them
(``setup.py``). Nothing here changes ``sys.path``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, TypeVar

from .errors import UserError

T = TypeVar("T")

PACKAGE = Path(__file__).resolve().parent
METHODS = "promptengine.methods"  # trainers/ in a checkout
BENCHMARKS = "promptengine.benchmarks"  # datasets/ in a checkout
#: the shipped configs (``configs/`` of the checkout, its copy in the wheel), by their real path for messages
CONFIGS = (PACKAGE / "configs").resolve()
#: where the protocol scripts (``scripts/``) and the tools (``tools/``) are: the checkout, or their copy in the wheel
HOME = PACKAGE / "_home" if (PACKAGE / "_home").is_dir() else PACKAGE.parent
CHECKOUT = HOME == PACKAGE.parent  # a checkout (or an editable install of one), not an installed wheel
#: modules of the user's own trainers and dataset loaders, imported after the built-ins (docs/METHODS.md)
PLUGINS_VARIABLE = "PROMPTENGINE_PLUGINS"


# --- the registries --------------------------------------------------------------------------------------------------


def closest(name: str, choices: List[str]) -> str:
    """The closest valid choice (case-insensitive first, then fuzzy), or '' if nothing is close."""
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.4)
    if not match:
        match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.4)
        match = [lowered[m] for m in match]
    return match[0] if match else ""


class Registry:
    """Maps a class name to the class; ``register()`` is used as a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, type] = {}

    def register(self, force: bool = False) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            name = cls.__name__  # type: ignore[attr-defined]
            if name in self._items and not force and self._items[name] is not cls:
                raise KeyError(f"{self.kind} '{name}' is already registered")
            self._items[name] = cls  # type: ignore[assignment]
            return cls

        return deco

    def get(self, name: str) -> type:
        if name not in self._items:
            hint = closest(name, self.registered_names())
            hint_text = f"; did you mean '{hint}'?" if hint else ""
            raise UserError(
                f"unknown {self.kind.lower()} '{name}'{hint_text} "
                f"(registered: {', '.join(sorted(self.registered_names()))})"
            )
        return self._items[name]

    def registered_names(self) -> List[str]:
        return list(self._items)

    def with_role(self, role: str) -> str:
        """The name of the one registered class that declares ``role`` in its own ``roles`` (e.g. "zero_shot"), so
        code outside a method's file asks for what it needs instead of naming the method."""
        names = [name for name, cls in self._items.items() if role in vars(cls).get("roles", ())]
        if len(names) != 1:
            found = f": {', '.join(names)}" if names else ""
            raise UserError(f"{len(names)} registered {self.kind.lower()}s declare the role '{role}'{found}; exactly "
                            "one must (set `roles` on its class)")
        return names[0]

    def __contains__(self, name: str) -> bool:
        return name in self._items


TRAINER_REGISTRY = Registry("TRAINER")
DATASET_REGISTRY = Registry("DATASET")


# --- the built-ins ---------------------------------------------------------------------------------------------------


def import_submodules(package: ModuleType) -> None:
    """Import every public module of a package so that its registry decorators run (the packages' ``__init__``)."""
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def builtin_methods() -> ModuleType:
    """``promptengine.methods``, imported (every built-in trainer registered). Imported by name, on demand: its
    modules import this one to register themselves."""
    return importlib.import_module(METHODS)


def builtin_benchmarks() -> ModuleType:
    """``promptengine.benchmarks``, imported (every built-in dataset loader registered)."""
    return importlib.import_module(BENCHMARKS)


def import_plugins() -> None:
    """Import the modules named in $PROMPTENGINE_PLUGINS (commas or spaces between names; importable from sys.path,
    e.g. through PYTHONPATH), so that a method or dataset outside the toolbox registers itself as the built-ins do."""
    for name in re.split(r"[,\s]+", os.environ.get(PLUGINS_VARIABLE, "")):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"{PLUGINS_VARIABLE}: cannot import '{name}' ({exc}); put its folder on PYTHONPATH or "
                            "correct the module name") from exc


def import_builtin() -> None:
    """Register every built-in dataset loader and trainer (and so every trainer's config keys), then the user's
    plug-ins."""
    builtin_benchmarks()
    builtin_methods()
    import_plugins()


@dataclass(frozen=True)
class Method:
    """A registered method as the protocol runner, the tests and the docs checks see it."""

    trainer: str  # registered class name (--trainer)
    script_folder: str  # scripts/<folder>/*.sh; "" when the method has no protocol scripts
    default_config: str  # <config_dir>/<default_config>.yaml used by its scripts
    config_dir: Path  # its configs: configs/trainers/<trainer>/, or the folder its class names (a plug-in's)
    training_free: bool = False  # nothing to train: the protocols only evaluate it
    tunes_tower: bool = False  # tunes CLIP's vision tower for zero-shot use (class attribute, inherited)


def registered_methods(with_scripts: bool = False) -> List[Method]:
    """Every registered trainer, in registration order (only those with protocol scripts when ``with_scripts``).

    A trainer class names its protocol scripts and default config itself (``script_folder``, ``default_config``), so
    adding a method never means editing a list elsewhere."""
    builtin_methods()
    import_plugins()  # and the user's own ($PROMPTENGINE_PLUGINS)
    out = []
    for name in TRAINER_REGISTRY.registered_names():
        cls = TRAINER_REGISTRY.get(name)
        own = vars(cls)  # a subclass does not inherit its parent's scripts or configs
        config_dir = Path(own["config_dir"]) if own.get("config_dir") else CONFIGS / "trainers" / name
        method = Method(name, own.get("script_folder", ""), own.get("default_config", ""), config_dir,
                        bool(getattr(cls, "training_free", False)), bool(getattr(cls, "tunes_tower", False)))
        if method.script_folder or not with_scripts:
            out.append(method)
    return out


def test_time_nodes() -> List[str]:
    """Config prefixes (``TRAINER.<NODE>.``) of the registered test-time defenses (``test_time_node``): their keys
    act only when a model is evaluated, so they belong to a run's evaluation identity, never to its weights'."""
    nodes = (getattr(TRAINER_REGISTRY.get(name), "test_time_node", "") for name in TRAINER_REGISTRY.registered_names())
    return sorted({f"TRAINER.{node}." for node in nodes if node})


def test_time_defense(name: str) -> type:
    """The defense trainer ``TEST.DEFENSE`` names (one with a ``test_time_node``); anything else is a one-line error."""
    cls = TRAINER_REGISTRY.get(name)
    if not getattr(cls, "test_time_node", ""):
        defenses = [n for n in TRAINER_REGISTRY.registered_names()
                    if getattr(TRAINER_REGISTRY.get(n), "test_time_node", "")]
        raise UserError(f"TEST.DEFENSE {name} is not a test-time defense; use one of {', '.join(defenses)} "
                        "(or none)")
    return cls


# --- the shipped configs ---------------------------------------------------------------------------------------------


def shipped_configs(kind: str, trainer: str = "") -> List[str]:
    """Names of the shipped dataset configs, or of one trainer's configs (``kind``: dataset | trainer)."""
    folder = CONFIGS / ("datasets" if kind == "dataset" else os.path.join("trainers", trainer))
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_config(value: str, kind: str, trainer: str = "") -> str:
    """A config file given by path (as always), or by its name among the shipped configs so the toolbox works from
    any directory: ``oxford_pets`` / ``configs/datasets/oxford_pets.yaml``; ``synth`` or ``CAPT/synth`` for a
    trainer config. A path that exists wins; a name that matches nothing is a one-line error listing the names."""
    if not value or os.path.isfile(value):
        return value
    candidates: List[Path] = []
    rel = Path(value)
    candidates.append(CONFIGS.parent / rel if rel.parts[:1] == ("configs",) else CONFIGS / rel)
    stem = rel.name[:-5] if rel.name.endswith(".yaml") else rel.name
    if kind == "dataset":
        candidates.append(CONFIGS / "datasets" / f"{stem}.yaml")
    else:
        owner = rel.parent.name if len(rel.parts) > 1 else trainer
        if owner:
            candidates.append(CONFIGS / "trainers" / owner / f"{stem}.yaml")
    found: Optional[Path] = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return str(found)
    flag = "--dataset-config-file" if kind == "dataset" else "--config-file"
    names = shipped_configs(kind, trainer)
    known = f"; shipped names: {' '.join(names)}" if names else ""
    raise UserError(f"config file not found: {value} (give a path, or a shipped config name to {flag}{known})")
