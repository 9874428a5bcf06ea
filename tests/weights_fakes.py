"""A weights root for the entry-point tests of catalogued names (no network): a catalogued vision tower whose file is
a tiny fake at its catalogued place, vouched for by a pin, and a way to swap it for a file of another checksum."""

from pathlib import Path

import torch

from promptengine.clip.loading import random_clip
from promptengine.weights.catalogue import catalogue
from promptengine.weights.verify import destination, write_pin

#: a catalogued vision tower without a published checksum (TeCoA's layout, over ViT-B/32): a pin vouches for it
TOWER = "tecoa1-vitb32"
#: the one line a run prints for the swapped file (verify.check's wording)
REFUSAL = "differs from the pinned checksum"


def fake_tower(seed: int) -> dict:
    """A random tiny-p8-32 vision tower, the tensors a TeCoA file holds under ``vision_encoder_state_dict``."""
    return random_clip("tiny-p8-32", seed=seed).visual.state_dict()


def pinned_tower(root: Path, seed: int = 7) -> Path:
    """``root`` holding ``TOWER``'s file (a tiny fake tower) where the catalogue puts it, pinned; its path."""
    entry = catalogue()[TOWER]
    path = Path(destination(entry, str(root)))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"vision_encoder_state_dict": fake_tower(seed), "epoch": 1}, path)
    write_pin(entry, str(path), str(root))
    return path


def swap_for_another(path: Path) -> None:
    """Put another tower in the pinned file's place: the same layout, another checksum."""
    torch.save({"vision_encoder_state_dict": fake_tower(8), "epoch": 1}, path)
