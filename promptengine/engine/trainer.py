"""``TrainerX``: Dassl's trainer lifecycle and hooks, with robust evaluation and exact resume.

Hooks a method overrides: ``extend_cfg`` (its config subtree), ``check_cfg``, ``build_model``,
``forward_backward``, and optionally ``parse_batch_train``/``parse_batch_test``, ``model_inference``,
``attack_target`` (what evaluation attacks, before any test-time defense), ``before_epoch``/``after_epoch``,
``after_step`` (after every optimisation step) and ``extra_state``/``load_extra_state`` (method state saved in
checkpoints, restored on resume). The LR schedule steps once per epoch by itself; checkpoints hold learnable parameters only.
"""

from __future__ import annotations

import datetime
import os
import random
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional

import numpy as np
import torch
from torch import nn

from .. import distributed as dist
from ..attacks import test_specs
from ..data.manager import DataManager
from ..errors import UserError
from ..evaluation.during_training import robust_val_check
from ..evaluation.metrics import clean_summary, print_result_block, worst_case
from ..evaluation.robust import attack_correct, clean_correct, evaluate, robust_results
from ..registry import test_time_defense
from .checkpointing import CheckpointsMixin
from .meters import MetricMeter
from .optim import build_lr_scheduler, build_optimizer
from .precision import attack_autocast, autocast_factory, grad_scaler, resolve_precision
from .records import RunRecordsMixin


class NonFiniteError(UserError):
    """A non-finite loss or gradient (training stops before anything NaN is saved)."""


