#!/usr/bin/env python
"""The one small search that sets every method's embedded-world recipe (``configs/trainers/<METHOD>/synth.yaml``).

    python tools/recipe_search.py                          # the grid below for the study's trained methods
    python tools/recipe_search.py --methods CoOp APT --seeds 1 2

Every prompt method gets the same grid (learning rate x epochs), trained on the 16-shot base classes of SynthShapes and
scored on the **validation** split (never the test split): clean accuracy for clean methods, robust accuracy (the
recipe's own PGD) for adversarial ones -- each method is judged by what it optimises. Tower-tuning methods (TeCoA and
its successors, run by the ``zsrobust`` protocol on every SynthShapes class) get the same shape of grid around their
papers' optimiser: the learning rate they had before any search and three times it, 2 and 6 epochs, trained on every
SynthShapes training image (all classes, as the ``zsrobust`` preset tunes them) and scored on its validation robust
accuracy. Ties within one validation image go to the cheaper
setting. The tables it prints are in docs/SYNTH.md ("Recipes"), with the settings chosen. Run again on the same
``--output``, it reuses a point only through train.py's ``--skip-done`` (same run identity; a folder holding another
run is refused in one line).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRID = [(lr, ep) for ep in (6, 15) for lr in (0.01, 0.03)]
CLEAN_METHODS = ("CoOp", "CoCoOp", "MaPLe", "IVLP", "VPT")
DEFAULT_METHODS = ("CoOp", "CoCoOp", "MaPLe", "APT", "FAP", "CAPT")
# Tower-tuning methods: tune the vision tower, judged zero-shot on every class. Their grid is centred on the learning
# rate each had before any search (the papers' SGD at a CPU size; FARE's loss is two orders above a cross-entropy).
TOWER_BASE_LR = {"TeCoA": 0.002, "FARE": 0.0003, "PMGAFT": 0.002, "TGAZSR": 0.002}
TOWER_METHODS = tuple(TOWER_BASE_LR)
TOWER_EPOCHS = (2, 6)


def grid(method: str) -> list:
    """(lr, epochs) points of the method's grid, in the order of the printed columns."""
    if method in TOWER_METHODS:
        lr = TOWER_BASE_LR[method]
        return [(round(f * lr, 10), ep) for ep in TOWER_EPOCHS for f in (1, 3)]
    return GRID


def run(method: str, lr: float, epochs: int, seed: int, out: Path) -> dict:
    """Train one grid point (train.py's --skip-done reuses a finished run of exactly this identity, and refuses a
    folder holding another run) and read its validation scores."""
    folder = out / method / f"lr{lr}_ep{epochs}" / f"seed{seed}"
    result = folder / "results.json"
    tower = method in TOWER_METHODS
    classes, shots = ("all", "-1") if tower else ("base", "16")
    cmd = [sys.executable, str(REPO / "train.py"), "--trainer", method, "--seed", str(seed), "--skip-done",
           "--output-dir", str(folder),
           "--dataset-config-file", str(REPO / "configs/datasets/synth_shapes.yaml"),
           "--config-file", str(REPO / f"configs/trainers/{method}/synth.yaml"),
           "DATASET.NUM_SHOTS", shots, "DATASET.SUBSAMPLE_CLASSES", classes, "TEST.SPLIT", "val",
           "OPTIM.LR", str(lr), "OPTIM.MAX_EPOCH", str(epochs)]
    if method in CLEAN_METHODS:
        cmd += ["ATTACK.TEST.ENABLED", "False"]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"seed{seed}.log", "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code != 0:
        raise SystemExit(f"error: {method} lr {lr} epochs {epochs} seed {seed} failed; log: {log.name}")
    data = json.loads(result.read_text())
    robust = (data.get("worst_case") or {}).get("accuracy")
    return {"clean": data["clean"]["accuracy"], "robust": robust, "n": data.get("num_images")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--output", default=str(REPO / "output" / "recipe_search"))
    ap.add_argument("--jobs", type=int, default=1, help="training runs at once (one thread each)")
    args = ap.parse_args(argv)
    out = Path(args.output)
    points = [(m, lr, ep, s) for m in args.methods for lr, ep in grid(m) for s in args.seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # every run first, then the tables
        done = dict(zip(points, pool.map(lambda p: run(*p, out), points)))
    header = None
    for method in args.methods:
        points = grid(method)
        head = (" | ".join(f"lr x{f} ep {ep}" for ep in TOWER_EPOCHS for f in (1, 3)) if method in TOWER_METHODS
                else " | ".join(f"lr {lr} ep {ep}" for lr, ep in points))
        if head != header:
            header = head
            print(f"\n| method | criterion (val) | {head} | chosen |")
            print("|---|---|" + "---|" * (len(points) + 1))
        metric = "clean" if method in CLEAN_METHODS else "robust"
        results = [[done[(method, lr, ep, s)] for s in args.seeds] for lr, ep in points]  # per point, per seed
        scores = [sum(r[metric] for r in rs) / len(rs) for rs in results]
        n = results[0][0]["n"] or 1
        best = max(scores)
        # ties within one validation image go to the cheaper setting (fewer epochs, then the lower lr)
        chosen = min(i for i, s in enumerate(scores) if s >= best - 100.0 / n)
        cells = [f"**{s:.1f}**" if i == chosen else f"{s:.1f}" for i, s in enumerate(scores)]
        if method in TOWER_METHODS:  # a tower's clean price, next to its robust score
            cleans = [sum(r["clean"] for r in rs) / len(rs) for rs in results]
            cells = [f"{c} ({k:.1f})" for c, k in zip(cells, cleans)]
        lr, ep = points[chosen]
        print(f"| {method} | {metric} | " + " | ".join(cells) + f" | lr {lr:g}, {ep} epochs |", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
