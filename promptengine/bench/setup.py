"""Building the real CAPT trainer on random weights and random inputs, without touching the disk.

The benchmark must time the code path training runs, so it registers a small in-memory dataset with K classes,
builds the config through ``build_cfg`` and constructs ``CAPT(cfg)`` exactly as ``train.py`` would.
"""

from __future__ import annotations

import contextlib
import io
import random
import tempfile
from dataclasses import dataclass
from typing import List

import torch
from PIL import Image

from ..clip.loading import ARCHITECTURES
from ..config.merge import build_cfg
from ..data.dataset import DatasetBase
from ..data.datum import Datum
from ..engine.trainer import set_random_seed
from ..registry import DATASET_REGISTRY, TRAINER_REGISTRY, builtin_methods

# Words for class names of realistic token lengths (1-3 words), so text truncation behaves as on real datasets.
_WORDS = (
    "abyssinian", "bengal", "birman", "bombay", "sphynx", "beagle", "boxer", "chihuahua", "havanese", "keeshond",
    "leonberger", "newfoundland", "pomeranian", "pug", "samoyed", "shiba", "inu", "terrier", "setter", "spaniel",
    "airliner", "biplane", "glider", "tulip", "orchid", "daisy", "lotus", "canyon", "glacier", "harbor", "lagoon",
    "meadow", "volcano", "waterfall", "bakery", "library", "stadium", "cathedral", "lighthouse", "pagoda",
    "ravioli", "sushi", "tiramisu", "waffles", "paella", "dumplings", "omelette", "pancakes", "risotto", "tacos",
)
BENCH_DATASET = "BenchRandom"


def bench_classnames(k: int, seed: int = 0) -> List[str]:
    """K distinct class names of 1-3 words, deterministic for a seed."""
    rng = random.Random(seed)
    names: List[str] = []
    while len(names) < k:
        name = " ".join(rng.choice(_WORDS) for _ in range(rng.choice((1, 1, 2, 2, 3))))
        if name not in names:
            names.append(name)
    return names


class _BenchState:
    """How many classes the next ``BenchRandom`` build has (the registry builds datasets from a config only)."""

    num_classes = 10


def _register() -> None:
    if BENCH_DATASET in DATASET_REGISTRY:
        return

    @DATASET_REGISTRY.register()
    class BenchRandom(DatasetBase):
        """One image per class and split; images are never read by the benchmark (it feeds tensors)."""

        template = "a photo of a {}."

        def __init__(self, cfg) -> None:
            names = bench_classnames(_BenchState.num_classes)
            items = lambda split: [Datum(f"bench://{split}/{i}", label=i, classname=n) for i, n in enumerate(names)]
            super().__init__(items("train"), items("val"), items("test"))

        def read_image(self, impath: str) -> Image.Image:
            return Image.new("RGB", (8, 8))


@dataclass
class BenchSetup:
    """The trainer plus one fixed batch of random inputs shared by every timed case."""

    trainer: object
    x: torch.Tensor
    y: torch.Tensor
    arch: str
    classes: int
    batch: int
    steps: int
    precision: str
    device: torch.device

    @property
    def model(self):
        return self.trainer.model

    @property
    def batch_dict(self) -> dict:
        return {"img": self.x, "label": self.y, "index": torch.arange(self.x.shape[0])}


def backbone_name(arch: str) -> str:
    """'ViT-B/16' -> 'random:ViT-B/16' (random weights); tiny names are random already."""
    return arch if arch.startswith(("tiny", "random:")) else f"random:{arch}"


def build_bench(arch: str = "tiny-p8-32", classes: int = 50, batch: int = 4, steps: int = 3, precision: str = "fp32",
                device: str = "cpu", prompt_depth: int = 9, train_loss: str = "kl", seed: int = 1,
                quiet: bool = True) -> BenchSetup:
    """The real CAPT trainer (K PGD steps, KL training attack by default) and a random batch in [0, 1]."""
    builtin_methods()  # registers CAPT
    _register()
    method = TRAINER_REGISTRY.with_role("benchmark")  # CAPT (its class declares the role)
    _BenchState.num_classes = classes
    name = backbone_name(arch)
    spec = ARCHITECTURES[name.split(":", 1)[-1]]
    res = int(spec["image_resolution"])
    depth = max(1, min(prompt_depth, int(spec["vision_layers"]), int(spec["transformer_layers"])))
    opts = [
        "DATASET.NAME", BENCH_DATASET, "TRAINER.NAME", method, "MODEL.BACKBONE.NAME", name,
        "INPUT.SIZE", f"({res},{res})", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", str(batch), "DATALOADER.TEST.BATCH_SIZE", str(batch),
        "OPTIM.NAME", "sgd", "OPTIM.LR", "0.002", "OPTIM.MAX_EPOCH", "1",
        "ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", str(steps), "ATTACK.TRAIN.EPS", "4.0",
        "ATTACK.TRAIN.LOSS", train_loss, f"TRAINER.{method.upper()}.PROMPT_DEPTH", str(depth), "TRAIN.PRECISION", precision,
        "USE_CUDA", str(device == "cuda"), "SEED", str(seed), "OUTPUT_DIR", tempfile.gettempdir(),
    ]
    cfg = build_cfg(opts=opts)
    set_random_seed(seed)
    out = io.StringIO() if quiet else None
    with contextlib.redirect_stdout(out) if out is not None else contextlib.nullcontext():
        trainer = TRAINER_REGISTRY.get(method)(cfg)
    trainer.set_model_mode("train")
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, res, res, generator=gen).to(trainer.device)
    y = torch.randint(0, classes, (batch,), generator=gen).to(trainer.device)
    return BenchSetup(trainer, x, y, arch, classes, batch, steps, trainer.precision, trainer.device)
