"""The fork's ``clip.clip``: OpenAI's function names, none usable by this toolbox."""

from __future__ import annotations

__all__ = ["available_models", "load", "tokenize"]

_MODELS = {"ViT-B/16": "https://example.invalid/ViT-B-16.pt"}
USED = "the fork's own clip package was used instead of the installed OpenAI CLIP"


def available_models():
    return list(_MODELS)


def load(*args, **kwargs):
    raise RuntimeError(f"{USED} (clip.load)")


def tokenize(*args, **kwargs):
    raise RuntimeError(f"{USED} (clip.tokenize)")
