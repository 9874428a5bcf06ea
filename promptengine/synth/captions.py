"""Web-like captions of pretraining images, written from each image's own factors.

Real CLIP never saw "a photo of a {class}." for every training image: web captions name some attributes of what
is shown, in varied words, sometimes wrongly. So here each image gets one caption that mentions each attribute
with its own probability (:data:`MENTION`), inside a random wrapper ("a photo of ...", "... clipart", ...), with a
small rate of wrong colour words and of captions unrelated to the image. Counts and fills -- the deciding cues of
SynthCounts and SynthFills -- are named rarely, as the cues of specialist datasets (satellite land use, aircraft
variants) are rarely named on the web. No dataset's zero-shot template is a caption template.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import torch

from ..clip.openai_clip import clip
from .vocab import VOCAB, plural

# Probability that a caption names each attribute of the image (when it is not the default value).
MENTION = dict(colour=0.7, shape=0.85, fill=0.25, count=0.15, glyph=0.9, pattern=0.85, glyph_colour=0.35,
               pattern_colour=0.6)
WRONG_COLOUR = 0.08  # a wrong colour word
UNRELATED = 0.03  # a caption that says nothing about the image

OBJECT_WRAPPERS = ("{}", "a photo of {}", "{} on a background", "a picture of {}", "an image of {}",
                   "{} clipart", "a close-up of {}", "there is {} in the image", "{} in the middle")
SKETCH_WRAPPERS = ("a sketch of {}", "a drawing of {}", "an outline of {}", "{} drawn on paper")
GLYPH_WRAPPERS = ("{}", "a photo of {}", "{} printed on a background", "a sign with {}", "an image of {}")
PATTERN_WRAPPERS = ("{}", "a photo of {}", "a close-up of {}", "{} background")
GENERIC_NOUNS = ("shape", "object", "thing", "icon")
UNRELATED_CAPTIONS = ("a nice picture", "untitled image", "my new wallpaper", "image of the day")
NUMBERS = {2: "two", 3: "three", 4: "four"}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


MANY = 9  # a count constraint meaning "more than one" (a plural without a number)


def _object_phrase(r: random.Random, colour: int, shape: int, fill: int, count: int, named: Dict[str, int]) -> str:
    words: List[str] = []
    if fill > 0 and r.random() < MENTION["fill"]:
        words.append(VOCAB["fill"][fill])
        named["fill"] = fill
    if r.random() < MENTION["colour"]:
        c = colour
        if r.random() < WRONG_COLOUR:
            c = r.randrange(len(VOCAB["colour"]))
        words.append(VOCAB["colour"][c])
        named["colour"] = c
    noun = r.choice(GENERIC_NOUNS)
    if r.random() < MENTION["shape"]:
        noun = VOCAB["shape"][shape]
        named["shape"] = shape
    if count > 1:
        words.append(plural(noun))
        named["count"] = MANY
        lead = r.choice(("some", "", "several"))
        if r.random() < MENTION["count"]:
            lead = NUMBERS[count]
            named["count"] = count - 1
        return " ".join(w for w in [lead] + words if w)
    words.append(noun)
    return f"{_article(words[0])} {' '.join(words)}"


def caption(r: random.Random, kind: str, style: str, f: Dict[str, int]) -> Tuple[str, Dict[str, int]]:
    """One caption of an image with full-vocabulary factor indices ``f``, and the factor values it names.

    ``named`` maps factors to the value the caption states (a wrong colour word states the wrong colour; count
    :data:`MANY` = "more than one"); ``{"unrelated": 1}`` marks a caption that says nothing about the image.
    """
    named: Dict[str, int] = {}
    if r.random() < UNRELATED:
        return r.choice(UNRELATED_CAPTIONS) + ".", {"unrelated": 1}
    if kind == "objects":
        phrase = _object_phrase(r, f["colour"], f["shape"], f["fill"], f["count"] + 1, named)
        wrappers = SKETCH_WRAPPERS if style == "sketch" and r.random() < 0.7 else OBJECT_WRAPPERS
    elif kind == "glyphs":
        name = "character"
        if r.random() < MENTION["glyph"]:
            name = VOCAB["glyph"][f["glyph"]]
            named["glyph"] = f["glyph"]
        colour = VOCAB["colour"][f["colour"]]
        if r.random() < MENTION["glyph_colour"]:
            phrase = r.choice((f"a {colour} {name}", f"the {name} in {colour}"))
            named["colour"] = f["colour"]
        else:
            phrase = r.choice((f"the {name}", f"a {name}", name))
        wrappers = GLYPH_WRAPPERS
    else:
        pattern = "colourful"
        if r.random() < MENTION["pattern"]:
            pattern = VOCAB["pattern"][f["pattern"]]
            named["pattern"] = f["pattern"]
        noun = r.choice(("pattern", "texture", "fabric"))
        if r.random() < MENTION["pattern_colour"]:
            colour = VOCAB["colour"][f["colour"]]
            phrase = r.choice((f"a {colour} {pattern} {noun}", f"a {pattern} {noun} in {colour}"))
            named["colour"] = f["colour"]
        else:
            phrase = f"a {pattern} {noun}"
        wrappers = PATTERN_WRAPPERS
    return r.choice(wrappers).format(phrase) + ".", named


def captions_for(seed: int, kind: str, style: str, factors: Dict[str, torch.Tensor]) -> List[str]:
    """Captions of a batch of images described by factor tensors; deterministic in ``seed``."""
    return described(seed, kind, style, factors)[0]


def described(seed: int, kind: str, style: str, factors: Dict[str, torch.Tensor]):
    """(captions, what each names) of a batch of images; deterministic in ``seed``."""
    r = random.Random(seed)
    cols = {k: v.tolist() for k, v in factors.items()}
    n = len(next(iter(cols.values())))
    out = [caption(r, kind, style, {k: v[i] for k, v in cols.items()}) for i in range(n)]
    return [t for t, _ in out], [named for _, named in out]


# Columns of the factor / constraint matrices used by the pretraining loss.
COLUMNS = ("colour", "shape", "fill", "count", "glyph", "pattern")


def factor_matrix(factors: Dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """``(n, len(COLUMNS))`` factor values, -1 where the scene has no such factor."""
    out = torch.full((n, len(COLUMNS)), -1, dtype=torch.long)
    for j, name in enumerate(COLUMNS):
        if name in factors:
            out[:, j] = factors[name]
    return out


def constraint_matrix(named: List[Dict[str, int]]) -> torch.Tensor:
    """``(n, len(COLUMNS) + 1)``: the value each caption names per column (-1 = not named), then an unrelated flag."""
    out = torch.full((len(named), len(COLUMNS) + 1), -1, dtype=torch.long)
    for i, d in enumerate(named):
        for j, name in enumerate(COLUMNS):
            if name in d:
                out[i, j] = d[name]
        out[i, -1] = d.get("unrelated", 0)
    return out


def compatible(f_img: torch.Tensor, pool_img: torch.Tensor, c_txt: torch.Tensor, pool_txt: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` bool: caption j could describe image i (same pool, every value it names matches the image).

    The web-caption analogue of "not a negative": "a circle." describes every circle in the batch, whatever its
    colour. The diagonal (an image and its own caption) is always a positive, even when the caption is noisy.
    """
    f = f_img.unsqueeze(1)  # (B, 1, K)
    c = c_txt[:, :-1].unsqueeze(0)  # (1, B, K)
    ok = (c == -1) | (c == f)
    count_col = COLUMNS.index("count")
    ok[:, :, count_col] |= (c[:, :, count_col] == MANY) & (f[:, :, count_col] > 0)
    match = ok.all(dim=2) & (pool_img.view(-1, 1) == pool_txt.view(1, -1))
    match &= (c_txt[:, -1] == 0).view(1, -1)
    return match | torch.eye(match.shape[0], dtype=torch.bool)


