"""Check the benchmark datasets under a data root: present, missing or broken, with counts.

    python tools/check_datasets.py --root $DATA                 # CoOp's 15 datasets
    python tools/check_datasets.py --root $DATA cifar10 pcam    # also the zero-shot benchmarks' own sets
    python tools/check_datasets.py --root $DATA oxford_pets dtd # yaml ids or class names
    python tools/check_datasets.py --root $DATA --check-images dtd  # also decode every image once
    capt-check-datasets --root $DATA                             # the same, installed

Each dataset is loaded as a run would load it (full split, no few-shot, all classes), so the first
missing folder or file is named by its expected path. Counts are compared with those of the split file
and of CoOp's splits. With ``--check-images`` every listed image is decoded once with the reader a run uses
and the files that cannot be read are listed (the dataset is then "broken"). Nothing is written.
Exit status: 0 when every requested dataset loads, 1 when one
is missing or broken, 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from tabulate import tabulate

from promptengine.config.merge import build_cfg
from promptengine.data.splits import read_json
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY, builtin_benchmarks

builtin_benchmarks()  # registers the loaders


class Benchmark(NamedTuple):
    id: str  # configs/datasets/<id>.yaml
    name: str  # DATASET.NAME (loader class)
    classes: int  # CoOp's counts: classes and train/val/test images (val None: ImageNet uses test)
    train: Optional[int]
    val: Optional[int]
    test: int
    total_only: bool = False  # no official split: ``test`` is the number of images over all three splits


BENCHMARKS: Tuple[Benchmark, ...] = (
    Benchmark("imagenet", "ImageNet", 1000, 1281167, None, 50000),
    Benchmark("caltech101", "Caltech101", 100, 4128, 1649, 2465),
    Benchmark("oxford_pets", "OxfordPets", 37, 2944, 736, 3669),
    Benchmark("stanford_cars", "StanfordCars", 196, 6509, 1635, 8041),
    Benchmark("oxford_flowers", "OxfordFlowers", 102, 4093, 1633, 2463),
    Benchmark("food101", "Food101", 101, 50500, 20200, 30300),
    Benchmark("fgvc_aircraft", "FGVCAircraft", 100, 3334, 3333, 3333),
    Benchmark("sun397", "SUN397", 397, 15880, 3970, 19850),
    Benchmark("dtd", "DescribableTextures", 47, 2820, 1128, 1692),
    Benchmark("eurosat", "EuroSAT", 10, 13500, 5400, 8100),
    Benchmark("ucf101", "UCF101", 101, 7639, 1898, 3783),
    Benchmark("imagenetv2", "ImageNetV2", 1000, None, None, 10000),
    Benchmark("imagenet_sketch", "ImageNetSketch", 1000, None, None, 50889),
    Benchmark("imagenet_a", "ImageNetA", 200, None, None, 7500),
    Benchmark("imagenet_r", "ImageNetR", 200, None, None, 30000),
)
# The zero-shot robustness benchmarks' datasets that CoOp lacks, checked when named: the official counts (val None:
# the test set is the val set).
ZEROSHOT_BENCHMARKS: Tuple[Benchmark, ...] = (
    Benchmark("cifar10", "CIFAR10", 10, 50000, None, 10000),
    Benchmark("cifar100", "CIFAR100", 100, 50000, None, 10000),
    Benchmark("stl10", "STL10", 10, 5000, None, 8000),
    Benchmark("pcam", "PCAM", 2, 262144, 32768, 32768),
    Benchmark("tiny_imagenet", "TinyImageNet", 200, 100000, None, 10000),
    Benchmark("caltech256", "Caltech256", 257, None, None, 30607, total_only=True),
)
SPLITS = ("train", "val", "test")


@dataclass
class Result:
    bench: Benchmark
    status: str  # present | missing | broken
    folder: str
    problem: str = ""
    classes: Optional[int] = None
    counts: Dict[str, int] = field(default_factory=dict)  # as loaded
    split_source: str = ""
    split_counts: Dict[str, int] = field(default_factory=dict)  # what the split file lists
    split_classes: Optional[int] = None
    bad_images: List[str] = field(default_factory=list)  # one problem line per unreadable image (--check-images)


def resolve_names(names: Sequence[str]) -> List[Benchmark]:
    """Yaml ids or class names (case-insensitive); CoOp's 15 when ``names`` is empty."""
    if not names:
        return list(BENCHMARKS)
    lookup = {}
    for b in BENCHMARKS + ZEROSHOT_BENCHMARKS:
        lookup[b.id.lower()] = b
        lookup[b.name.lower()] = b
    out = []
    for n in names:
        b = lookup.get(n.lower().replace("-", "_"))
        if b is None:
            raise UserError(f"unknown dataset '{n}'; choose from: "
                            f"{', '.join(b.id for b in BENCHMARKS + ZEROSHOT_BENCHMARKS)}")
        if b not in out:
            out.append(b)
    return out


def _split_file_counts(result: Result, loader: type) -> None:
    """Counts that the split JSON implies (when the dataset has one and it is readable)."""
    split_file = getattr(loader, "split_file", None)
    if not split_file:
        default = "official lists" if result.bench.id == "fgvc_aircraft" else "folders"
        result.split_source = getattr(loader, "split_source", default)
        return
    path = os.path.join(result.folder, split_file)
    if not os.path.isfile(path):
        result.split_source = "generated (no JSON)"
        return
    result.split_source = split_file
    try:
        data = read_json(path)
        result.split_counts = {k: len(data[k]) for k in SPLITS}
        result.split_classes = len({int(e[1]) for k in SPLITS for e in data[k]})
    except (UserError, KeyError, TypeError, ValueError, IndexError):
        result.split_source = f"{split_file} (unreadable)"


