"""The protocol scripts (scripts/<method>/{base2new,fewshot,xd,dg,zsrobust}.sh, scripts/compare_*.sh), run end to end.

The slow tests run the real scripts on the embedded synthetic world with a tiny budget (1 epoch, 2 shots, 40 test
images, 1-2 attack steps); every train.py run is its own process, as for a user.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from promptengine.protocols import scripts as wrappers
from promptengine.protocols.layout import PROMPT_PROTOCOLS, PROTOCOLS
from promptengine.protocols.methods import method_protocols
from promptengine.protocols.runs import config_folder
from promptengine.registry import registered_methods

ROOT = Path(__file__).resolve().parents[1]
METHODS = {m.script_folder: m.trainer for m in registered_methods(with_scripts=True)}  # script folder -> trainer
OFFERS = {m.script_folder: method_protocols(m) for m in registered_methods(with_scripts=True)}  # folder -> protocols
DEFAULT_CONFIGS = {m.script_folder: m.default_config for m in registered_methods(with_scripts=True)}
TINY = ("OPTIM.MAX_EPOCH 1 TEST.MAX_IMAGES 40 DATALOADER.TRAIN_X.BATCH_SIZE 8 "
        "ATTACK.TEST.STEPS 2 ATTACK.TRAIN.STEPS 1")
SCRIPT_VARS = ("OUTPUT", "DATA", "CFG", "BACKBONE", "EXTRA_OPTS", "SEEDS", "SHOTS", "SOURCE", "WORLD", "DRY_RUN",
               "METHODS", "DATASETS", "LAUNCHER", "JOBS", "THREADS", "DEVICES", "SLURM_CONFIG")


@pytest.fixture
def env(tmp_path):
    """The scripts' environment: a fresh OUTPUT, the tiny budget, 2 shots, 1 thread."""
    base = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    return dict(base, OUTPUT=str(tmp_path / "out"), DATA=str(tmp_path / "data"), PYTHON=sys.executable,
                OMP_NUM_THREADS="1", EXTRA_OPTS=TINY, SHOTS="2")


def sh(script, *args, env, expect=0):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / script), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == expect, f"{script} {args}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def lines(proc, kind):
    """The runs of one outcome: "run" (performed) or "skip" (train.py found the finished run of the same identity).

    The runner prints ``[run]  <what> <folder>`` for every run; train.py then prints ``Skipping: <folder> ...`` when
    it finds that run already finished."""
    skipped = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("Skipping: ")}
    runs = [line for line in proc.stdout.splitlines() if line.startswith("[run]")]
    return [line for line in runs if (line.split()[-1] in skipped) == (kind == "skip")]


def cfg_dir(env, cfg="synth"):
    """The config folder of the runs: the config name plus the tag of the options in EXTRA_OPTS/BACKBONE."""
    return config_folder(cfg, env)


def run_dirs(out, what):
    """The folders of the runs reported as ``[run]  <what> <folder>`` (what: train, train+test, eval)."""
    return [line.split()[-1] for line in out.splitlines() if line.startswith("[run]") and line.split()[1] == what]


def result(env, *parts):
    with open(Path(env["OUTPUT"], *parts, "results.json")) as f:
        return json.load(f)


# ---- fast checks ------------------------------------------------------------------------------------------------
def test_every_method_has_its_generated_wrappers_calling_the_shared_implementation():
    """The committed scripts/<folder>/<protocol>.sh are exactly what the generator writes from the registry: the
    four prompt protocols for every method, zsrobust for those that have it."""
    script_dirs = {p.name for p in (ROOT / "scripts").iterdir() if p.is_dir() and (p / "base2new.sh").is_file()}
    assert set(METHODS) == script_dirs  # every script folder is a registered method's, and the reverse
    assert wrappers.problems(ROOT / "scripts") == [], "run `python -m promptengine.protocols.scripts`"
    for folder, trainer in METHODS.items():
        assert set(PROMPT_PROTOCOLS) <= set(OFFERS[folder])
        assert {p.stem for p in (ROOT / "scripts" / folder).glob("*.sh")} - {"sweep"} == set(OFFERS[folder])
        for protocol in OFFERS[folder]:
            path = ROOT / "scripts" / folder / f"{protocol}.sh"
            assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
            assert path.read_text().splitlines()[-1] == (f'exec bash "$(dirname "$0")/../lib/protocol.sh" {folder} '
                                                         f'{protocol} "$@"'), path
            assert trainer not in path.read_text().split("\n", 2)[2]  # the trainer is asked for, never repeated
        assert (ROOT / "configs" / "trainers" / trainer / f"{DEFAULT_CONFIGS[folder]}.yaml").is_file()
        assert (ROOT / "configs" / "trainers" / trainer / "synth.yaml").is_file()
    for protocol in PROTOCOLS:
        text = (ROOT / "scripts" / f"compare_{protocol}.sh").read_text()
        assert f'lib/protocol.sh" compare {protocol} "$@"' in text


