"""train.py end to end on an in-memory dataset: training, logs, checkpoints, exact resume, eval-only, errors."""

import json
import os
import pickle

import torch

from promptengine.engine.checkpoint import safe_load
from tests.conftest import TOY_OPTS, run_train

COOP_OPTS = [*TOY_OPTS, "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "3"]


def coop(out, *flags, opts=(), trainer="CoOp"):
    """CLI flags first, trailing KEY VALUE opts last (later opts override earlier ones)."""
    return run_train(["--trainer", trainer, "--seed", "1", "--output-dir", out, *flags, *COOP_OPTS, *opts])


def read_log(out):
    return (out / "log.txt").read_text()


def accuracy_from_log(text):
    return [float(line.split(":")[1].strip(" %")) for line in text.splitlines() if line.startswith("* accuracy:")]


def test_train_logs_checkpoints_and_eval_only(tmp_path):
    out = tmp_path / "run"
    assert coop(out) == 0
    log = read_log(out)
    assert "Finish training" in log and "=> result" in log and "Setting fixed seed: 1" in log
    losses = [float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " summary: " in line]
    assert len(losses) == 3 and losses[-1] < losses[0]  # CoOp's loss falls on a learnable problem
    state = safe_load(str(out / "prompt_learner" / "model.pth.tar-3"))
    assert list(state["state_dict"]) == ["ctx"] and state["trainer"] == "CoOp"  # prompts only, no frozen CLIP
    assert (out / "prompt_learner" / "checkpoint").read_text().strip() == "model.pth.tar-3"
    assert (out / "config.yaml").exists()
    trained = json.loads((out / "results.json").read_text())["clean"]["accuracy"]
    ev = tmp_path / "eval"
    assert coop(ev, "--eval-only", "--model-dir", out, "--load-epoch", "3") == 0
    assert json.loads((ev / "results.json").read_text())["clean"]["accuracy"] == trained
    assert accuracy_from_log(read_log(ev)) == [round(trained, 2)]


def test_resume_continues_to_identical_result(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert coop(full, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    assert coop(part, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    # simulate a run killed after epoch 1: drop later checkpoints, point at epoch 1
    for ep in (2, 3):
        os.remove(part / "prompt_learner" / f"model.pth.tar-{ep}")
    (part / "prompt_learner" / "checkpoint").write_text("model.pth.tar-1\n")
    os.remove(part / "results.json")
    assert coop(part, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    assert "Resuming from epoch 1" in (next(p for p in part.iterdir() if p.name.startswith("log.txt-"))).read_text()
    a = safe_load(str(full / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    b = safe_load(str(part / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    assert torch.equal(a, b)
    assert json.loads((full / "results.json").read_text())["clean"] == json.loads((part / "results.json").read_text())["clean"]


def test_corrupt_latest_checkpoint_falls_back(tmp_path):
    out = tmp_path / "run"
    assert coop(out, opts=["TRAIN.CHECKPOINT_FREQ", "1", "OPTIM.MAX_EPOCH", "2"]) == 0
    latest = out / "prompt_learner" / "model.pth.tar-2"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated by a crash
    assert coop(out, opts=["TRAIN.CHECKPOINT_FREQ", "1", "OPTIM.MAX_EPOCH", "2"]) == 0
    newest_log = sorted(p for p in out.iterdir() if p.name.startswith("log.txt-"))[-1].read_text()
    assert "is corrupt or truncated" in newest_log and "Resuming from epoch 1" in newest_log
    safe_load(str(latest))  # rewritten whole by the resumed run


def test_eval_only_errors(tmp_path, capsys):
    out = tmp_path / "run"
    assert coop(tmp_path / "e1", "--eval-only") == 2
    assert "needs --model-dir" in capsys.readouterr().err
    assert coop(out, opts=["OPTIM.MAX_EPOCH", "1"]) == 0
    assert coop(tmp_path / "e2", "--eval-only", "--model-dir", out, trainer="APT", opts=["ATTACK.TRAIN.ENABLED", "True"]) == 2
    err = capsys.readouterr().err.strip()
    assert "written by trainer CoOp, not APT" in err and "\n" not in err
    evil = out / "prompt_learner" / "model.pth.tar-1"
    evil.write_bytes(pickle.dumps(os.system))  # a pickle that would run code when loaded without weights_only
    assert coop(tmp_path / "e3", "--eval-only", "--model-dir", out) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e3" / "results.json").exists()
