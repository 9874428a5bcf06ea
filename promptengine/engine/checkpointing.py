"""The trainer's side of checkpoints: saving its models, loading them for evaluation, resuming a run.

Mixed into ``TrainerX`` (the file format itself is ``checkpoint.py``). Needs ``cfg``, ``output_dir``, ``classnames``,
``scaler``, the registered models, optimizers and schedulers, and the identity checks of ``RunRecordsMixin``.
"""

from __future__ import annotations

import os
from typing import Optional

from .. import distributed as dist
from ..errors import UserError
from . import checkpoint as ckpt


class CheckpointsMixin:
    """``save_model``, ``load_model`` (``--eval-only``), ``resume`` (exact resume from the newest readable checkpoint)."""

    def save_model(self, epoch: int, directory: str, is_best: bool = False, val_result=None) -> None:
        if not dist.is_main():
            return
        for name, model in self._models.items():
            state = {
                "format": ckpt.FORMAT,
                "trainer": type(self).__name__,
                "state_dict": ckpt.learnable_state(model),
                "epoch": epoch + 1,
                "optimizer": self._optims[name].state_dict() if self._optims[name] is not None else None,
                "scheduler": self._scheds[name].state_dict() if self._scheds[name] is not None else None,
                "scaler": self.scaler.state_dict(),
                "rng": ckpt.rng_state(),
                "val_result": val_result,
                "classnames": list(self.classnames),
                "identity": self.training_identity,
                "extra": self.extra_state(),
            }
            fname = "model-best.pth.tar" if is_best else f"model.pth.tar-{epoch + 1}"
            ckpt.atomic_save(state, os.path.join(directory, name, fname))
            if not is_best:
                ckpt.write_pointer(directory, name, fname)

    def _check_trainer(self, state: dict, path: str) -> None:
        if state.get("trainer") != type(self).__name__:
            raise UserError(
                f"checkpoint {path} was written by trainer {state.get('trainer')}, not {type(self).__name__} "
                f"(pass --trainer {state.get('trainer')})"
            )

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        """Load learnable parameters for evaluation (``--model-dir``/``--load-epoch``)."""
        if not directory:
            raise UserError("--eval-only of a trained model needs --model-dir (the training output dir)")
        if not os.path.isdir(directory):
            raise UserError(f"--model-dir {directory} does not exist")
        for name, model in self._models.items():
            path = ckpt.checkpoint_path(directory, name, epoch)
            state = ckpt.safe_load(path)
            self._check_trainer(state, path)
            self.check_eval_identity(state, path)
            self._weights_epoch = state["epoch"]
            print(f"Loading weights to {name} from \"{path}\" (epoch = {state['epoch']})")
            ckpt.load_learnable_state(model, state["state_dict"], path)
            self.loaded_epoch = state["epoch"]

    def resume_model_if_exist(self, directory: str) -> int:
        """Restore the newest readable checkpoint (a corrupt newest one falls back to the previous).

        Each checkpoint's training identity must equal this run's: another run's prompts are never resumed. With
        ``--override-identity`` such checkpoints are left alone (``superseded`` says why) and training starts from
        scratch; ``train.py`` sets them aside before this run writes its own.
        """
        names = self.get_model_names()
        epochs = ckpt.available_epochs(directory, names[0]) if names else []
        for ep in reversed(epochs):
            try:
                states = {n: ckpt.safe_load(ckpt.checkpoint_path(directory, n, ep)) for n in names}
            except ckpt.CorruptCheckpoint as exc:
                print(f"Warning: {exc}; trying the previous checkpoint")
                continue
            for n, state in states.items():
                self._check_trainer(state, directory)
                why = self.check_resume_identity(state, ckpt.checkpoint_path(directory, n, ep))
                if why is not None:
                    self.superseded = why
                    return 0
            for n, state in states.items():
                ckpt.load_learnable_state(self._models[n], state["state_dict"], directory)
                if self._optims[n] is not None and state["optimizer"] is not None:
                    self._optims[n].load_state_dict(state["optimizer"])
                if self._scheds[n] is not None and state["scheduler"] is not None:
                    self._scheds[n].load_state_dict(state["scheduler"])
                self.scaler.load_state_dict(state["scaler"])
                ckpt.set_rng_state(state["rng"])
            self.load_extra_state(states[names[0]].get("extra") or {})
            print(f"Resuming from epoch {ep} ({directory})")
            return ep
        return 0

    def resume(self) -> int:
        """Resume from ``--resume DIR`` (which must hold a usable checkpoint) or from the output dir if it has one.

        Idempotent: ``train.py`` calls it before anything is written, ``before_train`` for Dassl-style callers.
        """
        if getattr(self, "_resumed", None) is not None:
            return self._resumed
        explicit = str(self.cfg.RESUME or "")
        if explicit:
            if os.path.isfile(explicit):
                raise UserError(f"--resume {explicit} is a file; pass the run's output folder (the one holding "
                                f"{'/'.join(self.get_model_names()[:1]) or '<model>'}/checkpoint)")
            if not os.path.isdir(explicit):
                raise UserError(f"--resume {explicit} does not exist (pass a training output folder, or drop --resume "
                                "to start from scratch)")
        directory = explicit or self.output_dir
        epoch = self.resume_model_if_exist(directory) if directory else 0
        if self.superseded is not None:
            if explicit:
                raise UserError(f"{self.superseded}; --override-identity never resumes another run's checkpoint "
                                "(its weights would be reported under this run's settings): drop --resume to train "
                                "from scratch under this run's identity")
            print(f"Note: --override-identity: {self.superseded}; training from scratch under this run's identity "
                  "(that run's checkpoints are kept aside)")
        if explicit and epoch == 0:
            raise UserError(f"--resume {explicit} holds no usable checkpoint (expected <model>/model.pth.tar-<epoch>; "
                            "drop --resume to start from scratch)")
        self._resumed = self.start_epoch = epoch
        return epoch
