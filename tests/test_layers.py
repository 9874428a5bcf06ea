"""The package's shape: imports only point down a declared layer order and never close a circle, every function-level
import says why it is deferred, every package folder states its responsibility, no source file is over 400 lines, and
one function computes accuracy and one the worst case."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from tests.conftest import ROOT

PACKAGE = Path(ROOT) / "promptengine"

#: The layers of the package, bottom first: a module may import from its own layer and from the layers below it,
#: never from a layer above. A unit is a folder of promptengine/ or one of its top-level modules ("promptengine" is
#: the package's own __init__). Derived from the imports as they are; the circle test keeps each layer acyclic.
IMPORT_LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("foundation", ("promptengine", "_startup", "errors", "cache", "distributed", "registry")),
    ("model and attacks", ("clip", "attacks")),
    ("data", ("data",)),
    ("evaluation", ("evaluation",)),
    ("engine", ("engine",)),
    ("configuration, weights files and the embedded world", ("config", "weights", "synth")),
    ("method composition", ("prompting",)),
    ("command-line plumbing, protocols, result tables, benchmarks", ("cli", "protocols", "reporting", "bench")),
    ("robustness reports, the Dassl plug-in, studies", ("robustness", "dassl_plugin", "lab")),
    ("programs", ("apps",)),
    ("sweeps", ("sweep",)),
)

#: A function-level import must say why it is not at the top of its module (the word on its line or just above it).
DEFERRAL_WORDS = ("optional", "deferred")


def _package_modules() -> Dict[str, Path]:
    """Dotted module name -> file, for every module of promptengine/."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported_modules(module: str, path: Path, node: ast.AST, modules: Dict[str, Path]) -> List[str]:
    """The package modules an import statement loads (``from pkg import submodule`` names the submodule)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
    return [n for n in names if n in modules]


def _imports_under(node: ast.AST, module: str, path: Path, modules: Dict[str, Path], in_function: bool
                   ) -> Iterator[Tuple[str, str, ast.stmt, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for target in _imported_modules(module, path, child, modules):
                if target != module:
                    yield module, target, child, in_function
        inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield from _imports_under(child, module, path, modules, inside)


def _package_imports() -> Iterator[Tuple[str, str, ast.stmt, bool]]:
    """(importer, imported, statement, inside a function) for every import of a package module by a package module:
    module-level, function-level and TYPE_CHECKING imports alike."""
    modules = _package_modules()
    for module, path in modules.items():
        yield from _imports_under(ast.parse(path.read_text(encoding="utf-8")), module, path, modules, False)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _circles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_between_modules_or_package_folders():
    modules: Dict[str, Set[str]] = defaultdict(set)
    units: Dict[str, Set[str]] = defaultdict(set)
    for importer, imported, _, _ in _package_imports():
        modules[importer].add(imported)
        if _unit(importer) != _unit(imported):
            units[_unit(importer)].add(_unit(imported))
    assert _circles(modules) == [], "modules that import each other (function-level imports count too)"
    assert _circles(units) == [], "package folders that import each other"


def test_imports_only_point_down_the_declared_layers():
    layer_of = {unit: i for i, (_, units) in enumerate(IMPORT_LAYERS) for unit in units}
    present = {_unit(m) for m in _package_modules()}
    assert present - set(layer_of) == set(), "a folder or top-level module missing from IMPORT_LAYERS: declare its layer"
    assert set(layer_of) - present == set(), "IMPORT_LAYERS names a unit the package no longer has"
    upward = sorted(f"{importer} -> {imported} (line {node.lineno}): {IMPORT_LAYERS[layer_of[_unit(importer)]][0]} "
                    f"imports {IMPORT_LAYERS[layer_of[_unit(imported)]][0]}"
                    for importer, imported, node, _ in _package_imports()
                    if layer_of[_unit(imported)] > layer_of[_unit(importer)])
    assert upward == []


def test_function_level_imports_say_why_they_are_deferred():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                start = node.lineno - 1  # the statement's line, then the imports and comments right above it
                while start > 0 and lines[start - 1].strip().startswith(("#", "from ", "import ")):
                    start -= 1
                said = " ".join(line for line in lines[start:node.end_lineno] if "#" in line).lower()
                if not any(word in said for word in DEFERRAL_WORDS):
                    unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert sorted(set(unexplained)) == [], "move these imports to the top of the module, or comment why they wait"


def test_every_package_folder_states_its_responsibility_in_one_line():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")), clean=False)
        where = init.relative_to(PACKAGE.parent)
        assert doc, f"{where} has no docstring saying what the folder is responsible for"
        first, _, rest = doc.partition("\n")
        assert first.strip().endswith(".") and (not rest or rest.startswith("\n")), (
            f"{where}: the docstring's first line must be one full sentence on its own ({first!r})")


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def _is_inline_accuracy(node: ast.AST) -> bool:
    """``(a == b).float().mean()``: an accuracy computed by hand."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "mean"
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute)
            and node.func.value.func.attr == "float" and isinstance(node.func.value.func.value, ast.Compare))


def test_one_function_computes_accuracy_and_one_the_worst_case():
    defined = defaultdict(list)
    by_hand = []
    for folder in ("promptengine", "trainers", "tools"):
        for path in sorted((Path(ROOT) / folder).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("accuracy", "worst_case"):
                    defined[node.name].append(where)
                if _is_inline_accuracy(node):
                    by_hand.append(f"{where}:{node.lineno}")
    one = ["promptengine/evaluation/metrics.py"]
    assert dict(defined) == {"accuracy": one, "worst_case": one}
    assert by_hand == [], "use promptengine.evaluation.metrics.accuracy"


def test_reports_take_their_verdicts_from_the_one_evaluator():
    """robustness/ and reporting/ craft no adversarial example and judge none: ``promptengine.evaluation`` does."""
    attacking = {"attack", "attack_outcome", "run_autoattack", "logits_of", "pgd", "autoattack"}
    judging = [f"{importer} imports {imported}" for importer, imported, node, _ in _package_imports()
               if _unit(importer) in ("robustness", "reporting") and _unit(imported) == "attacks"
               and (isinstance(node, ast.Import) or {a.name for a in node.names} & attacking)]
    assert judging == []
