"""The package installs like its peers: a wheel (and an editable install) into a fresh virtual environment, used
through its console entry points from another working directory.

The fresh environments get the heavy dependencies (torch, CLIP, ...) from the test interpreter's site-packages through
a ``.pth`` file, so the test checks what the wheel itself ships (code, configs, SynthCLIP, entry points) without
downloading torch again; the wheel is installed with ``--no-deps`` for the same reason.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def fresh_venv(path: Path) -> Path:
    """A new virtual environment without pip or setuptools of its own (pip runs from outside with --python)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = subprocess.run([str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path / "bin"


def pip(bin_dir: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q", "--no-deps",
                           "--no-build-isolation", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def run(bin_dir: Path, tool: str, *args: str, cwd: Path, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PROMPTENGINE_CACHE=str(cwd / "cache"), **(env or {}))
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(bin_dir / tool), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def clean_source(dest: Path) -> Path:
    """The checkout without environments, outputs and build leftovers (a stale build/ would hide missing files)."""
    skip = shutil.ignore_patterns(".git", ".venv", "output", ".cache", "build", "dist", "*.egg-info", "__pycache__",
                                  ".pytest_cache", ".hypothesis", ".ruff_cache")
    shutil.copytree(ROOT, dest, ignore=skip, symlinks=True)
    return dest


def test_wheel_installs_and_runs_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(dist), str(clean_source(tmp_path / "src"))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = dist.glob("capt_toolbox-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "promptengine/synth/assets/synthclip.pt" in names
    assert "promptengine/configs/trainers/CAPT/synth.yaml" in names and "promptengine/configs/datasets/synth_shapes.yaml" in names
    assert "promptengine/methods/capt.py" in names and "promptengine/benchmarks/synth.py" in names
    assert not any(n.startswith(("datasets/", "trainers/", "configs/")) for n in names)  # nothing top-level but ours
    assert not any(n.startswith("promptengine/_home/tools/promptengine") for n in names)  # the tools' link: not copied

    bin_dir = fresh_venv(tmp_path / "venv")
    pip(bin_dir, str(wheel))
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = work / "out" / "fewshot" / "train" / "synth_shapes" / "shots_1" / "CoOp" / "synth" / "seed1"
    proc = run(bin_dir, "capt-train", "--trainer", "CoOp", "--seed", "1", "--dataset-config-file", "synth_shapes",
               "--config-file", "synth", "--output-dir", str(out), "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1",
               "TEST.MAX_IMAGES", "20", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    assert record["trainer"] == "CoOp" and record["num_images"] == 20
    assert record["provenance"]["code"]["git_commit"] is None and record["provenance"]["code"]["package"]
    proc = run(bin_dir, "capt-compare", "out", "--protocol", "fewshot", "--format", "csv", cwd=work)
    assert proc.returncode == 0 and "SynthShapes,CoOp," in proc.stdout, proc.stderr
    where = subprocess.run([str(bin_dir / "python"), "-c", "import promptengine; print(promptengine.__file__)"],
                           capture_output=True, text=True, cwd=work).stdout
    assert str(tmp_path / "venv") in where  # the installed copy ran, not the checkout
    proc = run(bin_dir, "capt-train", "--trainer", "CAPT", "--dataset-config-file", "no_such_dataset", cwd=work)
    assert proc.returncode == 2 and "shipped names:" in proc.stderr and "synth_shapes" in proc.stderr
    # the protocol scripts, shipped in the wheel, through capt-protocol: train, then evaluate base and new
    env = {"SHOTS": "2", "OUTPUT": str(work / "proto"),
           "EXTRA_OPTS": "OPTIM.MAX_EPOCH 1 TEST.MAX_IMAGES 16 DATALOADER.TRAIN_X.BATCH_SIZE 8 ATTACK.TEST.STEPS 1"}
    proc = run(bin_dir, "capt-protocol", "coop", "base2new", "synth_shapes", "1", cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("[run]") == 3  # train base, evaluate base, evaluate new
    assert len(list((work / "proto" / "base2new").glob("test_*/synth_shapes/shots_2/CoOp/*/seed1/results.json"))) == 2
    for tool in ("capt-robust-report", "capt-sweep", "capt-check-datasets", "capt-parse-test-res", "capt-world-phenomena",
                 "capt-defense-study"):
        assert run(bin_dir, tool, "--help", cwd=work).returncode == 0, tool
    # capt-sweep with its environment not activated: a `python` on PATH (here one that fails) must not run the points
    fake = tmp_path / "other-python"
    fake.mkdir()
    (fake / "python").write_text("#!/bin/sh\necho 'not the interpreter of the sweep' >&2\nexit 3\n")
    (fake / "python").chmod(0o755)
    env = {**env, "OUTPUT": str(work / "swept"), "PYTHON": "", "PATH": f"{fake}:{os.environ['PATH']}"}
    proc = run(bin_dir, "capt-sweep", "run", "--protocols", "fewshot", "--methods", "coop", "--datasets",
               "synth_shapes", "--seeds", "1", "--shots", "2", cwd=work, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len(list((work / "swept" / "fewshot").glob("train/synth_shapes/shots_2/CoOp/*/seed1/results.json"))) == 1


def test_editable_install_uses_the_checkout(tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv")
    pip(bin_dir, "-e", str(ROOT))
    proc = run(bin_dir, "capt-train", "--trainer", "CAPT", "--dataset-config-file", "synth_shapes", "--config-file",
               "CAPT/synth", "--print-config", cwd=tmp_path)
    assert proc.returncode == 0 and "LAMBDA: 3.0" in proc.stdout, proc.stderr[-2000:]
    where = subprocess.run([str(bin_dir / "python"), "-m", "promptengine.apps.train", "--help"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert where.returncode == 0 and "--override-identity" in where.stdout
    code = ("import sys\nfrom promptengine.registry import TRAINER_REGISTRY, import_builtin\nimport_builtin()\n"
            "print(TRAINER_REGISTRY.get('CAPT').__module__, [m for m in sys.modules if m.split('.')[0] == 'trainers'])")
    names = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert names.stdout.split() == ["promptengine.methods.capt", "[]"], names.stderr[-2000:]  # the wheel's name
