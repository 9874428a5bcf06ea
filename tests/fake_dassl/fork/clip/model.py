"""The fork's ``clip.model``: MaPLe-style ``build_model`` with a second argument, a CLIP class that refuses to build."""

from __future__ import annotations

from .clip import USED


class CLIP:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{USED} (clip.model.CLIP)")


def convert_weights(model):
    raise RuntimeError(f"{USED} (clip.model.convert_weights)")


def build_model(state_dict, design_details):
    raise RuntimeError(f"{USED} (clip.model.build_model)")
