"""Loading CLIP weights: OpenAI names, local files, weights provided by name (the embedded SynthCLIP), or random
architectures.

Every path ends in the real ``clip.load(..., jit=False)`` or ``clip.model.CLIP`` so the model class is
OpenAI's (through ``openai_clip``, which no repository's own ``clip/`` folder can replace); the model is returned
in fp32, eval mode, with every parameter frozen.
"""

from __future__ import annotations

import os
import pickle
import urllib.error
import warnings
from typing import Callable, Dict, Optional

import torch

from ..errors import UserError
from ..registry import closest
from .openai_clip import CLIP, clip

# Random-weight architectures for tests and benchmarks ("random:<name>" or the tiny names directly).
_BASE = dict(context_length=77, vocab_size=49408)
ARCHITECTURES: Dict[str, dict] = {
    "ViT-B/16": dict(
        embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
        transformer_width=512, transformer_heads=8, transformer_layers=12, **_BASE,
    ),
    "ViT-B/32": dict(
        embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
        transformer_width=512, transformer_heads=8, transformer_layers=12, **_BASE,
    ),
    "ViT-L/14": dict(
        embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024, vision_patch_size=14,
        transformer_width=768, transformer_heads=12, transformer_layers=12, **_BASE,
    ),
    "tiny-p8-32": dict(
        embed_dim=128, image_resolution=32, vision_layers=4, vision_width=128, vision_patch_size=8,
        transformer_width=128, transformer_heads=2, transformer_layers=4, **_BASE,
    ),
    "tiny-p8-16": dict(
        embed_dim=64, image_resolution=16, vision_layers=2, vision_width=64, vision_patch_size=8,
        transformer_width=64, transformer_heads=1, transformer_layers=2, **_BASE,
    ),
    "tiny-p8-64": dict(
        embed_dim=128, image_resolution=64, vision_layers=6, vision_width=192, vision_patch_size=8,
        transformer_width=128, transformer_heads=2, transformer_layers=4, **_BASE,
    ),
}
#: backbone names whose weights file another part of the toolbox provides: name -> resolve(download_root) -> path.
#: The embedded synthetic world adds "SynthCLIP" when ``promptengine.synth`` is imported (every dataset import does).
PROVIDED: Dict[str, Callable[[str], str]] = {}


def provide_weights(name: str, resolve: Callable[[str], str]) -> None:
    """Make ``MODEL.BACKBONE.NAME == name`` load the file that ``resolve(download_root)`` returns."""
    PROVIDED[name] = resolve


def default_download_root() -> str:
    return os.environ.get("CLIP_DOWNLOAD_ROOT") or os.path.join(os.path.expanduser("~"), ".cache", "clip")


def random_clip(arch: str, seed: int = 0) -> CLIP:
    """A randomly initialised CLIP of a named architecture (deterministic for a seed)."""
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown CLIP architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = CLIP(**ARCHITECTURES[arch])
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def _load_file(path: str) -> CLIP:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = clip.load(path, device="cpu", jit=False)
    except (RuntimeError, KeyError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise UserError(
            f"cannot load CLIP weights from {path}: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]} "
            "(expected an OpenAI CLIP state dict or TorchScript archive)"
        ) from exc
    return model


def weights_file(name: str, download_root: str = "") -> Optional[str]:
    """The weights file ``MODEL.BACKBONE.NAME`` loads (None for a random architecture or an unknown name)."""
    if name in PROVIDED:
        return PROVIDED[name](download_root)
    if name.startswith("random:") or name in ARCHITECTURES and name.startswith("tiny"):
        return None
    if name in clip.available_models():
        root = os.path.expanduser(download_root or default_download_root())
        return os.path.join(root, os.path.basename(clip.clip._MODELS[name]))
    path = os.path.expanduser(name)
    return path if os.path.isfile(path) else None


def load_clip(name: str, download_root: str = "") -> CLIP:
    """Resolve ``MODEL.BACKBONE.NAME`` to an fp32, eval-mode, frozen OpenAI-architecture CLIP on the CPU."""
    if not name:
        raise UserError("MODEL.BACKBONE.NAME is empty (set it to a CLIP name such as ViT-B/16, SynthCLIP, or a weights file)")
    root = os.path.expanduser(download_root or default_download_root())
    if name in PROVIDED:
        model = _load_file(PROVIDED[name](download_root))
    elif name.startswith("random:") or name in ARCHITECTURES and name.startswith("tiny"):
        arch = name.split(":", 1)[1] if name.startswith("random:") else name
        model = random_clip(arch)
    elif name in clip.available_models():
        fname = os.path.basename(clip.clip._MODELS[name])
        if not os.path.isfile(os.path.join(root, fname)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model, _ = clip.load(name, device="cpu", jit=False, download_root=root)
            except (urllib.error.URLError, OSError) as exc:
                raise UserError(
                    f"CLIP weights '{name}' are not available offline: put {fname} into {root} "
                    "(set MODEL.BACKBONE.DOWNLOAD_ROOT or $CLIP_DOWNLOAD_ROOT), or pass a local weights file as "
                    "MODEL.BACKBONE.NAME"
                ) from exc
        else:
            model = _load_file(os.path.join(root, fname))
    elif os.path.isfile(os.path.expanduser(name)):
        model = _load_file(os.path.expanduser(name))
    else:
        known = clip.available_models() + sorted(PROVIDED) + [a for a in ARCHITECTURES if a.startswith("tiny")]
        hint = closest(name, known)
        hint_text = f"did you mean '{hint}'? " if hint else ""
        raise UserError(
            f"unknown CLIP backbone '{name}': not a known name and no such file ({hint_text}"
            f"known: {', '.join(known)}; or give a path to a weights file)"
        )
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_visual_weights(model: CLIP, path: str) -> None:
    """Replace the vision tower with robust weights (e.g. TeCoA), as APT does; the text tower stays OpenAI's.

    Accepts a plain visual state dict or a dict holding it under ``vision_encoder_state_dict``/``state_dict``.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise UserError(f"robust vision weights not found: {path} (set MODEL.BACKBONE.PATH to the TeCoA file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user problem
        raise UserError(f"cannot read robust vision weights {path}: {exc.__class__.__name__} (need a plain state dict)") from exc
    for key in ("vision_encoder_state_dict", "state_dict"):
        if isinstance(state, dict) and key in state:
            state = state[key]
    state = {k.removeprefix("module.").removeprefix("visual."): v for k, v in state.items()}
    missing, unexpected = model.visual.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{path} does not fit this CLIP's vision tower (missing {missing[:2]}, unexpected {unexpected[:2]})")
    model.visual.float()
