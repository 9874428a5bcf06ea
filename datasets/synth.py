"""The embedded synthetic datasets (generated in memory; no files, DATASET.ROOT is ignored).

See docs/SYNTH.md. Labels are ordered category-major, so CoOp's base half holds the first half of the categories
(shapes, glyphs, patterns) and the new half categories never tuned on; split sizes per class are train 100 / val 20 /
test 50.
"""

from promptengine.registry import DATASET_REGISTRY
from promptengine.synth.dataset import SynthDatasetBase


@DATASET_REGISTRY.register()
class SynthShapes(SynthDatasetBase):
    """Source world (ImageNet's role): 8 colours x 8 shapes = 64 classes, e.g. "red circle"; fills vary."""

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
    """Cross-dataset target (Caltech's role, easy): 12 glyphs (8 letters, 4 digits) in any colour, e.g. "letter a"."""

    template = "a photo of a {}."


@DATASET_REGISTRY.register()
class SynthPatterns(SynthDatasetBase):
    """Cross-dataset target (DTD's role): 6 colours x 6 textures = 36 classes, e.g. "red striped" (pattern)."""

    template = "a photo of a {} pattern."


@DATASET_REGISTRY.register()
class SynthCounts(SynthDatasetBase):
    """Cross-dataset target (EuroSAT's role): 4 counts x 8 shapes = 32 classes, e.g. "three stars"; counts are
    rarely named in the pretraining captions."""

    template = "a photo of {}."


@DATASET_REGISTRY.register()
class SynthFills(SynthDatasetBase):
    """Cross-dataset target (a fine-grained one, Aircraft's role): 4 fills x 8 shapes = 32 classes, e.g. "dotted
    star"; fills are rarely named in the pretraining captions."""

    template = "a photo of a {}."
