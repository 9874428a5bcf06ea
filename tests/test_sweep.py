"""The sweep runner (tools/sweep.py, promptengine/sweep/): grids of real protocol-script runs on the embedded world.

The slow tests run a 2x2 grid (CoOp and zero-shot CLIP x two synthetic datasets, few-shot, 2 shots, the tiny budget
of test_scripts) through the local launcher with 2 workers, and through the slurm launcher against the fake Slurm
commands of tests/fake_slurm.py, which record what submitit submits and run it on this machine.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptengine.errors import UserError
from promptengine.sweep import launchers
from promptengine.sweep.checks import check_run_configs
from promptengine.sweep.grid import build_grid, expand, script_env
from promptengine.sweep.plan import chains, point_runs, resolve_methods
from promptengine.sweep.worker import ChainTask
from tests.test_scripts import SCRIPT_VARS, TINY
from tests.weights_fakes import REFUSAL, TOWER, pinned_tower, swap_for_another

ROOT = Path(__file__).resolve().parents[1]
GRID = {"protocols": "fewshot", "methods": "coop zsclip", "datasets": "synth_shapes synth_glyphs", "seeds": 1,
        "shots": 2}
POINTS = ["fewshot-coop-synth_shapes-s1-k2", "fewshot-coop-synth_glyphs-s1-k2",
          "fewshot-zsclip-synth_shapes-s1-k2", "fewshot-zsclip-synth_glyphs-s1-k2"]


@pytest.fixture
def env(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    return dict(base, OUTPUT=str(tmp_path / "out"), PYTHON=sys.executable, EXTRA_OPTS=TINY)


def sweep(*args, env, expect=0):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "sweep.py"), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, f"sweep {args}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def write_grid(tmp_path, **extra):
    import yaml

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **extra}))
    return path


def status_lines(text):
    """point id -> (state, rest of the line) from a status report."""
    out = {}
    for line in text.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and parts[0] in ("done", "running", "failed", "pending"):
            out[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "")
    return out


def planned_runs(env, grid_file):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        grid = build_grid(str(grid_file), {})
        methods = resolve_methods(grid.methods)
        senv = script_env(grid)
        points = expand(grid, list(methods), senv["EXTRA_OPTS"])
        return points, {p.id: point_runs(p, methods[p.method], senv) for p in points}
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ---- fast checks ------------------------------------------------------------------------------------------------
def test_xd_and_dg_of_one_seed_share_a_chain_and_bad_grids_fail_in_one_line(tmp_path, env):
    grid = write_grid(tmp_path, protocols="xd dg base2new", methods="capt", datasets="synth_glyphs", seeds="1 2")
    points, runs = planned_runs(env, grid)
    groups = chains(points, runs)
    assert groups == [["xd-capt-s1-k2", "dg-capt-s1-k2"], ["xd-capt-s2-k2", "dg-capt-s2-k2"],
                      ["base2new-capt-synth_glyphs-s1-k2"], ["base2new-capt-synth_glyphs-s2-k2"]]
    train = [r.folder for r in runs["xd-capt-s1-k2"] if r.kind == "train"]
    assert train == [r.folder for r in runs["dg-capt-s1-k2"] if r.kind == "train"]
    assert "/transfer/train/synth_shapes/shots_2/CAPT/synth@" in train[0]

    proc = sweep("run", grid, "--datasets", "synth_nope", env=env, expect=2)
    assert proc.stderr.startswith("error: grid point ") and "unknown dataset id 'synth_nope'" in proc.stderr
    proc = sweep("run", grid, "--methods", "nomethod", env=env, expect=2)
    assert "error: unknown method 'nomethod'" in proc.stderr
    proc = sweep("status", "--state", tmp_path / "nowhere", env=env, expect=2)
    assert "error: no sweep in" in proc.stderr
    assert not Path(env["OUTPUT"]).exists()


def test_scripts_hand_their_runs_to_the_sweep_when_jobs_is_set(env):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "coop" / "fewshot.sh"), "synth_shapes", "1", "2"],
                          env=dict(env, JOBS="2", DRY_RUN="1", SEEDS="1 2"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "4 point(s) in 4 chain(s), launcher local, 2 at once" in proc.stdout
    assert "chain: fewshot-coop-synth_shapes-s2-k1" in proc.stdout


def test_slurm_launcher_without_submitit_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(UserError, match="the slurm launcher needs submitit: pip install submitit"):
        launchers.launch_slurm(None, [["a"]], launchers.Launch("slurm", 1, 1))


def test_a_preempted_chain_is_requeued_as_the_same_chain(tmp_path):
    """submitit's preemption handler requeues a job whose function has ``checkpoint``; the requeued job reruns the
    whole chain (train.py skips what finished and resumes the interrupted training)."""
    submitit = pytest.importorskip("submitit")
    from submitit.core.job_environment import _checkpoint

    task = ChainTask(str(tmp_path), ["xd-capt-s1", "dg-capt-s1"], 4)
    delayed = submitit.helpers.DelayedSubmission(task)
    delayed.set_timeout(60, 3)
    assert _checkpoint(delayed, tmp_path / "requeued.pkl", 3) == ""  # "" = requeue
    again = submitit.helpers.DelayedSubmission.load(tmp_path / "requeued.pkl").function
    assert isinstance(again, ChainTask) and again is not task
    assert (again.folder, again.ids, again.threads) == (str(tmp_path), ["xd-capt-s1", "dg-capt-s1"], 4)


def test_status_is_decided_from_the_run_folders_then_the_records(tmp_path):
    """done needs every result, computed from the training folder's current run; exit codes alone decide nothing."""
    from promptengine.sweep.grid import Point
    from promptengine.sweep.plan import RunRef
    from promptengine.sweep.state import SweepState
    from promptengine.sweep.status import sweep_status

    def put(folder, name, data):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / name).write_text(json.dumps(data))

    ids = ["done", "stale", "failed", "zero", "gone", "running", "queued", "new"]
    runs = {pid: [RunRef("train", str(tmp_path / pid / "train")), RunRef("eval", str(tmp_path / pid / "test"))]
            for pid in ids}
    state = SweepState(str(tmp_path / "state"))
    state.save_plan("t", {}, [Point(pid, "capt", "xd", ["1"]) for pid in ids], runs, [[pid] for pid in ids], {}, {})
    for pid in ids:
        put(f"{pid}/train", "identity.json", {"training": "T1"})
    put("done/test", "results.json", {"identity": {"training": "T1"}})
    put("stale/test", "results.json", {"identity": {"training": "T0"}})  # evaluated an earlier training
    put("running/test", "results.json", {"identity": {"training": "T1"}})
    state.mark_finished("done", 3)  # a failed attempt, finished since by another
    state.mark_finished("stale", 0)
    state.mark_finished("failed", 2)
    state.mark_finished("zero", 0)
    state.write_record("gone", {"status": "running", "pid": 2 ** 22 + 12345, "host": socket.gethostname()})
    state.mark_running("running")  # this process: alive
    state.mark_submitted("queued", "77_3")
    got = {s.id: (s.state, s.detail) for s in sweep_status(state)}
    log = str(state.log_path("failed"))
    assert got == {
        "done": ("done", ""), "stale": ("failed", f"exited 0 but {tmp_path}/stale/test has no current result"),
        "failed": ("failed", "exit status 2"),
        "zero": ("failed", f"exited 0 but {tmp_path}/zero/test has no current result"),
        "gone": ("failed", f"interrupted (process {2 ** 22 + 12345} is gone)"),
        "running": ("running", f"pid {os.getpid()} on {socket.gethostname()}"),
        "queued": ("pending", "job 77_3"), "new": ("pending", ""),
    }
    assert [s.log for s in sweep_status(state) if s.id == "failed"] == [log]


