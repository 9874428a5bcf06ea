"""Vectorised, bit-exact rendering primitives for the synthetic worlds (torch, CPU).

Every per-pixel operation here is an IEEE correctly-rounded elementwise op (``+ - * /``, ``sqrt``,
``abs``, ``floor``, ``min``/``max``/``clamp``, ``where``, ``round``): no transcendental functions,
no reductions, no fused multiply-adds, no interpolation kernels. Random numbers come only from
``torch.rand``/``torch.randint`` on a seeded ``torch.Generator`` (integer-based, exact). So a split
rendered from the same seed is the same pixels, bit for bit, whatever the SIMD level of the CPU,
the thread count or the batch layout. Rotations use the rational parametrisation
``cos = (1 - t^2) / (1 + t^2), sin = 2t / (1 + t^2)`` and waves a piecewise-parabola sine, for
the same reason.

Coordinates: pixel centres in ``[-1, 1]`` (x to the right, y downwards); a shape "of scale s" has
its signed-distance function defined in units of ``s`` so that its outline lies near radius 1.
Images are float ``(N, 3, H, W)`` in ``[0, 1]`` until :func:`to_uint8` makes ``(N, H, W, 3)`` uint8.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from PIL import Image, ImageDraw, ImageFont

Tensor = torch.Tensor

RES = 32  # native image size of every world


# ---------------------------------------------------------------------------------------------
# random parameters
# ---------------------------------------------------------------------------------------------


def uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    """``n`` floats in ``[lo, hi)``, shaped ``(n, 1, 1)`` for broadcasting over pixels."""
    return (torch.rand(n, generator=g) * (hi - lo) + lo).view(n, 1, 1)


def randint(g: torch.Generator, n: int, high: int) -> Tensor:
    return torch.randint(0, high, (n,), generator=g)


def rotation(g: torch.Generator, n: int, t_max: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Random rotations as (cos, sin) with t = tan(angle / 2) uniform in [-t_max, t_max]."""
    t = uniform(g, n, -t_max, t_max)
    t2 = t * t
    den = t2 + 1.0
    return (1.0 - t2) / den, (t * 2.0) / den


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _grid(res: int) -> Tuple[Tensor, Tensor]:
    c = (torch.arange(res, dtype=torch.float32) + 0.5) * (2.0 / res) - 1.0
    y = c.view(1, res, 1).expand(1, res, res).contiguous()
    x = c.view(1, 1, res).expand(1, res, res).contiguous()
    return x, y


def grid(res: int = RES) -> Tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``(1, res, res)`` each, in ``(-1, 1)``."""
    return _grid(res)


def pixel(res: int = RES) -> float:
    """The width of one pixel in normalised coordinates."""
    return 2.0 / res


def local_coords(cx: Tensor, cy: Tensor, cos: Tensor, sin: Tensor, scale: Tensor, res: int = RES):
    """Image coordinates mapped into a shape's frame: translate, rotate by -angle, divide by scale."""
    x, y = grid(res)
    dx = x - cx
    dy = y - cy
    px = (dx * cos + dy * sin) / scale
    py = (dy * cos - dx * sin) / scale
    return px, py


