"""The zero-shot robustness protocol (zsrobust): its presets against the docs' table, the runs it plans (source,
targets, image budget, attacks per target and budget), which methods have it, its per-budget tables, and one tiny
end-to-end run on the embedded world."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptengine.errors import UserError
from promptengine.protocols.cli import main as protocol_main
from promptengine.protocols.methods import method_protocols, method_table
from promptengine.protocols.presets import PRESETS
from promptengine.protocols.runs import EVAL_RUN, TRAIN_RUN, parse_call, plan_call
from promptengine.registry import TRAINER_REGISTRY
from promptengine.reporting import aggregate
from promptengine.reporting.results import load_results
from promptengine.sweep.grid import build_grid, expand, script_env
from promptengine.sweep.plan import point_runs, resolve_methods
from tests.test_scripts import SCRIPT_VARS
from tests.weights_fakes import REFUSAL, TOWER, pinned_tower, swap_for_another

ROOT = Path(__file__).resolve().parents[1]


def plan(folder, args, **env):
    env = {"OUTPUT": "/out", "PYTHON": "python", **env}
    return plan_call(method_table()[folder], parse_call("zsrobust", [str(a) for a in args], env), env)


def option(command, key):
    return command[command.index(key) + 1]


def doc_rows():
    text = (ROOT / "docs" / "ZSROBUST.md").read_text()
    table = text.split("<!-- presets:start -->")[1].split("<!-- presets:end -->")[0].strip().splitlines()
    rows = {}
    for line in table[2:]:
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def as_doc_row(preset):
    overrides = "; ".join(f"`{t}`: `{a}`" for t, specs in preset.attack_overrides.items() for a in specs)
    return [preset.source, preset.source_shots, " ".join(preset.train_options) or "-", preset.backbone or "-",
            " ".join(preset.targets), str(preset.max_images), " ".join(preset.attacks),
            " ".join(f"{e:g}" for e in preset.eps), overrides.strip("`") or "-"]


def test_presets_are_the_table_in_the_docs_and_the_published_protocols():
    assert {name: as_doc_row(p) for name, p in PRESETS.items()} == doc_rows()
    tecoa, vlm = PRESETS["tecoa"], PRESETS["robustvlm"]
    assert len(tecoa.targets) == 16 and tecoa.eps == (1.0,) and tecoa.max_images == -1
    assert tecoa.attack_specs("cifar10") == ("pgd:steps=100,eps=1,alpha=1",)
    assert len(vlm.targets) == 13 and vlm.eps == (2.0, 4.0) and vlm.max_images == 1000
    for target in vlm.targets:  # every dataset config exists
        assert (ROOT / "configs" / "datasets" / f"{target}.yaml").is_file(), target


def test_tecoa_preset_trains_on_tiny_imagenet_then_judges_16_targets_with_pgd100():
    steps = plan("tecoa", [1])
    assert [s.kind for s in steps] == [TRAIN_RUN] + [EVAL_RUN] * 16
    train = steps[0]
    layout = Path(train.folder).parts[-7:]  # <OUTPUT>/zsrobust/train/<source>/shots_all/<trainer>/<cfg>@<tag>/seed1
    assert layout[:5] == ("zsrobust", "train", "tiny_imagenet", "shots_all", "TeCoA")
    assert layout[5].startswith("vit_b32_eps1@")
    assert option(train.command, "ATTACK.TRAIN.STEPS") == "2" and option(train.command, "ATTACK.TRAIN.EPS") == "1.0"
    assert option(train.command, "MODEL.BACKBONE.NAME") == "ViT-B/32"
    assert [Path(s.folder).parts[-5] for s in steps[1:]] == list(PRESETS["tecoa"].targets)
    for step in steps[1:]:
        assert step.model == train.folder and Path(step.folder).parts[-7:-5] == ("zsrobust", "test")
        assert option(step.command, "TEST.MAX_IMAGES") == "-1"
        assert option(step.command, "ATTACK.TEST.ENABLED") == "False"
        assert option(step.command, "ATTACK.TEST.ATTACKS") == "('pgd:steps=100,eps=1,alpha=1',)"


def test_robustvlm_preset_runs_apgd_ce_alone_on_pcam_and_user_options_come_last():
    steps = plan("zsclip", [2], PRESET="robustvlm", EXTRA_OPTS="TEST.MAX_IMAGES 10")
    assert all(s.kind == EVAL_RUN for s in steps) and len(steps) == 13  # the zero-shot reference trains nothing
    attacks = {Path(s.folder).parts[-5]: option(s.command, "ATTACK.TEST.ATTACKS") for s in steps}
    assert attacks["pcam"] == "('aa:attacks=apgd-ce,eps=2', 'aa:attacks=apgd-ce,eps=4',)"
    assert attacks["cifar10"] == "('aa:attacks=apgd-ce+apgd-t,eps=2', 'aa:attacks=apgd-ce+apgd-t,eps=4',)"
    command = steps[0].command
    assert command[-2:] == ("TEST.MAX_IMAGES", "10") and option(command, "TEST.MAX_IMAGES") == "1000"
    other = plan("zsclip", [2], PRESET="tecoa")[0].folder
    assert Path(other).parts[-2] != Path(steps[0].folder).parts[-2]  # presets never share a config folder


def test_only_tower_tuning_methods_and_the_zero_shot_reference_have_the_protocol(capsys):
    have = sorted(folder for folder, m in method_table().items() if "zsrobust" in method_protocols(m))
    assert have == ["fare", "pmgaft", "rtpt", "tecoa", "tgazsr", "ttc", "zsclip"]
    assert sorted(p.parent.name for p in (ROOT / "scripts").glob("*/zsrobust.sh")) == have
    assert protocol_main(["coop", "zsrobust", "1"]) == 2
    assert "CoOp has no zsrobust protocol" in capsys.readouterr().err
    with pytest.raises(UserError, match="unknown zsrobust preset 'nope'"):
        plan("tecoa", [1], PRESET="nope")
    with pytest.raises(UserError, match="mixing synthetic and benchmark"):
        plan("tecoa", [1, "synth_glyphs"], PRESET="tecoa")


def test_the_runner_checks_catalogued_weights_before_the_first_run(tmp_path, monkeypatch, capsys):
    """BACKBONE may name a catalogued tower (the zero-shot reference judged on a released tower): the runner resolves
    and verifies it as train.py will, before any run; a copy of another checksum is one line and nothing starts."""
    for key in SCRIPT_VARS:
        monkeypatch.delenv(key, raising=False)
    root = tmp_path / "weights"
    path = pinned_tower(root)
    monkeypatch.setenv("OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("DRY_RUN", "1")
    monkeypatch.setenv("BACKBONE", TOWER)
    monkeypatch.setenv("EXTRA_OPTS", f"MODEL.BACKBONE.DOWNLOAD_ROOT {root}")
    assert protocol_main(["zsclip", "zsrobust", "1", "synth_glyphs"]) == 0
    planned = capsys.readouterr().out
    assert "[run]  eval" in planned and f"MODEL.BACKBONE.NAME {TOWER}" in planned
    swap_for_another(path)
    assert protocol_main(["zsclip", "zsrobust", "1", "synth_glyphs"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("error: ") and REFUSAL in line and str(path) in line
    assert "[run]" not in captured.out


def test_sweep_plans_zsrobust_points(tmp_path, monkeypatch):
    for key in SCRIPT_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OUTPUT", str(tmp_path / "out"))
    grid = build_grid(None, {"protocols": ["zsrobust"], "methods": ["tecoa"], "datasets": ["synth_glyphs"],
                             "seeds": ["1", "2"], "shots": [], "name": "zs"})
    methods = resolve_methods(grid.methods)
    points = expand(grid, list(methods), "")
    assert [p.id for p in points] == ["zsrobust-tecoa-s1", "zsrobust-tecoa-s2"]
    runs = point_runs(points[0], methods["tecoa"], script_env(grid))
    assert [(r.kind, Path(r.folder).parts[-7:-4]) for r in runs] == [
        ("train", ("zsrobust", "train", "synth_shapes")), ("eval", ("zsrobust", "test", "synth_glyphs"))]
    coop = build_grid(None, {"protocols": ["zsrobust"], "methods": ["coop"], "datasets": [], "seeds": ["1"],
                             "shots": [], "name": "zs"})
    with pytest.raises(UserError, match="CoOp has no zsrobust protocol"):
        point_runs(expand(coop, ["coop"], "")[0], resolve_methods(["coop"])["coop"], script_env(coop))


def write_result(folder, robust, per_image=None):
    folder.mkdir(parents=True)
    data = {"format": 1, "dataset": folder.parts[-5], "trainer": folder.parts[-3], "num_shots": -1, "seed": 1,
            "split": "test", "num_images": 4, "clean": {"accuracy": 75.0, "correct": 3},
            "robust": [{"name": n, "attack": {"method": "pgd", "norm": "linf", "eps": e / 255}, "accuracy": a,
                        "correct": int(a * 4 / 100)} for n, e, a in robust]}
    if per_image:
        data["per_image"] = per_image
    (folder / "results.json").write_text(json.dumps(data))


def test_tables_have_one_column_per_budget_with_the_worst_case_at_that_budget(tmp_path):
    from promptengine.evaluation.perimage import build_record

    run = tmp_path / "zsrobust" / "test" / "cifar10" / "shots_all" / "TeCoA" / "cfg" / "seed1"
    clean = [True, True, True, False]
    pgd1, cw1, pgd4 = [True, True, False, False], [True, False, True, False], [False, False, False, False]
    write_result(run, [("pgd1", 1, 50.0), ("cw1", 1, 50.0), ("pgd4", 4, 0.0)],
                 build_record("4:x", clean, [pgd1, cw1, pgd4], [False] * 4))
    write_result(run.parents[2] / "ZeroshotCLIP" / "cfg" / "seed1", [])  # evaluated without attacks
    sel = aggregate.select("zsrobust", load_results(tmp_path).runs)
    assert sel.columns == ["eps 1/255", "eps 4/255"]
    robust = aggregate.build_grid(sel, "robust", draws=50)
    assert robust.cell("cifar10", "TeCoA", "eps 1/255").mean == 25.0  # only image 0 survives both 1/255 attacks
    assert robust.cell("cifar10", "TeCoA", "eps 4/255").mean == 0.0
    assert robust.layout == "long"  # targets as rows, budgets as columns
    clean_grid = aggregate.build_grid(sel, "clean", draws=50)
    assert clean_grid.cell("cifar10", "TeCoA", "eps 4/255").mean == 75.0
    assert clean_grid.cell("cifar10", "ZeroshotCLIP", "eps 1/255").mean == 75.0  # its clean accuracy still shows
    assert robust.cell("cifar10", "ZeroshotCLIP", "eps 1/255").missing


@pytest.mark.slow
# TeCoA only in the suite (about a minute each): the script is generated alike for every tower method, and each
# method's export and reload through MODEL.BACKBONE.PATH has its own fast test; add the others' folders to run them.
@pytest.mark.parametrize("folder", ["tecoa"])
def test_tower_zsrobust_scripts_run_end_to_end_on_the_embedded_world(tmp_path, folder):
    """scripts/<method>/zsrobust.sh of every tower-tuning method (a tiny budget): the tower is tuned and exported
    in its authors' file, evaluated on a held-out synthetic target at the preset's two budgets, and tabled."""
    method = method_table()[folder]
    export = TRAINER_REGISTRY.get(method.trainer).export_name
    env = {k: v for k, v in __import__("os").environ.items() if k not in SCRIPT_VARS}
    env.update(OUTPUT=str(tmp_path / "out"), DATA=str(tmp_path / "data"), PYTHON=sys.executable, OMP_NUM_THREADS="1",
               WORLD="synth", SHOTS="2",
               EXTRA_OPTS="OPTIM.MAX_EPOCH 1 TEST.MAX_IMAGES 20 DATALOADER.TRAIN_X.BATCH_SIZE 8 ATTACK.TRAIN.STEPS 1")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / folder / "zsrobust.sh"), "1", "synth_glyphs"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = Path(env["OUTPUT"], "zsrobust")
    assert list(out.glob(f"train/synth_shapes/shots_2/{method.trainer}/synth@*/seed1/{export}"))
    result = json.loads(next(out.glob(f"test/synth_glyphs/shots_2/{method.trainer}/synth@*/seed1/results.json"))
                        .read_text())
    assert result["num_images"] == 20
    assert [round(a["attack"]["eps"] * 255) for a in result["robust"]] == [2, 4]
    table = subprocess.run([sys.executable, str(ROOT / "tools" / "compare.py"), env["OUTPUT"], "--protocol",
                            "zsrobust"], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert re.search(r"Zero-shot robustness \(zsrobust\): robust accuracy", table.stdout)
    header = next(line for line in table.stdout.splitlines() if line.startswith("Dataset"))
    assert header.split() == ["Dataset", "Method", "eps", "2/255", "eps", "4/255"]  # one column per budget
    assert any(line.startswith("SynthGlyphs") and method.trainer in line for line in table.stdout.splitlines())
