"""The weights catalogue: every public CLIP tower the robustness protocols use, read from one shipped YAML file.

The file (``configs/weights/catalogue.yaml``) says for each tower what it is, where every known copy lives, how the
file stores the weights and, where its publisher states one, its SHA-256. OpenAI's towers take file name, URL and
SHA-256 from the installed ``clip`` package's download table (each URL carries the SHA-256 that ``clip.load``
checks), so those facts are written once, by OpenAI.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import yaml

from ..errors import UserError
from ..registry import CONFIGS

KINDS = ("clip", "vision")  # a whole CLIP (MODEL.BACKBONE.NAME) | a vision tower (MODEL.BACKBONE.PATH)
FIELDS = {"title", "method", "arch", "kind", "format", "file", "sha256", "sha256_source", "size", "approx_gb",
          "sources", "unusable", "clip_package"}
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    url: str
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """One catalogued file (see the field list at the top of the YAML file)."""

    name: str
    title: str
    method: str
    arch: str
    kind: str
    format: str
    file: str  # relative to the weights root; "" when no file was released
    sources: Tuple[Source, ...]
    sha256: str = ""  # published checksum, "" when none is published
    sha256_source: str = ""
    size: str = ""
    approx_gb: float = 0.0
    unusable: str = ""  # why this toolbox cannot load it ("" = it can)
    clip_package: str = ""  # OpenAI model name in the clip package's download table

    @property
    def released(self) -> bool:
        return bool(self.file)

    def download_hint(self) -> str:
        """Where to get it: every source URL, first one first."""
        return " or ".join(s.url for s in self.sources) if self.sources else "no known source"


def catalogue_file() -> Path:
    return CONFIGS / "weights" / "catalogue.yaml"


def openai_download(model: str) -> Tuple[str, str, str]:
    """(URL, file name, SHA-256) of an OpenAI model, from the installed clip package's download table."""
    from ..clip.openai_clip import clip  # deferred: imports torch; only the OpenAI entries need it

    table = clip.clip._MODELS
    if model not in table:
        raise UserError(f"the installed clip package has no model '{model}' (it has: {', '.join(table)}); "
                        "fix configs/weights/catalogue.yaml or the clip install")
    url = table[model]
    parts = url.rstrip("/").split("/")
    return url, parts[-1], parts[-2]  # .../models/<sha256>/<file>


def _entry(name: str, raw: dict, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: entry '{name}' is not a mapping of fields")
    unknown = set(raw) - FIELDS
    if unknown:
        raise UserError(f"{where}: entry '{name}' has unknown fields {sorted(unknown)} (known: {sorted(FIELDS)})")
    if raw.get("kind") not in KINDS:
        raise UserError(f"{where}: entry '{name}' has kind {raw.get('kind')!r} (use one of {', '.join(KINDS)})")
    sources = [Source(str(s.get("url", "")), str(s.get("note", ""))) for s in raw.get("sources") or []]
    fields = {k: raw[k] for k in ("title", "method", "arch", "kind", "format", "file", "sha256", "sha256_source",
                                  "size", "unusable", "clip_package") if raw.get(k) is not None}
    fields = {k: str(v) for k, v in fields.items()}
    if fields.get("clip_package"):
        url, file, sha = openai_download(fields["clip_package"])
        fields.update(file=file, sha256=sha, sha256_source="OpenAI, in the clip package's download URL")
        sources.insert(0, Source(url, "OpenAI (the clip package's download table; clip.load fetches it)"))
    sha = fields.get("sha256", "")
    if sha and not SHA256.fullmatch(sha):
        raise UserError(f"{where}: entry '{name}' has a sha256 that is not 64 lower-case hex digits: {sha!r}")
    return Entry(name=name, sources=tuple(sources), approx_gb=float(raw.get("approx_gb") or 0.0),
                 **{k: fields.get(k, "") for k in ("title", "method", "arch", "kind", "format", "file", "sha256",
                                                    "sha256_source", "size", "unusable", "clip_package")})


def read_catalogue(path: Path) -> Dict[str, Entry]:
    """Every entry of a catalogue file, by name (a malformed file is a one-line error naming the entry)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the weights catalogue {path}: {exc.__class__.__name__}") from exc
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the weights catalogue must map names to entries")
    return {str(name): _entry(str(name), value, str(path)) for name, value in raw.items()}


@functools.lru_cache(maxsize=1)
def catalogue() -> Dict[str, Entry]:
    """The shipped catalogue (read once per process)."""
    return read_catalogue(catalogue_file())


def lookup(name: str) -> Optional[Entry]:
    """The catalogued entry of that name, or None (then the name means what it always meant: a CLIP name or a file)."""
    return catalogue().get(str(name)) if name else None
