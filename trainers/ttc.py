"""TTC: test-time counterattacks (Xing et al., CVPR 2025, "CLIP is Strong Enough to Fight Back").

Training-free: before predicting, each image is pushed *away* from its own CLIP image embedding by a few signed
gradient steps inside an eps ball (the counterattack). An adversarial image is "falsely stable" (random noise
moves its embedding little), so the noise sensitivity tau = ||f(x + d0) - f(x)|| / ||f(x)|| decides: below the
threshold the counterattack steps are averaged with weights exp(beta * t) (later steps count more); at or above
it only the random start d0 is kept. Paper defaults: eps 4/255, 2 steps of 1/255, tau threshold 0.2, beta 2.

The trainer is zero-shot CLIP defended by the counterattack; ``TEST.DEFENSE TTC`` puts the same defense on any other
run at evaluation (a trained CoOp, APT, AdvVLP, MaPLe or CAPT loaded with ``--eval-only --model-dir``), whose image
embedding (with its vision prompts) the counterattack then pushes.
"""

from __future__ import annotations

from typing import Callable, List

import torch
from yacs.config import CfgNode as CN

from promptengine.attacks import from_255
from promptengine.attacks.forward import Forward
from promptengine.clip.model import PromptedCLIP
from promptengine.config.domains import Int, Real
from promptengine.evaluation.testtime import Budget, TestTimeDefense
from promptengine.registry import TRAINER_REGISTRY

from .zsclip import ZeroshotCLIP


def embedding_shift(feats: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The counterattack's per-image loss ||f(x + d) - f(x)||^2 (B,): what each step increases."""
    return ((feats - ref) ** 2).sum(dim=1)


def noise_sensitivity(noisy: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """tau (B,): the relative embedding change under the random start, ||f(x + d0) - f(x)|| / ||f(x)||."""
    return (noisy - ref).norm(dim=1) / ref.norm(dim=1)


def step_weights(tau: torch.Tensor, tau_thres: float, beta: float, steps: int) -> torch.Tensor:
    """(B, steps + 1) weights of d0..d_steps: softmax(beta * t) when tau < tau_thres, else all on d0."""
    t = torch.arange(steps + 1, device=tau.device, dtype=torch.float32)
    soft = torch.softmax(beta * t, dim=0).expand(tau.shape[0], -1)
    hard = torch.zeros_like(soft)
    hard[:, 0] = 1.0
    return torch.where((tau < tau_thres)[:, None], soft, hard)


class Counterattack(TestTimeDefense):
    """TTC around any classifier ``base`` whose image embedding is ``encode`` (both take [0, 1] images)."""

    per_image = False  # each image's counterattack depends on that image only (losses are summed)

    def __init__(self, base: Forward, encode: Callable[[torch.Tensor], torch.Tensor], budget: Budget, eps: float,
                 tau_thres: float, beta: float, seed: int) -> None:
        super().__init__(base, budget, seed)
        self.encode, self.eps, self.tau_thres, self.beta = encode, eps, tau_thres, beta

    def _box(self, delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(delta.clamp(-self.eps, self.eps), 1 - x), -x)

    def adapt_and_predict(self, x: torch.Tensor, generators: List[torch.Generator]) -> torch.Tensor:
        noise = torch.stack([torch.empty(x.shape[1:], device=x.device).uniform_(-self.eps, self.eps, generator=g)
                             for g in generators])
        keep = self.unrolled(0)
        ref = self.encode(x).float()
        ref = ref if keep else ref.detach()
        delta = self._box(noise, x if keep else x.detach())
        deltas = [delta if keep else delta.detach()]
        tau = None
        for step in range(self.budget.steps):
            if not self.unrolled(step) or not delta.requires_grad:
                delta = delta.detach().requires_grad_(True)
            feats = self.encode(x.detach() + delta if not self.unrolled(step) else x + delta).float()
            if tau is None:
                tau = noise_sensitivity(feats.detach(), ref.detach())
            (grad,) = self.grad(embedding_shift(feats, ref).sum(), [delta], step)
            delta = self._box(delta + self.budget.lr * grad.sign(), x if self.unrolled(step) else x.detach())
            deltas.append(delta if self.unrolled(step) else delta.detach())
        if tau is None:  # no steps: random noise only
            return self.base(x + deltas[0])
        weights = step_weights(tau, self.tau_thres, self.beta, self.budget.steps)  # (B, steps + 1)
        counter = (weights.view(*weights.shape, *[1] * (x.dim() - 1)) * torch.stack(deltas, dim=1)).sum(dim=1)
        return self.base(x + counter)


@TRAINER_REGISTRY.register()
class TTC(ZeroshotCLIP):
    """Zero-shot CLIP defended by test-time counterattacks (nothing to train; evaluate with --eval-only)."""

    script_folder, default_config = "ttc", "vit_b16"
    test_time_node = "TTC"  # TRAINER.TTC.* are evaluation settings; TEST.DEFENSE TTC defends any run
    roles = ()
    upstream_names = ()
    training_free = True

    config_domains = {
        "TRAINER.TTC.EPS": Real(0, 255),
        "TRAINER.TTC.STEPS": Int(0),
        "TRAINER.TTC.STEP_SIZE": Real(0, 255),
        "TRAINER.TTC.TAU_THRES": Real(0),
        "TRAINER.TTC.BETA": Real(0),
    }

    @staticmethod
    def extend_cfg(cfg) -> None:  # TRAINER.ZEROSHOTCLIP.* (templates, precision) come from the parent
        cfg.TRAINER.TTC = CN()
        cfg.TRAINER.TTC.EPS = 4.0  # counterattack budget, /255 (L-inf)
        cfg.TRAINER.TTC.STEPS = 2  # counterattack steps per image
        cfg.TRAINER.TTC.STEP_SIZE = 1.0  # /255 per signed step
        cfg.TRAINER.TTC.TAU_THRES = 0.2  # counterattack only images whose noise sensitivity is below this
        cfg.TRAINER.TTC.BETA = 2.0  # step weights exp(beta * t)

    @staticmethod
    def defend(trainer, classifier: Forward) -> Counterattack:
        """The counterattack around ``classifier`` (any trainer's evaluated model), on that model's image embedding."""
        c = trainer.cfg.TRAINER.TTC
        budget = Budget(steps=int(c.STEPS), lr=from_255(c.STEP_SIZE))
        return Counterattack(classifier, image_encoder(trainer), budget, from_255(c.EPS), float(c.TAU_THRES),
                             float(c.BETA), seed=int(trainer.cfg.SEED))


def image_encoder(trainer) -> Callable[[torch.Tensor], torch.Tensor]:
    """The image embedding of the model a trainer evaluates: a prompted model's with its (fixed) vision prompts, else
    its CLIP's (zero-shot CLIP, a tuned tower)."""
    model = getattr(trainer, "model", None)
    if isinstance(model, PromptedCLIP):
        bundle = model.prompts().detached()
        return lambda x: model.backbone.encode_image(x, bundle)
    return trainer.backbone.encode_image
