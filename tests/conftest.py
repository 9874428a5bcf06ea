import os
import sys
import warnings

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
warnings.filterwarnings("ignore", message=".*pkg_resources.*")
torch.set_num_threads(1)

import promptengine.benchmarks  # noqa: E402,F401
import promptengine.methods  # noqa: E402,F401
import tests.toy_data  # noqa: E402,F401

TOY_OPTS = [
    "DATASET.NAME", "ToyColors", "MODEL.BACKBONE.NAME", "tiny-p8-32", "INPUT.SIZE", "(32,32)",
    "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "DATALOADER.TEST.BATCH_SIZE", "20",
    "OPTIM.NAME", "sgd", "OPTIM.LR", "0.01", "OPTIM.MAX_EPOCH", "2", "TRAIN.PRINT_FREQ", "5",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTENGINE_CACHE", os.environ.get("PROMPTENGINE_CACHE") or str(tmp_path / "cache"))
    yield
    from promptengine.engine.logging import close_logger

    close_logger()


@pytest.fixture(scope="session")
def tiny_clip_file(tmp_path_factory):
    """A random tiny CLIP saved as a state dict (loaded later through the real clip.load)."""
    from promptengine.clip.loading import random_clip

    path = tmp_path_factory.mktemp("clip") / "tiny-clip.pt"
    torch.save(random_clip("tiny-p8-32", seed=3).state_dict(), path)
    return str(path)


def run_train(args):
    """Run train.py's main in-process (UserError turned into exit code 2, as the CLI does)."""
    import train
    from promptengine.cli import run_main

    return run_main(lambda: train.main([str(a) for a in args]))