def set_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class TrainerX(CheckpointsMixin, RunRecordsMixin):
    """Base trainer for labelled data (Dassl's TrainerX)."""

    #: default precision of this trainer when TRAIN.PRECISION is empty and it has no PREC key
    default_precision = "fp32"

    #: True for a method with nothing to train (zero-shot CLIP): its evaluation loads no weights, and the protocols
    #: evaluate it directly, with no training run (read from the class through the registry, before anything is built)
    training_free = False

    #: a test-time defense's config node (``TRAINER.<node>.*``, evaluation settings): such a trainer's
    #: ``defend(trainer, classifier)`` wraps a classifier at evaluation, its own or, named in ``TEST.DEFENSE``, any
    #: trainer's (``evaluated_target``)
    test_time_node = ""

    #: domains of this trainer's own keys ({"TRAINER.X.KEY": Int(0), ...}, see promptengine.config.domains),
    #: checked with every other key after merging, before anything is built
    config_domains: dict = {}

    @staticmethod
    def extend_cfg(cfg) -> None:
        """Declare this trainer's config subtree (called for every registered trainer)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.check_cfg(cfg)
        self.world_size, self.rank = dist.world_size(), dist.rank()
        self.device = dist.device(cfg)
        self.output_dir = cfg.OUTPUT_DIR
        self.start_epoch = self.epoch = 0
        self.max_epoch = int(cfg.OPTIM.MAX_EPOCH)
        self.precision = resolve_precision(cfg, self.trainer_precision(), self.device)
        self.autocast = autocast_factory(self.precision, self.device)
        self.scaler = grad_scaler(self.precision, self.device)
        self.test_attack_autocast = attack_autocast(cfg, "TEST", self.device)  # fp32 unless ATTACK.TEST.PRECISION
        self._models: Dict[str, nn.Module] = OrderedDict()
        self._optims: Dict[str, Optional[torch.optim.Optimizer]] = OrderedDict()
        self._scheds: Dict[str, object] = OrderedDict()
        self.writer = None
        self.skipped_steps = 0
        self.test_attacks = test_specs(cfg)  # validated now, not after hours of training
        self.defense_class()  # TEST.DEFENSE checked now too
        self.build_data_loader()
        self.build_model()

    # ---- hooks ----------------------------------------------------------------------------------------------
    def check_cfg(self, cfg) -> None:
        """Validate trainer-specific settings (raise UserError)."""

    def trainer_precision(self) -> str:
        node = getattr(self.cfg.TRAINER, type(self).__name__.upper(), None)
        return getattr(node, "PREC", self.default_precision) if node is not None else self.default_precision

    def needs_weights(self) -> bool:
        """Whether evaluation needs trained weights (False for training-free methods such as zero-shot CLIP)."""
        return not self.training_free and any(p.requires_grad for m in self._models.values() for p in m.parameters())

    def build_data_loader(self) -> None:
        self.dm = DataManager(self.cfg, world_size=self.world_size, rank=self.rank)
        self.num_classes = self.dm.num_classes
        self.lab2cname = self.dm.lab2cname
        self.classnames = self.dm.classnames
        self.test_loader = self.dm.test_loader
        self.val_loader = self.dm.val_loader
        if dist.is_main():
            self.dm.show_summary()

    def build_model(self) -> None:
        raise NotImplementedError

    def forward_backward(self, batch: dict) -> Dict[str, float]:
        raise NotImplementedError

    def parse_batch_train(self, batch: dict):
        return batch["img"].to(self.device, non_blocking=True), batch["label"].to(self.device)

    def parse_batch_test(self, batch: dict):
        return batch["img"].to(self.device, non_blocking=True), batch["label"].to(self.device)

    def model_inference(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def attack_target(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The logits function evaluation reports and attacks (prompts/text features computed once)."""
        model = self.model
        return model.classifier() if hasattr(model, "classifier") else self.model_inference

    def evaluated_target(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What evaluation reports and attacks: ``attack_target()`` behind the test-time defense (``TEST.DEFENSE``,
        else the trainer's own when it is one), adapting per test image from the same trained state."""
        classifier = self.attack_target()
        defense = self.defense_class()
        return defense.defend(self, classifier) if defense is not None else classifier

    def prepare_defense(self) -> None:
        """Give the test-time defense the state a finished training run leaves it, without training (the bench times
        defenses on fresh models); nothing for most defenses, TAPT measures its feature statistics."""

    def defense_class(self) -> Optional[type]:
        """The test-time defense evaluation applies: ``TEST.DEFENSE`` (``none``: none, e.g. a defense trainer's
        undefended model), else this trainer when it is one, else None."""
        name = str(self.cfg.TEST.DEFENSE)
        if name == "none":
            return None
        if name:
            return test_time_defense(name)
        return type(self) if self.test_time_node else None

    def before_epoch(self) -> None:
        pass

    def after_step(self, values: Dict[str, float]) -> None:
        """Called after every training step with the step's logged values (e.g. an EMA of weights, a schedule)."""

    def extra_state(self) -> Dict[str, object]:
        """Method state beyond the registered models (tensors, numbers, strings, lists, dicts): saved in every
        checkpoint and given back to ``load_extra_state`` on resume, so resumed training is exact."""
        return {}

    def load_extra_state(self, state: Dict[str, object]) -> None:
        """Restore what ``extra_state`` saved (an empty dict for checkpoints written without any)."""

    def after_epoch(self) -> None:
        robust_val_check(self)  # TEST.ROBUST_EVAL_FREQ: a robustness collapse shows while it happens
        last = (self.epoch + 1) == self.max_epoch
        freq = int(self.cfg.TRAIN.CHECKPOINT_FREQ)
        if last or (freq > 0 and (self.epoch + 1) % freq == 0):
            self.save_model(self.epoch, self.output_dir)

    # ---- bookkeeping (Dassl API) -----------------------------------------------------------------------------
    def register_model(self, name: str = "model", model: Optional[nn.Module] = None, optim=None, sched=None) -> None:
        if name in self._models:
            raise KeyError(f"model '{name}' is already registered")
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None):
        names_real = list(self._models)
        if names is None:
            return names_real
        names = [names] if isinstance(names, str) else names
        for n in names:
            if n not in names_real:
                raise KeyError(f"model '{n}' is not registered")
        return names

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def build_optim(self, module: nn.Module):
        optim = build_optimizer(module.parameters(), self.cfg.OPTIM)
        return optim, build_lr_scheduler(optim, self.cfg.OPTIM)

    def get_current_lr(self, names=None) -> float:
        name = self.get_model_names(names)[0]
        optim = self._optims[name]
        return optim.param_groups[0]["lr"] if optim is not None else 0.0

    def model_zero_grad(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad(set_to_none=True)

    def model_backward_and_update(self, loss: torch.Tensor, names=None, terms: Optional[Dict[str, float]] = None) -> bool:
        """zero_grad, backward (scaled under amp), non-finite guard, step. Returns False if the step was skipped."""
        names = self.get_model_names(names)
        self.model_zero_grad(names)
        loss_ok = bool(torch.isfinite(loss.detach()).all())
        if not loss_ok and self.world_size == 1:
            return self._nonfinite(f"loss is not finite ({loss.item()})", terms)
        # Under torchrun every rank runs backward and the all-reduce, even with a non-finite loss: the flag travels
        # with the gradients, so all ranks skip or stop together instead of leaving the others blocked in a collective.
        self.scaler.scale(loss).backward()
        params = [p for n in names for p in self._models[n].parameters() if p.grad is not None]
        if self.world_size > 1 and not dist.average_gradients(params, ok=loss_ok):
            return self._nonfinite("the loss is not finite on at least one rank", terms)
        if self.precision != "amp" and not all(torch.isfinite(p.grad).all() for p in params):
            return self._nonfinite("a gradient is not finite", terms)
        for n in names:
            if self._optims[n] is not None:
                self.scaler.step(self._optims[n])
        self.scaler.update()
        return True

    def _nonfinite(self, what: str, terms: Optional[Dict[str, float]]) -> bool:
        where = f"epoch {self.epoch + 1}, batch {self.batch_idx + 1}"
        detail = ", ".join(f"{k}={v:.4g}" for k, v in (terms or {}).items())
        if self.cfg.TRAIN.NONFINITE == "skip":
            self.skipped_steps += 1
            self.model_zero_grad()
            print(f"Warning: {what} at {where} ({detail}); step skipped (TRAIN.NONFINITE skip)")
            return False
        raise NonFiniteError(
            f"{what} at {where} ({detail}); training stopped before saving (lower OPTIM.LR, use TRAIN.PRECISION fp32, "
            "or set TRAIN.NONFINITE skip)"
        )

    # ---- training loop ---------------------------------------------------------------------------------------
    def train(self) -> None:
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            if int(self.cfg.SEED) >= 0:  # each epoch is a function of (seed, epoch, rank): resume is exact
                set_random_seed(dist.rank_seed(int(self.cfg.SEED) * 1000 + self.epoch))  # own augmentation per rank
            self.before_epoch()
            self.run_epoch()
            for sched in self._scheds.values():
                if sched is not None:
                    sched.step()
            self.after_epoch()
        self.after_train()

    def before_train(self) -> None:
        self.resume()
        if self.world_size > 1:  # every rank starts from rank 0's prompts (an unseeded run draws them per process)
            dist.broadcast_parameters([p for m in self._models.values() for p in m.parameters() if p.requires_grad])
            if int(self.cfg.SEED) < 0:  # unseeded: torch's start-up seed is the same in every process
                set_random_seed(random.randrange(2**62))  # Python's own RNG is seeded from the OS per process
        if dist.is_main():
            try:
                from torch.utils.tensorboard import SummaryWriter  # optional dependency (the tensorboard package)

                self.writer = SummaryWriter(os.path.join(self.output_dir, "tensorboard"))
            except ImportError:
                self.writer = None
        self.time_start = time.time()

    def after_train(self) -> None:
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            print("Deploy the last-epoch model")
            self.loaded_epoch = self.max_epoch
            self.test()
        elapsed = str(datetime.timedelta(seconds=round(time.time() - self.time_start)))
        print(f"Elapsed: {elapsed}")
        if self.writer is not None:
            self.writer.close()

    def run_epoch(self) -> None:
        self.set_model_mode("train")
        meter = MetricMeter()
        loader = self.dm.train_loader(self.epoch, int(self.cfg.SEED))
        self.num_batches = len(loader)
        if self.num_batches == 0:
            raise UserError("the training loader is empty (fewer images than one batch? lower DATALOADER.TRAIN_X.BATCH_SIZE)")
        end = time.time()
        batch_time = data_time = 0.0
        for self.batch_idx, batch in enumerate(loader):
            data_time = time.time() - end
            values = self.forward_backward(batch)
            if self.world_size > 1:  # the global batch's averages, as a single process would log them
                values = dist.reduce_metrics(values)
            meter.update(values)
            self.after_step(values)
            batch_time = time.time() - end
            end = time.time()
            freq = int(self.cfg.TRAIN.PRINT_FREQ)
            if dist.is_main() and ((self.batch_idx + 1) % freq == 0 or self.num_batches < freq
                                   or self.batch_idx + 1 == self.num_batches):
                remaining = (self.num_batches - self.batch_idx - 1) + (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time * remaining)))
                print(f"epoch [{self.epoch + 1}/{self.max_epoch}] batch [{self.batch_idx + 1}/{self.num_batches}] "
                      f"time {batch_time:.3f} data {data_time:.3f} {meter} lr {self.get_current_lr():.4e} eta {eta}")
            if self.writer is not None:
                step = self.epoch * self.num_batches + self.batch_idx
                for k, v in values.items():
                    self.writer.add_scalar(f"train/{k}", v, step)
                self.writer.add_scalar("train/lr", self.get_current_lr(), step)
        self.epoch_summary = meter.averages()
        if dist.is_main():
            summary = " ".join(f"{k} {v:.4f}" for k, v in self.epoch_summary.items())
            print(f"epoch [{self.epoch + 1}/{self.max_epoch}] summary: {summary}")

    # ---- evaluation ------------------------------------------------------------------------------------------
    def test(self, split: Optional[str] = None) -> float:
        """Clean accuracy and, for each configured test attack, robust accuracy on the same images.

        Not wrapped in no_grad (attacks need input gradients); parameters get no gradients.
        """
        self.set_model_mode("eval")
        loader = self.val_loader if split == "val" and self.val_loader is not None else self.test_loader
        name = "val" if loader is self.val_loader and split == "val" else "test"
        specs = self.test_attacks
        print(f"Evaluate on the *{name}* set")
        classifier = self.evaluated_target()
        module = self.model if isinstance(getattr(self, "model", None), nn.Module) else None
        per_sample = evaluate(classifier, loader, specs, self.device, module=module, autocast=self.autocast,
                              desc=name, show_progress=dist.is_main(), attack_autocast=self.test_attack_autocast)
        per_sample = dist.gather_per_sample(per_sample)
        if not dist.is_main():
            return 0.0
        clean = clean_summary(per_sample["pred"], per_sample["label"])
        robust = robust_results(per_sample, specs, classifier)
        # clean-correct AND robust to every attack
        worst = worst_case([clean_correct(per_sample), *attack_correct(per_sample, len(specs))]) if specs else None
        print_result_block(clean, robust)
        self.write_results(name, clean, robust, worst, self.per_image_record(name, per_sample, len(specs), worst))
        if self.writer is not None:
            self.writer.add_scalar(f"{name}/accuracy", clean["accuracy"], self.epoch)
            for r in robust:
                self.writer.add_scalar(f"{name}/robust_accuracy/{r['name']}", r["accuracy"], self.epoch)
        return clean["accuracy"]
