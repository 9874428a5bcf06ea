#!/usr/bin/env python
"""Zero-shot (and PGD-robust) accuracy of SynthCLIP on the synthetic worlds, in plain torch.

    python tools/eval_synth_zeroshot.py                     # the shipped SynthCLIP
    python tools/eval_synth_zeroshot.py --weights sd.pt     # any CLIP state-dict file
    python tools/eval_synth_zeroshot.py --pgd-images 0      # clean accuracy only
    python tools/eval_synth_zeroshot.py --probes            # + what the image tower reads (about a minute more)
    python tools/eval_synth_zeroshot.py --factors SynthCounts:base   # which cue PGD destroys (per class factor)

Protocol (what ``train.py --trainer ZeroshotCLIP --eval-only`` must reproduce with
``INPUT.SIZE (32, 32)``): the model comes from ``clip.load(path, jit=False)`` on the CPU; class
prompts are ``dataset.template.format(classname)``, tokenised with ``clip.tokenize`` and encoded;
test images (uint8, 32x32) are scaled to [0, 1], normalised with CLIP's mean/std and encoded;
the prediction is the argmax of the cosine similarity. Base / new accuracy is CoOp's: only the
base (first ceil(n/2)) or new classes are candidates and only their images are scored.

Robust accuracy: L-inf PGD on the first ``--pgd-images`` SynthShapes test images (labels cycle
through all 64 classes), ``--pgd-steps`` steps of size eps/4, a uniform random start, cross-entropy
on the zero-shot logits (logit scale of the model), pixels kept in [0, 1], seeded.

Probes (``--probes``, promptengine/synth/probes.py): shape-only and colour-only zero-shot on SynthShapes, and a
16-shot logistic-regression probe on the frozen image features of the SynthShapes base classes (seeds 1-3) next to
zero-shot on the same images: a probe below zero-shot means the image tower, not the text, limits the source.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

import torch
import torch.nn.functional as F

from promptengine.evaluation.metrics import accuracy
from promptengine.synth import model as M
from promptengine.synth.pretrain import class_text_features, image_features
from promptengine.synth.worlds import WORLDS, get_world, render_split, split_labels

ROWS = (
    ("SynthShapes", "all"),
    ("SynthShapes", "base"),
    ("SynthShapes", "new"),
    ("SynthGlyphs", "all"),
    ("SynthPatterns", "all"),
    ("SynthCounts", "all"),
    ("SynthCounts", "base"),
    ("SynthCounts", "new"),
    ("SynthFills", "all"),
    ("SynthShapesSketch", "all"),
    ("SynthShapesClutter", "all"),
)


def load_model(path: str):
    from promptengine.clip.openai_clip import clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = clip.load(path, device="cpu", jit=False)
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def subset(name: str, classes: str, split: str = "test"):
    """(images uint8, labels, classnames) of a split restricted to all / base / new classes."""
    world = get_world(name)
    images = render_split(name, split)
    labels = split_labels(world, split)
    names = world.classnames
    if classes != "all":
        m = math.ceil(len(names) / 2)
        lo, hi = (0, m) if classes == "base" else (m, len(names))
        keep = (labels >= lo) & (labels < hi)
        images, labels, names = images[keep], labels[keep] - lo, names[lo:hi]
    return images, labels, names


@torch.no_grad()
def zero_shot(model, name: str, classes: str = "all") -> float:
    images, labels, names = subset(name, classes)
    txt = class_text_features(model, names, get_world(name).template)
    img = image_features(model, images)
    return accuracy((img @ txt.t()).argmax(1) == labels)


def pgd_accuracy(model, n_images: int, eps: float, steps: int, seed: int = 0, batch_size: int = 250):
    """(clean %, robust %) under L-inf PGD with radius ``eps`` (in [0, 1] pixel units)."""
    name = "SynthShapes"
    world = get_world(name)
    images = render_split(name, "test")[:n_images]
    labels = split_labels(world, "test")[:n_images]
    txt = class_text_features(model, world.classnames, world.template)
    scale = model.logit_scale.exp().float()

    def logits(x):
        f = F.normalize(model.encode_image(M.normalize(x)).float(), dim=-1)
        return scale * f @ txt.t()

    g = torch.Generator().manual_seed(seed)
    alpha = eps / 4.0
    clean = robust = 0
    for s in range(0, images.shape[0], batch_size):
        x = M.uint8_to_float(images[s : s + batch_size])
        y = labels[s : s + batch_size]
        with torch.no_grad():
            clean += int((logits(x).argmax(1) == y).sum())
        delta = (torch.rand(x.shape, generator=g) * 2.0 - 1.0) * eps
        x_adv = (x + delta).clamp(0.0, 1.0)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(logits(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv + alpha * grad.sign()
                x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
        with torch.no_grad():
            robust += int((logits(x_adv).argmax(1) == y).sum())
    n = images.shape[0]
    return clean * 100.0 / n, robust * 100.0 / n


def tower_probes(model, seeds=(1, 2, 3)) -> dict:
    """Print and return what the image tower reads: attribute-only zero-shot and the 16-shot linear probe."""
    from promptengine.synth.probes import attribute_zero_shot, linear_probe

    out = {f"{a}_only": round(attribute_zero_shot(model, a), 2) for a in ("shape", "colour")}
    probe = [linear_probe(model, "SynthShapes", "base", shots=16, seed=s)["test"] for s in seeds]
    out["linear_probe_16shot_base"] = round(sum(probe) / len(probe), 2)
    out["zero_shot_base"] = round(zero_shot(model, "SynthShapes", "base"), 2)
    print()
    print("| SynthShapes test probe | top-1 |")
    print("|---|---|")
    print(f"| shape only (8 shapes) | {out['shape_only']:.1f}% |")
    print(f"| colour only (8 colours) | {out['colour_only']:.1f}% |")
    print(f"| 16-shot linear probe, base (mean of {len(seeds)} seeds) | {out['linear_probe_16shot_base']:.1f}% |")
    print(f"| zero-shot, base | {out['zero_shot_base']:.1f}% |")
    return out


def factor_requests(requests) -> list:
    """(dataset, part) of each DATASET[:PART] request, all checked before any is run: a bad one is a one-line error."""
    out = []
    for request in requests:
        name, _, part = request.partition(":")
        part = part or "all"
        if part not in ("all", "base", "new"):
            raise SystemExit(f"error: --factors {request}: part '{part}' is not all, base or new (write e.g. "
                             "SynthCounts:base)")
        if name not in WORLDS:
            raise SystemExit(f"error: --factors {request}: no synthetic dataset '{name}' (known: {', '.join(WORLDS)})")
        out.append((name, part))
    return out


def factor_table(model, requests, eps_255: float, steps: int, seed: int) -> dict:
    """Print and return, per DATASET[:PART], zero-shot accuracy clean and under PGD split by class factor."""
    from promptengine.synth.probes import factor_readings

    out = {}
    print()
    print(f"| test images (first 400) | reading | class | per factor (PGD-{steps} at {eps_255:g}/255: last iterate) |")
    print("|---|---|---|---|")
    for name, part in requests:
        readings = factor_readings(model, name, part, eps_255=eps_255, steps=steps, seed=seed)
        out[f"{name}/{part}"] = readings
        for reading, acc in readings.items():
            factors = ", ".join(f"{f} {v:.1f}%" for f, v in acc.items() if f != "class")
            print(f"| {name} {part} | {reading} | {acc['class']:.1f}% | {factors} |")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="", help="CLIP state-dict file (default: the shipped SynthCLIP)")
    ap.add_argument("--pgd-images", type=int, default=500, help="SynthShapes test images attacked (0 = skip PGD)")
    ap.add_argument("--pgd-steps", type=int, default=10)
    ap.add_argument("--eps", type=float, nargs="*", default=[1.0, 4.0], help="L-inf radii in /255 units")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="also write the numbers to this JSON file")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--probes", action="store_true", help="also probe the image tower (attributes, linear probe)")
    ap.add_argument("--factors", nargs="*", default=[], metavar="DATASET[:PART]",
                    help="also split clean and PGD zero-shot accuracy by class factor, e.g. SynthCounts:base "
                         "(PART all, base or new; PGD at the first --eps, --pgd-steps, 400 test images)")
    args = ap.parse_args(argv)
    factor_parts = factor_requests(args.factors)  # checked before minutes of other work
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    t0 = time.time()
    path = args.weights
    if not path:
        from promptengine.synth.weights import synth_clip_path

        path = synth_clip_path()
    model = load_model(path)
    print(f"weights: {path}")
    results = {"weights": os.path.basename(path), "zero_shot": {}, "pgd": {}}
    print("| dataset | classes | chance | zero-shot top-1 |")
    print("|---|---|---|---|")
    for name, classes in ROWS:
        _, _, names = subset(name, classes)
        acc = zero_shot(model, name, classes)
        results["zero_shot"][f"{name}/{classes}"] = round(acc, 2)
        print(f"| {name} | {classes} ({len(names)}) | {100.0 / len(names):.1f}% | {acc:.1f}% |")
    if args.pgd_images > 0:
        print()
        print(f"| SynthShapes test, first {args.pgd_images} images | clean | PGD-{args.pgd_steps} robust |")
        print("|---|---|---|")
        for eps in args.eps:
            clean, rob = pgd_accuracy(model, args.pgd_images, eps / 255.0, args.pgd_steps, seed=args.seed)
            results["pgd"][f"eps{eps:g}"] = {"clean": round(clean, 2), "robust": round(rob, 2)}
            print(f"| eps = {eps:g}/255 | {clean:.1f}% | {rob:.1f}% |")
    if args.probes:
        results["probes"] = tower_probes(model)
    if args.factors:
        results["factors"] = factor_table(model, factor_parts, args.eps[0] if args.eps else 4.0, args.pgd_steps,
                                          args.seed)
    results["seconds"] = round(time.time() - t0, 1)
    print(f"\n({results['seconds']} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
