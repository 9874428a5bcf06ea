"""The datasets the protocols run on: the benchmark world and the embedded synthetic world, their default sources and
targets, and which trainer config a run uses in each."""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Sequence

from ..errors import UserError
from ..registry import CONFIGS
from .layout import DG, XD

SYNTH_PREFIX = "synth_"
SYNTH_CFG = "synth"  # every method's embedded-world recipe
BENCHMARKS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
              "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
SYNTH_BENCHMARKS = ("synth_shapes", "synth_glyphs", "synth_patterns", "synth_counts", "synth_fills")
SOURCES = {"benchmark": "imagenet", "synth": "synth_shapes"}
TARGETS = {  # default targets per transfer protocol and world
    (XD.name, "benchmark"): BENCHMARKS[1:],
    (XD.name, "synth"): ("synth_glyphs", "synth_patterns", "synth_counts", "synth_fills"),
    (DG.name, "benchmark"): ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"),
    (DG.name, "synth"): ("synth_shapes_sketch", "synth_shapes_clutter"),
}


def is_synth(dataset: str) -> bool:
    return dataset.startswith(SYNTH_PREFIX)


def known_datasets() -> List[str]:
    return sorted(p.stem for p in (CONFIGS / "datasets").glob("*.yaml"))


def dataset_config(dataset: str) -> Path:
    """The shipped config of a dataset id; an unknown id is one line listing the known ones."""
    path = CONFIGS / "datasets" / f"{dataset}.yaml"
    if not path.is_file():
        raise UserError(f"unknown dataset id '{dataset}': {path} does not exist (known: {' '.join(known_datasets())})")
    return path


def env_world(env: Mapping[str, str]) -> str:
    """``synth`` when WORLD=synth, else ``benchmark``: where default datasets come from."""
    return "synth" if env.get("WORLD", "").lower() == "synth" else "benchmark"


def world_of(datasets: Sequence[str], env: Mapping[str, str]) -> str:
    """The world of the named datasets (both at once is an error), or WORLD's when none is named."""
    synth = {is_synth(d) for d in datasets}
    if len(synth) > 1:
        raise UserError(f"mixing synthetic and benchmark datasets in one run: {' '.join(datasets)}")
    if synth:
        return "synth" if synth == {True} else "benchmark"
    return env_world(env)


def default_datasets(env: Mapping[str, str]) -> Sequence[str]:
    """The datasets of a comparison when none are named: the benchmarks, or the embedded world's."""
    return SYNTH_BENCHMARKS if env_world(env) == "synth" else BENCHMARKS


def choose_cfg(default_cfg: str, datasets: Sequence[str], given: str, env: Mapping[str, str]) -> str:
    """An explicit CFG (argument, then environment) wins; else ``synth`` on the embedded world; else the method's
    default."""
    given = given or env.get("CFG", "")
    if given:
        return given
    return SYNTH_CFG if all(is_synth(d) for d in datasets) else default_cfg
