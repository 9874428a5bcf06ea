"""Command line of ``tools/robust_report.py``."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from typing import Optional, Sequence

from ..errors import UserError
from . import target as targets
from .report import build_report, write_report
from .settings import ReportSettings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robust_report.py", description=(
        "Robustness report of a trained run folder (or of zero-shot CLIP with --zero-shot): accuracy vs eps, PGD "
        "convergence, AutoAttack per attack, transfer and Square checks, per-class robust accuracy, and "
        "gradient-masking flags. Budgets are in /255 pixel units."))
    p.add_argument("run", nargs="?", default="", help="training output folder (holds config.yaml and the checkpoint)")
    p.add_argument("--zero-shot", metavar="DATASET_YAML", default="", help="report zero-shot CLIP on this dataset")
    p.add_argument("--config-file", default="", help="with --zero-shot: the trainer config (e.g. .../synth.yaml)")
    p.add_argument("--root", default="", help="dataset root (default: the run's DATASET.ROOT)")
    p.add_argument("--load-epoch", type=int, help="checkpoint epoch (default: the last)")
    p.add_argument("--out", default="", help="report folder (default: <run>/robust_report)")
    p.add_argument("--quick", action="store_true", help="reduced report: 5 images per class, PGD up to 50 steps, "
                   "AutoAttack with 20 iterations (minutes on a 2-core CPU)")
    p.add_argument("--images", type=int, help="at most this many images (class-balanced)")
    p.add_argument("--images-per-class", type=int, help="images per class")
    p.add_argument("--eps", type=float, nargs="+", help="L-inf budgets of the eps curve (/255; default 0 0.5 1 2 4 8)")
    p.add_argument("--l2-eps", type=float, nargs="+", help="also an L2 eps curve at these budgets (/255 units)")
    p.add_argument("--headline-eps", type=float, help="budget of the other stages (default: the run's test eps)")
    p.add_argument("--steps", type=int, nargs="+", help="PGD step counts of the convergence curve")
    p.add_argument("--restarts", type=int, nargs="+", help="restart counts of the convergence curve")
    p.add_argument("--aa-iters", type=int, help="AutoAttack iterations (0 = the library's 100; Square gets 50x "
                   "as many queries)")
    p.add_argument("--batch-size", type=int, help="attack batch size (default 100)")
    p.add_argument("--no-plots", action="store_true", help="write report.md and report.json only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a gradient-masking flag is raised")
    p.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                   help="config overrides for the rebuilt trainer, e.g. --opts DATALOADER.TEST.BATCH_SIZE 50")
    return p


def settings_from_args(args: argparse.Namespace) -> ReportSettings:
    overrides = {key: tuple(value) if isinstance(value, list) else value for key, value in (
        ("max_images", args.images), ("images_per_class", args.images_per_class), ("eps", args.eps),
        ("l2_eps", args.l2_eps), ("headline_eps", args.headline_eps), ("steps", args.steps),
        ("restarts", args.restarts), ("aa_iters", args.aa_iters), ("batch_size", args.batch_size))
        if value is not None}
    if args.images is not None and args.images_per_class is None:
        overrides["images_per_class"] = max(args.images, 1)  # --images alone: the cap decides, still balanced
    base = ReportSettings.quick() if args.quick else ReportSettings()
    return replace(base, **overrides)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if bool(args.run) == bool(args.zero_shot):
        raise UserError("pass either a run folder or --zero-shot DATASET_YAML (not both, not neither)")
    settings = settings_from_args(args)
    opts = list(args.opts)
    if args.run:
        if not os.path.isdir(args.run):
            raise UserError(f"run folder {args.run} does not exist; pass a training output folder (e.g. .../seed1)")
        target = targets.load_run(args.run, root=args.root, opts=opts, epoch=args.load_epoch)
        out = args.out or os.path.join(args.run, "robust_report")
    else:
        if not args.out:
            raise UserError("--zero-shot needs --out (the report folder)")
        target = targets.zero_shot_target(args.zero_shot, args.config_file, root=args.root, opts=opts)
        out = args.out
    start = time.time()
    report = build_report(target, settings, progress=not args.no_progress)
    for path in write_report(report, out, plots=not args.no_plots):
        print(f"wrote {path}")
    for name, part in report["parts"].items():
        print(f"{name}: clean {part['clean']:.1f}%, PGD {part['pgd']:.1f}%, AutoAttack {part['autoattack_worst']:.1f}%,"
              f" worst case {part['worst_case']:.1f}% ({part['n_images']} images, eps {report['headline_eps']:g}/255)")
        for flag in part["flags"]:
            if flag["raised"]:
                print(f"FLAG ({name}): {flag['check']}: {flag['evidence']}")
    print(f"report done in {time.time() - start:.0f} s; {report['flags_raised']} gradient-masking flag(s) raised")
    return 1 if args.strict and report["flags_raised"] else 0
