"""A fork's layout end to end. CoOp, MaPLe, PromptSRC and FAP ship a ``clip/`` folder of their own; first on the path,
it must not replace OpenAI's CLIP in this toolbox, neither for ``train.py`` nor for the Dassl plug-in run by a
CoOp-style ``train.py`` (the stand-in fork in tests/fake_dassl/fork, whose ``clip`` raises on every use). The
command of docs/DASSL_PLUGIN.md runs as written there, on CoOp's recipe with its warm-up epoch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from promptengine.clip import openai_clip
from tests.dassl_fork import FORK, ROOT, docs_command, fork_env, make_fork, run_shell

SHADOW_NOTE = "Note: the 'clip' package at {} (first on the path) is ignored; this toolbox uses OpenAI's CLIP"
# what a CPU test cannot afford of the docs' command (ViT-B/16, 50 epochs, PGD-100), appended after it
SHRINK = ("MODEL.BACKBONE.NAME {weights} INPUT.SIZE '(32,32)' OPTIM.MAX_EPOCH 2 DATALOADER.TRAIN_X.BATCH_SIZE 8 "
          "DATALOADER.NUM_WORKERS 0 TRAINER.CAPT.PROMPT_DEPTH 2 ATTACK.TEST.STEPS 2")


def test_train_py_with_a_shadowing_clip_first_on_the_path(tmp_path):
    """From a folder holding a fork's ``clip/`` package (also first on PYTHONPATH), train.py trains and tests on the
    embedded world with OpenAI's CLIP, and says in one line which ``clip`` it ignored."""
    scratch = tmp_path / "scratch"
    shutil.copytree(FORK / "clip", scratch / "clip")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(scratch), OMP_NUM_THREADS="1")
    args = ["--trainer", "CoOp", "--seed", "1", "--dataset-config-file", "synth_shapes", "--config-file", "synth",
            "--output-dir", str(out), "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "TEST.MAX_IMAGES", "20",
            "ATTACK.TEST.STEPS", "1"]
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=scratch, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert SHADOW_NOTE.format(scratch / "clip") in proc.stdout
    record = json.loads((out / "results.json").read_text())
    assert record["clean"]["accuracy"] >= 0 and record["worst_case"]["accuracy"] >= 0


def lrs_of_first_batches(log: str):
    return {int(e): float(lr) for e, lr in re.findall(r"^epoch \[(\d+)/\d+\] batch \[1/\d+\] .* lr (\S+)$", log, re.M)}


def test_docs_command_runs_in_a_fork_and_eval_only_reloads_it(tmp_path):
    """The docs' command, word for word plus the shrinking options, run by the shell inside the stand-in fork (its
    clip first on the path, its own trainers and datasets, CoOp's YAML with one constant warm-up epoch): trains
    with Dassl's warm-up schedule, tests, saves Dassl's checkpoint; ``--eval-only`` reloads it to the same numbers."""
    paths = make_fork(tmp_path)
    env = fork_env(tmp_path, paths["data"])
    command = docs_command()
    assert "--config-file configs/trainers/CoOp/vit_b16_ep50.yaml" in command  # CoOp's recipe, WARMUP_EPOCH 1
    shrink = SHRINK.format(weights=paths["weights"])
    train = run_shell(f"{command} {shrink}", paths["fork"], env)
    assert train.returncode == 0, train.stdout[-1500:] + train.stderr[-1500:]
    assert SHADOW_NOTE.format(paths["fork"] / "clip") in train.stdout
    assert "Dassl's TRAINER_REGISTRY already has 'CoOp'" in train.stdout  # the fork's own CoOp is kept
    assert lrs_of_first_batches(train.stdout) == {1: 1e-5, 2: 2e-3}  # CoOp: constant 1e-5 epoch, then the base LR
    out = paths["fork"] / re.search(r"--output-dir (\S+)", command).group(1)
    assert (out / "prompt_learner" / "model.pth.tar-2").is_file() and (out / "log.txt").is_file()
    result = re.findall(r"^\* (accuracy|robust_accuracy \(.+\)): ([0-9.]+)%$", train.stdout, re.M)
    assert [name for name, _ in result] == ["accuracy", "robust_accuracy (pgd2, linf, eps=1/255, alpha=0.25/255)"]

    evaluate = command.replace("python train.py", f"python train.py --eval-only --model-dir {out} --load-epoch 2", 1)
    evaluate = re.sub(r"--output-dir \S+", "--output-dir output/eval", evaluate)
    again = run_shell(f"{evaluate} {shrink}", paths["fork"], env)
    assert again.returncode == 0, again.stdout[-1500:] + again.stderr[-1500:]
    assert "Finish training" not in again.stdout
    assert re.findall(r"^\* (accuracy|robust_accuracy \(.+\)): ([0-9.]+)%$", again.stdout, re.M) == result


def test_no_module_imports_clip_by_name():
    """Every part of the toolbox (and its tests and tools) takes CLIP from promptengine.clip.openai_clip; a plain
    ``import clip`` anywhere would bring back the shadowing (the stand-in fork's own files excepted)."""
    pattern = re.compile(r"^\s*(import clip\b|from clip(\.\w+)* import )", re.M)
    folders = ["promptengine", "trainers", "tools", "datasets", "tests", "scripts"]
    files = [ROOT / "train.py", *(p for f in folders for p in (ROOT / f).rglob("*.py"))]
    offenders = [str(p.relative_to(ROOT)) for p in files if FORK not in p.parents and pattern.search(p.read_text())]
    assert offenders == []


def test_notice_names_the_clip_in_use_only_when_it_is_not_the_expected_one(tmp_path):
    folder = str(tmp_path / "site-packages" / "clip")
    assert openai_clip.notice("clip-anytorch", "2.6.0", folder, None) is None
    assert openai_clip.notice("clip-anytorch", "2.6.0", folder, folder) is None  # the installed one, imported plainly
    other = openai_clip.notice("clip", "1.0", folder, None)
    assert other == f"Note: this toolbox uses OpenAI's CLIP from clip 1.0 ({folder}); it is tested with clip-anytorch 2.6.0"
    shadow = openai_clip.notice("clip-anytorch", "2.6.0", folder, str(tmp_path / "fork" / "clip"))
    assert shadow.startswith(SHADOW_NOTE.format(tmp_path / "fork" / "clip"))
