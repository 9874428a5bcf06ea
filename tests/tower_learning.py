"""The embedded-world learning check shared by the tower methods' slow tests: a recipe's worst-case (robust)
accuracy on SynthShapes against zero-shot SynthCLIP's, both measured with the same test attack."""

import json
import os
from pathlib import Path
from typing import Sequence

import pytest

from tests.conftest import ROOT, run_train

#: SynthShapes, 16 shots, PGD-5 at the recipes' 4/255 on the first 480 test images; the recipe's learning rate for 2 of
#: its 6 epochs (a reduced size: a tower training of 6 epochs costs about 40 s on one core)
COMMON = ["--dataset-config-file", os.path.join(ROOT, "configs/datasets/synth_shapes.yaml"),
          "DATASET.NUM_SHOTS", "16", "TEST.MAX_IMAGES", "480", "ATTACK.TEST.STEPS", "5", "OPTIM.MAX_EPOCH", "2"]


def robust_accuracy(tmp_path: Path, trainer: str, seed: int, *flags: str, opts: Sequence[str] = ()) -> float:
    """Worst-case accuracy of ``trainer`` run with its configs/trainers/<trainer>/synth.yaml (and ``opts``)."""
    out = tmp_path / f"{trainer}_{seed}"
    assert run_train([*flags, "--trainer", trainer, "--seed", seed, "--output-dir", out,
                      "--config-file", os.path.join(ROOT, f"configs/trainers/{trainer}/synth.yaml"), *COMMON,
                      *opts]) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["robust"][0]["attack"]["eps"] == pytest.approx(4 / 255)
    return record["worst_case"]["accuracy"]


def robust_gains(tmp_path: Path, trainer: str, seeds: Sequence[int] = (1,), opts: Sequence[str] = ()) -> list:
    """``trainer``'s robust accuracy minus zero-shot SynthCLIP's, per seed (one by default: the seed-to-seed spread
    each test records is a fraction of its margin, and every seed costs a tower training)."""
    zero_shot = robust_accuracy(tmp_path, "ZeroshotCLIP", 1, "--eval-only")
    return [robust_accuracy(tmp_path, trainer, seed, opts=opts) - zero_shot for seed in seeds]


def assert_export_reloads_as_the_tuned_run(run: Path, exported: Path, tmp_path: Path, *opts) -> None:
    """Zero-shot CLIP with the exported tower as ``MODEL.BACKBONE.PATH`` is the tuned run's classifier: the same clean
    and robust accuracy on the same images (``opts``: the run's test options)."""
    zs = tmp_path / "zs"
    assert run_train(["--eval-only", "--trainer", "ZeroshotCLIP", "--seed", "1", "--output-dir", zs, *opts,
                      "MODEL.BACKBONE.PATH", exported]) == 0
    tuned, zero_shot = (json.loads((d / "results.json").read_text()) for d in (run, zs))
    assert zero_shot["clean"] == tuned["clean"]
    assert [r["accuracy"] for r in zero_shot["robust"]] == [r["accuracy"] for r in tuned["robust"]]
