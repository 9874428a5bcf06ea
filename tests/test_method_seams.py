"""The seams a new method plugs into: one KL, one attack namespace, prompt couplings as classes, the method list
from the registry, and docs that cite only files of the repository."""

import ast
import re
from pathlib import Path

import pytest
import torch

from promptengine.attacks import losses
from promptengine.attacks import spec as attack_spec
from promptengine.clip.couplings import COUPLINGS, Coupling
from promptengine.config.merge import build_cfg
from promptengine.registry import METHODS, TRAINER_REGISTRY, registered_methods

ROOT = Path(__file__).resolve().parents[1]
KL_HOME = ROOT / "promptengine" / "attacks" / "losses.py"


# ---- one KL ------------------------------------------------------------------------------------------------------
def test_fap_and_capt_objectives_use_the_attack_cores_kl():
    from promptengine.methods import capt_loss, objectives

    assert objectives.kl_per_sample is losses.kl_per_sample and capt_loss.kl is losses.kl_per_sample
    p, q = torch.randn(6, 5), torch.randn(6, 5)
    expected = (torch.softmax(p, 1) * (torch.log_softmax(p, 1) - torch.log_softmax(q, 1))).sum(1)
    assert torch.allclose(losses.kl_per_sample(p, q), expected, atol=1e-6)
    assert torch.equal(losses.kl_to_clean(q, torch.log_softmax(p, 1)), losses.kl_per_sample(p, q))


def _kl_like(tree: ast.AST) -> list:
    """Calls of F.kl_div / kl_div, and products `x.exp() * (x - y)` (a hand-written KL)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "kl_div":
            found.append(node.lineno)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            sides = (node.left, node.right)
            exp = any(isinstance(s, ast.Call) and getattr(s.func, "attr", "") == "exp" for s in sides)
            diff = any(isinstance(s, ast.BinOp) and isinstance(s.op, ast.Sub) for s in sides)
            if exp and diff:
                found.append(node.lineno)
    return found


# written on purpose without the toolbox's code: the benchmark's reference step, the oracle the engine is timed against
INDEPENDENT_REFERENCES = (ROOT / "promptengine" / "bench" / "cases.py",)


def test_no_second_kl_implementation_anywhere():
    files = [p for folder in ("promptengine", "trainers", "tools") for p in (ROOT / folder).rglob("*.py")
             if p not in INDEPENDENT_REFERENCES]
    assert _kl_like(ast.parse(KL_HOME.read_text())), "the detector no longer finds the one KL"
    others = {str(p.relative_to(ROOT)): hits for p in files if p != KL_HOME
              for hits in [_kl_like(ast.parse(p.read_text()))] if hits}
    assert not others, f"KL written again outside promptengine/attacks/losses.py: {others}"


# ---- one attack namespace ----------------------------------------------------------------------------------------
FAP_OPTS = ["TRAINER.NAME", "FAP", "ATTACK.PGD.EPS", "4", "ATTACK.PGD.ALPHA", "1", "ATTACK.PGD.TRAIN_ITER", "3",
            "ATTACK.PGD.TEST_ITER", "20", "ATTACK.PGD.LAMBDA_1", "2.5", "ATTACK.PGD.ADV_TERM", "cos"]


def test_fap_keys_are_translated_once_at_load():
    cfg = build_cfg(opts=FAP_OPTS)
    t = cfg.ATTACK.TRAIN
    assert (t.ENABLED, t.EPS, t.ALPHA, t.STEPS, t.LOSS) == (True, 4.0, 1.0, 3, "kl")
    assert cfg.ATTACK.TEST.ATTACKS[0] == "pgd:steps=20,eps=4.0,alpha=1.0,loss=ce"
    assert (cfg.TRAINER.FAP.LAMBDA, cfg.TRAINER.FAP.ADV_TERM) == (2.5, "cos")
    assert attack_spec.train_spec(cfg).steps == 3 and attack_spec.test_specs(cfg)[0].steps == 20
    # a saved config.yaml holds the translation already: loading it again does not add the test attack twice
    again = build_cfg(opts=[*FAP_OPTS, "ATTACK.TEST.ATTACKS", repr(tuple(cfg.ATTACK.TEST.ATTACKS))])
    assert list(again.ATTACK.TEST.ATTACKS) == list(cfg.ATTACK.TEST.ATTACKS)


def test_attack_core_and_trainers_never_read_fap_keys():
    """Only the config loader reads ``ATTACK.PGD``; the attack specs and every trainer see ``ATTACK.TRAIN/TEST``."""
    for path in [*(ROOT / "promptengine" / "attacks").glob("*.py"), *(ROOT / "trainers").glob("*.py")]:
        reads = [n.lineno for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute) and n.attr == "PGD"]
        assert not reads, f"{path.relative_to(ROOT)} reads ATTACK.PGD at lines {reads}"


# ---- couplings ---------------------------------------------------------------------------------------------------
def test_couplings_are_classes_the_learner_delegates_to():
    assert set(COUPLINGS) == {"independent", "text_to_vision", "vision_to_text"}
    assert all(isinstance(c, Coupling) and c.name == name for name, c in COUPLINGS.items())
    source = (ROOT / "promptengine" / "clip" / "prompt_learner.py").read_text()
    assert not re.search(r"coupling\s*==", source), "a coupling switch is back in the prompt learner"


# ---- the method list ---------------------------------------------------------------------------------------------
def _package_trainers():
    """The trainers of the methods package (tests may register their own)."""
    return [m for m in registered_methods() if TRAINER_REGISTRY.get(m.trainer).__module__.startswith(METHODS + ".")]


def test_every_method_has_a_docs_row_and_configs():
    table = (ROOT / "docs" / "METHODS.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE))
    names = {m.trainer for m in _package_trainers()}
    assert names == rows, f"docs/METHODS.md rows {sorted(rows ^ names)} do not match the registered trainers"
    for m in _package_trainers():
        assert (ROOT / "configs" / "trainers" / m.trainer / "synth.yaml").is_file(), m.trainer
        if m.default_config:
            assert (ROOT / "configs" / "trainers" / m.trainer / f"{m.default_config}.yaml").is_file(), m


BUILT = ("build", "dist", "output")  # what builds and runs write into a checkout (.gitignore)


def _readme_section(title: str) -> str:
    """The README's text under ``## title`` (up to the next heading of that level); the text before the first
    heading for an empty title."""
    text = (ROOT / "README.md").read_text()
    if not title:
        return text.split("\n## ", 1)[0]
    assert f"\n## {title}\n" in text, f"README.md has no '## {title}' section"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_intro_names_every_method():
    """The README's opening method list is the registry's: a new trainer without a mention there fails."""
    intro = _readme_section("")
    zero_shot = TRAINER_REGISTRY.with_role("zero_shot")
    missing = [m.trainer for m in _package_trainers() if m.trainer != zero_shot and
               not re.search(rf"\b{re.escape(m.trainer)}\b", intro)]
    assert "zero-shot CLIP" in intro and not missing, f"README.md's method list does not name {missing}"


def test_readme_map_names_every_folder():
    """"Where things live" names every top-level folder and every package folder, so a new one gets its line."""
    section = _readme_section("Where things live")
    top = [d.name for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in BUILT and
           (any(d.glob("*.py")) or any(d.glob("*.md")) or any(d.glob("*/*.yaml")) or any(d.glob("*.sh")))]
    package = [d.name for d in (ROOT / "promptengine").iterdir()
               if d.is_dir() and not d.is_symlink() and (d / "__init__.py").is_file()]
    assert {"trainers", "promptengine", "docs"} <= set(top) and {"engine", "protocols"} <= set(package)
    missing = [f"{d}/" for d in top if f"`{d}/`" not in section]
    missing += [f"promptengine/{d}/" for d in package if not re.search(rf"[`/ ]{d}/`", section)]
    assert not missing, f"README.md's 'Where things live' does not name {missing}"


# ---- docs cite files that exist ----------------------------------------------------------------------------------
REPO_DIRS = ("configs/", "docs/", "promptengine/", "scripts/", "tests/", "tools/", "trainers/", "datasets/")
INTERNAL = re.compile(r"anchors pitfall|papers\.md|environment\.md|user-needs|synthetic-world\.md|style\.md")


@pytest.mark.parametrize("doc", sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md", ROOT / "DATASETS.md"]),
                         ids=lambda p: p.name)
def test_docs_cite_only_files_in_the_repository(doc):
    text = doc.read_text()
    assert not INTERNAL.search(text), f"{doc.name} cites a file outside the repository: {INTERNAL.search(text)[0]}"
    missing = []
    for cited in re.findall(r"`([A-Za-z0-9_./+-]+)`", text):
        if cited.startswith(REPO_DIRS) and not any(ch in cited for ch in "*<") and not cited.endswith("/"):
            if not (ROOT / cited).exists():
                missing.append(cited)
    assert not missing, f"{doc.name} cites files that do not exist: {missing}"


# ---- no code copied between trainers -----------------------------------------------------------------------------
WINDOW = 5  # consecutive meaningful lines


def _windows(path: Path) -> set:
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    kept = [ln for ln in lines if ln and not ln.startswith(("#", "import ", "from ", "@", '"""', "return super()"))]
    return {tuple(kept[i:i + WINDOW]) for i in range(len(kept) - WINDOW + 1)}


