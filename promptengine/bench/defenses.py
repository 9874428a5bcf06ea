"""The cost of test-time defenses: seconds per image, clean and under attack, next to the undefended model.

Every registered method whose file defines a ``TestTimeDefense`` is timed (so a new defense appears without an edit
here), built by its own trainer class from its default config (the paper's settings) on random weights and the
benchmark's in-memory dataset. For each: the evaluator's clean pass, the non-adaptive PGD-k (crafted on the
undefended model, judged by the defense) and the adaptive PGD-k through every adaptation step (``through:``), each
through ``evaluate`` exactly as a test run calls it; the undefended model's clean pass and PGD-k are timed alongside,
and the ratios are to the undefended clean pass.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import sys
import tempfile
from typing import Callable, Dict, List, Sequence

from ..attacks import AttackSpec, parse_spec
from ..clip.loading import ARCHITECTURES
from ..config.merge import build_cfg
from ..engine.trainer import set_random_seed
from ..evaluation.robust import evaluate
from ..evaluation.testtime import TestTimeDefense
from ..registry import TRAINER_REGISTRY, registered_methods
from .setup import BENCH_DATASET, BenchSetup, _BenchState, _register, backbone_name

#: what each defense is timed under: (column, attack spec text without the budget; None = clean)
DEFENSE_ATTACKS = (("clean", None), ("pgd", "pgd"), ("through", "through"))


def defense_methods() -> List[str]:
    """Registered trainers whose own module defines a test-time defense (a ``TestTimeDefense`` subclass)."""
    out = []
    for method in registered_methods():
        module = sys.modules[TRAINER_REGISTRY.get(method.trainer).__module__]
        if any(inspect.isclass(obj) and issubclass(obj, TestTimeDefense) and obj is not TestTimeDefense
               and obj.__module__ == module.__name__ for obj in vars(module).values()):
            out.append(method.trainer)
    return out


def defense_spec(kind: str, steps: int) -> AttackSpec:
    """PGD-k at eps 4/255, step 1/255, every step run (``keep=last``), crafted on the model ``kind`` names."""
    return parse_spec(f"{kind}:steps={steps},eps=4,alpha=1,keep=last")


def layers_of(arch: str) -> int:
    """The depth of the bench architecture: the fewer of its vision and text blocks."""
    spec = ARCHITECTURES[backbone_name(arch).split(":", 1)[-1]]
    return min(int(spec["vision_layers"]), int(spec["transformer_layers"]))


def fit_to_layers(cfg, layers: int) -> None:
    """Cap every trainer key that counts blocks (``*DEPTH*`` prompt depths, ``*LAYER_TO`` layer bounds) at the bench
    model's depth: a paper config for ViT-B (depth 9) on the 4-block tiny CLIP keeps its other settings."""
    cfg.defrost()
    for node in cfg.TRAINER.values():
        if not hasattr(node, "items"):
            continue
        for key, value in list(node.items()):
            if isinstance(value, int) and not isinstance(value, bool) and ("DEPTH" in key or key.endswith("LAYER_TO")):
                node[key] = min(value, layers)
    cfg.freeze()


def build_defense(trainer: str, s: BenchSetup, opts: Sequence[str] = (), seed: int = 1) -> TestTimeDefense:
    """``trainer`` from its default config, on the setup's backbone and classes (its prints swallowed)."""
    method = next(m for m in registered_methods() if m.trainer == trainer)
    config = str(method.config_dir / f"{method.default_config}.yaml") if method.default_config else ""
    res = s.x.shape[-1]
    _register()
    _BenchState.num_classes = s.classes
    cfg = build_cfg(config_file=config, cli_overrides=[("TRAINER.NAME", trainer)], opts=[
        "DATASET.NAME", BENCH_DATASET, "MODEL.BACKBONE.NAME", backbone_name(s.arch), "INPUT.SIZE", f"({res},{res})",
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.BATCH_SIZE", str(s.batch), "TRAIN.PRECISION", s.precision,
        "USE_CUDA", str(s.device.type == "cuda"), "SEED", str(seed), "OUTPUT_DIR", tempfile.gettempdir(), *opts])
    fit_to_layers(cfg, layers_of(s.arch))
    set_random_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        built = TRAINER_REGISTRY.get(trainer)(cfg)
        built.prepare_defense()  # what a finished training run leaves the defense (TAPT: its feature statistics)
    built.set_model_mode("eval")
    target = built.evaluated_target()  # its model behind its own defense (``defend``)
    if not isinstance(target, TestTimeDefense):
        raise TypeError(f"{trainer}.evaluated_target() is not a test-time defense")
    return target


def defense_cases(s: BenchSetup, steps: int, batches: List[dict], trainers: Sequence[str] = (),
                  opts: Sequence[str] = ()) -> Dict[str, Callable[[], object]]:
    """``<defense>/<clean|pgd|through>`` for every defense and ``undefended/<clean|pgd>`` (the first defense's
    undefended model, the same random CLIP)."""
    trainers = list(trainers) or defense_methods()
    out: Dict[str, Callable[[], object]] = {}

    def run(classifier, specs: List[AttackSpec]) -> Callable[[], object]:
        return lambda: evaluate(classifier, batches, specs, s.device, show_progress=False)

    for i, trainer in enumerate(trainers):
        defense = build_defense(trainer, s, opts)
        if i == 0:
            out["undefended/clean"] = run(defense.base, [])
            out["undefended/pgd"] = run(defense.base, [defense_spec("pgd", steps)])
        for column, kind in DEFENSE_ATTACKS:
            out[f"{trainer}/{column}"] = run(defense, [] if kind is None else [defense_spec(kind, steps)])
    return out


def defense_table(cases: Dict[str, dict], images: int) -> Dict[str, Dict[str, float]]:
    """{row: {"<column> s/img": ..., "<column> x": ratio to the undefended clean pass}} from timed cases."""
    unit = cases["undefended/clean"]["median_s"]
    rows: Dict[str, Dict[str, float]] = {}
    for name, case in cases.items():
        if "/" not in name or name.split("/", 1)[1] not in {c for c, _ in DEFENSE_ATTACKS}:
            continue
        row, column = name.split("/", 1)
        rows.setdefault(row, {})[f"{column} s/img"] = case["median_s"] / images
        rows[row][f"{column} x"] = case["median_s"] / unit
    return rows
