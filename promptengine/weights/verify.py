"""Is a catalogued file where it belongs, and is it the file that was published (or that the user verified)?

Catalogued files live under one weights root: ``MODEL.BACKBONE.DOWNLOAD_ROOT``, else ``$CLIP_DOWNLOAD_ROOT``, else
``~/.cache/clip`` (where ``clip.load`` keeps OpenAI's files). A file is checked against the SHA-256 its publisher
states; where none is published, against the one the user pinned for a copy they verified (``pins.json`` in the
weights root, written by ``python tools/weights.py pin NAME FILE``). Digests come from
``promptengine.engine.digests``, which hashes a multi-GB file once and reuses the digest while the file is unchanged.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Dict

from ..engine.digests import file_digest
from ..errors import UserError
from .catalogue import Entry

PINS_FILE = "pins.json"
ROOT_RULE = "weights root: MODEL.BACKBONE.DOWNLOAD_ROOT, else $CLIP_DOWNLOAD_ROOT, else ~/.cache/clip"


def weights_root(download_root: str = "") -> str:
    """The folder catalogued files live in (see the module docstring)."""
    from ..clip.loading import default_download_root  # deferred: imports torch, which listing and pins do not need

    return os.path.abspath(os.path.expanduser(download_root or default_download_root()))


def destination(entry: Entry, root: str) -> str:
    return os.path.join(root, entry.file)


# ---- pins -----------------------------------------------------------------------------------------------------
def read_pins(root: str) -> Dict[str, dict]:
    path = os.path.join(root, PINS_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            pins = json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the weights pins {path}: {exc.__class__.__name__} (fix or delete the file, "
                        "then pin again with: python tools/weights.py pin NAME FILE)") from exc
    if not isinstance(pins, dict) or not all(isinstance(v, dict) for v in pins.values()):
        raise UserError(f"{path} is not a pins file (a mapping of names to {{sha256, size}}): fix or delete it")
    return pins


def write_pin(entry: Entry, file: str, root: str) -> str:
    """Record the SHA-256 of a copy the user verified; returns it. A file that differs from a published checksum
    is refused (a pin never overrides what the publisher states)."""
    if not entry.released or entry.unusable:
        raise UserError(f"'{entry.name}' cannot be pinned: {entry.unusable or 'no file of it was released'}")
    file = os.path.abspath(os.path.expanduser(file))
    if not os.path.isfile(file):
        raise UserError(f"cannot pin '{entry.name}': no file at {file}")
    digest = file_digest(file)
    if entry.sha256 and digest != entry.sha256:
        raise UserError(f"cannot pin '{entry.name}': {file} differs from the published checksum (expected sha256 "
                        f"{entry.sha256}, got {digest}); download it again from {entry.download_hint()}")
    pins = read_pins(root)
    pins[entry.name] = {"sha256": digest, "size": os.path.getsize(file), "file": entry.file}
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, PINS_FILE)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(pins, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return digest


# ---- checks ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """The state of one catalogued file; ``message`` is the one line a user reads."""

    entry: Entry
    path: str
    status: str  # ok | unverified | missing | differs | unreleased | unusable
    reference: str  # "published" | "pinned" | ""
    message: str

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "unverified")


def _size_note(entry: Entry, path: str) -> str:
    """A hint when the file's size is far from the published one (e.g. the 1.71 GB whole model in place of the
    1.13 GB vision tower); "" when no size is published or it is close."""
    if not entry.approx_gb:
        return ""
    size = os.path.getsize(path)
    if abs(size / 1e9 - entry.approx_gb) <= 0.1 * entry.approx_gb:
        return ""
    shown = f"{size / 1e9:.2f} GB" if size >= 1e7 else f"{size} bytes"
    return f" (this file is {shown}, the catalogued one about {entry.approx_gb:g} GB: another release?)"


def check(entry: Entry, root: str) -> Check:
    """Where ``entry``'s file should be and whether it is the right one (nothing is raised; see ``require``)."""
    name = f"'{entry.name}' ({entry.title})"
    if entry.unusable:
        return Check(entry, "", "unusable", "", f"{name} cannot be loaded by this toolbox: {entry.unusable}")
    if not entry.released:
        return Check(entry, "", "unreleased", "",
                     f"{name} has no released file ({entry.sources[0].note if entry.sources else 'no source'}): "
                     "train it yourself and give the file as MODEL.BACKBONE.PATH")
    path = destination(entry, root)
    if not os.path.isfile(path):
        return Check(entry, path, "missing", "", f"{name} is not at {path}: download it from {entry.download_hint()} "
                     f"and save it as {path} ({ROOT_RULE}; docs/WEIGHTS.md)")
    pin = read_pins(root).get(entry.name, {}) if not entry.sha256 else {}
    expected, reference = (entry.sha256, "published") if entry.sha256 else (str(pin.get("sha256", "")), "pinned")
    if not expected:
        return Check(entry, path, "unverified", "",
                     f"{name} at {path} is not verified: no checksum is published for it and none is pinned; once "
                     f"you trust this copy, pin it: python tools/weights.py pin {entry.name} {path}"
                     f"{_size_note(entry, path)}")
    actual = file_digest(path)
    if actual == expected:
        return Check(entry, path, "ok", reference, f"{name} at {path} matches the {reference} sha256 {expected}")
    fix = (f"download it again from {entry.download_hint()} and save it as {path}" if reference == "published" else
           f"restore the copy you pinned (from {entry.download_hint()}) or pin a verified copy: "
           f"python tools/weights.py pin {entry.name} FILE")
    return Check(entry, path, "differs", reference,
                 f"{name} at {path} differs from the {reference} checksum: expected sha256 {expected}, got {actual}"
                 f"{_size_note(entry, path)}; {fix}")


def require(entry: Entry, root: str) -> str:
    """The verified path of ``entry``'s file; a missing, different, unreleased or unusable file is a one-line
    UserError, an unverifiable one (no published checksum, no pin) one warning line on stderr."""
    result = check(entry, root)
    if not result.usable:
        raise UserError(result.message)
    if result.status == "unverified":
        print(f"warning: {result.message}", file=sys.stderr)
    return result.path