def test_no_block_of_code_is_copied_between_trainers():
    files = sorted((ROOT / "trainers").glob("*.py"))
    seen, copies = {}, []
    for path in files:
        for window in _windows(path):
            if window in seen and seen[window] != path.name:
                copies.append((seen[window], path.name, window[0]))
            seen.setdefault(window, path.name)
    assert not copies, f"blocks of {WINDOW} lines appear in two trainer files: {copies[:3]}"


# ---- roles: what the toolbox asks the registry for instead of naming a method -------------------------------------
def test_roles_are_found_through_the_registry_and_must_be_unique(monkeypatch):
    from promptengine.errors import UserError
    from promptengine.prompting import PromptTrainer

    """Reports attack the zero-shot trainer and capt-bench times the benchmark method, found by the role their
    classes declare; a role nobody or two classes declare is a one-line error."""
    assert (TRAINER_REGISTRY.with_role("zero_shot"), TRAINER_REGISTRY.with_role("benchmark")) == ("ZeroshotCLIP", "CAPT")
    with pytest.raises(UserError, match=r"^0 registered trainers declare the role 'nothing'; exactly one must"):
        TRAINER_REGISTRY.with_role("nothing")

    class Ensemble(TRAINER_REGISTRY.get("ZeroshotCLIP")):  # a subclass does not inherit its parent's role
        pass

    monkeypatch.setitem(TRAINER_REGISTRY._items, "Ensemble", Ensemble)
    assert TRAINER_REGISTRY.with_role("zero_shot") == "ZeroshotCLIP"

    class Rival(PromptTrainer):
        roles = ("zero_shot",)

    monkeypatch.setitem(TRAINER_REGISTRY._items, "Rival", Rival)
    with pytest.raises(UserError, match=r"^2 registered trainers declare the role 'zero_shot': .*Rival"):
        TRAINER_REGISTRY.with_role("zero_shot")