def length(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def frac(x: Tensor) -> Tensor:
    return x - torch.floor(x)


def tri_wave(x: Tensor) -> Tensor:
    """Triangle wave with period 1, in [0, 1]: 0 at integers, 1 at half-integers."""
    return 1.0 - (frac(x) * 2.0 - 1.0).abs()


def sin_wave(x: Tensor) -> Tensor:
    """A smooth sine-like wave with period 1 (piecewise parabola, max error 0.056 vs sin(2 pi x))."""
    f = frac(x)
    h = frac(f * 2.0)  # position inside each half period
    bump = h * (1.0 - h) * 4.0
    return torch.where(f < 0.5, bump, -bump)


def coverage(d: Tensor, scale, res: int = RES) -> Tensor:
    """Anti-aliased coverage of the inside (d < 0) of a signed distance ``d`` given in shape units."""
    return (0.5 - d * scale / pixel(res)).clamp(0.0, 1.0)


def stroke(d: Tensor, scale, width_px: Tensor, res: int = RES) -> Tensor:
    """Anti-aliased coverage of an outline of ``width_px`` pixels centred on the zero level set."""
    dist_px = (d * scale).abs() / pixel(res)
    return (width_px * 0.5 + 0.5 - dist_px).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# signed distance functions (unit size; negative inside)
# ---------------------------------------------------------------------------------------------


def sdf_box(x: Tensor, y: Tensor, bx: float, by: float) -> Tensor:
    qx = x.abs() - bx
    qy = y.abs() - by
    outside = length(qx.clamp(min=0.0), qy.clamp(min=0.0))
    inside = torch.maximum(qx, qy).clamp(max=0.0)
    return outside + inside


def sdf_circle(x: Tensor, y: Tensor) -> Tensor:
    return length(x, y) - 0.95


def sdf_square(x: Tensor, y: Tensor) -> Tensor:
    return sdf_box(x, y, 0.78, 0.78)


_SQRT3 = math.sqrt(3.0)


def sdf_triangle(x: Tensor, y: Tensor) -> Tensor:
    """Equilateral triangle pointing up (image y is downwards), circumradius ~1.1."""
    r = 0.95  # half the side length
    k = _SQRT3
    px = x.abs() - r
    py = -y + r / k
    fold = (px + py * k) > 0.0
    qx = torch.where(fold, (px - py * k) * 0.5, px)
    qy = torch.where(fold, (px * (-k) - py) * 0.5, py)
    qx = qx - qx.clamp(-2.0 * r, 0.0)
    return -length(qx, qy) * torch.sign(qy)


_K1X, _K1Y = 0.809016994375, -0.587785252292  # cos / -sin of 36 degrees


def sdf_star(x: Tensor, y: Tensor) -> Tensor:
    """Five-pointed star, outer radius 1.05, inner radius ratio 0.45 (exact SDF, folded)."""
    r, rf = 1.05, 0.45
    px = x.abs()
    py = -y
    d = (px * _K1X + py * _K1Y).clamp(min=0.0) * 2.0
    px = px - d * _K1X
    py = py - d * _K1Y
    d = (px * (-_K1X) + py * _K1Y).clamp(min=0.0) * 2.0
    px = px - d * (-_K1X)
    py = py - d * _K1Y
    px = px.abs()
    py = py - r
    bax, bay = rf * (-_K1Y), rf * _K1X - 1.0
    h = ((px * bax + py * bay) / (bax * bax + bay * bay)).clamp(0.0, r)
    return length(px - h * bax, py - h * bay) * torch.sign(py * bax - px * bay)


def sdf_cross(x: Tensor, y: Tensor) -> Tensor:
    return torch.minimum(sdf_box(x, y, 0.95, 0.3), sdf_box(x, y, 0.3, 0.95))


def sdf_ring(x: Tensor, y: Tensor) -> Tensor:
    return (length(x, y) - 0.72).abs() - 0.25


def sdf_diamond(x: Tensor, y: Tensor) -> Tensor:
    """A rhombus (taller than wide); distance is approximate (scaled L1), fine for anti-aliasing."""
    return (x.abs() * 1.0 + y.abs() * 0.62 - 0.62) * 0.85


def sdf_crescent(x: Tensor, y: Tensor) -> Tensor:
    """A disc with an offset disc cut out (exact where it matters for anti-aliasing)."""
    return torch.maximum(length(x, y) - 0.95, 0.72 - length(x - 0.5, y + 0.18))


SHAPE_SDFS: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "circle": sdf_circle,
    "square": sdf_square,
    "triangle": sdf_triangle,
    "star": sdf_star,
    "cross": sdf_cross,
    "ring": sdf_ring,
    "diamond": sdf_diamond,
    "crescent": sdf_crescent,
}


