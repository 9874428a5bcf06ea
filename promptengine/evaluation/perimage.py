"""Per-image correctness in results.json: which test images a run got right, clean and under each attack.

Accuracies alone allow neither intervals over test images nor *paired* comparisons (two methods judged on the same
images). So each evaluation also stores, under the key ``per_image``::

    "per_image": {
      "items": "2400:3f1c...",        # digest of the ordered evaluated items (identity.data.test_items for a test)
      "n": 2400,                      # number of images
      "encoding": "base64-le-bits",   # bit i of the little-endian integer (byte i//8, bit i%8) = image i correct
      "clean": "...",                 # correct on clean input
      "robust": ["...", ...],         # robust to each attack of "robust", in that order
      "worst_case": "..."             # correct on clean input and robust to every attack (with attacks only)
    }

2,400 images take 400 characters per vector. ``format`` stays 1: readers that do not know the key ignore it, and
readers here treat a file without it (written before it existed) as "no per-image record".

Pure Python and torch-free, so the reporting tools read it without the training stack.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

ENCODING = "base64-le-bits"
KEY = "per_image"


def pack_bits(flags: Sequence[bool]) -> str:
    """``flags[i]`` -> bit i of a little-endian integer, as base64 (``ceil(n/8)`` bytes)."""
    value = 0
    for i, flag in enumerate(flags):
        if flag:
            value |= 1 << i
    return bits_to_text(value, len(flags))


def bits_to_text(bits: int, n: int) -> str:
    return base64.b64encode(bits.to_bytes((n + 7) // 8, "little")).decode("ascii")


def unpack_bits(text: str, n: int) -> int:
    """The integer whose bit i is image i; ValueError when ``text`` is not ``n`` bits of base64."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError) as exc:
        raise ValueError(f"not base64 ({exc})") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"{len(raw)} bytes for {n} images (expected {(n + 7) // 8})")
    value = int.from_bytes(raw, "little")
    if value >> n:
        raise ValueError(f"bits set beyond image {n}")
    return value


def flags_of(bits: int, n: int) -> List[bool]:
    return [bool(bits >> i & 1) for i in range(n)]


def build_record(items: str, clean: Sequence[bool], robust: Sequence[Sequence[bool]],
                 worst: Optional[Sequence[bool]]) -> Dict[str, Any]:
    """The ``per_image`` value of results.json for one evaluation (every vector has one flag per image, in order)."""
    n = len(clean)
    if any(len(v) != n for v in robust) or (worst is not None and len(worst) != n):
        raise ValueError("per-image vectors of one evaluation must have the same length")
    record: Dict[str, Any] = {"items": items, "n": n, "encoding": ENCODING, "clean": pack_bits(clean),
                              "robust": [pack_bits(v) for v in robust]}
    if worst is not None:
        record["worst_case"] = pack_bits(worst)
    return record


@dataclass(frozen=True)
class PerImage:
    """A parsed ``per_image`` record: bit i of each integer is image i."""

    items: str
    n: int
    clean: int
    robust: Tuple[int, ...]
    worst_case: Optional[int]

    def bits(self, metric: str) -> Optional[int]:
        """``clean`` or ``robust`` (the per-sample worst case; the only attack when there is one)."""
        if metric == "clean":
            return self.clean
        if metric == "robust":
            if self.worst_case is not None:
                return self.worst_case
            return self.robust[0] if len(self.robust) == 1 else None
        raise ValueError(f"unknown metric {metric!r} (clean, robust)")


def _correct(block: Any) -> Optional[int]:
    value = block.get("correct") if isinstance(block, dict) else None
    return value if isinstance(value, int) else None


def parse_record(data: Dict[str, Any]) -> Tuple[Optional[PerImage], Optional[str]]:
    """(record, None), (None, None) when the file has no ``per_image`` key, or (None, why) when it is unusable.

    A record is used only when each vector's count of set bits equals the count recorded next to it (``clean``,
    ``robust[i]``, ``worst_case``): a vector that disagrees with its file's accuracy would silently change numbers.
    """
    block = data.get(KEY)
    if block is None:
        return None, None
    try:
        if not isinstance(block, dict) or block.get("encoding") != ENCODING:
            raise ValueError(f"encoding is not {ENCODING!r}")
        n, items = block.get("n"), block.get("items")
        if not isinstance(n, int) or n < 1 or not isinstance(items, str):
            raise ValueError("'n' or 'items' missing")
        clean = unpack_bits(block.get("clean"), n)
        robust = tuple(unpack_bits(t, n) for t in block.get("robust") or [])
        worst = unpack_bits(block["worst_case"], n) if block.get("worst_case") is not None else None
        attacks = data.get("robust") or []
        if len(robust) != len(attacks):
            raise ValueError(f"{len(robust)} robust vectors for {len(attacks)} attacks")
        checks = [("clean", clean, data.get("clean"))]
        checks += [(f"robust[{i}]", bits, attacks[i]) for i, bits in enumerate(robust)]
        if worst is not None:
            checks.append(("worst_case", worst, data.get("worst_case")))
        for name, bits, counted in checks:
            want = _correct(counted)
            if want is not None and bits.bit_count() != want:
                raise ValueError(f"{name} has {bits.bit_count()} correct images but the file records {want}")
    except (ValueError, TypeError) as exc:
        return None, str(exc)
    return PerImage(items, n, clean, robust, worst), None
