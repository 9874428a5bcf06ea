"""Run identity through the real train.py: resume, eval-only and folders are reused only by the same run.

Each test starts from a finished (or interrupted) toy run and tries what a user would: another seed, dataset subset,
attack or learning rate in the same folder, --resume pointing at nothing, two processes on one folder.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptengine.engine import identity as ident
from promptengine.engine.checkpoint import safe_load
from tests.conftest import TOY_OPTS, run_train

ROOT = Path(__file__).resolve().parents[1]
OPTS = [*TOY_OPTS, "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "2"]


def coop(out, *flags, opts=(), seed=1, trainer="CoOp"):
    return run_train(["--trainer", trainer, "--seed", seed, "--output-dir", out, *flags, *OPTS, *opts])


def snapshot(folder: Path) -> dict:
    """Every file under the folder with its bytes (what 'nothing was changed' compares)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "run"
    assert coop(out) == 0
    return out


@pytest.mark.parametrize("change, field", [
    (dict(seed=2), "train.SEED"),
    (dict(opts=["DATASET.SUBSAMPLE_CLASSES", "base"]), "data.DATASET.SUBSAMPLE_CLASSES"),
    (dict(opts=["OPTIM.LR", "0.02"]), "train.OPTIM.LR"),
    (dict(opts=["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.EPS", "2.0"]), "train.ATTACK.TRAIN.ENABLED"),
])
def test_same_folder_other_settings_stops_and_changes_nothing(finished, capsys, change, field):
    before = snapshot(finished)
    capsys.readouterr()
    assert coop(finished, **change) == 2
    err = one_error_line(capsys)
    assert f"'{field}'" in err and "--output-dir" in err and "--override-identity" in err, err
    assert snapshot(finished) == before  # results.json, config.yaml, log.txt and checkpoints untouched


