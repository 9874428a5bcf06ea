"""Lay out ImageNet's flat validation folder by class, once, from a standard ground-truth file.

    python tools/imagenet_val_layout.py --root $DATA/imagenet --labels LOC_val_solution.csv
    python tools/imagenet_val_layout.py --root $DATA/imagenet --labels ILSVRC2012_validation_ground_truth.txt \
        [--meta ILSVRC2012_devkit_t12/data/meta.mat]

The images of ``<root>/images/val`` move into one folder per wnid (hard links built beside it, then swapped in:
an interrupted run leaves ``val/`` as it was). Exit status 0 when done, 2 on a problem (one line; nothing changed).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from promptengine.cli import run_main
from promptengine.data.imagenet_val import STAGING, layout_val_by_class, read_val_labels
from promptengine.errors import UserError


def val_folder(root: str) -> str:
    """``<root>/images/val`` (the loader's layout), else ``<root>/val``."""
    root = os.path.abspath(os.path.expandvars(os.path.expanduser(root)))
    for candidate in (os.path.join(root, "images", "val"), os.path.join(root, "val")):
        if os.path.isdir(candidate) or os.path.isdir(candidate + STAGING):  # the latter: an interrupted run
            return candidate
    raise UserError(f"no validation folder under {root}: expected {os.path.join(root, 'images', 'val')} (pass --root "
                    "with the ImageNet folder of the data root; see DATASETS.md#imagenet)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the ImageNet folder (holds images/val)")
    parser.add_argument("--labels", required=True,
                        help="LOC_val_solution.csv (Kaggle) or ILSVRC2012_validation_ground_truth.txt (devkit)")
    parser.add_argument("--meta", default=None, help="the devkit's meta.mat (default: beside the ground truth file)")
    parser.add_argument("--keep-flat", action="store_true", help="keep the flat folder as val.flat (hard links)")
    args = parser.parse_args(argv)
    val_dir = val_folder(args.root)
    labels = read_val_labels(args.labels, args.meta)
    n_images, n_classes = layout_val_by_class(val_dir, labels, keep_flat=args.keep_flat)
    print(f"laid out {n_images} images into {n_classes} class folders in {val_dir}")
    return 0


def entry() -> int:
    return run_main(main)


if __name__ == "__main__":
    sys.exit(entry())
