"""The synthetic worlds (version 2): dataset specifications over the factor vocabularies (``vocab.py``), label order,
splits.

Every image is a *scene* described by factors: for object scenes colour, shape, fill and count; for glyph scenes the
glyph and its colour; for texture scenes the pattern and its colour. A dataset (a :class:`World`) names the factors
that define its classes (e.g. SynthCounts: count and shape, "three stars"); every other factor is nuisance, drawn
per image from the world's nuisance distribution. Pretraining pools draw every factor at random and caption the
image from its factors (:mod:`promptengine.synth.captions`), so no dataset's class names or template are given to
the model as such (docs/SYNTH.md, "Why this design").

Label order: classes are ordered category-major (the *last* class factor is the category: shape, glyph, pattern),
so CoOp's base half (the first ceil(n/2) labels) holds the first half of the categories with all their attribute
values, and the new half holds categories never tuned on -- as in the real base-to-new benchmarks, where new classes
are new categories.

Splits are rendered whole, in chunks of :data:`CHUNK` images, chunk j from its own generator seeded by
``derive_seed("synth2", world, split, world_seed, j)``; image i has label ``i % n_classes``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from . import render as R
from .scenes import draw_scenes
from .vocab import VOCAB, plural

WORLD_VERSION = 2

SPLIT_SIZES: Dict[str, int] = {"train": 100, "val": 20, "test": 50}  # images per class
SPLITS = tuple(SPLIT_SIZES)
CHUNK = 500  # images per rendering chunk (fixed: part of the definition of the pixels)


def derive_seed(*parts) -> int:
    """A 63-bit seed from any printable parts (stable across Python runs and machines)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class World:
    """A dataset of the embedded world: scene kind, style, class factors and nuisance distribution."""

    name: str  # the dataset class name
    kind: str  # objects | glyphs | patterns
    style: str  # photo | sketch | clutter
    factors: Tuple[str, ...]  # class-defining factors, in class-name order; the last one is the category
    template: str  # zero-shot template of the dataset
    vocab: Tuple[Tuple[str, ...], ...] = ()  # per class factor: the values used ("" = the full vocabulary)
    nuisance: str = "dataset"  # dataset | pretrain (pretraining pools draw count/fill more broadly)
    seed: int = 0

    def values(self, factor: str) -> Tuple[str, ...]:
        if factor in self.factors and self.vocab:
            return self.vocab[self.factors.index(factor)] or VOCAB[factor]
        return VOCAB[factor]

    @property
    def class_tuples(self) -> List[Tuple[int, ...]]:
        """Per label, the index of each class factor's value (into :meth:`values`); category-major order."""
        sizes = [len(self.values(f)) for f in self.factors]
        order = list(range(len(sizes)))
        major = [order[-1]] + order[:-1]  # category first, then the attributes in name order
        combos = itertools.product(*(range(sizes[i]) for i in major))
        out = []
        for combo in combos:
            t = [0] * len(sizes)
            for pos, i in enumerate(major):
                t[i] = combo[pos]
            out.append(tuple(t))
        return out

    @property
    def num_classes(self) -> int:
        return math.prod(len(self.values(f)) for f in self.factors)

    def classname(self, t: Tuple[int, ...]) -> str:
        words = dict(zip(self.factors, (self.values(f)[i] for f, i in zip(self.factors, t))))
        if "count" in words:  # "one star", "three stars"
            shape = words["shape"]
            return f"{words['count']} {shape if words['count'] == 'one' else plural(shape)}"
        return " ".join(words[f] for f in self.factors)

    @property
    def classnames(self) -> List[str]:
        return [self.classname(t) for t in self.class_tuples]

    def split_size(self, split: str) -> int:
        return SPLIT_SIZES[split] * self.num_classes


WORLDS: Dict[str, World] = {}


def _add(world: World) -> World:
    WORLDS[world.name] = world
    return world


# Source (ImageNet's role) and its domain shifts.
_add(World("SynthShapes", "objects", "photo", ("colour", "shape"), "a photo of a {}."))
_add(World("SynthShapesSketch", "objects", "sketch", ("colour", "shape"), "a photo of a {}."))
_add(World("SynthShapesClutter", "objects", "clutter", ("colour", "shape"), "a photo of a {}."))
# Cross-dataset targets: an easy one (Caltech's role), textures (DTD's), two specialist ones whose deciding cue
# pretraining captions rarely name (EuroSAT's / Aircraft's role).
_add(World("SynthGlyphs", "glyphs", "photo", ("glyph",), "a photo of a {}."))
_add(World("SynthPatterns", "patterns", "photo", ("colour", "pattern"), "a photo of a {} pattern.",
           vocab=(("red", "green", "blue", "yellow", "purple", "cyan"), ())))
# SynthCounts' category is its deciding cue, the count (base: one and two of every shape; new: three and four), as a
# real benchmark's new classes bring new values of what decides (shape-major, its new classes shared the base counts
# and CoOp gained on them: docs/SYNTH.md).
_add(World("SynthCounts", "objects", "photo", ("shape", "count"), "a photo of {}."))
_add(World("SynthFills", "objects", "photo", ("fill", "shape"), "a photo of a {}."))

SOURCE = "SynthShapes"
TARGETS: Tuple[str, ...] = ("SynthGlyphs", "SynthPatterns", "SynthCounts", "SynthFills")
SHIFTS: Tuple[str, ...] = ("SynthShapesSketch", "SynthShapesClutter")


def get_world(name: str) -> World:
    if name not in WORLDS:
        raise KeyError(f"unknown synthetic world '{name}' (known: {', '.join(WORLDS)})")
    return WORLDS[name]