def test_option_names_that_look_alike_once_cleaned_are_refused(tmp_path, env):
    """'λ3' and 'α3' both clean to '_3': two different points would share one id, log, record and status line."""
    grid = write_grid(tmp_path, options={"λ3": "TRAINER.CAPT.LAMBDA 3.0", "α3": "ATTACK.TRAIN.ALPHA 3.0"})
    with pytest.raises(UserError, match="grid options '(λ3|α3)' and '(λ3|α3)' give the same point id suffix '_3'"):
        planned_runs(env, grid)
    points, _ = planned_runs(env, write_grid(tmp_path, options={"l3": "TRAINER.CAPT.LAMBDA 3.0", "a3": ""}))
    assert len({p.id for p in points}) == len(points) == 8


def test_jobs_are_capped_at_the_chains_and_the_cores_and_say_so(tmp_path, env):
    cores = os.cpu_count()
    expected = min(4, cores)
    proc = sweep("run", write_grid(tmp_path), "--jobs", 10000, "--dry-run", env=env)
    assert (f"4 point(s) in 4 chain(s), launcher local, {expected} at once (capped from 10000: 4 chain(s), "
            f"{cores} core(s)), {max(1, cores // expected)} thread(s) each") in proc.stdout
    assert not Path(env["OUTPUT"]).exists()


