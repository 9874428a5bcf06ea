"""The embedded synthetic datasets (generated in memory; no files, DATASET.ROOT is ignored).

See docs/SYNTH.md. Labels are ordered so that CoOp's base half and new half each contain every
colour and every item; split sizes per class are train 100 / val 20 / test 50.
"""

from promptengine.registry import DATASET_REGISTRY
from promptengine.synth.dataset import SynthDatasetBase


@DATASET_REGISTRY.register()
class SynthShapes(SynthDatasetBase):
    """Source world (ImageNet's role): 8 colours x 6 shapes = 48 classes, e.g. "red circle"."""

    template = "a photo of a {}."


@DATASET_REGISTRY.register()
class SynthShapesSketch(SynthDatasetBase):
    """Domain shift of SynthShapes (ImageNet-Sketch's role): coloured outlines on light paper."""

    template = "a photo of a {}."


@DATASET_REGISTRY.register()
class SynthShapesClutter(SynthDatasetBase):
    """Domain shift of SynthShapes (ImageNet-A's role): busy backgrounds and small distractor shapes."""

    template = "a photo of a {}."


@DATASET_REGISTRY.register()
class SynthGlyphs(SynthDatasetBase):
    """Cross-dataset target: 4 colours x 10 glyphs (7 letters, 3 digits) = 40 classes, e.g. "red letter a"."""

    template = "a photo of a {}."


@DATASET_REGISTRY.register()
class SynthPatterns(SynthDatasetBase):
    """Cross-dataset target: 6 colours x 6 textures = 36 classes, e.g. "red striped" (pattern)."""

    template = "a photo of a {} pattern."
