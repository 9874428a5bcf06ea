"""Cheap probes of a SynthCLIP's image tower: does it read each attribute, and is the text or the image the bottleneck?

- :func:`attribute_zero_shot`: zero-shot accuracy on SynthShapes test images when only one attribute is asked for
  ("a photo of a star." over the 8 shapes; "a photo of a red shape." over the 8 colours).
- :func:`linear_probe`: a k-shot logistic-regression probe on the frozen, normalised image features (what the
  image tower offers a classifier, with no text), scored on the same test images as zero-shot. A probe below
  zero-shot means the image features, not the text, limit the source.
- :func:`factor_readings`: zero-shot accuracy on a dataset's test images, clean and under PGD, split by class factor
  (did the prediction get the count right, the shape right?): which cue an attack destroys, and which one a method
  would have to protect.

Both are deterministic (seeded shot sampling, full-batch L-BFGS from zeros).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ..attacks.pgd import attack
from ..attacks.spec import parse_spec
from ..evaluation.metrics import accuracy
from . import model as M
from .pretrain import class_text_features, image_features
from .worlds import derive_seed, get_world, render_split, split_labels

ATTRIBUTE_TEMPLATES = {"shape": "a photo of a {}.", "colour": "a photo of a {} shape."}


def _subset(name: str, split: str, classes: str):
    world = get_world(name)
    images, labels = render_split(name, split), split_labels(world, split)
    lo, hi = 0, world.num_classes
    if classes != "all":
        m = math.ceil(world.num_classes / 2)
        lo, hi = (0, m) if classes == "base" else (m, world.num_classes)
    keep = (labels >= lo) & (labels < hi)
    return images[keep], labels[keep] - lo, world.classnames[lo:hi]


@torch.no_grad()
def attribute_zero_shot(model, attribute: str, name: str = "SynthShapes") -> float:
    """Zero-shot top-1 (%) on ``name``'s test images with only ``attribute``'s values as candidates."""
    if attribute not in ATTRIBUTE_TEMPLATES:
        raise ValueError(f"attribute '{attribute}' has no probe template (known: {', '.join(ATTRIBUTE_TEMPLATES)})")
    world = get_world(name)
    idx = world.factors.index(attribute)
    images, labels, _ = _subset(name, "test", "all")
    values = world.values(attribute)
    target = torch.tensor([t[idx] for t in world.class_tuples])[labels]
    txt = class_text_features(model, list(values), ATTRIBUTE_TEMPLATES[attribute])
    pred = (image_features(model, images) @ txt.t()).argmax(1)
    return accuracy(pred == target)


def _fit_logreg(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, iters: int = 200) -> torch.Tensor:
    w = torch.zeros(x.shape[1] + 1, n_classes, requires_grad=True)
    xb = torch.cat([x, torch.ones(x.shape[0], 1)], 1)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xb @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _predict(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (torch.cat([x, torch.ones(x.shape[0], 1)], 1) @ w).argmax(1)


def linear_probe(model, name: str = "SynthShapes", classes: str = "base", shots: int = 16, seed: int = 1,
                 l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2)) -> Dict[str, float]:
    """k-shot logistic regression on frozen image features; L2 chosen on the val split; test top-1 (%)."""
    train_x, train_y, names = _subset(name, "train", classes)
    n_classes = len(names)
    g = torch.Generator().manual_seed(derive_seed("synth-probe", name, classes, shots, seed))
    pick = []
    for c in range(n_classes):
        idx = (train_y == c).nonzero(as_tuple=True)[0]
        pick.append(idx[torch.randperm(idx.numel(), generator=g)[:shots]])
    pick = torch.cat(pick)
    with torch.no_grad():
        fx = image_features(model, train_x[pick])
        val_x, val_y, _ = _subset(name, "val", classes)
        fv = image_features(model, val_x)
        test_x, test_y, _ = _subset(name, "test", classes)
        ft = image_features(model, test_x)
    fy = train_y[pick]
    best: Optional[tuple] = None
    for l2 in l2_grid:
        w = _fit_logreg(fx, fy, n_classes, l2)
        val_acc = accuracy(_predict(w, fv) == val_y)
        if best is None or val_acc > best[0]:
            best = (val_acc, l2, w)
    val_acc, l2, w = best
    test_acc = accuracy(_predict(w, ft) == test_y)
    return {"test": test_acc, "val": val_acc, "l2": l2}


def factor_accuracy(name: str, classes: str, pred: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Per class factor of ``name``, the % of images whose predicted class carries the true class's value of it.

    ``pred`` and ``labels`` index the classes of the ``classes`` part ("all", "base" or "new", as in ``_subset``).
    A factor's chance level is one over the number of its values that the part's classes use.
    """
    world = get_world(name)
    lo = 0 if classes in ("all", "base") else math.ceil(world.num_classes / 2)
    tuples = torch.tensor(world.class_tuples)[lo:]  # (K_part, F): factor value indices of the part's classes
    right = tuples[pred] == tuples[labels]  # (N, F)
    out = {f: accuracy(right[:, i]) for i, f in enumerate(world.factors)}
    out["class"] = accuracy(pred == labels)
    return out


def factor_readings(model, name: str, classes: str = "base", eps_255: float = 4.0, steps: int = 10,
                    n_images: int = 400, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Zero-shot SynthCLIP on the first ``n_images`` test images of ``name``'s ``classes`` part, clean and under
    L-inf PGD (``steps`` steps of eps/4, random start, CE; the toolbox's attack core), split by class factor
    (:func:`factor_accuracy`). The attack's last iterate is read (its whole budget spent), so the class row is at
    least the evaluation's robust accuracy, which stops at each image's first misclassified iterate.
    Returns {"clean": {...}, "pgd": {...}}."""
    images, labels, names = _subset(name, "test", classes)
    images, labels = images[:n_images], labels[:n_images]
    text = class_text_features(model, list(names), get_world(name).template)  # (K, E)
    scale = model.logit_scale.exp().float()

    def logits(x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1] -> (B, K)
        return scale * F.normalize(model.encode_image(M.normalize(x)).float(), dim=-1) @ text.t()

    x = M.uint8_to_float(images)
    with torch.no_grad():
        clean_pred = logits(x).argmax(1)
    spec = parse_spec(f"pgd:eps={eps_255:g},alpha={eps_255 / 4:g},steps={steps},seed={seed},keep=last")
    x_adv = attack(logits, x, labels, spec, sample_ids=torch.arange(x.shape[0]))
    with torch.no_grad():
        adv_pred = logits(x_adv).argmax(1)
    return {"clean": factor_accuracy(name, classes, clean_pred, labels),
            "pgd": factor_accuracy(name, classes, adv_pred, labels)}
