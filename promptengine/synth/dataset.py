"""The base class of the synthetic datasets: Datum lists with virtual paths, rendered on read.

Virtual paths look like ``synth://SynthShapes/test/000123``; ``read_image`` returns image 123 as a PIL RGB image,
rendering the chunk of 500 images that holds it on first use (cached per process; with data-loader workers the
splits in use are rendered whole when the dataset is built, so forked workers share them). Splits
then go through the same few-shot / cache / base-new machinery as real datasets
(:func:`promptengine.data.fewshot.prepare_splits`). ``DATASET.ROOT`` is not used.
"""

from __future__ import annotations

from typing import List

from PIL import Image

from ..data.dataset import DatasetBase
from ..data.datum import Datum
from ..data.fewshot import prepare_splits
from ..errors import UserError
from .worlds import SPLITS, World, get_world, render_split, split_image

SCHEME = "synth://"


def virtual_path(name: str, split: str, index: int) -> str:
    return f"{SCHEME}{name}/{split}/{index:06d}"


def parse_virtual_path(impath: str):
    """``synth://NAME/SPLIT/INDEX`` -> (name, split, index); a malformed path is a UserError."""
    if not impath.startswith(SCHEME):
        raise UserError(f"not a synthetic image path: {impath} (expected {SCHEME}<Dataset>/<split>/<index>)")
    parts = impath[len(SCHEME) :].split("/")
    try:
        name, split, index = parts[0], parts[1], int(parts[2])
        world = get_world(name)
        if split not in SPLITS or not 0 <= index < world.split_size(split) or len(parts) != 3:
            raise ValueError
    except (IndexError, ValueError, KeyError) as exc:
        raise UserError(f"invalid synthetic image path: {impath} (expected {SCHEME}<Dataset>/<split>/<index>)") from exc
    return name, split, index


def read_synth_image(impath: str) -> Image.Image:
    """The rendered 32x32 RGB image behind a ``synth://`` path."""
    name, split, index = parse_virtual_path(impath)
    return Image.fromarray(split_image(name, split, index).numpy())


def split_datums(world: World, split: str) -> List[Datum]:
    names = world.classnames
    n = world.num_classes
    return [
        Datum(impath=virtual_path(world.name, split, i), label=i % n, classname=names[i % n])
        for i in range(world.split_size(split))
    ]


class SynthDatasetBase(DatasetBase):
    """A generated dataset; subclasses are named after a world in ``promptengine.synth.worlds``."""

    template = "a photo of a {}."
    world_name = ""  # "" = the class name

    def __init__(self, cfg) -> None:
        name = self.world_name or type(self).__name__
        self.world = get_world(name)
        train, val, test = (split_datums(self.world, s) for s in ("train", "val", "test"))
        train, val, test = prepare_splits(cfg, type(self).__name__, "", train, val, test)
        super().__init__(train_x=train, val=val, test=test)
        # With data-loader workers, render the splits in use now (about a second), so the workers forked later share
        # them instead of each rendering its own copy; in one process, images are rendered by chunk when first read
        # (an evaluation of 40 test images renders one chunk, a run that is skipped renders nothing).
        if cfg.DATALOADER.NUM_WORKERS > 0:
            for split, items in (("train", train), ("val", val), ("test", test)):
                if items:
                    render_split(name, split)

    def read_image(self, impath: str) -> Image.Image:
        return read_synth_image(impath)
