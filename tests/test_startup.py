"""Process start-up: the engine defers torchvision.models / torchvision.ops (and with them torch._dynamo) until they
are used (promptengine/_startup.py), and code that uses them still works."""

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = ("import sys, promptengine.apps.train\n"
         "print('dynamo' if 'torch._dynamo' in sys.modules else 'no-dynamo')\n"
         "import torchvision\n"
         "print(torchvision.models.resnet18.__name__, torchvision.ops.box_area.__name__)\n")


def probe(**env) -> list:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **env), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_the_engine_starts_without_torchvision_models_ops_or_dynamo_and_they_still_work_when_used():
    assert probe() == ["no-dynamo", "resnet18", "box_area"]


def test_the_deferral_can_be_turned_off():
    assert probe(PROMPTENGINE_EAGER_IMPORTS="1") == ["dynamo", "resnet18", "box_area"]


def test_torchrun_ranks_keep_the_eager_imports():
    assert probe(WORLD_SIZE="2") == ["dynamo", "resnet18", "box_area"]
