"""Few-shot sampling identical to Dassl's, CoOp's base/new subsampling, and a JSON few-shot cache.

``generate_fewshot_dataset`` makes the same ``random`` calls in the same order as Dassl's
``DatasetBase.generate_fewshot_dataset``, so after the same ``random.seed`` it selects the same
images (published few-shot subsets are reproduced). The cache stores paths relative to the
dataset folder as JSON, outside the data root by default, keyed by (dataset, shots, seed).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from .. import distributed as dist
from ..cache import cache_root
from ..errors import UserError
from .datum import Datum

SUBSAMPLE_CHOICES = ("all", "base", "new")


def split_by_label(data_source: Sequence[Datum]) -> Dict[int, List[Datum]]:
    """Group items by label, labels in order of first appearance (as Dassl's defaultdict)."""
    out: Dict[int, List[Datum]] = defaultdict(list)
    for item in data_source:
        out[item.label].append(item)
    return out


def generate_fewshot_dataset(*data_sources: List[Datum], num_shots: int = -1, repeat: bool = False):
    """K items per label with ``random.sample`` (all of them, or ``random.choices`` if ``repeat``,
    when a label has fewer than K). Returns one list for one source, else a list of lists."""
    if num_shots < 1:
        return data_sources[0] if len(data_sources) == 1 else list(data_sources)
    output = []
    for data_source in data_sources:
        dataset: List[Datum] = []
        for _label, items in split_by_label(data_source).items():
            if len(items) >= num_shots:
                sampled = random.sample(items, num_shots)
            elif repeat:
                sampled = random.choices(items, k=num_shots)
            else:
                sampled = items
            dataset.extend(sampled)
        output.append(dataset)
    return output[0] if len(output) == 1 else output


def subsample_classes(*datasets: List[Datum], subsample: str = "all") -> List[List[Datum]]:
    """CoOp's base/new split: labels of the first list sorted, base = first ceil(n/2), new = rest,
    relabelled to 0..m-1 in every list."""
    if subsample not in SUBSAMPLE_CHOICES:
        raise UserError(
            f"DATASET.SUBSAMPLE_CLASSES must be one of all/base/new, got '{subsample}' "
            "(set DATASET.SUBSAMPLE_CLASSES base, new or all)"
        )
    if subsample == "all":
        return [list(d) for d in datasets]
    labels = sorted({item.label for item in datasets[0]})
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    relabel = {y: i for i, y in enumerate(selected)}
    out = []
    for data in datasets:
        out.append(
            [
                Datum(impath=d.impath, label=relabel[d.label], domain=d.domain, classname=d.classname)
                for d in data
                if d.label in relabel
            ]
        )
    return out


def _split_fingerprint(items: Sequence[Datum], base_dir: str) -> str:
    h = hashlib.sha1()
    for d in items:
        h.update(f"{_rel(d.impath, base_dir)}|{d.label}\n".encode())
    return h.hexdigest()[:16]


def _rel(impath: str, base_dir: str) -> str:
    if "://" in impath or not base_dir:
        return impath
    return os.path.relpath(impath, base_dir)


def fewshot_with_cache(
    dataset_name: str,
    base_dir: str,
    train: List[Datum],
    val: Optional[List[Datum]],
    num_shots: int,
    seed: int,
    cache_dir: str = "",
) -> Tuple[List[Datum], Optional[List[Datum]]]:
    """Few-shot train (K per class) and val (min(K, 4) per class), loaded from or saved to the cache.

    The cache file records a fingerprint of the full split it was drawn from; a changed split makes
    it stale and it is regenerated (and said so). ``val=None`` (ImageNet) samples train only.
    A negative seed (an unseeded run) bypasses the cache: every run draws its own subset, instead of the
    first unseeded draw being reused forever. Under torchrun, rank 0 alone samples (and writes the cache);
    the other ranks wait and receive its selection, so every rank trains on the same images.
    """

    if dist.world_size() == 1:
        return _fewshot_local(dataset_name, base_dir, train, val, num_shots, seed, cache_dir)
    by_rel = {(_rel(d.impath, base_dir), d.label): d for d in list(train) + list(val or [])}
    payload = [None]
    if dist.is_main():
        fs_train, fs_val = _fewshot_local(dataset_name, base_dir, train, val, num_shots, seed, cache_dir)
        payload = [([[_rel(d.impath, base_dir), d.label] for d in fs_train],
                    None if fs_val is None else [[_rel(d.impath, base_dir), d.label] for d in fs_val])]
    dist.broadcast_object(payload)
    rel_train, rel_val = payload[0]
    return [by_rel[(p, y)] for p, y in rel_train], None if rel_val is None else [by_rel[(p, y)] for p, y in rel_val]


def _fewshot_local(dataset_name, base_dir, train, val, num_shots, seed, cache_dir):
    """One process's selection: from the cache when it holds this (dataset, shots, seed) and split, else drawn."""
    if seed < 0:
        print("Few-shot subset drawn afresh (SEED < 0: unseeded runs do not use the few-shot cache)")
        fs_train = generate_fewshot_dataset(train, num_shots=num_shots)
        fs_val = generate_fewshot_dataset(val, num_shots=min(num_shots, 4)) if val is not None else None
        return fs_train, fs_val
    folder = cache_dir or os.path.join(cache_root(), "fewshot")
    path = os.path.join(folder, dataset_name, f"shot_{num_shots}-seed_{seed}.json")
    fingerprint = _split_fingerprint(train, base_dir)
    by_rel = {(_rel(d.impath, base_dir), d.label): d for d in list(train) + list(val or [])}
    if os.path.isfile(path):
        try:
            with open(path) as f:
                data = json.load(f)
            if data.get("fingerprint") == fingerprint:
                print(f"Loading preprocessed few-shot data from {path}")
                fs_train = [by_rel[(p, y)] for p, y in data["train"]]
                fs_val = [by_rel[(p, y)] for p, y in data["val"]] if val is not None else None
                return fs_train, fs_val
            print(f"Few-shot cache {path} was drawn from a different split; regenerating it")
        except (KeyError, ValueError, TypeError):
            print(f"Few-shot cache {path} is unreadable or stale; regenerating it")
    fs_train = generate_fewshot_dataset(train, num_shots=num_shots)
    fs_val = generate_fewshot_dataset(val, num_shots=min(num_shots, 4)) if val is not None else None
    record = {
        "dataset": dataset_name,
        "num_shots": num_shots,
        "seed": seed,
        "fingerprint": fingerprint,
        "train": [[_rel(d.impath, base_dir), d.label] for d in fs_train],
        "val": [[_rel(d.impath, base_dir), d.label] for d in (fs_val or [])],
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)
        print(f"Saving preprocessed few-shot data to {path}")
    except OSError as exc:  # a read-only cache must not stop training
        print(f"Could not write the few-shot cache {path} ({exc}); continuing without it")
    return fs_train, fs_val


def prepare_splits(
    cfg,
    dataset_name: str,
    base_dir: str,
    train: List[Datum],
    val: List[Datum],
    test: List[Datum],
    fewshot_val: bool = True,
) -> Tuple[List[Datum], List[Datum], List[Datum]]:
    """The CoOp sequence every loader runs: few-shot (with cache) then base/new subsampling."""
    num_shots = int(cfg.DATASET.NUM_SHOTS)
    if num_shots >= 1:
        seed = int(cfg.SEED)
        fs_train, fs_val = fewshot_with_cache(
            dataset_name,
            base_dir,
            train,
            val if fewshot_val else None,
            num_shots,
            seed,
            cfg.DATASET.FEWSHOT_CACHE_DIR,
        )
        short = [y for y, items in split_by_label(fs_train).items() if len(items) < num_shots]
        if short:
            print(
                f"Warning: {len(short)} classes have fewer than {num_shots} training images; "
                "all of their images are used (as Dassl does)"
            )
        train = fs_train
        if fewshot_val:
            val = fs_val or []
    train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
    return train, val, test
