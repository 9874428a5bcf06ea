"""The synthetic worlds: class vocabularies, label order, split sizes, seeds and split rendering.

A world is a product of a colour vocabulary and an item vocabulary (shapes, glyphs or patterns),
drawn in a rendering style. Class ``(c, k)`` is called e.g. "red circle". Labels are ordered so
that CoOp's base half (the first ceil(n/2) labels) and new half each contain every colour and
every item: class (c, k) is *base* iff ``c + k`` is even; base classes come first, each half in
(colour, item) order. New classes are therefore novel combinations of attributes seen in base.

Splits are rendered whole, in chunks of :data:`CHUNK` images, chunk j from its own generator
seeded by ``derive_seed("synth", world, split, world_seed, j)``; image i has label ``i % n_classes``.
Pretraining batches use seeds from a different namespace (``"synth-pretrain"``), so pretraining
never sees a dataset image.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from . import render as R

# ---------------------------------------------------------------------------------------------
# vocabularies
# ---------------------------------------------------------------------------------------------

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

SHAPE_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "cyan", "pink")
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")

GLYPH_COLOURS = ("red", "green", "blue", "orange")
# (character drawn, word used in class names)
GLYPHS = (
    ("A", "letter a"),
    ("E", "letter e"),
    ("H", "letter h"),
    ("K", "letter k"),
    ("R", "letter r"),
    ("S", "letter s"),
    ("X", "letter x"),
    ("2", "digit 2"),
    ("4", "digit 4"),
    ("7", "digit 7"),
)

PATTERN_COLOURS = ("red", "green", "blue", "yellow", "purple", "cyan")
PATTERNS = ("striped", "dotted", "checkered", "wavy", "zigzag", "grid")

SPLIT_SIZES: Dict[str, int] = {"train": 100, "val": 20, "test": 50}  # images per class
SPLITS = tuple(SPLIT_SIZES)
CHUNK = 500  # images per rendering chunk (fixed: part of the definition of the pixels)


def derive_seed(*parts) -> int:
    """A 63-bit seed from any printable parts (stable across Python runs and machines)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


# ---------------------------------------------------------------------------------------------
# world specifications
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    name: str  # the dataset class name
    kind: str  # shapes | glyphs | patterns
    style: str  # photo | sketch | clutter
    colours: Tuple[str, ...]
    items: Tuple[str, ...]  # words used in class names (shape names, "letter a", pattern adjectives)
    template: str  # zero-shot template of the dataset
    seed: int = 0
    chars: Tuple[str, ...] = field(default=())  # glyphs only: the characters drawn

    @property
    def num_classes(self) -> int:
        return len(self.colours) * len(self.items)

    @property
    def class_pairs(self) -> List[Tuple[int, int]]:
        """(colour index, item index) per label: base classes ((c + k) even) first."""
        pairs = [(c, k) for c in range(len(self.colours)) for k in range(len(self.items))]
        base = [p for p in pairs if (p[0] + p[1]) % 2 == 0]
        new = [p for p in pairs if (p[0] + p[1]) % 2 == 1]
        return base + new

    def classname(self, c: int, k: int) -> str:
        return f"{self.colours[c]} {self.items[k]}"

    @property
    def classnames(self) -> List[str]:
        return [self.classname(c, k) for c, k in self.class_pairs]

    def split_size(self, split: str) -> int:
        return SPLIT_SIZES[split] * self.num_classes


WORLDS: Dict[str, World] = {}


def _add(world: World) -> World:
    WORLDS[world.name] = world
    return world


_add(World("SynthShapes", "shapes", "photo", SHAPE_COLOURS, SHAPES, "a photo of a {}."))
_add(World("SynthShapesSketch", "shapes", "sketch", SHAPE_COLOURS, SHAPES, "a photo of a {}."))
_add(World("SynthShapesClutter", "shapes", "clutter", SHAPE_COLOURS, SHAPES, "a photo of a {}."))
_add(
    World(
        "SynthGlyphs",
        "glyphs",
        "photo",
        GLYPH_COLOURS,
        tuple(w for _, w in GLYPHS),
        "a photo of a {}.",
        chars=tuple(c for c, _ in GLYPHS),
    )
)
_add(World("SynthPatterns", "patterns", "photo", PATTERN_COLOURS, PATTERNS, "a photo of a {} pattern."))


def get_world(name: str) -> World:
    if name not in WORLDS:
        raise KeyError(f"unknown synthetic world '{name}' (known: {', '.join(WORLDS)})")
    return WORLDS[name]


# ---------------------------------------------------------------------------------------------
# rendering one batch of a world
# ---------------------------------------------------------------------------------------------