@lru_cache(maxsize=200_000)
def _tokens(text: str, context_length: int) -> torch.Tensor:
    return clip.tokenize([text], context_length=context_length)[0]


def tokenize(texts: Sequence[str], text_len: int) -> torch.Tensor:
    """``(N, text_len)`` token ids; a caption longer than ``text_len`` tokens is an error (it would be cut)."""
    out = torch.stack([_tokens(t, 77) for t in texts])
    if (out[:, text_len:] != 0).any():
        raise ValueError(f"a caption is longer than {text_len} tokens")
    return out[:, :text_len].contiguous()


def vocabulary_text() -> str:
    """Every word any caption, class name or zero-shot template of the world can contain."""
    words = set()
    for values in VOCAB.values():
        for v in values:
            words.update(v.split())
    words.update(plural(s) for s in VOCAB["shape"])
    for group in (OBJECT_WRAPPERS, SKETCH_WRAPPERS, GLYPH_WRAPPERS, PATTERN_WRAPPERS, GENERIC_NOUNS,
                  UNRELATED_CAPTIONS, NUMBERS.values(), ("some several an a the in character colourful pattern "
                                                          "texture fabric plural", "a photo of a {} pattern.")):
        for text in group:
            words.update(text.replace("{}", " ").replace(".", " ").split())
    words.update(plural(n) for n in GENERIC_NOUNS)
    return " ".join(sorted(words)) + " ."


def all_caption_token_ids() -> torch.Tensor:
    """Sorted unique token ids the captions can use (incl. start/end of text): the rows pretraining trains."""
    words = vocabulary_text().split()
    ids = set()
    for s in range(0, len(words), 20):
        ids.update(int(v) for v in clip.tokenize([" ".join(words[s : s + 20])])[0].unique())
    ids.discard(0)
    return torch.tensor(sorted(ids), dtype=torch.long)
