"""compare.py --plot tradeoff: points from plain runs and from sweep point roots, seed means, HM convention; the sweep
script's layout (one output root per point with sweep_point.json)."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from promptengine.errors import UserError
from promptengine.reporting.cli import compare_main
from promptengine.reporting.tradeoff import collect_points
from tests.result_trees import PGD100, write_run

REPO = Path(__file__).resolve().parents[1]


def b2n(root, trainer, seed, base, new):
    """A base2new run: (clean, robust) on base (train_base) and on new classes (test_new)."""
    for phase, (clean, robust) in (("train_base", base), ("test_new", new)):
        write_run(root, "base2new", phase, "SynthShapes", trainer, seed, clean, [(PGD100, robust)], log=False)


def sweep_point(root, method, series, value, runs):
    point = Path(root) / method.lower() / f"{series}_{value}"
    point.mkdir(parents=True)
    (point / "sweep_point.json").write_text(json.dumps({"method": method, "series": series, "value": value}))
    for seed, base, new in runs:
        b2n(point, method, seed, base, new)


def test_points_from_runs_and_sweeps(tmp_path):
    b2n(tmp_path / "demo", "CoOp", 1, (80.0, 10.0), (60.0, 5.0))
    b2n(tmp_path / "demo", "CoOp", 2, (82.0, 12.0), (62.0, 7.0))
    b2n(tmp_path / "demo", "CAPT", 1, (76.0, 35.0), (69.0, 25.0))  # same path identity as the sweep points
    sweep_point(tmp_path / "sweep", "CAPT", "lambda", "0.5", [(1, (78.0, 30.0), (70.0, 20.0))])
    sweep_point(tmp_path / "sweep", "CAPT", "lambda", "3", [(1, (75.0, 40.0), (68.0, 30.0))])
    points, warnings = collect_points(tmp_path)
    assert warnings == []  # the two sweep points describe "the same run" for the loader, yet both are kept
    assert [(p.series, p.value) for p in points] == [("CAPT", ""), ("CAPT lambda", "0.5"), ("CAPT lambda", "3"),
                                                     ("CoOp", "")]
    assert points[0].summary("Base")[:2] == (76.0, 35.0)
    coop = points[3]
    assert coop.summary("Base") == pytest.approx((81.0, 11.0, 1.0, 1.0))
    hm_clean = 2 * 81.0 * 61.0 / (81.0 + 61.0)  # HM of the seed-averaged base and new
    assert coop.summary("HM")[:2] == pytest.approx((hm_clean, 2 * 11.0 * 6.0 / 17.0))
    assert points[2].summary("New") == pytest.approx((68.0, 30.0, 0.0, 0.0))


def test_cli_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = io.StringIO()
    sweep_point(tmp_path, "FAP", "lambda", "1.5", [(1, (70.0, 30.0), (65.0, 20.0)), (2, (72.0, 32.0), (66.0, 21.0))])
    assert compare_main([str(tmp_path), "--plot", "tradeoff", "--plots", str(tmp_path / "plots")], out=out) == 0
    assert (tmp_path / "plots" / "tradeoff.png").stat().st_size > 10_000
    assert "FAP lambda 1.5: HM clean" in out.getvalue()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no base2new results.json"):
        collect_points(empty)


def test_sweep_script_runs_each_point_in_its_own_root(tmp_path):
    env = dict(os.environ, DRY_RUN="1", SWEEP_ROOT=str(tmp_path), SERIES="lambda", EXTRA_OPTS="TEST.MAX_IMAGES 10")
    out = subprocess.run(["bash", str(REPO / "scripts/capt/sweep.sh")], env=env, capture_output=True, text=True,
                         check=True).stdout
    train_lines = [line for line in out.splitlines() if "train.py" in line and "--eval-only" not in line]
    assert len(train_lines) == 4
    for line, value in zip(train_lines, ("0.5", "1.5", "3.0", "6.0")):
        assert f"--output-dir {tmp_path}/capt/lambda_{value.rstrip('0').rstrip('.')}/base2new/train_base" in line
        assert line.endswith(f"TEST.MAX_IMAGES 10 TRAINER.CAPT.LAMBDA {value}")
    assert "ALPHA_MODE" not in out  # SERIES keeps one series
