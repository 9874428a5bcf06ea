"""Catalogued names in a run's config: ``--backbone NAME`` / ``MODEL.BACKBONE.NAME`` and ``MODEL.BACKBONE.PATH``.

Applied once to every merged config a model is built from (``promptengine.apps.train_args.configure``, so also the
sweep's pre-flight check; the protocol runner's check before its first run; the robust report's config; the Dassl
plug-in's bridge), so they all fail alike, before anything is built, when a catalogued file is missing or differs:

- a catalogued whole CLIP (``fare2-clip``) becomes the path of its verified file in ``MODEL.BACKBONE.NAME``;
- a catalogued vision tower (``fare2-vitl14``, ``tecoa4-vitb32``) given as the backbone sets ``MODEL.BACKBONE.NAME``
  to its OpenAI architecture and ``MODEL.BACKBONE.PATH`` to its verified file; given as ``MODEL.BACKBONE.PATH``
  it becomes that path (the backbone must then be of the tower's architecture, when it is an OpenAI name);
- OpenAI's names (``ViT-B/32``) stay as they are; a file already in the weights root is checked against OpenAI's
  SHA-256, and a missing one is left to ``clip.load`` (which downloads and checks it where there is a network).

The resolved config (a path, not the catalogue name) is what the run records, so the run identity holds the file's
digest. Names that are not catalogued mean what they always meant.
"""

from __future__ import annotations

import os
from typing import Dict

from ..config.upstream import note
from ..errors import UserError
from .catalogue import lookup
from .verify import destination, require, weights_root


def backbone_changes(name: str, path: str, download_root: str) -> Dict[str, str]:
    """The MODEL.BACKBONE keys (NAME, PATH) that catalogued names turn into; {} when nothing is catalogued."""
    root = weights_root(download_root)
    changes: Dict[str, str] = {}
    named = lookup(name)
    if named is not None and not named.clip_package:
        if named.kind == "vision":
            if path:
                raise UserError(f"'{name}' is a vision tower and sets MODEL.BACKBONE.PATH, which is already {path}: "
                                "give the tower either as the backbone or as MODEL.BACKBONE.PATH")
            changes["PATH"] = require(named, root)
            changes["NAME"] = named.arch
        else:
            changes["NAME"] = require(named, root)
    tower = lookup(path)
    if tower is not None:
        if tower.kind != "vision":
            raise UserError(f"MODEL.BACKBONE.PATH '{path}' is a whole CLIP, not a vision tower: give it as the "
                            f"backbone instead (--backbone {path})")
        base = changes.get("NAME", name)
        base_entry = lookup(base)
        if base_entry is not None and base_entry.clip_package and base != tower.arch:
            raise UserError(f"MODEL.BACKBONE.PATH '{path}' is a {tower.arch} tower but the backbone is {base}: "
                            f"use --backbone {tower.arch}")
        changes["PATH"] = require(tower, root)
    base_entry = lookup(changes.get("NAME", name))
    if base_entry is not None and base_entry.clip_package and os.path.isfile(destination(base_entry, root)):
        require(base_entry, root)  # OpenAI's file is there: it must be OpenAI's
    return changes


def resolve_backbone(cfg) -> None:
    """Rewrite the catalogued names of ``cfg.MODEL.BACKBONE`` in place (see the module docstring)."""
    bcfg = cfg.MODEL.BACKBONE
    changes = backbone_changes(str(bcfg.NAME), str(bcfg.PATH), str(bcfg.DOWNLOAD_ROOT))
    if not changes:
        return
    frozen = cfg.is_frozen()
    cfg.defrost()
    for key, value in changes.items():
        setattr(bcfg, key, value)
    if frozen:
        cfg.freeze()
    note("catalogued weights: " + ", ".join(f"MODEL.BACKBONE.{k} {v}" for k, v in sorted(changes.items())))
