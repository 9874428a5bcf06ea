"""SHA-256 digests of weights files, cached so that multi-GB backbones are hashed once.

A cached digest is reused only when the file still looks like the one that was hashed, judged by what a copy or a
rewrite cannot cheaply reproduce:

- the path, size and modification time (which ``touch``/``os.utime`` can set to any value),
- the inode and the status-change time ``ctime`` (set by the kernel on every write, rename, ``utime`` or ``chmod``;
  no user call sets it), so a file copied over, replaced or rewritten in place is hashed again, and
- a SHA-256 of the first and last MiB, which catches a different file even where ``ctime`` has a coarse clock
  (two writes within one tick) or a network file system reports it loosely.

A change that leaves all of these equal (rewriting the middle of a file in place, then resetting the system clock
and the mtime) is not detected; anything short of that is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..cache import cache_root

EDGE_BYTES = 1 << 20  # head and tail hashed into the cache key
BLOCK = 1 << 22


def _cache_path() -> str:
    return os.path.join(cache_root(), "file_digests.json")


def edges_digest(path: str, size: int) -> str:
    """SHA-256 (16 hex digits) of the file's first and last ``EDGE_BYTES`` (the whole file when it is smaller)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            h.update(f.read(EDGE_BYTES))
    return h.hexdigest()[:16]


def cache_key(path: str) -> str:
    """What a cached digest of ``path`` is valid for (see the module docstring)."""
    st = os.stat(path)
    return (f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_dev}:{st.st_ino}|{st.st_ctime_ns}|"
            f"{edges_digest(path, st.st_size)}")


def _read_cache(cache_file: str) -> dict:
    try:
        with open(cache_file, encoding="utf-8") as f:
            cache = json.load(f)
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_cache(cache_file: str, cache: dict) -> None:
    try:  # a read-only cache only costs a re-hash next time
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        tmp = f"{cache_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass


def file_digest(path: str) -> str:
    """SHA-256 of a file, from the cache when the file is unchanged by the rule above, else hashed (and cached)."""
    path = os.path.abspath(path)
    key = cache_key(path)
    cache_file = _cache_path()
    cache = _read_cache(cache_file)
    if isinstance(cache.get(key), str):
        return cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    digest = h.hexdigest()
    cache[key] = digest
    _write_cache(cache_file, cache)
    return digest
