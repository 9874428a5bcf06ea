"""``train.py``'s command line and the config it builds (CoOp's flags, APT's flags, ``KEY VALUE`` options).

Nothing here builds a model: the sweep runner checks every run of a grid with ``configure`` before starting any.
"""

from __future__ import annotations

import argparse

from promptengine.config.apt_flags import add_apt_flags, apt_flag_overrides
from promptengine.config.merge import build_cfg
from promptengine.registry import import_builtin
from promptengine.weights.resolve import resolve_backbone

USAGE = """Train or evaluate a prompt-learning method on CLIP (CoOp-compatible command line).

    python train.py --root $DATA --trainer CAPT --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CAPT/vit_b32_ep10.yaml --output-dir output/... --seed 1 [KEY VALUE ...]
    capt-train ...            (the same, installed; config files also by name: --dataset-config-file oxford_pets)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    import_builtin()  # registers the dataset loaders, the trainers and their config keys
    cfg = build_cfg(args.dataset_config_file, args.config_file, cli_overrides(args), args.opts or [])
    resolve_backbone(cfg)  # catalogued weights names -> their verified files (docs/WEIGHTS.md)
    return args, cfg