def shape_sdf(names: Sequence[str], ids: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Signed distance of shape ``names[ids[i]]`` for each image i (grouped by shape, vectorised)."""
    out = torch.empty_like(px)
    for k, name in enumerate(names):
        idx = (ids == k).nonzero(as_tuple=True)[0]
        if idx.numel():
            out[idx] = SHAPE_SDFS[name](px[idx], py[idx])
    return out


# ---------------------------------------------------------------------------------------------
# glyph masks (rasterised once with Pillow's bundled FreeType font, sampled bilinearly in torch)
# ---------------------------------------------------------------------------------------------

GLYPH_RES = 64


@lru_cache(maxsize=8)
def glyph_masks(chars: Tuple[str, ...], res: int = GLYPH_RES) -> Tensor:
    """``(K, res, res)`` float masks in [0, 1], each glyph centred and about 0.8 * res tall.

    Uses ``PIL.ImageFont.load_default(size=...)``, a FreeType font bundled with Pillow >= 10.1,
    with a stroke to make the strokes bold enough to survive 32x32.
    """
    font = ImageFont.load_default(size=int(res * 0.78))
    if not isinstance(font, ImageFont.FreeTypeFont):  # pragma: no cover - old Pillow
        raise RuntimeError("SynthGlyphs needs Pillow >= 10.1 (a FreeType default font); pip install -U pillow")
    masks = []
    for ch in chars:
        img = Image.new("L", (res, res), 0)
        draw = ImageDraw.Draw(img)
        left, top, right, bottom = draw.textbbox((0, 0), ch, font=font, stroke_width=2)
        ox = (res - (right - left)) / 2.0 - left
        oy = (res - (bottom - top)) / 2.0 - top
        draw.text((ox, oy), ch, fill=255, font=font, stroke_width=2, stroke_fill=255)
        masks.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(res, res))
    return torch.stack(masks).float() / 255.0


def sample_masks(masks: Tensor, ids: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Bilinear lookup of ``masks[ids[i]]`` at frame coordinates (px, py) in [-1, 1]; 0 outside."""
    k, res, _ = masks.shape
    u = (px + 1.0) * (res * 0.5) - 0.5
    v = (py + 1.0) * (res * 0.5) - 0.5
    u0 = torch.floor(u)
    v0 = torch.floor(v)
    fu = u - u0
    fv = v - v0
    u0 = u0.long()
    v0 = v0.long()
    flat = masks.reshape(k, res * res)
    base = ids.view(-1, 1, 1)

    def tap(vi: Tensor, ui: Tensor) -> Tensor:
        ok = (ui >= 0) & (ui < res) & (vi >= 0) & (vi < res)
        idx = vi.clamp(0, res - 1) * res + ui.clamp(0, res - 1)
        vals = flat[base.expand_as(idx), idx]
        return torch.where(ok, vals, torch.zeros_like(vals))

    top = tap(v0, u0) * (1.0 - fu) + tap(v0, u0 + 1) * fu
    bottom = tap(v0 + 1, u0) * (1.0 - fu) + tap(v0 + 1, u0 + 1) * fu
    return top * (1.0 - fv) + bottom * fv


# ---------------------------------------------------------------------------------------------
# colours, backgrounds, compositing
# ---------------------------------------------------------------------------------------------


def jitter_colour(g: torch.Generator, base: Tensor, amount: float = 0.07, bright=(0.8, 1.08)) -> Tensor:
    """Per-image colour ``(N, 3, 1, 1)`` from base colours ``(N, 3)`` with brightness and channel jitter."""
    n = base.shape[0]
    b = torch.rand(n, 1, generator=g) * (bright[1] - bright[0]) + bright[0]
    j = (torch.rand(n, 3, generator=g) * 2.0 - 1.0) * amount
    return (base * b + j).clamp(0.0, 1.0).view(n, 3, 1, 1)


def random_colours(g: torch.Generator, n: int, grey: Tensor, sat: Tensor) -> Tensor:
    """Random colours ``(N, 3, 1, 1)``: a grey level plus ``sat`` times a random chroma."""
    c = torch.rand(n, 3, generator=g).view(n, 3, 1, 1)
    return (grey + (c - 0.5) * sat).clamp(0.0, 1.0)


def smooth_background(
    g: torch.Generator,
    n: int,
    res: int = RES,
    grey=(0.25, 0.75),
    sat=(0.3, 0.9),
    texture=(0.0, 0.12),
) -> Tensor:
    """A smooth multi-colour field (bilinear blend of four random corner colours), a soft blob of
    another colour and a faint oriented wave texture. ``(N, 3, res, res)``."""
    x, y = grid(res)
    u = (x + 1.0) * 0.5
    v = (y + 1.0) * 0.5
    gl = uniform(g, n, *grey).view(n, 1, 1, 1)
    st = uniform(g, n, *sat).view(n, 1, 1, 1)
    c00, c01, c10, c11 = (random_colours(g, n, gl, st) for _ in range(4))
    u4 = u.unsqueeze(1)
    v4 = v.unsqueeze(1)
    field = (c00 * (1.0 - u4) + c01 * u4) * (1.0 - v4) + (c10 * (1.0 - u4) + c11 * u4) * v4
    # one soft blob
    bx = uniform(g, n, -0.9, 0.9)
    by = uniform(g, n, -0.9, 0.9)
    br = uniform(g, n, 0.25, 0.7)
    bc = random_colours(g, n, gl, st)
    dx = (x - bx) / br
    dy = (y - by) / br
    w = (1.0 / (1.0 + (dx * dx + dy * dy) * 2.0)).unsqueeze(1)
    field = field * (1.0 - w) + bc * w
    # oriented wave texture (luminance only)
    cos, sin = rotation(g, n, 2.0)
    freq = uniform(g, n, 2.0, 7.0)
    phase = uniform(g, n, 0.0, 1.0)
    amp = uniform(g, n, *texture)
    wave = sin_wave((x * cos + y * sin) * freq + phase) * amp
    return (field + wave.unsqueeze(1)).clamp(0.0, 1.0)


def paper_background(g: torch.Generator, n: int, res: int = RES) -> Tensor:
    """Light paper: near-white, slightly warm or cool, a faint vertical shading and fibre grain."""
    x, y = grid(res)
    level = uniform(g, n, 0.82, 0.97).view(n, 1, 1, 1)
    tint = ((torch.rand(n, 3, generator=g) - 0.5) * 0.06).view(n, 3, 1, 1)
    shade = uniform(g, n, -0.05, 0.05)
    cos, sin = rotation(g, n, 2.0)
    grain = sin_wave((x * cos + y * sin) * 11.0) * 0.015
    base = level + tint + (y * shade + grain).unsqueeze(1)
    return base.clamp(0.0, 1.0)


def composite(bg: Tensor, colour: Tensor, alpha: Tensor) -> Tensor:
    """Paint ``colour`` (N,3,1,1 or N,3,H,W) over ``bg`` with coverage ``alpha`` (N,H,W)."""
    a = alpha.unsqueeze(1)
    return bg * (1.0 - a) + colour * a


def add_noise(g: torch.Generator, img: Tensor, amp_lo: float, amp_hi: float) -> Tensor:
    """Add per-pixel, per-channel triangular noise with a per-image amplitude."""
    n = img.shape[0]
    amp = uniform(g, n, amp_lo, amp_hi).view(n, 1, 1, 1)
    noise = torch.rand(img.shape, generator=g) + torch.rand(img.shape, generator=g) - 1.0
    return (img + noise * amp).clamp(0.0, 1.0)


def to_uint8(img: Tensor) -> Tensor:
    """``(N, 3, H, W)`` float in [0, 1] -> ``(N, H, W, 3)`` uint8 (round half to even)."""
    return (img * 255.0).round().clamp(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def chunks(n: int, size: int) -> List[Tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]
