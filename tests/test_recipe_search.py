"""tools/recipe_search.py: what each grid point trains on and which point the rule chooses (no training: the runs are
faked by writing the results.json a run would leave)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("recipe_search", REPO / "tools" / "recipe_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_runs(tool, monkeypatch, robust_of):
    """Every training command is recorded; its run 'scores' robust_of(method, lr, epochs) on 1,280 images."""
    commands = []

    def call(cmd, stdout=None, stderr=None, cwd=None):
        commands.append(cmd)
        opts = options(cmd)
        method, lr, epochs = opts["--trainer"], float(opts["OPTIM.LR"]), int(opts["OPTIM.MAX_EPOCH"])
        folder = Path(opts["--output-dir"])
        folder.mkdir(parents=True, exist_ok=True)
        score = robust_of(method, lr, epochs)
        (folder / "results.json").write_text(json.dumps({"clean": {"accuracy": 70.0}, "num_images": 1280,
                                                         "worst_case": {"accuracy": score}}))
        return 0

    monkeypatch.setattr(tool.subprocess, "call", call)
    return commands


def options(cmd):
    return {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].isupper() or cmd[i].startswith("--")}


def test_towers_tune_on_every_source_image_of_every_class_and_prompts_on_16_base_shots(tmp_path, monkeypatch, capsys):
    tool = load_tool()
    commands = fake_runs(tool, monkeypatch, lambda m, lr, ep: 10.0)
    assert tool.main(["--methods", "TeCoA", "APT", "--output", str(tmp_path)]) == 0
    tower = [options(c) for c in commands if "TeCoA" in c]
    prompts = [options(c) for c in commands if "APT" in c]
    assert len(tower) == len(prompts) == 4
    assert {(o["DATASET.NUM_SHOTS"], o["DATASET.SUBSAMPLE_CLASSES"]) for o in tower} == {("-1", "all")}
    assert {(o["DATASET.NUM_SHOTS"], o["DATASET.SUBSAMPLE_CLASSES"]) for o in prompts} == {("16", "base")}
    assert all(o["TEST.SPLIT"] == "val" for o in tower + prompts)  # never the test split


def test_a_finished_folder_is_reused_only_through_train_pys_identity_check(tmp_path, monkeypatch, capsys):
    """A second search in the same output calls train.py again with --skip-done (which skips a run of this identity
    and refuses another's) instead of reading whatever results.json the folder holds."""
    tool = load_tool()
    commands = fake_runs(tool, monkeypatch, lambda m, lr, ep: 10.0)
    tool.main(["--methods", "TeCoA", "--output", str(tmp_path)])
    tool.main(["--methods", "TeCoA", "--output", str(tmp_path)])
    assert len(commands) == 8 and all("--skip-done" in c for c in commands)


def test_the_best_point_wins_unless_a_cheaper_one_is_within_one_validation_image(tmp_path, monkeypatch, capsys):
    tool = load_tool()
    # TeCoA's grid: (0.002, 2), (0.006, 2), (0.002, 6), (0.006, 6); one image of 1,280 is 0.078 points
    scores = {(0.002, 2): 20.0, (0.006, 2): 25.0, (0.002, 6): 24.0, (0.006, 6): 25.05}
    fake_runs(tool, monkeypatch, lambda m, lr, ep: scores[(round(lr, 6), ep)])
    tool.main(["--methods", "TeCoA", "--output", str(tmp_path)])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| TeCoA")][0]
    assert row.endswith("| lr 0.006, 2 epochs |"), row  # 25.05 is within one image of 25.0 at a third of the cost
    assert "**25.0** (70.0)" in row  # the tower's clean price next to its robust score
