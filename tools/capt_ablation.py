"""CAPT ablations on the embedded world: alpha_cons (adaptive vs 0 vs 1), lambda, training-attack loss (CE vs KL).

    python tools/capt_ablation.py [--seeds 1 2] [--output output/capt_ablation] [--extra "KEY VALUE ..."]

Every variant runs the base-to-new protocol on ``synth_shapes`` with ``configs/trainers/CAPT/synth.yaml`` plus its
overrides: train on the 16-shot base classes, then evaluate the last epoch on base and on new classes, clean and
under the config's PGD attack. Runs are laid out as the protocol scripts lay them out, with the variant as the
config folder (``<output>/base2new/<phase>/synth_shapes/shots_16/CAPT/<variant>/seed<S>``), so ``tools/compare.py``
prints the table (one row per variant; zero-shot CLIP as reference). Finished runs are skipped.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # folder name -> overrides of configs/trainers/CAPT/synth.yaml
    "adaptive": "",
    "alpha0": "TRAINER.CAPT.ALPHA_MODE fixed TRAINER.CAPT.ALPHA_FIXED 0.0",
    "alpha1": "TRAINER.CAPT.ALPHA_MODE fixed TRAINER.CAPT.ALPHA_FIXED 1.0",
    "loss_ratio": "TRAINER.CAPT.ALPHA_MODE loss_ratio",
    "lambda0.5": "TRAINER.CAPT.LAMBDA 0.5",
    "lambda3": "TRAINER.CAPT.LAMBDA 3.0",
    "attack_ce": "ATTACK.TRAIN.LOSS ce",
}


def train_py(trainer: str, cfg: str, out: Path, seed: str, opts: list, *flags: str) -> list:
    return [sys.executable, str(REPO / "train.py"), "--trainer", trainer, "--seed", seed, "--output-dir", str(out),
            "--dataset-config-file", str(REPO / "configs/datasets/synth_shapes.yaml"),
            "--config-file", str(REPO / f"configs/trainers/{trainer}/{cfg}.yaml"), *flags, *opts]


def call(cmd: list, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        if subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO) != 0:
            raise SystemExit(f"error: {shlex.join(cmd[1:6])} ... failed; see {log}")


def base2new(root: Path, trainer: str, variant: str, seed: str, opts: list, epochs: int) -> None:
    tail = Path("synth_shapes") / "shots_16" / trainer / variant / f"seed{seed}"
    train_dir = root / "base2new" / "train_base" / tail
    common = ["DATASET.NUM_SHOTS", "16", *opts]
    if trainer != "ZeroshotCLIP":  # --skip-done: a finished run of the same identity is not redone
        call(train_py(trainer, "synth", train_dir, seed, [*common, "DATASET.SUBSAMPLE_CLASSES", "base",
                                                           "TEST.NO_TEST", "True"], "--skip-done"), train_dir / "run.txt")
    for phase, sub in (("test_base", "base"), ("test_new", "new")):
        out = root / "base2new" / phase / tail
        flags = ["--eval-only", "--skip-done"] + ([] if trainer == "ZeroshotCLIP" else ["--model-dir", str(train_dir),
                                                                         "--load-epoch", str(epochs)])
        call(train_py(trainer, "synth", out, seed, [*common, "DATASET.SUBSAMPLE_CLASSES", sub], *flags), out / "run.txt")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", default=["1", "2"])
    ap.add_argument("--output", default=str(REPO / "output" / "capt_ablation"))
    ap.add_argument("--extra", default="", help="KEY VALUE options appended to every run, e.g. 'TEST.MAX_IMAGES 400'")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=0, help="override OPTIM.MAX_EPOCH of the synth recipe")
    args = ap.parse_args(argv)
    root = Path(args.output).resolve()
    extra = shlex.split(args.extra)
    import yaml

    epochs = args.epochs or yaml.safe_load((REPO / "configs/trainers/CAPT/synth.yaml").read_text())["OPTIM"]["MAX_EPOCH"]
    extra += ["OPTIM.MAX_EPOCH", str(epochs)]
    jobs = [("ZeroshotCLIP", "zeroshot", "")] + [("CAPT", v, VARIANTS[v]) for v in args.variants]
    t0 = time.time()
    for seed in args.seeds:
        for trainer, variant, overrides in jobs:
            start = time.time()
            print(f"seed {seed}  {trainer:12s} {variant:11s} ...", end="", flush=True)
            base2new(root, trainer, variant, seed, shlex.split(overrides) + extra, epochs)
            print(f" {time.time() - start:6.1f} s", flush=True)
    print(f"done in {time.time() - t0:.0f} s")
    cmd = [sys.executable, str(REPO / "tools" / "compare.py"), str(root), "--protocol", "base2new"]
    subprocess.call(cmd, cwd=REPO)
    with open(root / "ablation.md", "w") as f:
        subprocess.call(cmd + ["--format", "markdown"], stdout=f, cwd=REPO)
    print(f"markdown table: {root / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
