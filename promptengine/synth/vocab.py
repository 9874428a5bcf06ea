"""The words and colours scenes are made of: factor vocabularies, the palette, glyph characters, plurals."""

from __future__ import annotations

from typing import Dict, Tuple

PALETTE: Dict[str, Tuple[float, float, float]] = {
    "red": (0.86, 0.08, 0.08),
    "green": (0.10, 0.66, 0.14),
    "blue": (0.12, 0.24, 0.92),
    "yellow": (0.96, 0.86, 0.06),
    "orange": (1.00, 0.50, 0.02),
    "purple": (0.55, 0.14, 0.78),
    "cyan": (0.06, 0.82, 0.86),
    "pink": (1.00, 0.50, 0.76),
}

# Factor vocabularies (the words used in class names). Counts are plural in class names ("two stars").
VOCAB: Dict[str, Tuple[str, ...]] = {
    "colour": tuple(PALETTE),
    "shape": ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "crescent"),
    "fill": ("solid", "striped", "dotted", "checkered"),
    "count": ("one", "two", "three", "four"),
    "glyph": ("letter a", "letter e", "letter h", "letter k", "letter r", "letter s",
              "letter x", "letter m", "digit 2", "digit 4", "digit 7", "digit 9"),
    "pattern": ("striped", "dotted", "checkered", "wavy", "zigzag", "grid"),
}
GLYPH_CHARS: Tuple[str, ...] = ("A", "E", "H", "K", "R", "S", "X", "M", "2", "4", "7", "9")
PLURAL = {"cross": "crosses"}


def plural(shape: str) -> str:
    return PLURAL.get(shape, shape + "s")
