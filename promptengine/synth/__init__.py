"""The embedded offline world: procedurally generated image datasets and SynthCLIP, a tiny CLIP pretrained on them.

Every protocol runs end to end on a CPU in minutes with them (see docs/SYNTH.md).
"""

from ..clip.loading import provide_weights
from .weights import SYNTH_NAME, synth_clip_path
from .worlds import SPLIT_SIZES, WORLDS, World, get_world, render_split

provide_weights(SYNTH_NAME, synth_clip_path)  # MODEL.BACKBONE.NAME SynthCLIP loads the embedded weights

__all__ = ["SPLIT_SIZES", "WORLDS", "World", "get_world", "render_split"]
