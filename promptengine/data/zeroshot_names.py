"""Class names as the zero-shot robustness benchmarks (TeCoA, PMG-AFT, TGA-ZSR) write them into prompts.

Their code lowercases each raw class name and turns ``_``, ``-`` and ``/`` into spaces ("aquarium_fish" ->
"aquarium fish", "go-kart" -> "go kart"); the loaders of the datasets these benchmarks added use the same rule, so
prompts match theirs.
"""

from __future__ import annotations


def zeroshot_classname(raw: str) -> str:
    """``raw`` lowercased, with ``_``, ``-`` and ``/`` as spaces and runs of spaces collapsed."""
    text = raw.lower()
    for ch in "_-/":
        text = text.replace(ch, " ")
    return " ".join(text.split())