@pytest.mark.parametrize("option, message", [
    ("ATTACK.TEST.EPS -4", "ATTACK.TEST.EPS = -4.0 (from the command line) is not allowed: it must be a finite "
                           "number >= 0"),
    ("TRAINER.CAPT.LAMBDA abc", "wrong value type for TRAINER.CAPT.LAMBDA in the command line: got 'abc'"),
])
def test_bad_option_values_stop_the_sweep_before_any_point_starts(tmp_path, env, option, message):
    grid = write_grid(tmp_path, options={"default": "", "bad": option})
    proc = sweep("run", grid, "--jobs", 2, env=env, expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: grid point fewshot-coop-synth_shapes-s1-k2-bad: "), lines
    assert message in lines[0]
    assert not Path(env["OUTPUT"]).exists()  # no state folder, no run folder: nothing started


def test_catalogued_weights_are_checked_with_every_run_before_any_point_starts(tmp_path, env):
    """A grid option may name a catalogued tower: the pre-flight check resolves it as each run will (a pinned copy
    passes) and stops on a copy of another checksum with one line naming the grid point."""
    root = tmp_path / "weights"
    path = pinned_tower(root)
    grid = write_grid(tmp_path, methods="zsclip", datasets="synth_shapes",
                      options={"tower": f"MODEL.BACKBONE.PATH {TOWER} MODEL.BACKBONE.DOWNLOAD_ROOT {root}"})
    points, runs = planned_runs(env, grid)
    check_run_configs(points, runs)
    swap_for_another(path)
    with pytest.raises(UserError, match=f"^grid point fewshot-zsclip-synth_shapes-s1-k2-tower: .*{REFUSAL}") as refused:
        check_run_configs(points, runs)
    assert "\n" not in str(refused.value)


def test_points_run_with_the_interpreter_of_the_sweep(monkeypatch):
    """An installed capt-sweep whose venv is not activated: the points' train.py must not be a `python` on PATH."""
    from promptengine.sweep.worker import point_environment

    base = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    assert point_environment(base, {}, {}, 1)["PYTHON"] == sys.executable
    assert point_environment(dict(base, PYTHON=""), {}, {}, 1)["PYTHON"] == sys.executable
    assert point_environment(base, {"PYTHON": "my-env/bin/python"}, {}, 1)["PYTHON"] == "my-env/bin/python"


# ---- end to end on the embedded world ---------------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_stops_a_local_sweep_and_starts_no_other_point(tmp_path, env):
    """Ctrl-C (SIGINT to the sweep's process group) while the first point trains: that point stops, the sweep exits
    130 with one line, and the queued points are never started."""
    grid = write_grid(tmp_path, methods="coop", datasets="synth_shapes",
                      options={"a": "OPTIM.MAX_EPOCH 500", "b": "", "c": "TEST.MAX_IMAGES 20"})
    ids = [f"fewshot-coop-synth_shapes-s1-k2-{name}" for name in ("a", "b", "c")]  # three chains, in this order
    state = Path(env["OUTPUT"], ".sweeps", "grid")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "sweep.py"), "run", str(grid), "--jobs", "1",
                             "--threads", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        record = state / "points" / f"{ids[0]}.json"
        deadline = time.time() + 300
        while not (record.exists() and json.loads(record.read_text())["status"] == "running"):
            assert time.time() < deadline and proc.poll() is None, "the first point did not start"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1].startswith("error: interrupted: no further point was started"), err
    assert json.loads(record.read_text())["status"] == "finished"
    for pid in ids[1:]:
        assert not (state / "points" / f"{pid}.json").exists() and not (state / "logs" / f"{pid}.log").exists()


