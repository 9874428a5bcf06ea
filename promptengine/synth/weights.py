"""Resolving ``MODEL.BACKBONE.NAME == "SynthCLIP"`` to a checkpoint file that ``clip.load`` accepts.

The repository ships a compact artifact (``assets/synthclip.pt``, ~2 MB): every tensor that
``clip.model.build_model`` keeps in fp16 is stored in fp16, the others in fp32, and of the
49,408-row token embedding only the rows that pretraining changed (the world's ~100 tokens) with
their indices. On first use :func:`synth_clip_path` expands it into a full fp32 state dict in the
user cache (unused rows = the fixed initialisation :func:`model.token_init`), writing atomically,
and returns that path. ``clip.load(path, jit=False)`` of the expanded file gives exactly the model
that ``clip.load`` of the original pretraining output gives (bit for bit).

Precedence: ``$PROMPTENGINE_SYNTHCLIP`` (a checkpoint file of your own) > the shipped artifact >
pretraining on first use (about 14 minutes on 2 idle CPU cores, only if the artifact is missing).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Dict, Optional

import torch

from ..cache import cache_root
from ..errors import UserError
from . import model as M
from .pretrain import PretrainConfig, pretrain

FORMAT = "synthclip-compact/1"
ASSET_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "synthclip.pt")
TOKEN_KEY = "token_embedding.weight"
ENV_WEIGHTS = "PROMPTENGINE_SYNTHCLIP"
SYNTH_NAME = "SynthCLIP"  # the MODEL.BACKBONE.NAME that loads these weights


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# compact <-> full
# ---------------------------------------------------------------------------------------------


def compact_state(state: Dict[str, torch.Tensor], model_config: Dict[str, int], meta: Optional[dict] = None) -> dict:
    """The compact form of a full SynthCLIP state dict (see the module docstring)."""
    half_keys = set(M.fp16_keys(model_config))
    token = state[TOKEN_KEY].float()
    init = M.token_init(model_config["vocab_size"], model_config["transformer_width"])
    if token.shape != init.shape:
        raise ValueError(f"token embedding {tuple(token.shape)} does not match the config {tuple(init.shape)}")
    rows = (token != init).any(dim=1).nonzero(as_tuple=True)[0]
    fp16, fp32 = {}, {}
    for k, v in state.items():
        if k == TOKEN_KEY:
            continue
        if k in half_keys:
            fp16[k] = v.detach().half().contiguous()
        else:
            fp32[k] = v.detach().float().contiguous()
    return {
        "format": FORMAT,
        "model_config": dict(model_config),
        "token_init": {"seed": M.TOKEN_INIT_SEED, "std": M.TOKEN_INIT_STD},
        "keys": list(state.keys()),
        "token_ids": rows.clone(),
        "token_rows": token[rows].clone(),
        "fp16": fp16,
        "fp32": fp32,
        "meta": dict(meta or {}),
    }


def expand_state(compact: dict) -> Dict[str, torch.Tensor]:
    """The full fp32 state dict of a compact artifact (deterministic)."""
    if compact.get("format") != FORMAT:
        raise ValueError(f"not a SynthCLIP compact artifact (format {compact.get('format')!r}, expected {FORMAT!r})")
    cfg = compact["model_config"]
    ti = compact["token_init"]
    token = M.token_init(cfg["vocab_size"], cfg["transformer_width"], seed=ti["seed"], std=ti["std"])
    token[compact["token_ids"]] = compact["token_rows"].float()
    out: Dict[str, torch.Tensor] = {}
    for k in compact["keys"]:
        if k == TOKEN_KEY:
            out[k] = token
        elif k in compact["fp16"]:
            out[k] = compact["fp16"][k].float()
        else:
            out[k] = compact["fp32"][k].float()
    return out


def save_compact(compact: dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(compact, tmp)
    os.replace(tmp, path)
    return path


def load_compact(path: str = ASSET_PATH) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _atomic_save(state: Dict[str, torch.Tensor], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_with_fallback(state: Dict[str, torch.Tensor], path: str) -> str:
    try:
        _atomic_save(state, path)
        return path
    except OSError as exc:
        alt = os.path.join(tempfile.gettempdir(), "promptengine-synthclip", os.path.basename(path))
        print(f"SynthCLIP: cannot write {path} ({exc.__class__.__name__}); using {alt} instead")
        if not os.path.isfile(alt):
            _atomic_save(state, alt)
        return alt


# ---------------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------------


def synth_clip_path(download_root: str = "") -> str:
    """A SynthCLIP checkpoint file for ``clip.load(path, jit=False)``.

    ``download_root``: the folder for the expanded file ("" = ``$PROMPTENGINE_CACHE/synthclip`` or
    ``~/.cache/promptengine/synthclip``). The file name carries the artifact's hash, so an updated
    artifact is expanded again and an old expansion is never used by mistake.
    """
    override = os.environ.get(ENV_WEIGHTS, "")
    if override:
        if not os.path.isfile(override):
            raise UserError(f"${ENV_WEIGHTS}={override} is not a file (unset it to use the shipped SynthCLIP)")
        return override
    root = download_root or os.path.join(cache_root(), "synthclip")
    if os.path.isfile(ASSET_PATH):
        digest = file_digest(ASSET_PATH)[:16]
        path = os.path.join(root, f"SynthCLIP-{digest}.pt")
        if os.path.isfile(path):
            return path
        alt = os.path.join(tempfile.gettempdir(), "promptengine-synthclip", os.path.basename(path))
        if os.path.isfile(alt):
            return alt
        print(f"SynthCLIP: expanding the shipped weights into {path} (once, about a second)")
        return _write_with_fallback(expand_state(load_compact(ASSET_PATH)), path)
    # No artifact (e.g. deleted): build it once with the default pretraining.
    cfg = PretrainConfig()
    tag = hashlib.sha256(repr(sorted(vars(cfg).items())).encode()).hexdigest()[:12]
    path = os.path.join(root, f"SynthCLIP-built-{tag}.pt")
    if os.path.isfile(path):
        return path
    print(
        f"SynthCLIP: the shipped weights {ASSET_PATH} are missing; pretraining SynthCLIP into {path} "
        "(once, about 14 minutes on 2 idle CPU cores; `python tools/pretrain_synth_clip.py --export` restores the artifact)"
    )
    state, _ = pretrain(cfg)
    return _write_with_fallback(state, path)
