"""The shipped presets of the zero-shot robustness protocol (``zsrobust``): the source a tower is tuned on, the
target datasets, the images evaluated per target, the attacks and their budgets, as published (docs/ZSROBUST.md
carries the same table; ``tests/test_zsrobust.py`` checks that they agree).

An attack is a spec string of ``promptengine.attacks`` with ``{eps}`` for the budget (in /255 units); every target is
evaluated with every attack at every budget in one run, so its ``results.json`` lists one robust accuracy per budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

from ..errors import UserError

ALL_IMAGES = -1  # TEST.MAX_IMAGES of "every test image"


@dataclass(frozen=True)
class Preset:
    """One published protocol: what the tower is tuned on and what it is judged on."""

    name: str
    title: str
    source: str  # dataset id of the training set
    targets: Tuple[str, ...]  # dataset ids, in the publication's order
    eps: Tuple[float, ...]  # test budgets in /255 units
    attacks: Tuple[str, ...]  # spec strings with {eps}
    max_images: int = ALL_IMAGES  # test images per target (TEST.MAX_IMAGES)
    source_shots: str = "all"  # training shots per class (SHOTS overrides)
    backbone: str = ""  # MODEL.BACKBONE.NAME of the publication ("" = the method's config; BACKBONE overrides)
    train_options: Tuple[str, ...] = ()  # KEY VALUE words for the training run (the publication's training attack)
    attack_overrides: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)  # target -> its own attacks

    def attack_specs(self, target: str) -> Tuple[str, ...]:
        """The spec strings evaluated on ``target``: each attack at each budget."""
        templates = self.attack_overrides.get(target, self.attacks)
        return tuple(t.format(eps=f"{e:g}") for e in self.eps for t in templates)

    def eval_options(self, target: str) -> List[str]:
        """KEY VALUE words of an evaluation run on ``target``: the image budget and the attacks (the config's own
        ``ATTACK.TEST`` attack is switched off so that every method is judged by the same attacks)."""
        specs = ", ".join(repr(s) for s in self.attack_specs(target))
        return ["TEST.MAX_IMAGES", str(self.max_images), "ATTACK.TEST.ENABLED", "False",
                "ATTACK.TEST.ATTACKS", f"({specs},)"]


#: TeCoA (Mao et al., ICLR 2023), PMG-AFT (Wang et al., CVPR 2024) and TGA-ZSR (Yu et al., NeurIPS 2024): ViT-B/32
#: tuned on Tiny ImageNet with PGD-2 at 1/255 (step 1/255), judged by PGD-100 at 1/255 (step 1/255, TGA-ZSR's
#: defaults) on every test image of 16 datasets.
TECOA = Preset(
    name="tecoa", title="TeCoA / PMG-AFT / TGA-ZSR (16 datasets, PGD-100 at 1/255)",
    source="tiny_imagenet",
    targets=("cifar10", "cifar100", "stl10", "sun397", "food101", "oxford_pets", "oxford_flowers", "dtd", "eurosat",
             "fgvc_aircraft", "tiny_imagenet", "imagenet", "caltech101", "caltech256", "stanford_cars", "pcam"),
    eps=(1.0,), attacks=("pgd:steps=100,eps={eps},alpha=1",), max_images=ALL_IMAGES, backbone="ViT-B/32",
    train_options=("ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.EPS", "1.0", "ATTACK.TRAIN.ALPHA", "1.0",
                   "ATTACK.TRAIN.STEPS", "2"),
)

#: RobustVLM (Schlarmann et al., ICML 2024): 13 datasets, the first 1,000 test images of each, AutoAttack's APGD-CE
#: and APGD-T (100 iterations) at 2/255 and 4/255; APGD-CE alone on PCAM (two classes: no targeted attack). Towers
#: are tuned on ImageNet by the method's own recipe; ViT-L/14 is the publication's headline backbone.
ROBUSTVLM = Preset(
    name="robustvlm", title="RobustVLM (13 datasets, 1,000 images, APGD-CE + APGD-T at 2/255 and 4/255)",
    source="imagenet",
    targets=("cifar10", "cifar100", "stl10", "stanford_cars", "caltech101", "oxford_pets", "oxford_flowers", "dtd",
             "eurosat", "fgvc_aircraft", "pcam", "imagenet_r", "imagenet_sketch"),
    eps=(2.0, 4.0), attacks=("aa:attacks=apgd-ce+apgd-t,eps={eps}",), max_images=1000, backbone="ViT-L/14",
    attack_overrides={"pcam": ("aa:attacks=apgd-ce,eps={eps}",)},
)

#: The embedded world: SynthCLIP tuned on synth_shapes, judged on the other synthetic datasets (CPU-sized).
SYNTH = Preset(
    name="synth", title="embedded synthetic world (CPU)",
    source="synth_shapes",
    targets=("synth_glyphs", "synth_patterns", "synth_counts", "synth_fills"),
    eps=(2.0, 4.0), attacks=("pgd:steps=10,eps={eps}",), max_images=200, source_shots="all",
)

PRESETS: Dict[str, Preset] = {p.name: p for p in (TECOA, ROBUSTVLM, SYNTH)}
DEFAULT_PRESET = {"benchmark": TECOA.name, "synth": SYNTH.name}  # per world


def get_preset(name: str) -> Preset:
    """A shipped preset by name; an unknown one is one line listing them."""
    if name not in PRESETS:
        raise UserError(f"unknown zsrobust preset '{name}' (PRESET; known: {' '.join(PRESETS)})")
    return PRESETS[name]
