"""What a report attacks: a trained run folder (rebuilt through the engine's own loading path, as
``train.py --eval-only --model-dir`` does) or zero-shot CLIP on a dataset config.

A base-to-new run gives two parts (base and new classes, the same prompts); any other run gives one part ("all").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import torch
from torch import nn

from ..attacks.forward import Forward
from ..clip.model import FrozenZeroShot
from ..config.merge import build_cfg, check_domains, merge_from_file, merge_from_list
from ..errors import UserError
from ..registry import TRAINER_REGISTRY, import_builtin
from ..weights.resolve import resolve_backbone


@dataclass
class Part:
    """One evaluated label set: the attacked classifier, the transfer source and the test split it is scored on."""

    name: str  # "all", "base" or "new"
    classifier: Forward  # images [0, 1] (B, C, H, W) -> logits (B, K)
    module: Optional[nn.Module]
    transfer_source: Optional[Forward]  # frozen zero-shot CLIP on the same classes
    classnames: List[str]
    labels: List[int]  # label of every test item, by dataset index
    fetch: Callable[[int], torch.Tensor]  # dataset index -> image (C, H, W)
    device: torch.device = torch.device("cpu")


@dataclass
class Target:
    name: str
    source: str  # the run folder or the dataset config
    parts: List[Part]
    test_eps: Optional[float] = None  # the run's own test-attack budget (/255), the default headline eps
    info: dict = field(default_factory=dict)


def _build_cfg(files: Sequence[str], opts: Sequence[str]):
    cfg = build_cfg(freeze=False)
    provenance: dict = {}
    for path in files:
        merge_from_file(cfg, path, provenance)
    merge_from_list(cfg, list(opts), provenance)
    check_domains(cfg, provenance)  # the same check as training's, so the model is built from allowed values
    resolve_backbone(cfg)  # catalogued weights names -> their verified files, as training's configure does
    return cfg


def _part(trainer, name: str, with_transfer: bool) -> Part:
    trainer.set_model_mode("eval")
    classifier = trainer.evaluated_target()
    module = trainer.model if isinstance(getattr(trainer, "model", None), nn.Module) else None
    source = None
    if with_transfer and hasattr(trainer, "backbone"):
        source = FrozenZeroShot(trainer.backbone, trainer.classnames, [trainer.dataset_template]).to(trainer.device)
        source.eval()
    dataset = trainer.dm.test_set  # TEST.MAX_IMAGES is -1 here: the whole split, the report picks its own subset
    labels = [d.label for d in dataset.data_source]
    return Part(name=name, classifier=classifier, module=module, transfer_source=source,
                classnames=list(trainer.classnames), labels=labels, fetch=lambda i: dataset[i]["img"],
                device=trainer.device)


#: the report rebuilds the model from the run's own config.yaml: a mismatch comes from --opts or an edited config
REPORT_HINT = ("the report rebuilds the model from the run's config.yaml: drop the --opts that change the trained "
               "model's settings, or restore the run's config.yaml")


def _trainer(cfg):
    cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    cfg.freeze()
    trainer = cls(cfg)
    trainer.identity_hint = REPORT_HINT
    return trainer


def _test_eps(trainer) -> Optional[float]:
    return round(trainer.test_attacks[0].eps * 255.0, 4) if trainer.test_attacks else None


REPORT_OPTS = ("TEST.MAX_IMAGES", "-1", "DATALOADER.NUM_WORKERS", "0")


def load_run(run_dir: str, root: str = "", opts: Sequence[str] = (), epoch: Optional[int] = None) -> Target:
    """The trained model of ``run_dir`` (its config.yaml and checkpoint); base and new parts for a base2new run."""
    import_builtin()  # dataset loaders, trainers and their config keys
    config = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(config):
        raise UserError(f"{run_dir} has no config.yaml; pass a training output folder (e.g. .../seed1)")
    probe = _build_cfg([config], [])
    subsample = str(probe.DATASET.SUBSAMPLE_CLASSES)
    names = ["base", "new"] if subsample == "base" else [subsample]
    extra = list(opts) + (["DATASET.ROOT", root] if root else [])
    parts, test_eps, loaded = [], None, None
    for name in names:
        cfg = _build_cfg([config], [*REPORT_OPTS, "DATASET.SUBSAMPLE_CLASSES", name, "OUTPUT_DIR", run_dir, *extra])
        trainer = _trainer(cfg)
        if trainer.needs_weights():
            trainer.load_model(run_dir, epoch=epoch)
            loaded = getattr(trainer, "loaded_epoch", None)
        test_eps = _test_eps(trainer)
        parts.append(_part(trainer, name, with_transfer=True))
    trainer_name = probe.TRAINER.NAME
    info = {"trainer": trainer_name, "dataset": probe.DATASET.NAME, "seed": int(probe.SEED),
            "backbone": probe.MODEL.BACKBONE.NAME, "subsample": subsample, "epoch": loaded}
    return Target(name=f"{trainer_name} on {probe.DATASET.NAME} (seed {probe.SEED})", source=run_dir, parts=parts,
                  test_eps=test_eps, info=info)


def zero_shot_target(dataset_config: str, config_file: str = "", root: str = "", opts: Sequence[str] = ()) -> Target:
    """Zero-shot CLIP on every class of ``dataset_config`` (its own transfer source: a check of the attack only)."""
    import_builtin()  # dataset loaders, trainers and their config keys
    files = [dataset_config] + ([config_file] if config_file else [])
    zero_shot = TRAINER_REGISTRY.with_role("zero_shot")
    cfg = _build_cfg(files, [*REPORT_OPTS, "TRAINER.NAME", zero_shot, *opts, *(["DATASET.ROOT", root] if root else [])])
    trainer = _trainer(cfg)
    info = {"trainer": zero_shot, "dataset": cfg.DATASET.NAME, "backbone": cfg.MODEL.BACKBONE.NAME,
            "subsample": str(cfg.DATASET.SUBSAMPLE_CLASSES)}
    return Target(name=f"zero-shot CLIP ({cfg.MODEL.BACKBONE.NAME}) on {cfg.DATASET.NAME}", source=dataset_config,
                  parts=[_part(trainer, "all", with_transfer=True)], test_eps=_test_eps(trainer), info=info)