def test_wrapper_check_names_a_changed_a_missing_and_a_stale_wrapper(tmp_path):
    scripts = tmp_path / "scripts"
    assert wrappers.main(["--out", str(scripts)]) == 0
    assert wrappers.problems(scripts) == []
    (scripts / "capt" / "xd.sh").write_text("#!/usr/bin/env bash\nexec true\n")
    (scripts / "coop" / "dg.sh").unlink()
    stale = (scripts / "capt" / "base2new.sh").read_text().replace(" capt ", " gone ")
    (scripts / "gone").mkdir()
    (scripts / "gone" / "base2new.sh").write_text(stale)
    (scripts / "capt" / "sweep.sh").write_text("#!/usr/bin/env bash\n")  # a hand-written script: not the generator's
    assert wrappers.problems(scripts) == ["capt/xd.sh: differs from the registry's wrapper", "coop/dg.sh: missing",
                                          "gone/base2new.sh: no registered method has this script folder"]
    assert wrappers.main(["--check", "--out", str(scripts)]) == 1
    assert wrappers.main(["--out", str(scripts)]) == 0
    assert wrappers.problems(scripts) == [] and not (scripts / "gone" / "base2new.sh").exists()
    assert (scripts / "capt" / "sweep.sh").is_file()


def test_bad_dataset_id_and_missing_config_fail_fast(env):
    proc = sh("capt/base2new.sh", "no_such_dataset", 1, env=env, expect=2)
    assert "unknown dataset id 'no_such_dataset'" in proc.stderr and "synth_shapes" in proc.stderr
    proc = sh("fap/xd.sh", 1, "synth_glyphs", "synth_nope", env=env, expect=2)
    assert "unknown dataset id 'synth_nope'" in proc.stderr
    proc = sh("coop/base2new.sh", "synth_shapes", 1, "no_such_cfg", env=env, expect=2)
    assert "no config 'no_such_cfg' for CoOp" in proc.stderr and "synth" in proc.stderr
    proc = sh("capt/fewshot.sh", "synth_shapes", "0", env=env, expect=2)
    assert "shots must be a positive integer or 'all'" in proc.stderr
    proc = sh("compare_base2new.sh", "--methods", "nomethod", env=env, expect=2)
    assert "unknown method 'nomethod'" in proc.stderr
    assert not Path(env["OUTPUT"]).exists()


def test_real_data_defaults_dry_run(env):
    """Without a dataset argument: the paper configs, the ImageNet source and the benchmark targets."""
    env = dict(env, DRY_RUN="1", SHOTS="", EXTRA_OPTS="")
    out = sh("coop/xd.sh", 3, env=env).stdout
    assert run_dirs(out, "train") == [f"{env['OUTPUT']}/transfer/train/imagenet/shots_16/CoOp/vit_b16_ep50/seed3"]
    targets = [Path(d).parts[-5] for d in run_dirs(out, "eval")]
    assert targets == ["caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
                       "sun397", "dtd", "eurosat", "ucf101"]
    assert f"--root {env['DATA']} " in out and "configs/trainers/CoOp/vit_b16_ep50.yaml" in out
    out = sh("zsclip/dg.sh", 1, env=env).stdout
    assert [Path(d).parts[-6:-4] for d in run_dirs(out, "eval")] == [
        ("train", "imagenet"), ("test", "imagenetv2"), ("test", "imagenet_sketch"), ("test", "imagenet_a"),
        ("test", "imagenet_r")]
    assert "--model-dir" not in out and "TEST.NO_TEST" not in out
    out = sh("apt/fewshot.sh", "oxford_pets", env=dict(env, SEEDS="1 2 3")).stdout
    shots = [Path(d).parts[-4] for d in run_dirs(out, "train+test")]
    assert shots == [f"shots_{k}" for k in ("1", "2", "4", "8", "16", "all") for _ in range(3)]
    assert "DATASET.NUM_SHOTS -1 " in out and "APT/vit_b32_ep50/seed3" in out


