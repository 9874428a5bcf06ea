"""Caption templates of the pretraining corpus, per world.

Each template is formatted with the class's colour ``{c}``, item ``{i}`` and full class name
``{n}``. Every world's caption set contains its dataset's zero-shot template (as real CLIP saw
"a photo of a ..." on the web), plus paraphrases. Sketch captions are used only when sketch
images are mixed into pretraining (see ``PretrainConfig.mixture``).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch

from .worlds import World, get_world

TEMPLATES: Dict[Tuple[str, str], Tuple[str, ...]] = {
    ("shapes", "photo"): (
        "a photo of a {n}.",
        "a {n}.",
        "a picture of a {n}.",
        "a {i} that is {c}.",
        "a {n} on a noisy background.",
        "a photo of the {n}.",
        "a {c} {i} shape.",
        "there is a {n} in the image.",
    ),
    ("shapes", "sketch"): (
        "a sketch of a {n}.",
        "a drawing of a {n}.",
        "an outline of a {n}.",
        "a {n} drawn on paper.",
        "a photo of a {n}.",
    ),
    ("shapes", "clutter"): (
        "a photo of a {n}.",
        "a {n} among small shapes.",
        "a cluttered picture of a {n}.",
    ),
    ("glyphs", "photo"): (
        "a photo of a {n}.",
        "a {n}.",
        "a picture of a {n}.",
        "the {i} in {c}.",
        "a {n} on a noisy background.",
        "a {c} {i} printed on a background.",
    ),
    ("patterns", "photo"): (
        "a photo of a {n} pattern.",
        "a {n} pattern.",
        "a {n} texture.",
        "a {i} pattern in {c}.",
        "a close-up photo of a {n} pattern.",
        "{n} fabric.",
    ),
}


def templates_for(world: World) -> Tuple[str, ...]:
    return TEMPLATES[(world.kind, world.style)]


def captions(world: World) -> List[List[str]]:
    """``captions(world)[label][t]``: caption of class ``label`` with template ``t``."""
    out = []
    for c, k in world.class_pairs:
        values = dict(c=world.colours[c], i=world.items[k], n=world.classname(c, k))
        out.append([t.format(**values) for t in templates_for(world)])
    return out


def token_table(name: str, context_length: int = 77) -> torch.Tensor:
    """``(n_classes, n_templates, context_length)`` token ids of every caption of a world."""
    from ..clip.openai_clip import clip

    world = get_world(name)
    caps = captions(world)
    flat = [s for row in caps for s in row]
    tokens = clip.tokenize(flat, context_length=context_length)
    return tokens.view(len(caps), len(caps[0]), context_length)


def all_caption_token_ids(names) -> torch.Tensor:
    """Sorted unique token ids used by the captions of the given worlds (incl. SOT/EOT)."""
    ids = set()
    for name in names:
        t = token_table(name)
        ids.update(int(v) for v in t.unique())
    ids.discard(0)
    return torch.tensor(sorted(ids), dtype=torch.long)
