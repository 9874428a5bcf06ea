"""The sweep runner against hostile input and misuse: a grid file that is not UTF-8, a sweep.json of another schema,
negative --jobs, two sweeps on one state folder, and a SIGKILLed sweep whose workers must not outlive it.

Points here never train: the scripts' interpreter (``PYTHON``) is replaced by a stand-in that fails at once or sleeps,
so each test costs seconds whether the behaviour holds or not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from promptengine.cli import run_main
from promptengine.engine.runlock import RunLock
from promptengine.sweep import cli
from promptengine.sweep.lifetime import pid_alive
from promptengine.sweep.lock import hold_sweep
from promptengine.sweep.state import SweepState
from promptengine.sweep.status import PointStatus
from tests.test_scripts import SCRIPT_VARS

ROOT = Path(__file__).resolve().parents[1]
GRID = {"protocols": "fewshot", "methods": "coop", "datasets": "synth_shapes synth_glyphs synth_patterns",
        "seeds": 1, "shots": 2}


@pytest.fixture
def env(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    return dict(base, OUTPUT=str(tmp_path / "out"), PYTHON=shutil.which("false"))  # every point fails at once


def grid_file(tmp_path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return path


def sweep(*args, env, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "sweep.py"), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_grid_file_that_is_not_utf8_is_one_line(tmp_path, env):
    bad = tmp_path / "grid.yaml"
    bad.write_bytes(b"protocols: fewshot\nmethods: coop \xff\n")
    want = f"error: grid file {bad} is not UTF-8 text (byte 0xff at line 2, column 15); save it as UTF-8"
    assert one_line(sweep("run", bad, env=env)) == want
    assert one_line(sweep("status", bad, env=env)) == want
    installed = "import sys; from promptengine.sweep.cli import entry; sys.argv[0] = 'capt-sweep'; sys.exit(entry())"
    proc = subprocess.run([sys.executable, "-c", installed, "run", str(bad)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert one_line(proc) == want


def test_sweep_json_of_another_schema_is_one_line(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "sweep.json").write_text(json.dumps({"name": "x", "env": {}, "methods": {}, "axes": {}, "chains": [["a"]],
                                                  "points": [{"id": "a", "args": []}], "runs": {"a": []}}))
    assert run_main(lambda: cli.main(["status", "--state", str(state)])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {state / 'sweep.json'} is not a sweep record") and "point 1 has no 'method'" in err
    assert "\n" not in err


@pytest.mark.parametrize("flag, value", [("--jobs", "-3"), ("--jobs", "0"), ("--threads", "-1")])
def test_counts_must_be_positive(tmp_path, env, flag, value):
    err = one_line(sweep("run", grid_file(tmp_path), flag, value, env=env))
    assert err == f"error: {flag} must be a positive integer, not {value}"
    assert not Path(env["OUTPUT"]).exists()


def in_process(argv, env, monkeypatch, capsys) -> str:
    """Run ``sweep.py ARGV`` in this process (torch is imported already: planning takes a moment, not seconds);
    expect exit status 2 and return the one error line."""
    for key in ("OUTPUT", "PYTHON"):
        monkeypatch.setenv(key, env[key])
    capsys.readouterr()
    assert run_main(lambda: cli.main([str(a) for a in argv])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_second_sweep_on_one_state_folder_refuses_in_one_line(tmp_path, env, monkeypatch, capsys):
    grid = grid_file(tmp_path)
    state = Path(env["OUTPUT"], ".sweeps", "grid")
    held = RunLock(str(state)).acquire()  # this test process plays the sweep that runs
    try:
        err = in_process(["run", grid, "--jobs", 2], env, monkeypatch, capsys)
        assert f"this sweep is already running (process {os.getpid()} on {socket.gethostname()}" in err
        assert "sweep.py status --state" in err and not (state / "sweep.json").exists()
    finally:
        held.release()
    # a point left running by a worker that outlived its sweep (a live process on this host) blocks a rerun too
    orphan = subprocess.Popen(["sleep", "120"])
    try:
        (state / "points").mkdir(parents=True)
        (state / "points" / "p.json").write_text(json.dumps({"status": "running", "pid": orphan.pid,
                                                             "host": socket.gethostname()}))
        err = in_process(["run", grid, "--jobs", 2], env, monkeypatch, capsys)
        assert f"p (process {orphan.pid})" in err and "still run" in err and not (state / "sweep.json").exists()
    finally:
        orphan.kill()
        orphan.wait()
    hold_sweep(SweepState(str(state))).release()  # once that process is gone, nothing is in the way


def test_exit_status_follows_the_status_lines(tmp_path, env, monkeypatch, capsys):
    """A chain that exited non-zero while its points are done (another process finished them) is no failure."""
    for key in ("OUTPUT", "PYTHON"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr(cli, "launch", lambda *args: 1)
    monkeypatch.setattr(cli, "sweep_status", lambda state: [PointStatus("p", "done")])
    assert cli.main(["run", str(grid_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "1 done, 0 running, 0 failed, 0 pending" in out and "note: 1 chain(s) exited non-zero" in out
    monkeypatch.setattr(cli, "sweep_status", lambda state: [PointStatus("p", "done"), PointStatus("q", "running")])
    assert cli.main(["run", str(grid_file(tmp_path))]) == 1


def test_workers_die_with_a_killed_sweep_and_take_their_point_along(tmp_path, env, capsys):
    """SIGKILL of the sweep process: its worker and the point it runs end; the queued chains never start."""
    marks = tmp_path / "started"
    sleeper = tmp_path / "python"
    sleeper.write_text('#!/bin/sh\necho $$ >> "$MARKS"\nexec sleep 300\n')  # each point: one long sleep
    sleeper.chmod(0o755)
    env = dict(env, PYTHON=str(sleeper), MARKS=str(marks))
    main = subprocess.Popen([sys.executable, str(ROOT / "tools" / "sweep.py"), "run", str(grid_file(tmp_path)),
                             "--jobs", "1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = Path(env["OUTPUT"], ".sweeps", "grid", "points")
    ours = []
    try:
        deadline = time.time() + 120
        while not (marks.exists() and marks.read_text().strip()):
            assert time.time() < deadline and main.poll() is None, "the first point did not start"
            time.sleep(0.2)
        [point] = marks.read_text().split()
        [record] = [json.loads(p.read_text()) for p in points.glob("*.json")]
        worker = record["pid"]
        ours = [int(point), worker]
        main.send_signal(signal.SIGKILL)
        main.wait()
        deadline = time.time() + 60
        while any(pid_alive(pid) for pid in ours) and time.time() < deadline:
            time.sleep(0.2)
        assert not pid_alive(worker), "the worker outlived its sweep"
        assert not pid_alive(int(point)), "the point's process outlived its worker"
        assert marks.read_text().split() == [point]  # no queued chain was started
    finally:
        for pid in ours + [int(p) for p in (marks.read_text().split() if marks.exists() else [])]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if main.poll() is None:
            main.kill()
    state = SweepState(str(points.parent))
    hold_sweep(state).release()  # a rerun takes over the killed sweep's lock: none of its points still runs
    assert "taking over the stale lock" in capsys.readouterr().out
