"""Drawing scenes of the synthetic world from per-image factor tensors (vectorised, bit-exact; see render.py).

Object scenes: ``count`` copies of one shape in one colour and one fill (solid, striped, dotted, checkered) --
a single object near the centre, or 2-4 smaller copies in distinct quadrants -- over a smooth photo background
(``photo``), a busy background with distractors (``clutter``) or as outlines on paper (``sketch``). Glyph scenes: a
coloured letter or digit. Texture scenes: a full-frame coloured pattern. Every random draw is made for every image
(whether or not it is used), so the stream consumed never depends on the factor values.
"""

from __future__ import annotations

from typing import Dict

import torch

from . import render as R
from .vocab import GLYPH_CHARS, PALETTE, VOCAB

Tensor = torch.Tensor
_COLOURS = torch.tensor([PALETTE[c] for c in VOCAB["colour"]], dtype=torch.float32)
_QUADRANTS = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])


def _colour(g: torch.Generator, ids: Tensor) -> Tensor:
    return R.jitter_colour(g, _COLOURS[ids])


def _background(g: torch.Generator, n: int, style: str) -> Tensor:
    if style == "sketch":
        return R.paper_background(g, n)
    if style == "clutter":
        return R.smooth_background(g, n, grey=(0.2, 0.8), sat=(0.6, 1.0), texture=(0.08, 0.22))
    return R.smooth_background(g, n, grey=(0.25, 0.75), sat=(0.2, 0.75), texture=(0.0, 0.12))


def _stripes(u: Tensor, period, width) -> Tensor:
    """Coverage of stripes of ``width`` px every ``period`` px; ``u`` in periods."""
    d = (R.frac(u) - 0.5).abs() * period
    return (width * 0.5 + 0.5 - d).clamp(0.0, 1.0)


