"""Reliability: a killed run resumes to the same result; a catalogue of bad inputs fails with one line each."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from promptengine.engine.checkpoint import safe_load
from tests.conftest import ROOT, TOY_OPTS, run_train
from tests.dataset_trees import make_tree

LAUNCH = [sys.executable, os.path.join(ROOT, "tests", "launch_train.py")]
KILL_OPTS = [*TOY_OPTS, "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "6", "TRAIN.CHECKPOINT_FREQ", "1",
             "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]


def launch(out, env):
    cmd = [*LAUNCH, "--trainer", "CoOp", "--seed", "2", "--output-dir", str(out), *KILL_OPTS]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PROMPTENGINE_CACHE=str(tmp_path / "cache"))
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert launch(full, env).wait(timeout=300) == 0
    proc = launch(killed, env)
    deadline = time.time() + 240
    while not (killed / "prompt_learner" / "model.pth.tar-2").exists():  # kill during epoch 3
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists()
    assert launch(killed, env).wait(timeout=300) == 0
    a = safe_load(str(full / "prompt_learner" / "model.pth.tar-6"))
    b = safe_load(str(killed / "prompt_learner" / "model.pth.tar-6"))
    assert torch.equal(a["state_dict"]["ctx"], b["state_dict"]["ctx"])  # bit-identical on the CPU
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, killed))
    assert ra["clean"] == rb["clean"]


def bad(tmp_path, capsys, args, *expected):
    """Run, expect exit 2 and one stderr line containing every expected fragment."""
    code = run_train(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for fragment in expected:
        assert fragment in err, err
    return err


BASE = ["--trainer", "CoOp", "--seed", "1"]


def pets(tmp_path):
    tree = make_tree(tmp_path / "data", "oxford_pets")
    config = os.path.join(ROOT, "configs/datasets/oxford_pets.yaml")
    return tree, ["--root", str(tmp_path / "data"), "--dataset-config-file", config]


CATALOGUE = {
    "unknown trainer": (lambda t: ["--trainer", "CoOpp", "--output-dir", str(t / "o")], "unknown trainer 'CoOpp'", "CoOp"),
    "unknown dataset": (lambda t: [*BASE, "--output-dir", str(t / "o"), "DATASET.NAME", "OxfordPet"],
                        "unknown dataset 'OxfordPet'", "OxfordPets"),
    "unknown config key": (lambda t: [*BASE, "--output-dir", str(t / "o"), "OPTIM.LRR", "0.1"], "OPTIM.LRR", "OPTIM.LR"),
    "wrong value type": (lambda t: [*BASE, "--output-dir", str(t / "o"), "OPTIM.MAX_EPOCH", "'many'"], "wrong value type"),
    "missing config file": (lambda t: [*BASE, "--output-dir", str(t / "o"), "--config-file", str(t / "nope.yaml")],
                            "config file not found"),
    "negative eps": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "ATTACK.TEST.ENABLED", "True",
                                "ATTACK.TEST.STEPS", "5", "ATTACK.TEST.EPS", "-1.0"], "EPS"),
    "negative steps": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "ATTACK.TEST.ENABLED", "True",
                                  "ATTACK.TEST.STEPS", "-3"], "STEPS"),
    "bad subsample": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "DATASET.SUBSAMPLE_CLASSES", "novel"],
                      "SUBSAMPLE_CLASSES", "'all', 'base', 'new'"),
    "unknown backbone": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "MODEL.BACKBONE.NAME", "ViT-B/61"],
                         "unknown CLIP backbone 'ViT-B/61'"),
    "weights offline": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "MODEL.BACKBONE.NAME", "ViT-B/32",
                                   "MODEL.BACKBONE.DOWNLOAD_ROOT", str(t / "w")], "not available offline", "ViT-B-32.pt"),
    "weights file is garbage": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "MODEL.BACKBONE.NAME",
                                           _garbage(t)], "cannot load CLIP weights"),
    "eval-only without model dir": (lambda t: [*BASE, "--eval-only", "--output-dir", str(t / "o"), *TOY_OPTS],
                                    "needs --model-dir"),
    "model dir missing": (lambda t: [*BASE, "--eval-only", "--model-dir", str(t / "nothing"), "--output-dir",
                                     str(t / "o"), *TOY_OPTS], "does not exist"),
    "unknown transform": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "INPUT.TRANSFORMS", "['rotate']"],
                          "unknown transform 'rotate'"),
    "bad optimizer": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "OPTIM.NAME", "lion"], "OPTIM.NAME"),
    "class name too long": (lambda t: [*BASE, "--output-dir", str(t / "o"), *TOY_OPTS, "TRAINER.COOP.N_CTX", "75"],
                            "prompt too long"),
    "adversarial trainer without attack": (lambda t: ["--trainer", "CAPT", "--output-dir", str(t / "o"), *TOY_OPTS],
                                           "ATTACK.TRAIN.ENABLED"),
}


def _garbage(t):
    path = t / "garbage.pt"
    path.write_bytes(b"not a checkpoint")
    return str(path)


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_bad_input_catalogue(case, tmp_path, capsys):
    build, *expected = CATALOGUE[case]
    bad(tmp_path, capsys, build(tmp_path), *expected)
    assert not (tmp_path / "o").exists(), "a failing command must leave no output behind"


def test_data_root_errors(tmp_path, capsys):
    tree, data = pets(tmp_path)
    out = ["--output-dir", str(tmp_path / "o")]
    opts = ["MODEL.BACKBONE.NAME", "tiny-p8-32", "DATALOADER.NUM_WORKERS", "0", "INPUT.SIZE", "(32,32)"]
    bad(tmp_path, capsys, [*BASE, *out, "--root", str(tmp_path / "nowhere"), *data[2:], *opts], "nowhere")
    bad(tmp_path, capsys, [*BASE, *out, "--dataset-config-file", data[3], *opts], "--root")
    images = next((tmp_path / "data").rglob("*.jpg"))
    images.unlink()
    bad(tmp_path, capsys, [*BASE, *out, *data, *opts], images.name)
    assert not (tmp_path / "o").exists()


def test_unreadable_image_in_worker_is_one_line(tmp_path, capsys):
    _, data = pets(tmp_path)
    victim = sorted((tmp_path / "data").rglob("*.jpg"))[0]
    victim.write_bytes(b"\x00garbage")
    opts = ["MODEL.BACKBONE.NAME", "tiny-p8-32", "DATALOADER.NUM_WORKERS", "1", "INPUT.SIZE", "(32,32)",
            "TRAINER.COOP.N_CTX", "2", "OPTIM.MAX_EPOCH", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "2"]
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), *data, *opts], "cannot read image", victim.name)


def test_unreadable_image_met_during_evaluation_leaves_no_partial_folder(tmp_path, capsys):
    """Only the evaluation reads the test images: a bad one is met after the run folder was set up. A run that has
    nothing to keep (no checkpoint) leaves no folder; a trained one keeps its checkpoint and resumes once fixed."""
    from tests.dataset_trees import PER_CLASS_TEST, PER_CLASS_TRAINVAL

    _, data = pets(tmp_path)
    victim = tmp_path / "data" / "oxford_pets" / "images" / f"Abyssinian_{PER_CLASS_TRAINVAL + PER_CLASS_TEST}.jpg"
    good = victim.read_bytes()
    victim.write_bytes(b"\x00garbage")  # a test image (the last of its class)
    opts = ["MODEL.BACKBONE.NAME", "tiny-p8-32", "DATALOADER.NUM_WORKERS", "0", "INPUT.SIZE", "(32,32)"]

    def fails(args):
        assert run_train(args) == 2
        last = capsys.readouterr().err.strip().split("\r")[-1]  # after the evaluation's progress bar
        assert last.startswith("error: cannot read image") and victim.name in last and "\n" not in last, last

    fails(["--trainer", "ZeroshotCLIP", "--eval-only", "--output-dir", str(tmp_path / "zs"), *data, *opts])
    assert not (tmp_path / "zs").exists()
    trained = tmp_path / "coop"
    train = [*BASE, "--output-dir", str(trained), *data, *opts, "TRAINER.COOP.N_CTX", "2", "OPTIM.MAX_EPOCH", "1",
             "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]
    fails(train)
    assert (trained / "prompt_learner" / "model.pth.tar-1").exists() and not (trained / "results.json").exists()
    victim.write_bytes(good)
    assert run_train(train) == 0 and (trained / "results.json").exists()
    assert any("Resuming from epoch 1" in log.read_text() for log in trained.glob("log.txt-*"))  # the rerun's log


def test_num_shots_larger_than_available_warns_and_takes_all(tmp_path, capsys):
    code = run_train([*BASE, "--output-dir", str(tmp_path / "o"), *TOY_OPTS, "DATASET.NUM_SHOTS", "50",
                      "TRAINER.COOP.N_CTX", "2", "OPTIM.MAX_EPOCH", "1"])
    assert code == 0
    log = (tmp_path / "o" / "log.txt").read_text()
    assert "have fewer than 50 training images; all of their images are used" in log
    assert "# train_x  80" in log


@pytest.mark.parametrize("where", ["file in the way", "proc"])
def test_output_dir_not_writable(tmp_path, capsys, where):
    """Runs as any user, root included: a regular file where a folder must be, and /proc (not writable even by root)."""
    if where == "file in the way":
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a folder")
        out = blocker / "run"
    else:
        out = "/proc/capt-output-test/run"
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(out), *TOY_OPTS], "not writable")
    assert not os.path.isdir(out)


def test_cli_subprocess_exit_code_and_single_line(tmp_path):
    res = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--trainer", "Capt", "--output-dir",
                          str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == "error: unknown trainer 'Capt'; did you mean 'CAPT'? " \
        f"(registered: {', '.join(sorted(_trainers()))})"


def _trainers():
    """The trainers a fresh train.py process registers (tests register extra ones in this process)."""
    code = ("from promptengine.registry import import_builtin; import_builtin(); "
            "from promptengine.registry import TRAINER_REGISTRY; print(' '.join(TRAINER_REGISTRY.registered_names()))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()


def test_nonfinite_loss_stops_with_location(tmp_path, capsys):
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), *TOY_OPTS, "TRAINER.COOP.N_CTX", "2",
                           "OPTIM.LR", "1e30"], "not finite", "epoch 1", "TRAIN.NONFINITE skip")
    assert not list((tmp_path / "o").rglob("model.pth.tar-*"))


def test_nonfinite_skip_option(tmp_path, capsys):
    code = run_train([*BASE, "--output-dir", str(tmp_path / "o"), *TOY_OPTS, "TRAINER.COOP.N_CTX", "2",
                      "OPTIM.LR", "1e30", "TRAIN.NONFINITE", "skip", "OPTIM.MAX_EPOCH", "1", "TEST.NO_TEST", "True"])
    assert code == 0
    assert "step skipped" in (tmp_path / "o" / "log.txt").read_text()


def test_bad_image_reads_as_user_error(tmp_path):
    from promptengine.data.dataset import DatasetBase
    from promptengine.errors import UserError

    p = tmp_path / "x.jpg"
    Image.new("RGB", (4, 4)).save(p)
    DatasetBase().read_image(str(p))
    p.write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot read image"):
        DatasetBase().read_image(str(p))
