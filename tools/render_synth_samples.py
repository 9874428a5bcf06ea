#!/usr/bin/env python
"""Render a grid of sample images of every synthetic world to docs/images/synth_samples.png.

    python tools/render_synth_samples.py [--out docs/images/synth_samples.png] [--per-row 12] [--zoom 3]

One row per dataset (test split, images 0..per_row-1, i.e. the first classes in label order), the
dataset name on the left and each image's class name under it. Everything is generated; nothing is
drawn by hand.
"""

from __future__ import annotations

import argparse
import os

ORDER = ("SynthShapes", "SynthShapesSketch", "SynthShapesClutter", "SynthGlyphs", "SynthPatterns", "SynthCounts",
         "SynthFills")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "docs", "images", "synth_samples.png"))
    ap.add_argument("--per-row", type=int, default=12)
    ap.add_argument("--zoom", type=int, default=3)
    args = ap.parse_args(argv)

    from PIL import Image, ImageDraw, ImageFont

    from promptengine.synth.worlds import get_world, render_split, split_labels

    z = args.zoom
    cell = 32 * z
    pad = 6
    label_h = 24
    left = 150
    font = ImageFont.load_default(size=12)
    font_big = ImageFont.load_default(size=14)
    rows = len(ORDER)
    width = left + args.per_row * (cell + pad) + pad
    height = rows * (cell + label_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(ORDER):
        world = get_world(name)
        images = render_split(name, "test")
        labels = split_labels(world, "test")
        # spread the picks over the label range (category-major order), so many categories and attributes show
        step = max(1, world.num_classes // args.per_row)
        picks = [(i * step + i // max(1, world.num_classes // step)) % world.num_classes for i in range(args.per_row)]
        y0 = pad + r * (cell + label_h + pad)
        draw.text((pad, y0 + cell // 2 - 16), name, fill=(0, 0, 0), font=font_big)
        draw.text((pad, y0 + cell // 2 + 2), f"{world.num_classes} classes", fill=(90, 90, 90), font=font)
        for c, label in enumerate(picks):
            idx = int((labels == label).nonzero()[0])
            tile = Image.fromarray(images[idx].numpy()).resize((cell, cell), Image.NEAREST)
            x0 = left + pad + c * (cell + pad)
            canvas.paste(tile, (x0, y0))
            text = world.classnames[label]
            tw = draw.textlength(text, font=font)
            draw.text((x0 + (cell - tw) / 2, y0 + cell + 4), text, fill=(40, 40, 40), font=font)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out} ({canvas.size[0]}x{canvas.size[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
