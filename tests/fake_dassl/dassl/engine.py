"""``dassl.engine``: ``TRAINER_REGISTRY``, ``build_trainer`` and the trainer classes
``TrainerBase`` -> ``SimpleTrainer`` -> ``TrainerX`` with Dassl's lifecycle:

``__init__``: check_cfg(cfg) (before ``self.cfg`` is set), device, build_data_loader, build_model, evaluator.
``train()``: before_train (resume from OUTPUT_DIR or RESUME), per epoch before_epoch / run_epoch / after_epoch
(checkpoint at CHECKPOINT_FREQ and at the last epoch), after_train (``test()`` unless TEST.NO_TEST).
``run_epoch`` calls ``forward_backward(batch)`` per batch; the scheduler steps only when a trainer calls
``update_lr()``. ``test()`` runs under ``torch.no_grad`` through parse_batch_test / model_inference / evaluator
and returns the evaluator's first value.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch

from .data import DataManager
from .evaluation import build_evaluator
from .utils import Registry, load_checkpoint, resume_from_checkpoint, save_checkpoint

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)


class TrainerBase:
    def __init__(self):
        self._models, self._optims, self._scheds = OrderedDict(), OrderedDict(), OrderedDict()
        self._writer = None

    def register_model(self, name="model", model=None, optim=None, sched=None):
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        assert name not in self._models, "Found duplicate model names"
        self._models[name], self._optims[name], self._scheds[name] = model, optim, sched

    def get_model_names(self, names=None):
        if names is None:
            return list(self._models)
        names = [names] if isinstance(names, str) else list(names)
        for n in names:
            assert n in self._models
        return names

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint({"state_dict": self._models[name].state_dict(), "epoch": epoch + 1,
                             "optimizer": optim.state_dict() if optim is not None else None,
                             "scheduler": sched.state_dict() if sched is not None else None,
                             "val_result": val_result},
                            os.path.join(directory, name), is_best=is_best, model_name=model_name)

    def resume_model_if_exist(self, directory):
        names = self.get_model_names()
        if not all(os.path.exists(os.path.join(directory, n)) for n in names):  # Dassl checks the folders only
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        epoch = 0
        for n in names:
            epoch = resume_from_checkpoint(os.path.join(directory, n), self._models[n], self._optims[n],
                                           self._scheds[n])
        return epoch

    def load_model(self, directory, epoch=None):
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        fname = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for n in self.get_model_names():
            state = load_checkpoint(os.path.join(directory, n, fname))
            print(f"Load {fname} to {n} (epoch={state['epoch']}, val_result={state['val_result']:.1f})")
            self._models[n].load_state_dict(state["state_dict"])

    def set_model_mode(self, mode="train", names=None):
        for n in self.get_model_names(names):
            if mode == "train":
                self._models[n].train()
            elif mode in ("test", "eval"):
                self._models[n].eval()
            else:
                raise KeyError(mode)

    def update_lr(self, names=None):
        for n in self.get_model_names(names):
            if self._scheds[n] is not None:
                self._scheds[n].step()

    def detect_anomaly(self, loss):
        if not torch.isfinite(loss).all():
            raise FloatingPointError("Loss is infinite or NaN!")

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def train(self, start_epoch, max_epoch):
        self.start_epoch, self.max_epoch = start_epoch, max_epoch
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def model_zero_grad(self, names=None):
        for n in self.get_model_names(names):
            if self._optims[n] is not None:
                self._optims[n].zero_grad()

    def model_backward(self, loss):
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None):
        for n in self.get_model_names(names):
            if self._optims[n] is not None:
                self._optims[n].step()

    def model_backward_and_update(self, loss, names=None):
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        self.device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -float("inf")

    def check_cfg(self, cfg):
        pass

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x, self.train_loader_u = dm.train_loader_x, dm.train_loader_u
        self.val_loader, self.test_loader = dm.val_loader, dm.test_loader
        self.num_classes, self.num_source_domains = dm.num_classes, dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self):
        raise NotImplementedError("the stand-in has no SimpleNet; trainers build their own model")

    def train(self):
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self):
        self.start_epoch = self.resume_model_if_exist(self.cfg.RESUME or self.cfg.OUTPUT_DIR)

    def after_train(self):
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            print("Deploy the last-epoch model")
            self.test()

    def after_epoch(self):
        last = (self.epoch + 1) == self.max_epoch
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        if last or (freq > 0 and (self.epoch + 1) % freq == 0):
            self.save_model(self.epoch, self.output_dir)

    @torch.no_grad()
    def test(self, split=None):
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            loader = self.val_loader
        else:
            split, loader = "test", self.test_loader
        print(f"Evaluate on the *{split}* set")
        for batch in loader:
            input, label = self.parse_batch_test(batch)
            self.evaluator.process(self.model_inference(input), label)
        results = self.evaluator.evaluate()
        for k, v in results.items():
            self.write_scalar(f"{split}/{k}", v, self.epoch)
        return list(results.values())[0]

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names=None):
        return self._optims[self.get_model_names(names)[0]].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    def run_epoch(self):
        self.set_model_mode("train")
        self.num_batches = len(self.train_loader_x)
        for self.batch_idx, batch in enumerate(self.train_loader_x):
            summary = self.forward_backward(batch)
            if (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0 or self.num_batches < self.cfg.TRAIN.PRINT_FREQ:
                terms = " ".join(f"{k} {v:.4f}" for k, v in summary.items())
                print(f"epoch [{self.epoch + 1}/{self.max_epoch}] batch [{self.batch_idx + 1}/{self.num_batches}] "
                      f"{terms} lr {self.get_current_lr():.4e}")

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device), batch["domain"].to(self.device)