@pytest.mark.slow
def test_local_grid_with_two_workers_failure_status_then_rerun_skips(tmp_path, env):
    grid = write_grid(tmp_path)
    _, runs = planned_runs(env, grid)
    # A folder holding files of an unknown run makes train.py refuse it: that point's job fails.
    blocked = Path(runs[POINTS[3]][0].folder)
    blocked.mkdir(parents=True)
    (blocked / "log.txt").write_text("not ours\n")

    proc = sweep("run", grid, "--launcher", "local", "--jobs", 2, "--threads", 1, "--devices", "7,9", env=env,
                 expect=1)
    report = status_lines(proc.stdout)
    assert {pid: s for pid, (s, _) in report.items()} == {**{p: "done" for p in POINTS[:3]}, POINTS[3]: "failed"}
    state = Path(env["OUTPUT"], ".sweeps", "grid")
    log = state / "logs" / f"{POINTS[3]}.log"
    assert report[POINTS[3]][1] == f"exit status 2; log {log}"
    assert "holds files of a run without a recorded identity" in log.read_text()
    records = [json.loads((state / "points" / f"{p}.json").read_text()) for p in POINTS]
    by_worker = {}
    for r in records:
        by_worker.setdefault(r["pid"], set()).add(r["device"])
    assert sorted(map(sorted, by_worker.values())) == [["7"], ["9"]]  # two worker processes, one device each ...
    for r in records:  # what each run was given
        head = (state / "logs" / f"{POINTS[records.index(r)]}.log").read_text().splitlines()[0]
        assert head.endswith(f"(OMP_NUM_THREADS=1, CUDA_VISIBLE_DEVICES={r['device']})"), head
    first, second = sorted(records, key=lambda r: r["started"])[:2]
    assert second["started"] < first["ended"]  # ... running at the same time
    for pid in POINTS[:3]:
        for run in runs[pid]:
            res = json.loads(Path(run.folder, "results.json").read_text())
            assert (res["num_shots"], res["seed"]) == (2, 1)
    status = sweep("status", grid, env=env, expect=1)
    assert status_lines(status.stdout) == report

    (blocked / "log.txt").unlink()
    stamps = {p: Path(runs[p][0].folder, "results.json").stat().st_mtime_ns for p in POINTS[:3]}
    proc = sweep("run", grid, "--jobs", 2, "--threads", 1, env=env)
    assert {s for s, _ in status_lines(proc.stdout).values()} == {"done"}
    for pid in POINTS[:3]:  # finished runs are skipped by train.py, identity checked
        assert f"Skipping: {runs[pid][0].folder}" in (state / "logs" / f"{pid}.log").read_text()
        assert Path(runs[pid][0].folder, "results.json").stat().st_mtime_ns == stamps[pid]
    assert "Skipping:" not in log.read_text()
    table = sweep("collect", grid, env=env).stdout
    assert "==> fewshot" in table and "CoOp" in table and "ZeroshotCLIP" in table


@pytest.mark.slow
def test_slurm_grid_through_submitit_against_fake_slurm(tmp_path, env):
    pytest.importorskip("submitit")
    bin_dir, fake = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    for command in ("sbatch", "srun", "sacct", "scontrol", "scancel"):
        path = bin_dir / command
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT}/tests/fake_slurm.py" {command} "$@"\n')
        path.chmod(0o755)
    env = dict(env, PATH=f"{bin_dir}:{env['PATH']}", FAKE_SLURM_DIR=str(fake))
    grid = write_grid(tmp_path, slurm={"partition": "gpu", "account": "lab", "time": 30, "mem_gb": 8})
    proc = sweep("run", grid, "--launcher", "slurm", "--jobs", 2, "--threads", 1, "--gpus", 1, "--wait", env=env)
    assert "submitted 4 Slurm job(s) as array 1000" in proc.stdout
    assert {s for s, _ in status_lines(proc.stdout).values()} == {"done"} and len(status_lines(proc.stdout)) == 4
    [record] = [json.loads(line) for line in (fake / "sbatch.jsonl").read_text().splitlines()]
    opts = record["options"]
    assert opts["array"] == "0-3%2"  # one task per chain, two at once
    assert (opts["partition"], opts["account"], opts["time"], opts["mem"]) == ("gpu", "lab", "30", "8GB")
    assert (opts["gpus-per-node"], opts["cpus-per-task"], opts["signal"]) == ("1", "1", "USR2@90")
    script = Path(record["script"]).read_text()
    assert f"export PYTHONPATH={ROOT}" in script and "-m submitit.core._submit" in script and "srun " in script
    state = Path(env["OUTPUT"], ".sweeps", "grid")
    jobs = set()
    for pid in POINTS:
        text = (state / "logs" / f"{pid}.log").read_text()
        method, dataset = pid.split("-")[1:3]
        assert f"scripts/{method}/fewshot.sh {dataset} 2\n" in text and "OMP_NUM_THREADS" not in text.split("\n")[1]
        rec = json.loads((state / "points" / f"{pid}.json").read_text())
        assert rec["exit"] == 0
        jobs.add(rec["job"])
    assert jobs == {"1001", "1002", "1003", "1004"}  # each chain in its own array task
