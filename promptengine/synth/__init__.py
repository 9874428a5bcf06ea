"""The embedded offline world: procedurally generated image datasets and SynthCLIP, a tiny CLIP
pretrained on them, so every protocol runs end to end on a CPU in minutes (see docs/SYNTH.md)."""

from .worlds import SPLIT_SIZES, WORLDS, World, get_world, render_split

__all__ = ["SPLIT_SIZES", "WORLDS", "World", "get_world", "render_split"]
