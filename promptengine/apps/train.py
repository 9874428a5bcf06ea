"""Train or evaluate a prompt-learning method on CLIP (CoOp-compatible command line).

    python train.py --root $DATA --trainer CAPT --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CAPT/vit_b32_ep10.yaml --output-dir output/... --seed 1 [KEY VALUE ...]
    capt-train ...            (the same, installed; config files also by name: --dataset-config-file oxford_pets)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from promptengine.config.apt_flags import add_apt_flags, apt_flag_overrides

warnings.filterwarnings("ignore", message=".*pkg_resources.*")
warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.load.*")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=str, default="", help="path to the dataset root ($DATA)")
    p.add_argument("--output-dir", type=str, default="", help="output directory")
    p.add_argument("--resume", type=str, default="", help="checkpoint directory to resume from (default: output dir)")
    p.add_argument("--seed", type=int, default=None, help="random seed (0 is honoured; negative = unseeded)")
    p.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    p.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    p.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    p.add_argument("--config-file", type=str, default="", help="path to the trainer config file")
    p.add_argument("--dataset-config-file", type=str, default="", help="path to the dataset config file")
    p.add_argument("--trainer", type=str, default="", help="name of trainer (class name)")
    p.add_argument("--backbone", type=str, default="", help="name of CNN backbone / CLIP model")
    p.add_argument("--head", type=str, default="", help="name of head")
    p.add_argument("--eval-only", action="store_true", help="evaluation only")
    p.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    p.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    p.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    p.add_argument("--print-config", action="store_true", help="print the fully resolved config and exit")
    p.add_argument("--override-identity", action="store_true",
                   help="reuse an output folder or --model-dir whose run identity differs; another run's checkpoints "
                   "are kept aside and training starts from scratch, never resumed (see docs/GUARANTEES.md)")
    p.add_argument("--skip-done", action="store_true",
                   help="exit without writing anything when this exact run (same identity) already finished here")
    add_apt_flags(p)  # APT's --eps --alpha --steps --adv-prompt --prompt-alpha
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options using the command-line")
    return p


#: CoOp's reset_cfg: command-line flag (argparse dest) -> config key it sets
FLAG_KEYS = (("root", "DATASET.ROOT"), ("output_dir", "OUTPUT_DIR"), ("resume", "RESUME"), ("seed", "SEED"),
             ("source_domains", "DATASET.SOURCE_DOMAINS"), ("target_domains", "DATASET.TARGET_DOMAINS"),
             ("transforms", "INPUT.TRANSFORMS"), ("trainer", "TRAINER.NAME"), ("backbone", "MODEL.BACKBONE.NAME"),
             ("head", "MODEL.HEAD.NAME"))


def cli_overrides(args: argparse.Namespace) -> list:
    """CoOp's reset_cfg (a flag left empty changes nothing), except that --seed 0 is honoured; then APT's flags."""
    pairs = []
    for dest, key in FLAG_KEYS:
        value = getattr(args, dest)
        if value is not None if dest == "seed" else value:
            pairs.append((key, value))
    pairs.extend(apt_flag_overrides(args))  # APT's flags, translated (one note)
    return pairs


def configure(argv: list):
    """A command line's arguments and its merged, domain-checked config (what ``main`` runs with; nothing else is
    built or written). The sweep runner checks every run of a grid with it before starting any."""
    args = build_parser().parse_args(argv)
    from promptengine.builtin import import_builtin

    import_builtin()  # registers the dataset loaders, the trainers and their config keys
    from promptengine.config.merge import build_cfg
    from promptengine.weights.resolve import resolve_backbone

    cfg = build_cfg(args.dataset_config_file, args.config_file, cli_overrides(args), args.opts or [])
    resolve_backbone(cfg)  # catalogued weights names -> their verified files (docs/WEIGHTS.md)
    return args, cfg


def main(argv=None) -> int:
    started = time.time()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, cfg = configure(argv)

    from promptengine.config.names import check_names
    from promptengine.engine import distributed as dist
    from promptengine.engine.run import check_output_dir
    from promptengine.engine.runfolder import FreshFolderGuard
    from promptengine.engine.runlock import acquire_run_lock
    from promptengine.errors import UserError

    if args.print_config:
        check_names(cfg)  # an unknown trainer or dataset fails here too, not only on a real run
        print(cfg.dump())
        return 0
    dist.init_from_env()
    from promptengine.registry import TRAINER_REGISTRY

    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)  # fail fast, before anything is built or written
    if dist.is_main():  # only rank 0 writes (the probe creates a file)
        check_output_dir(cfg.OUTPUT_DIR)
    guard = FreshFolderGuard(cfg.OUTPUT_DIR, enabled=dist.is_main())
    lock = acquire_run_lock(cfg.OUTPUT_DIR, enabled=dist.is_main())  # one writer per folder, for the whole run
    try:
        return run(args, argv, cfg, trainer_cls, started)
    except UserError:
        guard.rollback()  # a failure on bad input leaves no partial output folder
        raise
    finally:
        if lock is not None:
            lock.release()


def run(args: argparse.Namespace, argv: list, cfg, trainer_cls, started: float) -> int:
    import torch

    from promptengine.engine import distributed as dist
    from promptengine.engine import runfolder
    from promptengine.engine.logging import commit_log, start_logging
    from promptengine.engine.run import build_trainer, describe_run
    from promptengine.engine.trainer import set_random_seed

    start_logging()
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(int(cfg.SEED))
    if cfg.DETERMINISTIC:
        torch.use_deterministic_algorithms(True)
    describe_run(args, cfg)
    trainer = build_trainer(cfg, trainer_cls)
    trainer.config_name = os.path.splitext(os.path.basename(args.config_file))[0] if args.config_file else ""
    trainer.eval_only = args.eval_only
    trainer.override_identity = args.override_identity
    trainer.command = ("train.py", *argv)
    trainer.started = started  # provenance's wall time counts the whole command
    # Everything a run reuses is checked before anything is written: the weights it loads, the checkpoint it
    # resumes, and the folder it writes into.
    if args.eval_only and trainer.needs_weights():
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
    elif not args.eval_only and not args.no_train:
        trainer.resume()
    identity = trainer.run_identity
    done = False
    if dist.is_main():
        runfolder.check_folder(cfg.OUTPUT_DIR, identity, args.override_identity)
        done = args.skip_done and is_done(args, cfg, trainer, identity)
    if dist.broadcast_flag(done):
        print(f"Skipping: {cfg.OUTPUT_DIR} already holds the finished run of this identity")
        return 0
    commit_log(cfg.OUTPUT_DIR, enabled=dist.is_main())
    if dist.is_main():
        runfolder.sweep_temporary_files(cfg.OUTPUT_DIR)
        if args.override_identity:  # another run's checkpoints are not resumed: kept aside, training starts afresh
            runfolder.archive_previous(cfg.OUTPUT_DIR, identity,
                                       trainer.get_model_names() if trainer.superseded is not None else ())
        runfolder.record_start(cfg.OUTPUT_DIR, identity, cfg.dump())
    if args.eval_only:
        trainer.test()
        return 0
    if not args.no_train:
        trainer.train()
    return 0


def is_done(args: argparse.Namespace, cfg, trainer, identity: dict) -> bool:
    """A finished result of this identity, or (training without a final test) the final checkpoint."""
    from promptengine.engine import runfolder

    if runfolder.finished_result(cfg.OUTPUT_DIR, identity):
        return True
    return not args.eval_only and bool(cfg.TEST.NO_TEST) and trainer.start_epoch >= trainer.max_epoch


def entry() -> int:
    """Console entry point (``capt-train``, ``python -m promptengine.apps.train``): one-line errors, exit status."""
    from promptengine.cli import run_main

    return run_main(main)


if __name__ == "__main__":
    sys.exit(entry())