# ---- end to end on the embedded world ---------------------------------------------------------------------------
@pytest.mark.slow
def test_capt_base2new_then_skip_then_compare(env):
    tail = ("synth_shapes", "shots_2", "CAPT", cfg_dir(env), "seed1")
    proc = sh("capt/base2new.sh", "synth_shapes", 1, env=env)
    assert len(lines(proc, "run")) == 3
    train_dir = Path(env["OUTPUT"], "base2new", "train_base", *tail)
    assert (train_dir / "log.txt").is_file() and not (train_dir / "results.json").exists()  # TEST.NO_TEST True
    for sub in ("base", "new"):
        res = result(env, "base2new", f"test_{sub}", *tail)
        assert res["subsample"] == sub and res["eval_only"] and res["load_epoch"] == 1
        assert (res["trainer"], res["num_shots"], res["seed"], res["split"]) == ("CAPT", 2, 1, "test")
        assert res["num_images"] == 40 and res["robust"], res
    first = Path(env["OUTPUT"], "base2new", "test_new", *tail, "results.json").stat().st_mtime_ns

    again = sh("capt/base2new.sh", "synth_shapes", 1, env=env)
    assert not lines(again, "run") and len(lines(again, "skip")) == 3
    assert Path(env["OUTPUT"], "base2new", "test_new", *tail, "results.json").stat().st_mtime_ns == first

    cmp = sh("compare_base2new.sh", "--methods", "CAPT", "zsclip", "--datasets", "synth_shapes", "--seeds", "1",
             env=env)
    assert len(lines(cmp, "skip")) == 3 and len(lines(cmp, "run")) == 2  # CAPT done; zero-shot: two evaluations
    assert not Path(env["OUTPUT"], "base2new", "train_base", "synth_shapes", "shots_2", "ZeroshotCLIP").exists()
    for sub in ("base", "new"):
        res = result(env, "base2new", f"test_{sub}", "synth_shapes", "shots_2", "ZeroshotCLIP", cfg_dir(env), "seed1")
        assert res["subsample"] == sub and res["trainer"] == "ZeroshotCLIP"
    table = cmp.stdout.split("tools/compare.py", 1)[1].split("\n", 1)[1]  # what compare.py printed
    assert "CAPT" in table and "ZeroshotCLIP" in table


