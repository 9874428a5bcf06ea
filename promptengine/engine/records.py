"""What a trainer records about itself: its run identity, the identity checks of reused checkpoints, results.json.

Mixed into ``TrainerX``; kept apart so the training loop stays readable.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any, Dict, Optional

import torch

from ..attacks import train_spec
from ..clip.loading import weights_file
from ..errors import UserError
from ..evaluation.metrics import accuracy
from ..evaluation.perimage import KEY as PER_IMAGE_KEY
from ..evaluation.perimage import build_record
from ..evaluation.robust import attack_correct, clean_correct
from . import identity as ident
from .provenance import provenance
from .runfolder import OVERRIDE_HINT, RESULTS_NAME, IdentityMismatch, write_json_atomic

#: sections of a checkpoint's training identity an evaluation must share (its data may differ: base2new, xd, dg)
EVAL_SHARED_SECTIONS = ("trainer", "model", "train")


class RunRecordsMixin:
    """Needs ``cfg``, ``dm``, ``test_attacks``, ``precision``, ``device``, ``world_size``, ``output_dir``, ``started``."""

    override_identity: bool = False
    #: what an identity mismatch tells the user to do (tools that rebuild a trainer name their own way out)
    identity_hint: str = OVERRIDE_HINT
    command: tuple = ()
    _identity: Optional[Dict[str, Any]] = None
    _weights: Optional[Dict[str, Any]] = None  # training identity of loaded weights (eval-only)
    _weights_epoch: Optional[int] = None
    superseded: Optional[str] = None  # why the output folder's checkpoints are not resumed (--override-identity)

    # ---- identity --------------------------------------------------------------------------------------------
    def _own_identity(self) -> Dict[str, Any]:
        if self._identity is None:
            backbone = self.cfg.MODEL.BACKBONE
            weights = weights_file(str(backbone.NAME), str(backbone.DOWNLOAD_ROOT))
            self._identity = ident.run_identity(self.cfg, self.dm.dataset, self.dm.test_items(), train_spec(self.cfg),
                                                self.test_attacks, self.precision, self._data_root(), weights)
        return self._identity

    def _data_root(self) -> str:
        root = self.cfg.DATASET.ROOT
        return os.path.abspath(os.path.expanduser(str(root))) if root else ""

    @property
    def training_identity(self) -> Dict[str, Any]:
        """What determines this run's trained weights (stored in every checkpoint it writes)."""
        return ident.training_identity(self._own_identity())

    @property
    def run_identity(self) -> Dict[str, Any]:
        """The identity of the numbers this run reports (with the loaded weights' identity when evaluating)."""
        own = self._own_identity()
        if getattr(self, "eval_only", False):
            return ident.with_weights(own, self._weights, self._weights_epoch)
        return own

    # ---- checks of reused checkpoints ------------------------------------------------------------------------
    def check_resume_identity(self, state: Dict[str, Any], path: str) -> Optional[str]:
        """Resuming needs the checkpoint's training identity to equal this run's: None when it does. Otherwise the
        run stops, or with ``--override-identity`` the reason is returned and the checkpoint is not resumed: its
        weights were trained under other settings, and resuming them would report them under this run's."""
        recorded = state.get("identity")
        if recorded is None:
            why = f"checkpoint {path} has no run identity (written by an older version)"
        else:
            diff = ident.first_difference(recorded, self.training_identity)
            if diff is None:
                return None
            why = f"checkpoint {path} was trained by another run: {ident.describe_difference(diff, 'the checkpoint')}"
        if not self.override_identity:
            raise IdentityMismatch(f"{why}; {self.identity_hint}")
        return why

    def check_eval_identity(self, state: Dict[str, Any], path: str) -> None:
        """An evaluation must describe the model it loads: trainer, model and training settings equal."""
        recorded = state.get("identity")
        if recorded is None:
            self._mismatch(f"checkpoint {path} has no run identity (written by an older version)")
            self._weights = {"unknown": path}
            return
        ours = self.training_identity
        diff = ident.first_difference({k: recorded.get(k) for k in EVAL_SHARED_SECTIONS},
                                      {k: ours.get(k) for k in EVAL_SHARED_SECTIONS})
        if diff is not None:
            self._mismatch(f"the evaluated checkpoint {path} was trained with other settings: "
                           f"{ident.describe_difference(diff, 'the checkpoint')} (evaluate with the training run's "
                           "config and options)")
        self._weights = recorded

    def _mismatch(self, message: str) -> None:
        if self.override_identity:
            print(f"Note: --override-identity: {message}")
            return
        raise IdentityMismatch(f"{message}; {self.identity_hint}")

    # ---- results.json ----------------------------------------------------------------------------------------
    def trained_shots(self) -> int:
        """The shots the evaluated model was trained with: an evaluation's own ``DATASET.NUM_SHOTS`` changes nothing
        it measures, so a loaded checkpoint's recorded value wins (a 2-shot model stays a 2-shot result)."""
        own = int(self.cfg.DATASET.NUM_SHOTS)
        trained = ((self._weights or {}).get("data") or {}).get("DATASET.NUM_SHOTS") \
            if getattr(self, "eval_only", False) else None
        if isinstance(trained, int) and not isinstance(trained, bool) and trained != own:
            print(f"Note: the loaded model was trained with DATASET.NUM_SHOTS {trained}; results.json records "
                  f"{trained}, not this evaluation's {own}")
            return trained
        return own

    def per_image_record(self, split: str, per_sample: Dict[str, torch.Tensor], n_attacks: int,
                         worst: Optional[torch.Tensor]) -> Dict[str, Any]:
        """Which evaluated images were right (clean, per attack, worst case) with the digest of those items, so
        that intervals over test images and paired comparisons can be computed later (docs/EXPERIMENTS.md).

        ``per_sample`` is the gathered evaluation (all ranks), ordered by dataset index.
        """
        index = per_sample["index"].tolist()
        if index != list(range(len(index))):
            raise RuntimeError(f"the {split} evaluation did not cover images 0..{len(index) - 1} once each, in order")
        if split == "test":
            items = self._own_identity()["data"]["test_items"]
        else:
            items = ident.items_digest(self.dm.val_set.data_source, self._data_root())
        if not items.startswith(f"{len(index)}:"):
            raise RuntimeError(f"the {split} evaluation saw {len(index)} images but its items digest is {items}")
        robust = [v.tolist() for v in attack_correct(per_sample, n_attacks)]
        return build_record(items, clean_correct(per_sample).tolist(), robust,
                            worst.tolist() if worst is not None else None)

    def write_results(self, split: str, clean: dict, robust: list, worst: Optional[torch.Tensor],
                      per_image: Optional[Dict[str, Any]] = None) -> None:
        """Written once the evaluation finished, atomically; carries the run identity, provenance and, when given,
        the per-image record (``per_image``, see ``promptengine.evaluation.perimage``)."""
        if not clean["total"]:  # a result on zero images would read as "accuracy 0.00" in every table
            raise UserError(f"the {split} set has no images, so there is no result to write; check the dataset split "
                            "and TEST.MAX_IMAGES")
        cfg = self.cfg
        record = {
            "format": 1,
            "trainer": type(self).__name__,
            "dataset": cfg.DATASET.NAME,
            "subsample": cfg.DATASET.SUBSAMPLE_CLASSES,
            "num_shots": self.trained_shots(),
            "seed": int(cfg.SEED),
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "config": getattr(self, "config_name", ""),
            "split": split,
            "num_images": clean["total"],
            "eval_only": bool(getattr(self, "eval_only", False)),
            "precision": self.precision,
            "load_epoch": getattr(self, "loaded_epoch", None),
            "clean": {k: clean[k] for k in ("accuracy", "correct", "total", "macro_f1")},
            "robust": robust,
            "time": datetime.datetime.now().isoformat(timespec="seconds"),
            "identity": ident.summary(self.run_identity),
            "provenance": provenance(self.device, self.precision, self.world_size,
                                     time.time() - self.started, self.command),
        }
        if worst is not None:
            record["worst_case"] = {"accuracy": accuracy(worst), "correct": int(worst.sum()),
                                    "total": int(worst.numel())}
        if per_image is not None:
            record[PER_IMAGE_KEY] = per_image
        write_json_atomic(record, os.path.join(self.output_dir, RESULTS_NAME))