# ---------------------------------------------------------------------------------------------
# scenes: per-image factor tensors
# ---------------------------------------------------------------------------------------------

# Nuisance distributions of object scenes: P(fill = solid) and P(count = one); other values uniform.
NUISANCE = {"dataset": dict(solid=0.7, one=1.0), "pretrain": dict(solid=0.55, one=0.6)}


def _draw(g: torch.Generator, n: int, k: int, p_first: float) -> torch.Tensor:
    """Index 0 with probability ``p_first``, else uniform over 1..k-1 (integer draws, exact)."""
    u = torch.randint(0, 1 << 20, (n,), generator=g)
    rest = torch.randint(1, k, (n,), generator=g) if k > 1 else torch.zeros(n, dtype=torch.long)
    return torch.where(u < int(p_first * (1 << 20)), torch.zeros_like(rest), rest)


def scene_factors(world: World, labels: torch.Tensor, g: torch.Generator) -> Dict[str, torch.Tensor]:
    """Per-image factor indices into the *full* vocabularies: class factors from the labels, the rest drawn."""
    n = labels.shape[0]
    tuples = torch.tensor(world.class_tuples, dtype=torch.long)[labels]  # (n, n_factors)
    out: Dict[str, torch.Tensor] = {}
    for j, f in enumerate(world.factors):
        full = VOCAB[f]
        remap = torch.tensor([full.index(v) for v in world.values(f)], dtype=torch.long)
        out[f] = remap[tuples[:, j]]
    nz = NUISANCE[world.nuisance]
    kinds = {"objects": ("colour", "shape", "fill", "count"), "glyphs": ("glyph", "colour"),
             "patterns": ("pattern", "colour")}[world.kind]
    for f in kinds:  # fixed order: part of the definition of the pixels
        if f in out:
            continue
        k = len(VOCAB[f])
        if f == "fill":
            out[f] = _draw(g, n, k, nz["solid"])
        elif f == "count":
            out[f] = _draw(g, n, k, nz["one"])
        else:
            out[f] = torch.randint(0, k, (n,), generator=g)
    return out


def render_labels(world: World, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Render one image per label with a generator seeded by ``seed``; ``(N, H, W, 3)`` uint8."""
    return render_scenes(world, labels, seed)[0]


def render_scenes(world: World, labels: torch.Tensor, seed: int):
    """Images ``(N, H, W, 3)`` uint8 and their factor tensors (what the pretraining captions describe)."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        factors = scene_factors(world, labels, g)
        img = draw_scenes(world.kind, world.style, factors, g)
    return R.to_uint8(img), factors


# ---------------------------------------------------------------------------------------------
# splits (rendered once per process, whole or by chunks of CHUNK images)
# ---------------------------------------------------------------------------------------------

_SPLIT_CACHE: Dict[Tuple[str, str, int], torch.Tensor] = {}
_CHUNK_CACHE: Dict[Tuple[str, str, int, int], torch.Tensor] = {}  # chunks of splits not rendered whole
_LOCK = threading.Lock()


def split_labels(world: World, split: str) -> torch.Tensor:
    return torch.arange(world.split_size(split)) % world.num_classes


def _split_key(name: str, split: str, seed: Optional[int]) -> Tuple[World, Tuple[str, str, int]]:
    world = get_world(name)
    if split not in SPLIT_SIZES:
        raise KeyError(f"unknown split '{split}' (train, val or test)")
    return world, (name, split, world.seed if seed is None else int(seed))


def _render_chunk(world: World, key: Tuple[str, str, int], j: int) -> torch.Tensor:
    """Chunk ``j`` of a split: images ``j * CHUNK ..`` from the chunk's own generator (call under the lock)."""
    cached = _CHUNK_CACHE.get((*key, j))
    if cached is not None:
        return cached
    labels = split_labels(world, key[1])
    start, end = j * CHUNK, min(labels.numel(), (j + 1) * CHUNK)
    return render_labels(world, labels[start:end], derive_seed("synth2", key[0], key[1], key[2], j))


def render_split(name: str, split: str, seed: Optional[int] = None) -> torch.Tensor:
    """All images of a split, ``(N, 32, 32, 3)`` uint8, label of image i = ``i % n_classes``."""
    world, key = _split_key(name, split, seed)
    with _LOCK:
        cached = _SPLIT_CACHE.get(key)
        if cached is not None:
            return cached
        n_chunks = len(R.chunks(world.split_size(split), CHUNK))
        images = torch.cat([_render_chunk(world, key, j) for j in range(n_chunks)])
        _SPLIT_CACHE[key] = images
        for j in range(n_chunks):  # the whole split now holds them
            _CHUNK_CACHE.pop((*key, j), None)
        return images


def split_image(name: str, split: str, index: int, seed: Optional[int] = None) -> torch.Tensor:
    """Image ``index`` of a split, ``(32, 32, 3)`` uint8, rendering only its chunk when the split is not rendered whole
    (the same pixels as ``render_split(...)[index]``: every chunk has its own generator)."""
    world, key = _split_key(name, split, seed)
    with _LOCK:
        whole = _SPLIT_CACHE.get(key)
        if whole is not None:
            return whole[index]
        j = index // CHUNK
        chunk = _render_chunk(world, key, j)
        _CHUNK_CACHE[(*key, j)] = chunk
        return chunk[index - j * CHUNK]


def clear_cache() -> None:
    with _LOCK:
        _SPLIT_CACHE.clear()
        _CHUNK_CACHE.clear()