def find_bad_images(ds) -> List[str]:
    """Decode every image the dataset lists once; one line per file that cannot be read."""
    bad = []
    for impath in dict.fromkeys(d.impath for items in (ds.train_x, ds.val, ds.test) for d in items):
        try:
            ds.read_image(impath)
        except UserError as exc:
            bad.append(str(exc))
    return bad


def check_dataset(root: str, bench: Benchmark, check_images: bool = False) -> Result:
    """Load one dataset as a run would (NUM_SHOTS -1, all classes) and record what was found."""
    loader = DATASET_REGISTRY.get(bench.name)
    folder = os.path.join(root, loader.dataset_dir)
    result = Result(bench, "present", folder)
    if not os.path.isdir(folder):
        result.status = "missing"
        result.problem = f"dataset folder not found: {folder}"
        return result
    _split_file_counts(result, loader)
    opts = ["DATASET.ROOT", root, "DATASET.NAME", bench.name, "DATASET.NUM_SHOTS", "-1"]
    opts += ["DATASET.SUBSAMPLE_CLASSES", "all", "DATASET.WRITE_SPLITS", "False"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ds = loader(build_cfg(opts=opts))
    except UserError as exc:
        result.status = "broken"
        result.problem = str(exc)
        return result
    result.classes = ds.num_classes
    result.counts = {"train": len(ds.train_x), "val": len(ds.val), "test": len(ds.test)}
    if check_images:
        result.bad_images = find_bad_images(ds)
        if result.bad_images:
            result.status = "broken"
            result.problem = f"{len(result.bad_images)} images cannot be read"
    return result


def check_datasets(root: str, names: Sequence[str] = (), check_images: bool = False) -> List[Result]:
    root = os.path.abspath(os.path.expandvars(os.path.expanduser(root)))
    if not os.path.isdir(root):
        raise UserError(f"data root not found: {root} (pass --root with the folder that holds the datasets)")
    return [check_dataset(root, b, check_images) for b in resolve_names(names)]


def _cell(got: Optional[int], in_split: Optional[int]) -> str:
    """The loaded count, with the split file's count when it differs or nothing could be loaded."""
    if got is None:
        return f"({in_split} in split)" if in_split is not None else "-"
    return str(got) if in_split in (None, got) else f"{got} ({in_split} in split)"


def expected_counts(b: Benchmark) -> Dict[str, int]:
    """CoOp's image counts per split as a loader returns them (ImageNet's val is its test set; the
    test-only sets have train_x = test and no val)."""
    if b.train is None:
        return {"train": b.test, "val": 0, "test": b.test}
    return {"train": b.train, "val": b.test if b.val is None else b.val, "test": b.test}


def counts_match(r: Result) -> bool:
    """Whether a loaded dataset has the reference classes and images per split (only the total where no split is
    official)."""
    if r.classes != r.bench.classes:
        return False
    if r.bench.total_only:
        return sum(r.counts.values()) == r.bench.test
    return r.counts == expected_counts(r.bench)


def _coop(b: Benchmark) -> str:
    if b.total_only:
        return f"{b.classes} cls, {b.test} in all"
    if b.train is None:
        return f"{b.classes} cls, {b.test} test"
    e = expected_counts(b)
    return f"{b.classes} cls, {e['train']}/{e['val']}/{e['test']}"


def format_report(results: Sequence[Result]) -> str:
    headers = ["dataset", "status", "classes", "train", "val", "test", "CoOp (train/val/test)", "split"]
    rows = []
    for r in results:
        row = [r.bench.id, r.status, _cell(r.classes, r.split_classes)]
        row += [_cell(r.counts.get(s), r.split_counts.get(s)) for s in SPLITS]
        rows.append(row + [_coop(r.bench), r.split_source or "-"])
    lines = [tabulate(rows, headers=headers), ""]
    for r in results:
        if r.status == "missing":
            lines.append(f"{r.bench.id} missing: expected the folder {r.folder} (see DATASETS.md#{r.bench.name.lower()})")
        elif r.status == "broken":
            lines.append(f"{r.bench.id} broken: {r.problem}")
            lines.extend(f"{r.bench.id} bad image: {line}" for line in r.bad_images)
    differ = [r.bench.id for r in results if r.status == "present" and not counts_match(r)]
    if differ:
        lines.append(
            f"counts differ from CoOp's (the zero-shot sets: the official ones) for {', '.join(differ)}: a partial "
            "copy or another split file gives "
            "numbers that are not comparable with published ones"
        )
    n_ok = sum(r.status == "present" for r in results)
    lines.append(f"{n_ok}/{len(results)} datasets present. Layouts and downloads: DATASETS.md")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.environ.get("DATA", ""), help="the data root (default: $DATA)")
    parser.add_argument("names", nargs="*", help="yaml ids (oxford_pets) or class names (OxfordPets); default CoOp's 15")
    parser.add_argument("--check-images", action="store_true",
                        help="decode every listed image once and list the files that cannot be read")
    args = parser.parse_args(argv)
    try:
        if not args.root:
            raise UserError("no data root: pass --root /path/to/data (or set $DATA)")
        results = check_datasets(args.root, args.names, args.check_images)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0 if all(r.status == "present" for r in results) else 1


def entry() -> int:
    return main()


if __name__ == "__main__":
    sys.exit(entry())