@pytest.mark.slow
def test_capt_fewshot_resume_and_a_lambda_change_is_a_new_run(env):
    env = dict(env, SEEDS="1", EXTRA_OPTS=TINY.replace("OPTIM.MAX_EPOCH 1", "OPTIM.MAX_EPOCH 2 TRAIN.CHECKPOINT_FREQ 1"))
    proc = sh("capt/fewshot.sh", "synth_shapes", 1, 2, env=env)
    assert len(lines(proc, "run")) == 2
    for k in (1, 2):
        res = result(env, "fewshot", "train", "synth_shapes", f"shots_{k}", "CAPT", cfg_dir(env), "seed1")
        assert (res["num_shots"], res["subsample"], res["eval_only"], res["load_epoch"]) == (k, "all", False, 2)
    # An interrupted 2-epoch run looks like this: the epoch-1 checkpoint and no results.json. A rerun resumes it.
    run_dir = Path(env["OUTPUT"], "fewshot", "train", "synth_shapes", "shots_2", "CAPT", cfg_dir(env), "seed1")
    finished = result(env, "fewshot", "train", "synth_shapes", "shots_2", "CAPT", cfg_dir(env), "seed1")
    (run_dir / "results.json").unlink()
    (run_dir / "prompt_learner" / "model.pth.tar-2").unlink()
    (run_dir / "prompt_learner" / "checkpoint").write_text("model.pth.tar-1\n")
    proc = sh("capt/fewshot.sh", "synth_shapes", 1, 2, env=env)
    assert [line.split()[-1] for line in lines(proc, "run")] == [str(run_dir)] and len(lines(proc, "skip")) == 1
    assert "Resuming from epoch 1" in proc.stdout
    resumed = result(env, "fewshot", "train", "synth_shapes", "shots_2", "CAPT", cfg_dir(env), "seed1")
    assert (resumed["clean"], resumed["worst_case"]) == (finished["clean"], finished["worst_case"])
    # The lambda ablation: another EXTRA_OPTS is another run in another folder, never the lambda=1.5 numbers.
    lam = dict(env, EXTRA_OPTS=env["EXTRA_OPTS"] + " TRAINER.CAPT.LAMBDA 1.5")
    proc = sh("capt/fewshot.sh", "synth_shapes", 2, env=lam)
    assert len(lines(proc, "run")) == 1 and cfg_dir(lam) != cfg_dir(env)
    other = result(lam, "fewshot", "train", "synth_shapes", "shots_2", "CAPT", cfg_dir(lam), "seed1")
    assert other["identity"]["identity"]["model"]["TRAINER.CAPT.LAMBDA"] == 1.5
    assert finished["identity"]["identity"]["model"]["TRAINER.CAPT.LAMBDA"] == 3.0
    assert other["identity"]["fingerprint"] != finished["identity"]["fingerprint"]
    from promptengine.engine.checkpoint import safe_load

    lam_dir = Path(lam["OUTPUT"], "fewshot", "train", "synth_shapes", "shots_2", "CAPT", cfg_dir(lam), "seed1")
    a, b = (safe_load(str(d / "prompt_learner" / "model.pth.tar-2"))["state_dict"] for d in (run_dir, lam_dir))
    assert any(not a[k].equal(b[k]) for k in a)  # trained anew with the other lambda
    cmp = subprocess.run([sys.executable, str(ROOT / "tools" / "compare.py"), env["OUTPUT"], "--protocol", "fewshot"],
                         capture_output=True, text=True)
    assert cmp.returncode == 0 and f"CAPT/{cfg_dir(env)}" in cmp.stdout and f"CAPT/{cfg_dir(lam)}" in cmp.stdout


@pytest.mark.slow
def test_capt_xd_then_dg_share_the_source_model(env):
    tag = cfg_dir(env)
    proc = sh("capt/xd.sh", 1, "synth_glyphs", env=env)
    assert len(lines(proc, "run")) == 2
    train_dir = Path(env["OUTPUT"], "transfer", "train", "synth_shapes", "shots_2", "CAPT", tag, "seed1")
    assert (train_dir / "log.txt").is_file() and not (train_dir / "results.json").exists()
    res = result(env, "xd", "test", "synth_glyphs", "shots_2", "CAPT", tag, "seed1")
    assert res["dataset"] == "SynthGlyphs" and res["subsample"] == "all" and res["load_epoch"] == 1
    assert not Path(env["OUTPUT"], "xd", "test", "synth_patterns").exists()
    trained = json.loads((train_dir / "identity.json").read_text())["training"]
    assert res["identity"]["training"] == trained

    proc = sh("capt/dg.sh", 1, "synth_shapes_sketch", env=env)
    assert [line.split()[-1] for line in lines(proc, "skip")] == [str(train_dir)]  # trained once for both
    assert len(lines(proc, "run")) == 2
    source = result(env, "dg", "train", "synth_shapes", "shots_2", "CAPT", tag, "seed1")
    assert source["dataset"] == "SynthShapes" and source["eval_only"] and source["identity"]["training"] == trained
    res = result(env, "dg", "test", "synth_shapes_sketch", "shots_2", "CAPT", tag, "seed1")
    assert res["dataset"] == "SynthShapesSketch" and res["eval_only"] and res["load_epoch"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["vpt", "fap"])
def test_base2new_other_methods(env, method):
    sh(f"{method}/base2new.sh", "synth_shapes", 2, env=env)
    for sub in ("base", "new"):
        res = result(env, "base2new", f"test_{sub}", "synth_shapes", "shots_2", METHODS[method], cfg_dir(env), "seed2")
        assert res["subsample"] == sub and res["seed"] == 2 and res["load_epoch"] == 1