def _palette(names: Tuple[str, ...], ids: torch.Tensor) -> torch.Tensor:
    table = torch.tensor([PALETTE[c] for c in names], dtype=torch.float32)
    return table[ids]


def _photo_background(g: torch.Generator, n: int, style: str) -> torch.Tensor:
    if style == "clutter":
        return R.smooth_background(g, n, grey=(0.2, 0.8), sat=(0.6, 1.0), texture=(0.08, 0.22))
    return R.smooth_background(g, n, grey=(0.25, 0.75), sat=(0.2, 0.75), texture=(0.0, 0.12))


def _distractors(g: torch.Generator, img: torch.Tensor, count: int) -> torch.Tensor:
    """Paint ``count`` small shapes of random palette colours (clutter style)."""
    n = img.shape[0]
    for _ in range(count):
        sid = R.randint(g, n, len(R.SHAPE_SDFS))
        cid = R.randint(g, n, len(SHAPE_COLOURS))
        scale = R.uniform(g, n, 0.13, 0.22)
        cx = R.uniform(g, n, -0.8, 0.8)
        cy = R.uniform(g, n, -0.8, 0.8)
        cos, sin = R.rotation(g, n)
        px, py = R.local_coords(cx, cy, cos, sin, scale)
        d = R.shape_sdf(tuple(R.SHAPE_SDFS), sid, px, py)
        colour = R.jitter_colour(g, _palette(SHAPE_COLOURS, cid))
        img = R.composite(img, colour, R.coverage(d, scale))
    return img


