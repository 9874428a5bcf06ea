"""The methods the protocols run, from the trainer registry: each trainer names its script folder, its default config
and where its configs live, so the runner needs no list of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from ..errors import UserError
from ..registry import Method, registered_methods
from .layout import SPECS, protocols_of


def method_table() -> Dict[str, Method]:
    """Script folder -> method, for every registered trainer that has protocol scripts, sorted by folder."""
    methods = sorted(registered_methods(with_scripts=True), key=lambda m: m.script_folder)
    return {m.script_folder: m for m in methods}


def resolve_method(name: str, table: Dict[str, Method]) -> Method:
    """A script folder (capt) or trainer name (CAPT, ZeroshotCLIP), in any case, to its method."""
    for folder, method in table.items():
        if name.lower() in (folder.lower(), method.trainer.lower()):
            return method
    known = ", ".join(f"{folder} ({method.trainer})" for folder, method in table.items())
    raise UserError(f"unknown method '{name}' (known: {known})")


def config_file(method: Method, cfg: str) -> Path:
    """``<config_dir>/<cfg>.yaml`` of the method; a missing one is one line listing the method's configs."""
    path = method.config_dir / f"{cfg}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in method.config_dir.glob("*.yaml"))
        raise UserError(f"no config '{cfg}' for {method.trainer}: {path} does not exist "
                        f"(available: {' '.join(have) or 'none'})")
    return path


def method_protocols(method: Method) -> Tuple[str, ...]:
    """The protocols a method has scripts for (``layout.protocols_of`` of its class attributes)."""
    return protocols_of(method.tunes_tower, method.training_free)


def check_offers(method: Method, protocol: str) -> None:
    """A method asked for a protocol it has no scripts for is one line naming the methods that have them."""
    if protocol not in method_protocols(method):
        have = [m.script_folder for m in method_table().values() if protocol in method_protocols(m)]
        raise UserError(f"{method.trainer} has no {protocol} protocol ({SPECS[protocol].title}: for methods that "
                        f"tune the vision tower and the zero-shot reference; these have it: {' '.join(have)})")
