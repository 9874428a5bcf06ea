"""Structure checks: where facts live in the source tree (read with ``ast``, nothing is run)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from promptengine.builtin import builtin_package
from promptengine.registry import TRAINER_REGISTRY

ROOT = Path(__file__).resolve().parents[1]


# ---- a method's name is written in its trainer file and the registry only ------------------------------------------
def code_strings(source: str) -> Iterator[Tuple[int, str]]:
    """(line, value) of every string constant the code uses; docstrings and other bare string statements (prose,
    never compared or passed anywhere) are left out."""
    tree = ast.parse(source)
    prose = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            yield node.lineno, node.value


def builtin_method_files() -> Dict[str, Path]:
    """Registered name -> the file defining the class, for the built-in methods (tests register their own)."""
    package = builtin_package("trainers").__name__
    out = {}
    for name in TRAINER_REGISTRY.registered_names():
        module = TRAINER_REGISTRY.get(name).__module__
        if module.startswith(package + "."):
            out[name] = Path(sys.modules[module].__file__).resolve()
    return out


def is_registry(path: Path) -> bool:
    registry = ROOT / "promptengine" / "registry"
    return path == registry.with_suffix(".py") or registry in path.parents


def test_method_names_appear_only_in_their_trainer_file_and_the_registry():
    """Code outside a method's own file asks the registry (roles, script folders, declared upstream names) instead of
    testing for the method's name: a quoted registered name in promptengine/ or in another trainer file fails."""
    owners = builtin_method_files()
    assert len(owners) >= 13, sorted(owners)
    fap = owners["FAP"]
    assert any(v == "FAP" for _, v in code_strings(fap.read_text())), "the scan no longer finds a name in its own file"
    assert not any(v == "CAPT" for _, v in code_strings('"""CAPT"""\ndef f():\n    """CAPT"""\n')), "prose is code"
    files = [*(ROOT / "promptengine").rglob("*.py"), *(ROOT / "trainers").rglob("*.py")]
    misplaced: List[str] = []
    for path in files:
        path = path.resolve()
        if is_registry(path):
            continue
        for line, value in code_strings(path.read_text()):
            if value in owners and owners[value] != path:
                misplaced.append(f"{path.relative_to(ROOT)}:{line} '{value}'")
    assert not misplaced, ("method names outside their trainer file and the registry (declare a role or an upstream "
                           f"name on the trainer class and ask promptengine.registry.TRAINER_REGISTRY): {misplaced}")