def _render_shapes(world: World, cids: torch.Tensor, kids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = cids.shape[0]
    if world.style == "sketch":
        img = R.paper_background(g, n)
    else:
        img = _photo_background(g, n, world.style)
    if world.style == "clutter":
        img = _distractors(g, img, 3)
        scale = R.uniform(g, n, 0.38, 0.62)
    else:
        scale = R.uniform(g, n, 0.4, 0.72)
    cx = R.uniform(g, n, -0.3, 0.3)
    cy = R.uniform(g, n, -0.3, 0.3)
    cos, sin = R.rotation(g, n)
    px, py = R.local_coords(cx, cy, cos, sin, scale)
    d = R.shape_sdf(world.items, kids, px, py)
    colour = R.jitter_colour(g, _palette(world.colours, cids))
    if world.style == "sketch":
        width = R.uniform(g, n, 1.0, 2.2)
        alpha = R.stroke(d, scale, width)
        img = R.composite(img, colour * 0.9, alpha)
        return R.add_noise(g, img, 0.0, 0.025)
    # soft directional shading of the object
    shade = R.uniform(g, n, -0.18, 0.18).view(n, 1, 1, 1)
    x, y = R.grid()
    lit = (colour * (1.0 + shade * (x * 0.6 + y * 0.8).unsqueeze(1))).clamp(0.0, 1.0)
    img = R.composite(img, lit, R.coverage(d, scale))
    if world.style == "clutter":
        return R.add_noise(g, img, 0.04, 0.12)
    return R.add_noise(g, img, 0.01, 0.08)


def _render_glyphs(world: World, cids: torch.Tensor, kids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = cids.shape[0]
    masks = R.glyph_masks(world.chars)
    img = _photo_background(g, n, world.style)
    scale = R.uniform(g, n, 0.8, 1.08)
    cx = R.uniform(g, n, -0.2, 0.2)
    cy = R.uniform(g, n, -0.2, 0.2)
    cos, sin = R.rotation(g, n, 0.14)  # +-16 degrees: a 7 stays a 7
    sx = R.uniform(g, n, 0.85, 1.15)  # aspect jitter
    px, py = R.local_coords(cx, cy, cos, sin, scale)
    alpha = R.sample_masks(masks, kids, px * sx, py)
    colour = R.jitter_colour(g, _palette(world.colours, cids))
    img = R.composite(img, colour, alpha)
    return R.add_noise(g, img, 0.01, 0.08)


def _stripes(u: torch.Tensor, period: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Coverage of stripes of ``width`` px every ``period`` px; ``u`` in periods."""
    d = (R.frac(u) - 0.5).abs() * period
    return (width * 0.5 + 0.5 - d).clamp(0.0, 1.0)


def _render_patterns(world: World, cids: torch.Tensor, kids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = cids.shape[0]
    x, y = R.grid()
    dark = torch.rand(n, generator=g) < 0.5
    level = torch.where(dark.view(n, 1, 1), R.uniform(g, n, 0.04, 0.3), R.uniform(g, n, 0.7, 0.96))
    tint = ((torch.rand(n, 3, generator=g) - 0.5) * 0.12).view(n, 3, 1, 1)
    shade = R.uniform(g, n, -0.12, 0.12)
    bg = (level.unsqueeze(1) + tint + (x * shade).unsqueeze(1)).clamp(0.0, 1.0)
    cos, sin = R.rotation(g, n)
    half = R.RES * 0.5
    ru = (x * cos + y * sin) * half  # pixels across the stripes
    rv = (y * cos - x * sin) * half  # pixels along them
    period = R.uniform(g, n, 5.0, 9.0)
    duty = R.uniform(g, n, 0.38, 0.55)
    ph_u = R.uniform(g, n, 0.0, 1.0)
    ph_v = R.uniform(g, n, 0.0, 1.0)
    amp = R.uniform(g, n, 0.25, 0.45)
    wave_len = R.uniform(g, n, 10.0, 16.0)
    line_w = R.uniform(g, n, 1.3, 2.3)
    u = ru / period + ph_u
    v = rv / period + ph_v
    alpha = torch.empty_like(ru)
    for k, name in enumerate(world.items):
        idx = (kids == k).nonzero(as_tuple=True)[0]
        if not idx.numel():
            continue
        ui, vi, P, D = u[idx], v[idx], period[idx], duty[idx] * period[idx]
        if name == "striped":
            a = _stripes(ui, P, D)
        elif name == "dotted":
            du = (R.frac(ui) - 0.5) * P
            dv = (R.frac(vi) - 0.5) * P
            a = (D * 0.6 + 0.5 - R.length(du, dv)).clamp(0.0, 1.0)
        elif name == "checkered":
            au = ((R.frac(ui) - 0.5).abs() * P - P * 0.25 + 0.5).clamp(0.0, 1.0)
            av = ((R.frac(vi) - 0.5).abs() * P - P * 0.25 + 0.5).clamp(0.0, 1.0)
            a = au + av - au * av * 2.0
        elif name == "wavy":
            a = _stripes(ui + R.sin_wave(rv[idx] / wave_len[idx] + ph_v[idx]) * amp[idx] * 2.0, P, D)
        elif name == "zigzag":
            a = _stripes(ui + (R.tri_wave(rv[idx] / wave_len[idx] + ph_v[idx]) * 2.0 - 1.0) * amp[idx] * 2.0, P, D)
        elif name == "grid":
            a = torch.maximum(_stripes(ui, P, line_w[idx]), _stripes(vi, P, line_w[idx]))
        else:  # pragma: no cover
            raise ValueError(name)
        alpha[idx] = a
    colour = R.jitter_colour(g, _palette(world.colours, cids))
    img = R.composite(bg, colour, alpha)
    return R.add_noise(g, img, 0.01, 0.08)


_RENDERERS = {"shapes": _render_shapes, "glyphs": _render_glyphs, "patterns": _render_patterns}


def render_labels(world: World, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Render one image per label with a generator seeded by ``seed``; ``(N, H, W, 3)`` uint8."""
    pairs = torch.tensor(world.class_pairs, dtype=torch.long)[labels]
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        img = _RENDERERS[world.kind](world, pairs[:, 0].contiguous(), pairs[:, 1].contiguous(), g)
    return R.to_uint8(img)


# ---------------------------------------------------------------------------------------------
# splits (rendered once per process)
# ---------------------------------------------------------------------------------------------

_SPLIT_CACHE: Dict[Tuple[str, str, int], torch.Tensor] = {}
_LOCK = threading.Lock()


def split_labels(world: World, split: str) -> torch.Tensor:
    return torch.arange(world.split_size(split)) % world.num_classes


def render_split(name: str, split: str, seed: Optional[int] = None) -> torch.Tensor:
    """All images of a split, ``(N, 32, 32, 3)`` uint8, label of image i = ``i % n_classes``."""
    world = get_world(name)
    if split not in SPLIT_SIZES:
        raise KeyError(f"unknown split '{split}' (train, val or test)")
    wseed = world.seed if seed is None else int(seed)
    key = (name, split, wseed)
    with _LOCK:
        cached = _SPLIT_CACHE.get(key)
        if cached is not None:
            return cached
        labels = split_labels(world, split)
        parts = []
        for j, (s, e) in enumerate(R.chunks(labels.numel(), CHUNK)):
            parts.append(render_labels(world, labels[s:e], derive_seed("synth", name, split, wseed, j)))
        images = torch.cat(parts)
        _SPLIT_CACHE[key] = images
        return images


def clear_cache() -> None:
    with _LOCK:
        _SPLIT_CACHE.clear()
