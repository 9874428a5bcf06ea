"""Structure checks: where facts and modules live in the source tree (one registry, one import path, one place per
fact)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from promptengine.protocols.layout import PROTOCOLS, SPECS
from promptengine.registry import TRAINER_REGISTRY, builtin_methods

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_CODE = ("promptengine", "trainers", "datasets")  # what the wheel installs (trainers/datasets inside it)
TOP_LEVEL_NAMES = ("trainers", "datasets")  # CoOp's folder names, imported only as promptengine.methods / .benchmarks


def python_files(*folders: str) -> Iterator[Tuple[str, ast.Module]]:
    """(path relative to the root, parsed module) of every .py file under ``folders``; symlinked folders are not
    followed, so each file is read once under its real folder."""
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(ROOT / folder):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "fake_dassl"))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def is_sys_path(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
            and node.value.id == "sys")


def sys_path_changes(tree: ast.Module) -> List[int]:
    """Lines that insert into, append to, extend or assign ``sys.path``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("insert", "append", "extend") and is_sys_path(node.value):
            lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            lines.extend(node.lineno for t in targets if is_sys_path(t))
    return lines


def top_level_imports(tree: ast.Module) -> List[Tuple[int, str]]:
    """(line, name) of every import of the top-level ``trainers`` / ``datasets`` packages, also by
    ``importlib.import_module("...")``."""
    found = []
    for node in ast.walk(tree):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found.extend((node.lineno, n) for n in names if n.split(".")[0] in TOP_LEVEL_NAMES)
    return found


def test_package_code_never_changes_sys_path():
    offenders = [f"{path}:{line}" for path, tree in python_files(*PACKAGE_CODE)
                 for line in sys_path_changes(tree)]
    assert offenders == [], "package code changes sys.path (import by the package name instead)"


def test_no_module_imports_the_top_level_trainers_or_datasets():
    """Package, tools and tests use ``promptengine.methods`` / ``promptengine.benchmarks``, the names the wheel has
    (the stand-in Dassl fork under tests/fake_dassl, which models a user's repository, is not scanned)."""
    folders = (*PACKAGE_CODE, "tools", "tests")
    offenders = [f"{path}:{line} imports {name}" for path, tree in python_files(*folders)
                 for line, name in top_level_imports(tree)]
    offenders += [f"train.py:{line} imports {name}" for line, name in top_level_imports(ast.parse((ROOT / "train.py")
                                                                                                 .read_text()))]
    assert offenders == []


def test_one_module_defines_the_registries_and_the_builtin_locations():
    """The registries, the method list, the import of the built-ins and the shipped-file lookup live in one module."""
    names = {"Registry", "TRAINER_REGISTRY", "DATASET_REGISTRY", "Method", "registered_methods", "import_builtin",
             "import_submodules", "find_config", "shipped_configs"}
    where = {}
    for path, tree in python_files(*PACKAGE_CODE, "tools"):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined = [t.id for t in targets if isinstance(t, ast.Name)]
            else:
                continue
            for name in set(defined) & names:
                where.setdefault(name, []).append(path)
    assert where == {name: ["promptengine/registry.py"] for name in names}


def test_checkout_imports_the_builtins_under_the_wheels_names():
    """In a checkout the built-ins load as promptengine.methods / .benchmarks from CoOp's top-level folders, and no
    module named ``trainers`` or ``datasets`` is imported."""
    import promptengine.benchmarks
    import promptengine.methods
    from promptengine.registry import CONFIGS, DATASET_REGISTRY, TRAINER_REGISTRY, import_builtin

    import_builtin()
    assert TRAINER_REGISTRY.get("CAPT").__module__ == "promptengine.methods.capt"
    assert DATASET_REGISTRY.get("OxfordPets").__module__ == "promptengine.benchmarks.oxford_pets"
    folders = [Path(promptengine.methods.__path__[0]).resolve(), Path(promptengine.benchmarks.__path__[0]).resolve()]
    assert folders + [CONFIGS] == [ROOT / "trainers", ROOT / "datasets", ROOT / "configs"]
    assert sorted(n for n in sys.modules if n.split(".")[0] in TOP_LEVEL_NAMES) == []


def test_a_tool_finds_the_package_through_its_link_and_records_the_checkout():
    """``python tools/<name>.py`` puts tools/ first on sys.path: the package comes through the ``tools/promptengine``
    link (no sys.path change in the tool), and the provenance still names the checkout's commit."""
    from promptengine.engine.provenance import code_version
    from promptengine.registry import HOME

    code = ("import json, promptengine.engine.provenance as p, promptengine.registry as r\n"
            "print(json.dumps([p.__file__, p.code_version(), str(r.HOME)]))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "tools", env=env, capture_output=True, text=True,
                         check=True)
    where, version, home = json.loads(out.stdout)
    assert Path(where).parent.parent == ROOT / "tools" / "promptengine"
    assert version == code_version() and home == str(HOME) == str(ROOT)


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
    package = builtin_methods().__name__
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


SOURCE_DIRS = ("configs", "datasets", "docs", "promptengine", "scripts", "tests", "tools", "trainers")


def test_openai_checksums_live_only_in_the_clip_package():
    """OpenAI's SHA-256s are part of the clip package's download URLs; the weights catalogue reads them from there.
    A copy anywhere in the repository could silently disagree with the URL clip.load checks."""
    from promptengine.clip.openai_clip import clip

    hashes = {re.search(r"/([0-9a-f]{64})/", url)[1] for url in clip.clip._MODELS.values()}
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in
             (".py", ".yaml", ".md", ".sh", ".json", ".txt")] + [ROOT / "README.md", ROOT / "DATASETS.md"]
    copies = [(str(p.relative_to(ROOT)), h[:12]) for p in files for h in hashes if h in p.read_text(errors="ignore")]
    assert not copies, f"OpenAI checksums copied into the repository (read them from the clip package): {copies}"


# ---- protocols: one definition, no reach into tools/ ----------------------------------------------------------------
LAYOUT_MODULE = "promptengine/protocols/layout.py"


def _package_trees():
    """(path relative to the repository, parsed tree) of every module of the package."""
    for path in sorted((ROOT / "promptengine").rglob("*.py")):
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
    for rel, tree in _package_trees():
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
    for rel, tree in _package_trees():
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
    for rel, tree in _package_trees():
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
