"""A Dassl trainer made from one of this toolbox's methods: the method classes on top of Dassl's engine.

``dassl_trainer(CAPT)`` builds ``class CAPT(DasslEngineBridge, ours.CAPT, dassl.engine.TrainerX, ours.TrainerX)``.
Its MRO puts the method classes first (prompt spec, model building, objective, attack), Dassl's engine next (loop,
data manager, checkpoints, evaluator, LR stepping) and this toolbox's engine last, where only the hooks Dassl
lacks are found (``attack_target``, ``trainer_precision``). The method's own ``super()`` calls therefore reach
Dassl. ``DasslEngineBridge`` adapts the few places where the two engines differ.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import torch
from dassl.engine import TrainerX as DasslTrainerX
from dassl.optim import build_lr_scheduler as dassl_lr_scheduler
from dassl.optim import build_optimizer
from dassl.utils import load_checkpoint
from torch import nn

from ..attacks import test_specs
from ..config.domains import Unrecorded, check_and_warn
from ..config.upstream import with_fap_translated
from ..engine.checkpoint import load_learnable_state, set_rng_state
from ..engine.meters import MetricMeter
from ..engine.precision import attack_autocast, autocast_factory, grad_scaler, resolve_precision
from ..engine.trainer import TrainerX as EngineTrainerX
from ..errors import UserError
from ..evaluation.metrics import print_robust_lines
from ..evaluation.robust import evaluate, robust_results
from ..weights.resolve import resolve_backbone
from . import state as engine_state
from .config import plugin_domains
from .pixels import pipeline_stats, to_pixels
from .schedule import build_lr_scheduler

DASSL_SOURCE = "the Dassl config: its YAML files or options"


class PixelBatches:
    """A test loader's batches through ``parse_batch_test`` ([0, 1] images on the device), in the batch layout
    the shared robust evaluation reads."""

    def __init__(self, trainer, loader) -> None:
        self.trainer, self.loader = trainer, loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            x, y = self.trainer.parse_batch_test(batch)
            yield {"img": x, "label": y, "index": batch["index"]}


class DasslEngineBridge:
    """Adapts Dassl's engine to the method classes (first in the MRO)."""

    def __init__(self, cfg) -> None:
        if "ATTACK" not in cfg:
            raise UserError("the cfg lacks this toolbox's keys: call promptengine.dassl_plugin.extend_cfg(cfg) in "
                            "your train.py's extend_cfg")
        check_and_warn(cfg, plugin_domains(), Unrecorded(DASSL_SOURCE))  # the check build_cfg runs, on our keys
        cfg = with_fap_translated(cfg)  # Dassl merged the YAMLs: FAP's ATTACK.PGD.* keys are translated here
        resolve_backbone(cfg)  # catalogued weights names -> their verified files, as train.py's configure does
        self.cfg = cfg  # Dassl calls check_cfg before it sets self.cfg; the methods' checks read self.cfg
        self.pixel_stats = pipeline_stats(cfg)  # refuses pipelines it cannot undo, before anything is built
        self.epoch = 0
        device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")  # Dassl's rule
        # Dassl's PREC fp16 means fp16 autocast here: learnable tensors stay fp32 (the main engine's rule)
        self.precision = resolve_precision(cfg, self.trainer_precision(), device)
        self.autocast = autocast_factory(self.precision, device)
        self.scaler = grad_scaler(self.precision, device)
        self.test_attacks = test_specs(cfg)
        self.test_attack_autocast = attack_autocast(cfg, "TEST", device)  # fp32 unless ATTACK.TEST.PRECISION
        super().__init__(cfg)

    def build_data_loader(self) -> None:
        super().build_data_loader()
        self.classnames = list(self.dm.dataset.classnames)

    def build_optim(self, module: nn.Module):
        optim = build_optimizer(module, self.cfg.OPTIM)
        return optim, build_lr_scheduler(optim, self.cfg.OPTIM, dassl_lr_scheduler)  # warm-up: see schedule.py

    # ---- batches: [0, 1] images at the model's entry --------------------------------------------------------
    def parse_batch_train(self, batch: dict):
        x, y = super().parse_batch_train(batch)[:2]  # Dassl's (img, label, domain)
        return to_pixels(x, self.pixel_stats), y

    def parse_batch_test(self, batch: dict):
        x, y = super().parse_batch_test(batch)
        return to_pixels(x, self.pixel_stats), y

    # ---- one step --------------------------------------------------------------------------------------------
    def forward_backward(self, batch: dict) -> Dict[str, float]:
        summary = super().forward_backward(batch)
        after_step = getattr(self, "after_step", None)  # the main engine calls it after every step
        if after_step is not None:
            after_step(summary)
        if self.batch_idx == 0:
            self.epoch_meter = MetricMeter()
        self.epoch_meter.update(summary)
        if (self.batch_idx + 1) == self.num_batches:  # Dassl trainers step the schedule once per epoch
            self.epoch_summary = self.epoch_meter.averages()  # what after_epoch hooks read (CAPT's collapse check)
            self.update_lr()
        return summary

    def model_backward_and_update(self, loss: torch.Tensor, names=None, terms: Optional[Dict[str, float]] = None) -> bool:
        """Dassl's zero_grad / anomaly check / backward / step, with the gradient scaler under fp16 autocast."""
        if not self.scaler.is_enabled():
            super().model_backward_and_update(loss, names)
            return True
        names = self.get_model_names(names)
        self.model_zero_grad(names)
        self.detect_anomaly(loss)
        self.scaler.scale(loss).backward()
        for name in names:
            if self._optims[name] is not None:
                self.scaler.step(self._optims[name])
        self.scaler.update()
        return True

    # ---- checkpoints: Dassl's files, learnable tensors loaded by name, random state beside them ---------------
    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None,
                   model_name: str = "") -> None:
        named = {"model_name": model_name} if model_name else {}  # as Dassl calls it (methods may lack the keyword)
        super().save_model(epoch, directory, is_best, val_result, **named)
        names = self.get_model_names()
        if names:  # Dassl's file name; one state file serves every model (the generators are global)
            fname = model_name or f"model.pth.tar-{epoch + 1}"
            engine_state.save(engine_state.state_path(directory, names[0], fname), epoch + 1, self.scaler,
                              self.extra_state())

    def resume_model_if_exist(self, directory: str) -> int:
        start = super().resume_model_if_exist(directory)
        names = self.get_model_names()
        fname = engine_state.latest_file(directory, names[0]) if start and names else None
        if fname is None:
            return start
        path = engine_state.state_path(directory, names[0], fname)
        saved = engine_state.load(path)
        if saved is None or saved["epoch"] != start:
            print(f"Note: no random state for epoch {start} at {path}; the resumed epochs draw other random numbers "
                  "(data order, augmentation) than an uninterrupted run would")
            return start
        set_rng_state(saved["rng"])
        if saved["scaler"]:
            self.scaler.load_state_dict(saved["scaler"])
        self.load_extra_state(saved["extra"] or {})
        print(f"Restored the random state of epoch {start} ({path})")
        return start

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        fname = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"  # Dassl's file names
        for name in self.get_model_names():
            path = os.path.join(directory, name, fname)
            if not os.path.exists(path):
                raise UserError(f"no checkpoint at {path} (pass the training output folder and --load-epoch)")
            state = load_checkpoint(path)
            print(f'Loading weights to {name} from "{path}" (epoch = {state["epoch"]})')
            load_learnable_state(self._models[name], state["state_dict"], path)

    # ---- evaluation: Dassl's clean result, then robust accuracy in this toolbox's format ---------------------
    def test(self, split: Optional[str] = None):
        result = super().test(split)
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            return result  # model selection (TEST.FINAL_MODEL best_val) stays clean: no attacks every epoch
        robust = self.robust_accuracy(self.test_loader)
        print_robust_lines(robust)
        for r in robust:
            self.write_scalar(f"test/robust_accuracy/{r['name']}", r["accuracy"], self.epoch)
        return result

    def robust_accuracy(self, loader) -> List[dict]:
        """Each ATTACK.TEST attack on the loader's images, white-box on the trained prompts; the clean forward in
        fp32, the attacks in ATTACK.TEST.PRECISION (fp32 by default)."""
        if not self.test_attacks:
            return []
        self.set_model_mode("eval")
        module = self.model if isinstance(getattr(self, "model", None), nn.Module) else None
        classifier = self.evaluated_target()
        per_sample = evaluate(classifier, PixelBatches(self, loader), self.test_attacks, self.device,
                              module=module, desc="robust", attack_autocast=self.test_attack_autocast)
        return [{"name": r["name"], "accuracy": r["accuracy"]}
                for r in robust_results(per_sample, self.test_attacks, classifier)]


def dassl_trainer(method: type) -> type:
    """The Dassl trainer class of one of this toolbox's methods (same name, so TRAINER.<NAME> keys apply)."""
    dassl_engine = DasslTrainerX.__mro__[:-1]  # TrainerX, SimpleTrainer, TrainerBase: listed so all precede ours
    cls = type(method.__name__, (DasslEngineBridge, method, *dassl_engine, EngineTrainerX),
               {"__module__": __name__, "__doc__": f"{method.__doc__ or method.__name__} (on Dassl's engine)"})
    mro = cls.__mro__
    if max(mro.index(c) for c in dassl_engine) > mro.index(EngineTrainerX):
        raise TypeError(f"{method.__name__}: Dassl's engine must come before this toolbox's in the MRO")
    return cls