def test_truncated_identity_file_is_reported_as_unreadable(finished, capsys):
    text = (finished / "identity.json").read_text()
    (finished / "identity.json").write_text(text[: len(text) // 2])  # a disk filled up mid-write (by another tool)
    before = snapshot(finished)
    capsys.readouterr()
    assert coop(finished) == 2
    err = one_error_line(capsys)
    assert "unreadable identity.json (truncated or corrupt" in err and "without a recorded identity" not in err, err
    assert snapshot(finished) == before


def test_checkpoint_of_another_run_is_not_resumed(tmp_path, capsys):
    """An identity.json-less folder (checkpoints copied in) is still guarded by the checkpoints' own identity."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    assert coop(src, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    (dst / "prompt_learner").mkdir(parents=True)
    for f in (src / "prompt_learner").iterdir():
        (dst / "prompt_learner" / f.name).write_bytes(f.read_bytes())
    capsys.readouterr()
    assert coop(dst, "--override-identity", seed=3) == 0  # the folder check is overridden: the checkpoint says why
    log = (dst / "log.txt").read_text()
    assert "'train.SEED' is 1 in the checkpoint but 3 in this run; training from scratch" in log
    assert "Resuming" not in log
    # without the override, an explicit --resume of that folder is refused by the checkpoint's identity
    capsys.readouterr()
    assert coop(tmp_path / "dst2", "--resume", src, seed=3) == 2
    assert "was trained by another run: 'train.SEED'" in one_error_line(capsys)


def test_override_identity_retrains_from_scratch_and_keeps_the_earlier_run(finished, tmp_path, capsys):
    """--override-identity never labels the earlier model with the new settings: the finished checkpoint (another
    learning rate) is not resumed, the run trains from scratch exactly as in a fresh folder, and the earlier run's
    records and checkpoints are kept aside, byte for byte."""
    old = json.loads((finished / "results.json").read_text())
    old_checkpoints = snapshot(finished / "prompt_learner")
    assert coop(finished, "--override-identity", opts=["OPTIM.LR", "0.02"]) == 0
    kept = [p for p in finished.iterdir() if p.name.startswith("results.json-")]
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == old
    [kept_checkpoints] = [p for p in finished.iterdir() if p.name.startswith("prompt_learner-")]
    assert snapshot(kept_checkpoints) == old_checkpoints
    fresh = tmp_path / "fresh"
    assert coop(fresh, opts=["OPTIM.LR", "0.02"]) == 0
    new, ref = (json.loads((d / "results.json").read_text()) for d in (finished, fresh))
    assert new["identity"]["identity"]["train"]["OPTIM.LR"] == 0.02
    assert new["identity"]["fingerprint"] == ref["identity"]["fingerprint"] != old["identity"]["fingerprint"]
    assert new["clean"] == ref["clean"]
    a, b = (safe_load(str(d / "prompt_learner" / "model.pth.tar-2")) for d in (finished, fresh))
    assert a["state_dict"]["ctx"].equal(b["state_dict"]["ctx"]) and a["identity"]["train"]["OPTIM.LR"] == 0.02
    # an explicit --resume of another run's checkpoint is refused, override or not
    capsys.readouterr()
    assert coop(tmp_path / "r", "--override-identity", "--resume", fresh, opts=["OPTIM.LR", "0.5"]) == 2
    assert "--override-identity never resumes another run's checkpoint" in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_resume_flag_must_point_at_a_usable_checkpoint(finished, tmp_path, capsys):
    capsys.readouterr()
    assert coop(tmp_path / "a", "--resume", tmp_path / "nonexistent") == 2
    assert "--resume" in one_error_line(capsys)
    assert coop(tmp_path / "b", "--resume", finished / "prompt_learner" / "model.pth.tar-2") == 2
    assert "is a file; pass the run's output folder" in one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert coop(tmp_path / "c", "--resume", tmp_path / "empty") == 2
    assert "holds no usable checkpoint" in one_error_line(capsys)
    for name in ("a", "b", "c"):
        assert not (tmp_path / name).exists()  # no partial output folder
    assert coop(tmp_path / "d", "--resume", finished) == 0  # the right one resumes (at its last epoch)
    assert "Resuming from epoch 2" in (tmp_path / "d" / "log.txt").read_text()


def test_eval_only_checks_the_model_it_loads(finished, tmp_path, capsys):
    capsys.readouterr()
    assert coop(tmp_path / "e1", "--eval-only", "--model-dir", finished, opts=["OPTIM.LR", "0.5"]) == 2
    err = one_error_line(capsys)
    assert "trained with other settings: 'train.OPTIM.LR'" in err
    assert coop(tmp_path / "e2", "--eval-only", "--model-dir", finished, seed=5) == 2
    assert "'train.SEED' is 1 in the checkpoint but 5" in one_error_line(capsys)
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
    # the evaluation data may differ (base-to-new, cross-dataset): that is what evaluation is for
    assert coop(tmp_path / "e3", "--eval-only", "--model-dir", finished, opts=["DATASET.SUBSAMPLE_CLASSES", "new"]) == 0
    record = json.loads((tmp_path / "e3" / "results.json").read_text())
    trained = json.loads((finished / "identity.json").read_text())
    assert record["identity"]["identity"]["weights"]["training"] == trained["training"]
    assert record["identity"]["training"] == trained["training"]


def test_eval_only_records_the_shots_the_model_was_trained_with(tmp_path, capsys):
    """An evaluation's own DATASET.NUM_SHOTS changes nothing it measures: a 2-shot model stays a 2-shot result."""
    two = tmp_path / "two"
    assert coop(two, opts=["DATASET.NUM_SHOTS", "2"]) == 0
    capsys.readouterr()
    assert coop(tmp_path / "ev", "--eval-only", "--model-dir", two, opts=["DATASET.NUM_SHOTS", "16"]) == 0
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["num_shots"] == 2
    assert "the loaded model was trained with DATASET.NUM_SHOTS 2" in capsys.readouterr().out


def test_evaluation_folder_is_not_reused_by_another_evaluation(finished, tmp_path, capsys):
    """No checkpoint guards an evaluation folder: its identity.json does (another attack is another result)."""
    ev = tmp_path / "eval"
    assert coop(ev, "--eval-only", "--model-dir", finished) == 0
    before = snapshot(ev)
    capsys.readouterr()
    assert coop(ev, "--eval-only", "--model-dir", finished, opts=["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "2"]) == 2
    err = one_error_line(capsys)
    assert f"output dir {ev} belongs to another run: 'eval.ATTACK.TEST.ENABLED'" in err
    assert snapshot(ev) == before


def test_results_carry_identity_and_provenance(finished):
    record = json.loads((finished / "results.json").read_text())
    summary = record["identity"]
    assert summary["fingerprint"] == ident.fingerprint(summary["identity"])  # recomputable from what is stored
    assert summary["training"] == ident.fingerprint(ident.training_identity(summary["identity"]))
    full = summary["identity"]
    assert full["trainer"] == "CoOp" and full["train"]["SEED"] == 1 and full["model"]["TRAINER.COOP.N_CTX"] == 4
    assert full["data"]["train_items"].startswith("80:") and full["data"]["test_items"].startswith("40:")
    assert full["model"]["backbone"]["name"] == "tiny-p8-32"
    for excluded in ("OUTPUT_DIR", "DATALOADER.NUM_WORKERS", "TRAIN.PRINT_FREQ"):
        assert all(excluded not in section for section in full.values() if isinstance(section, dict))
    prov = record["provenance"]
    import torch

    assert prov["torch"] == torch.__version__ and prov["clip"] and prov["torchvision"]
    assert prov["code"]["package"] and (prov["code"]["git_commit"] is None or len(prov["code"]["git_commit"]) == 40)
    assert prov["device"].startswith("cpu") and prov["precision"] == "fp32" and prov["wall_time_s"] > 0
    assert prov["command"][0] == "train.py" and "--output-dir" in prov["command"]
    state = safe_load(str(finished / "prompt_learner" / "model.pth.tar-2"))
    assert ident.fingerprint(state["identity"]) == summary["training"]
    header = (finished / "config.yaml").read_text().splitlines()[0]
    assert header.startswith(f"# run identity: {summary['fingerprint']} (training {summary['training']}")


def test_identity_ignores_what_cannot_change_numbers(finished, tmp_path):
    other = tmp_path / "other"
    assert coop(other, opts=["TRAIN.PRINT_FREQ", "1", "DATALOADER.NUM_WORKERS", "0", "TRAIN.CHECKPOINT_FREQ", "1",
                             "DATALOADER.TEST.BATCH_SIZE", "7"]) == 0
    a = json.loads((finished / "results.json").read_text())
    b = json.loads((other / "results.json").read_text())
    assert a["identity"]["fingerprint"] == b["identity"]["fingerprint"] and a["clean"] == b["clean"]


def test_skip_done_writes_nothing_and_rerun_resumes_bit_identically(tmp_path, capsys):
    finished = tmp_path / "run"
    assert coop(finished) == 0
    capsys.readouterr()
    before = snapshot(finished)
    assert coop(finished, "--skip-done") == 0
    assert "already holds the finished run of this identity" in capsys.readouterr().out
    assert snapshot(finished) == before
    # an interrupted run (epoch 1 only) rerun with the identical command ends with the same prompts and numbers
    part = tmp_path / "part"
    assert coop(part, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    os.remove(part / "prompt_learner" / "model.pth.tar-2")
    os.remove(part / "results.json")
    (part / "prompt_learner" / "checkpoint").write_text("model.pth.tar-1\n")
    (part / "prompt_learner" / "model.pth.tar-2.tmp12345").write_bytes(b"torn")  # a write killed mid-way
    assert coop(part, opts=["TRAIN.CHECKPOINT_FREQ", "1"]) == 0
    assert not (part / "prompt_learner" / "model.pth.tar-2.tmp12345").exists()
    a = safe_load(str(finished / "prompt_learner" / "model.pth.tar-2"))["state_dict"]["ctx"]
    b = safe_load(str(part / "prompt_learner" / "model.pth.tar-2"))["state_dict"]["ctx"]
    assert a.equal(b)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (finished, part))
    assert ra["clean"] == rb["clean"] and ra["identity"]["fingerprint"] == rb["identity"]["fingerprint"]


def test_failed_run_leaves_no_results(tmp_path, capsys):
    out = tmp_path / "nan"
    assert coop(out, opts=["OPTIM.LR", "1e30"]) == 2  # the loss overflows: training stops
    assert "not finite" in one_error_line(capsys)
    capsys.readouterr()
    assert not out.exists()  # it failed before any checkpoint: nothing partial (config, identity, log) is left
    assert coop(out) == 0  # and the same command with a sane learning rate starts afresh


# ---- one writer per folder ----------------------------------------------------------------------------------------
def launch(out: Path, epochs: int):
    cmd = [sys.executable, str(ROOT / "tests" / "launch_train.py"), "--trainer", "CoOp", "--seed", "1",
           "--output-dir", str(out), *OPTS, "OPTIM.MAX_EPOCH", str(epochs)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_two_concurrent_starts_exactly_one_runs(tmp_path):
    out = tmp_path / "shared"
    first = launch(out, 200)  # long enough to still be training when the second one starts
    try:
        deadline = time.time() + 120
        while not (out / ".lock").exists():
            assert time.time() < deadline and first.poll() is None, "the first run did not start"
            time.sleep(0.1)
        second = launch(out, 200)
        err2 = second.communicate(timeout=120)[1]
        assert second.returncode == 2 and first.poll() is None  # refused while the first one runs
        lines = [line for line in err2.strip().splitlines() if line]
        assert len(lines) == 1 and f"is in use by process {first.pid} on this host" in lines[0], err2
    finally:
        first.kill()
        first.communicate()
    assert not (out / "results.json").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "start": "then"}))
    assert coop(out) == 0
    assert f"taking over the stale lock of process {int(dead.stdout)}" in capsys.readouterr().out
    assert not (out / ".lock").exists() and (out / "results.json").exists()


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_stale_lock_is_taken_over_by_one_process_only(tmp_path, monkeypatch):
    """Two processes find the same stale lock; the second completes its takeover between the first one's look at
    the lock and its removal. The first must meet the second's live lock, not remove it and hold the folder too."""
    from promptengine.engine import runlock

    out = tmp_path / "run"
    out.mkdir()
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "start": "then"}
    (out / ".lock").write_text(json.dumps(stale))
    second = runlock.RunLock(str(out))
    real_read = runlock.read_owner
    interleaved = []

    def look_then_let_the_other_in(path):
        data = real_read(path)
        if not interleaved:
            interleaved.append(True)
            second.acquire()  # the other process's whole takeover happens here
        return data

    monkeypatch.setattr(runlock, "read_owner", look_then_let_the_other_in)
    first = runlock.RunLock(str(out))
    with pytest.raises(runlock.RunFolderBusy, match=f"is in use by process {os.getpid()} on this host"):
        first.acquire()
    assert second.held and not first.held
    assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no private lock files left behind


def test_weights_digest_cache_is_not_fooled_by_a_file_of_the_same_size_and_mtime(tmp_path):
    """A backbone file replaced (or rewritten in place) by one of the same size, with its mtime set back, is hashed
    again: the cached digest of the old file must not identify the new weights."""
    import hashlib

    from promptengine.engine.digests import file_digest

    weights = tmp_path / "ViT-B-32.pt"
    contents = [bytes(range(256)) * 20000 + tag for tag in (b"first", b"secnd", b"third")]  # > 2 MiB, same size
    weights.write_bytes(contents[0])
    mtime = weights.stat().st_mtime_ns
    assert file_digest(str(weights)) == hashlib.sha256(contents[0]).hexdigest()

    weights.write_bytes(contents[1])  # rewritten in place, mtime set back
    os.utime(weights, ns=(mtime, mtime))
    assert file_digest(str(weights)) == hashlib.sha256(contents[1]).hexdigest()

    copy = tmp_path / "other.pt"  # another file of the same size and mtime moved over it
    copy.write_bytes(contents[2])
    os.utime(copy, ns=(mtime, mtime))
    os.replace(copy, weights)
    assert file_digest(str(weights)) == hashlib.sha256(contents[2]).hexdigest()