# ---- a method added outside the toolbox -------------------------------------------------------------------------
PLUGIN_TRAINER = '''"""A new method: two learnt context tokens (registered when PROMPTENGINE_PLUGINS names this module)."""
import os

from promptengine.clip.prompt_learner import PromptSpec
from promptengine.prompting import PromptTrainer
from promptengine.registry import TRAINER_REGISTRY


@TRAINER_REGISTRY.register()
class TinyPlug(PromptTrainer):
    script_folder, default_config = "tinyplug", "synth"
    config_dir = os.path.dirname(os.path.abspath(__file__))  # its YAMLs live next to it

    def prompt_spec(self):
        return PromptSpec(text_n_ctx=2)
'''
PLUGIN_CONFIG = """DATALOADER: {TRAIN_X: {BATCH_SIZE: 8}, TEST: {BATCH_SIZE: 50}, NUM_WORKERS: 0}
INPUT:
  SIZE: (32, 32)
OPTIM: {NAME: sgd, LR: 0.01, MAX_EPOCH: 1}
MODEL: {BACKBONE: {NAME: SynthCLIP}}
ATTACK: {TEST: {ENABLED: False}}
"""


@pytest.fixture
def plugin(tmp_path, env):
    """One trainer file and one YAML in a folder of their own, the wrappers generated (by the generator setup.sh runs)
    into a scripts folder that shares the toolbox's scripts/lib; returns that folder's parent and the environment."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "tinyplug.py").write_text(PLUGIN_TRAINER)
    (folder / "synth.yaml").write_text(PLUGIN_CONFIG)
    home = tmp_path / "home"
    (home / "scripts").mkdir(parents=True)
    (home / "scripts" / "lib").symlink_to(ROOT / "scripts" / "lib")
    env = dict(env, PROMPTENGINE_PLUGINS="tinyplug", PYTHONPATH=str(folder), EXTRA_OPTS="TEST.MAX_IMAGES 20")
    gen = subprocess.run([sys.executable, "-m", "promptengine.protocols.scripts", "--out", str(home / "scripts")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    shell_files = {p.relative_to(home / "scripts").as_posix() for p in (home / "scripts").glob("tinyplug/*")}
    assert shell_files == {f"tinyplug/{p}.sh" for p in PROMPT_PROTOCOLS}  # all generated, none written by this test
    return home, env


def test_a_plugin_method_gets_its_wrappers_and_runs_through_them(plugin):
    home, env = plugin
    proc = subprocess.run(["bash", "scripts/tinyplug/base2new.sh", "synth_shapes", "1"], cwd=home,
                          env=dict(env, DRY_RUN="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tag = cfg_dir(env)
    assert run_dirs(proc.stdout, "train") == [f"{env['OUTPUT']}/base2new/train_base/synth_shapes/shots_2/TinyPlug/{tag}/seed1"]
    assert len(run_dirs(proc.stdout, "eval")) == 2
    assert proc.stdout.count(f"--trainer TinyPlug --dataset-config-file {ROOT}/configs/datasets/synth_shapes.yaml "
                             f"--config-file {home.parent}/plugin/synth.yaml") == 3


@pytest.mark.slow
def test_a_plugin_method_trains_and_is_evaluated_through_its_generated_wrapper(plugin):
    home, env = plugin
    proc = subprocess.run(["bash", "scripts/tinyplug/base2new.sh", "synth_shapes", "1"], cwd=home, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(lines(proc, "run")) == 3
    from promptengine.reporting.results import load_results

    runs = load_results(Path(env["OUTPUT"])).runs
    assert sorted((r.protocol, r.phase, r.trainer, r.seed) for r in runs) == [
        ("base2new", "test_base", "TinyPlug", 1), ("base2new", "test_new", "TinyPlug", 1)]
    assert all(r.raw["num_images"] == 20 and r.raw["load_epoch"] == 1 for r in runs)


def test_a_plugin_module_that_cannot_be_imported_is_one_line(monkeypatch, capsys, tmp_path):
    from promptengine.protocols.cli import main

    monkeypatch.setenv("PROMPTENGINE_PLUGINS", "tinyplug_nowhere")
    monkeypatch.setenv("OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("DRY_RUN", "1")
    assert main(["capt", "base2new", "synth_shapes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: PROMPTENGINE_PLUGINS: cannot import 'tinyplug_nowhere'") and "PYTHONPATH" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