def _fill_alpha(fill: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
    """Coverage of the fill pattern inside an object; ``qx, qy`` in pixels in the object's frame."""
    period = 4.0
    u, v = qx / period, qy / period
    striped = _stripes(u, period, 1.8)
    du = (R.frac(u) - 0.5) * period
    dv = (R.frac(v) - 0.5) * period
    dotted = (1.6 - R.length(du, dv)).clamp(0.0, 1.0)
    au = ((R.frac(u) - 0.5).abs() * period - period * 0.25 + 0.5).clamp(0.0, 1.0)
    av = ((R.frac(v) - 0.5).abs() * period - period * 0.25 + 0.5).clamp(0.0, 1.0)
    checkered = au + av - au * av * 2.0
    f = fill.view(-1, 1, 1)
    out = torch.zeros_like(qx)
    out = torch.where(f == 1, striped, out)
    out = torch.where(f == 2, dotted, out)
    return torch.where(f == 3, checkered, out)


def _objects(style: str, fx: Dict[str, Tensor], g: torch.Generator) -> Tensor:
    shape, colour, fill, count = fx["shape"], fx["colour"], fx["fill"], fx["count"] + 1
    n = shape.shape[0]
    img = _background(g, n, style)
    if style == "clutter":
        img = _distractors(g, img, 3)
    base = _colour(g, colour)  # (n, 3, 1, 1)
    shade = R.uniform(g, n, -0.18, 0.18).view(n, 1, 1, 1)
    order = torch.argsort(torch.rand(n, 4, generator=g), dim=1)  # quadrant of each copy
    x, y = R.grid()
    for j in range(4):
        single = count == 1
        big = R.uniform(g, n, 0.4, 0.72) if style != "clutter" else R.uniform(g, n, 0.38, 0.62)
        small = R.uniform(g, n, 0.26, 0.36)
        scale = torch.where(single.view(n, 1, 1), big, small)
        quad = _QUADRANTS[order[:, j]]
        jx, jy = R.uniform(g, n, -0.1, 0.1), R.uniform(g, n, -0.1, 0.1)
        centre_x, centre_y = R.uniform(g, n, -0.3, 0.3), R.uniform(g, n, -0.3, 0.3)
        cx = torch.where(single.view(n, 1, 1), centre_x, quad[:, 0].view(n, 1, 1) + jx)
        cy = torch.where(single.view(n, 1, 1), centre_y, quad[:, 1].view(n, 1, 1) + jy)
        cos, sin = R.rotation(g, n)
        width = R.uniform(g, n, 1.0, 2.2)
        idx = (count > j).nonzero(as_tuple=True)[0]  # images with a copy number j (random draws above: all)
        if not idx.numel():
            continue
        px, py = R.local_coords(cx[idx], cy[idx], cos[idx], sin[idx], scale[idx])
        d = R.shape_sdf(VOCAB["shape"], shape[idx], px, py)
        if style == "sketch":
            img[idx] = R.composite(img[idx], base[idx] * 0.9, R.stroke(d, scale[idx], width[idx]))
            continue
        to_px = scale[idx] / R.pixel()
        pattern = _fill_alpha(fill[idx], px * to_px, py * to_px).unsqueeze(1)  # (m, 1, H, W)
        painted = base[idx] * (1.0 - pattern * 0.75) + pattern * 0.75 * 0.95
        lit = (painted * (1.0 + shade[idx] * (x * 0.6 + y * 0.8).unsqueeze(1))).clamp(0.0, 1.0)
        img[idx] = R.composite(img[idx], lit, R.coverage(d, scale[idx]))
    if style == "sketch":
        return R.add_noise(g, img, 0.0, 0.025)
    if style == "clutter":
        return R.add_noise(g, img, 0.04, 0.12)
    return R.add_noise(g, img, 0.01, 0.08)


def _distractors(g: torch.Generator, img: Tensor, count: int) -> Tensor:
    """Paint ``count`` small shapes of random palette colours (clutter style)."""
    n = img.shape[0]
    for _ in range(count):
        sid = R.randint(g, n, len(VOCAB["shape"]))
        cid = R.randint(g, n, len(VOCAB["colour"]))
        scale = R.uniform(g, n, 0.13, 0.22)
        cx = R.uniform(g, n, -0.8, 0.8)
        cy = R.uniform(g, n, -0.8, 0.8)
        cos, sin = R.rotation(g, n)
        px, py = R.local_coords(cx, cy, cos, sin, scale)
        d = R.shape_sdf(VOCAB["shape"], sid, px, py)
        img = R.composite(img, _colour(g, cid), R.coverage(d, scale))
    return img


def _glyphs(style: str, fx: Dict[str, Tensor], g: torch.Generator) -> Tensor:
    kids, cids = fx["glyph"], fx["colour"]
    n = kids.shape[0]
    masks = R.glyph_masks(GLYPH_CHARS)
    img = _background(g, n, style)
    scale = R.uniform(g, n, 0.8, 1.08)
    cx = R.uniform(g, n, -0.2, 0.2)
    cy = R.uniform(g, n, -0.2, 0.2)
    cos, sin = R.rotation(g, n, 0.14)  # +-16 degrees: a 7 stays a 7
    sx = R.uniform(g, n, 0.85, 1.15)  # aspect jitter
    px, py = R.local_coords(cx, cy, cos, sin, scale)
    alpha = R.sample_masks(masks, kids, px * sx, py)
    img = R.composite(img, _colour(g, cids), alpha)
    return R.add_noise(g, img, 0.01, 0.08)


def _patterns(style: str, fx: Dict[str, Tensor], g: torch.Generator) -> Tensor:
    kids, cids = fx["pattern"], fx["colour"]
    n = kids.shape[0]
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
    for k, name in enumerate(VOCAB["pattern"]):
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
        else:  # grid
            a = torch.maximum(_stripes(ui, P, line_w[idx]), _stripes(vi, P, line_w[idx]))
        alpha[idx] = a
    img = R.composite(bg, _colour(g, cids), alpha)
    return R.add_noise(g, img, 0.01, 0.08)


_DRAW = {"objects": _objects, "glyphs": _glyphs, "patterns": _patterns}


def draw_scenes(kind: str, style: str, factors: Dict[str, Tensor], g: torch.Generator) -> Tensor:
    """Float images ``(N, 3, H, W)`` in [0, 1] of the scenes described by ``factors`` (full-vocabulary indices)."""
    return _DRAW[kind](style, factors, g)
