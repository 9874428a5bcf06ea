"""``train.py``: train or evaluate a method, checking everything a run reuses before anything is written.

The command line and the config it builds are ``train_args.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch

from promptengine import distributed as dist
from promptengine.apps.train_args import configure
from promptengine.cli import run_main
from promptengine.config.names import check_names
from promptengine.engine import runfolder
from promptengine.engine.logging import commit_log, start_logging
from promptengine.engine.run import build_trainer, check_output_dir, describe_run
from promptengine.engine.runfolder import FreshFolderGuard
from promptengine.engine.runlock import acquire_run_lock
from promptengine.engine.trainer import set_random_seed
from promptengine.errors import UserError
from promptengine.registry import TRAINER_REGISTRY

warnings.filterwarnings("ignore", message=".*pkg_resources.*")
warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.load.*")


def main(argv=None) -> int:
    started = time.time()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, cfg = configure(argv)

    if args.print_config:
        check_names(cfg)  # an unknown trainer or dataset fails here too, not only on a real run
        print(cfg.dump())
        return 0
    dist.init_from_env()
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
    if runfolder.finished_result(cfg.OUTPUT_DIR, identity):
        return True
    return not args.eval_only and bool(cfg.TEST.NO_TEST) and trainer.start_epoch >= trainer.max_epoch


def entry() -> int:
    """Console entry point (``capt-train``, ``python -m promptengine.apps.train``): one-line errors, exit status."""
    return run_main(main)


if __name__ == "__main__":
    sys.exit(entry())
