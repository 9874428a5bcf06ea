"""Structure checks: where facts live in the package (each check names the module that owns the fact)."""

import ast
from pathlib import Path

from promptengine.protocols.layout import PROTOCOLS, SPECS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "promptengine"
LAYOUT_MODULE = "promptengine/protocols/layout.py"


def _package_modules():
    """(path relative to the repository, parsed tree) of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _docstrings(tree: ast.AST) -> set:
    """ids of the string nodes that are docstrings (they may describe the layout; they define nothing)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def test_no_package_module_imports_from_tools():
    """tools/ holds command-line wrappers around the package; the package never reaches back into them."""
    tool_modules = {"tools"} | {p.stem for p in (ROOT / "tools").glob("*.py")}
    found = []
    for rel, tree in _package_modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{rel}:{node.lineno} imports {name}" for name in names if name.split(".")[0] in tool_modules]
    assert not found, found


def test_protocol_names_are_listed_in_one_module():
    """A list (tuple, set, dict keys) of the protocols exists only where the protocols are defined."""
    listed = []
    for rel, tree in _package_modules():
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(
                node, (ast.Tuple, ast.List, ast.Set)) else []
            names = {i.value for i in items if isinstance(i, ast.Constant) and i.value in PROTOCOLS}
            if len(names) >= 3:
                listed.append(f"{rel}:{node.lineno}")
    assert {entry.split(":")[0] for entry in listed} <= {LAYOUT_MODULE}, listed


def test_output_layout_strings_are_spelled_in_one_module():
    """The folder names of the output layout (phase folders, ``shots_<K>``, ``seed<S>``, the layout pattern) are
    written only in the layout module; the runner, the sweep and the readers use its names."""
    phases = {phase for spec in SPECS.values() for phase in spec.phases if "_" in phase}  # train_base, test_new, ...
    spelled = []
    for rel, tree in _package_modules():
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):  # f"seed{seed}", f"shots_{k}"
                parts = node.values
                for part, nxt in zip(parts, parts[1:]):
                    if isinstance(part, ast.Constant) and isinstance(nxt, ast.FormattedValue) and (
                            str(part.value) == "seed" or str(part.value).endswith(("/seed", "shots_"))):
                        spelled.append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                text = node.value
                if text in phases or "shots_" in text or "<phase>" in text:
                    spelled.append(f"{rel}:{node.lineno}")
    assert {entry.split(":")[0] for entry in spelled} <= {LAYOUT_MODULE}, spelled
