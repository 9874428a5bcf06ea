"""TAPT: test-time adversarial prompt tuning (Wang et al., CVPR 2025, "TAPT: Test-Time Adversarial Prompt Tuning for
Robust Inference in Vision-Language Models").

Training is AdvVLP's (``TAPT``: IVLP text and vision prompts on TeCoA's PGD examples) or AdvMaPLe's (``TAPTMaPLe``:
coupled MaPLe prompts; the authors' TAPTVLI and TAPTVLJ); at the end of training the per-layer
mean and variance of the vision tower's tokens are measured on the clean and on the adversarial training images (with
the trained prompts) and saved with the prompts. At test time, for each image, the prompts are tuned for one AdamW
step on the image and its augmented views (random resized crops and flips): the marginal entropy of the most
confident views (TPT's selection) plus an L1 alignment of those views' per-layer token mean/variance with the clean
and the adversarial training statistics; the tuned prompts then classify the original image, and the next image
starts again from the trained prompts. Defaults are the authors' (``TRAINER.TAPT.*``, evaluation settings).
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from yacs.config import CfgNode as CN

from promptengine.attacks.forward import Forward
from promptengine.clip.model import PromptedCLIP
from promptengine.config.domains import Int, Real
from promptengine.errors import UserError
from promptengine.evaluation.testtime import Budget, TestTimeDefense
from promptengine.registry import TRAINER_REGISTRY

from .ivlp import AdvVLP
from .maple import AdvMaPLe

Moments = Tuple[torch.Tensor, torch.Tensor]  # per-layer token means and variances, each (L, T, D)


# ---------------------------------------------------------------------- the test-time loss
def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the views' average predicted distribution (TPT's loss): H(mean_v softmax(logits_v))."""
    log_probs = logits.float().log_softmax(dim=1)
    avg = log_probs.logsumexp(dim=0) - math.log(logits.shape[0])
    avg = avg.clamp_min(torch.finfo(avg.dtype).min)
    return -(avg * avg.exp()).sum()


def confident_views(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the ``fraction`` of views with the lowest prediction entropy (at least one), most confident first."""
    entropy = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
    keep = max(1, int(logits.shape[0] * fraction))
    return torch.argsort(entropy.detach(), stable=True)[:keep]


def view_moments(layers: Sequence[torch.Tensor], idx: torch.Tensor) -> Moments:
    """Per-layer mean and (biased) variance over the selected views of each block's input tokens ((T, V, D) each)."""
    sel = [t[:, idx].float() for t in layers]
    means = torch.stack([t.mean(dim=1) for t in sel])
    return means, torch.stack([((t - m[:, None]) ** 2).mean(dim=1) for t, m in zip(sel, means)])


def alignment_loss(out: Moments, target: Moments, first: int, last: int) -> torch.Tensor:
    """sum over layers first..last-2 of 0.5 |mean - target mean|_1 + 0.5 |var - target var|_1 (element averages),
    the authors' layer range ``range(first, last - 1)``."""
    terms = [0.5 * F.l1_loss(out[0][k], target[0][k]) + 0.5 * F.l1_loss(out[1][k], target[1][k])
             for k in range(first, last - 1)]
    return torch.stack(terms).sum()


def tapt_loss(logits: torch.Tensor, layers: Sequence[torch.Tensor], clean: Moments, adv: Moments, entropy_frac: float,
              align_frac: float, weight: float, gamma: float, first: int, last: int) -> torch.Tensor:
    """The per-image objective: marginal entropy of the confident views + weight / (last - first) *
    (gamma * alignment to the adversarial statistics + (1 - gamma) * alignment to the clean ones)."""
    loss = marginal_entropy(logits[confident_views(logits, entropy_frac)])
    moments = view_moments(layers, confident_views(logits, align_frac))
    align = gamma * alignment_loss(moments, adv, first, last) + (1 - gamma) * alignment_loss(moments, clean, first, last)
    return loss + weight / (last - first) * align


# ---------------------------------------------------------------------- views and the optimiser
def resized_crop_views(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """(1 + n, C, H, W): the image, then ``n`` random resized crops (scale 0.08-1, aspect 3/4-4/3, torchvision's
    sampling) resized back to H x W, each flipped horizontally with probability 1/2; differentiable in ``x``."""
    _, _, h, w = x.shape
    views = [x]
    for _ in range(n):
        top, left, ch, cw = 0, 0, h, w
        for _attempt in range(10):
            r = torch.rand(4, generator=generator, device=x.device).tolist()
            area = h * w * (0.08 + r[0] * 0.92)
            ratio = math.exp(math.log(3 / 4) + r[1] * (math.log(4 / 3) - math.log(3 / 4)))
            cw_, ch_ = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if 0 < cw_ <= w and 0 < ch_ <= h:
                top, left, ch, cw = int(r[2] * (h - ch_ + 1)), int(r[3] * (w - cw_ + 1)), ch_, cw_
                break
        view = F.interpolate(x[:, :, top:top + ch, left:left + cw], size=(h, w), mode="bilinear",
                             align_corners=False)
        if float(torch.rand(1, generator=generator, device=x.device)) < 0.5:
            view = view.flip(-1)
        views.append(view)
    return torch.cat(views)


def adamw_step(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr: float,
               weight_decay: float, betas: Tuple[float, float] = (0.9, 0.999),
               eps: float = 1e-8) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.optim.AdamW's update (step ``t`` from 1), written out so an attack can differentiate through it."""
    p = p * (1 - lr * weight_decay)
    m = betas[0] * m + (1 - betas[0]) * g
    v = betas[1] * v + (1 - betas[1]) * g * g
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


# ---------------------------------------------------------------------- the defense
class BlockInputs:
    """While entered: records the input of every vision block (after its prompts are inserted), in order."""

    def __init__(self, blocks: nn.ModuleList) -> None:
        self.blocks, self.seen, self.handles = blocks, [], []

    def __enter__(self) -> List[torch.Tensor]:
        self.seen = []
        self.handles = [b.register_forward_pre_hook(lambda module, args: self.seen.append(args[0])) for b in self.blocks]
        return self.seen

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


class PromptTuning(TestTimeDefense):
    """TAPT around a prompted CLIP: per image, tunes all its prompts and classifies the image with them."""

    def __init__(self, model: PromptedCLIP, base: Forward, stats: Dict[str, Moments], budget: Budget, weight_decay: float,
                 entropy_frac: float, align_frac: float, weight: float, gamma: float, layers: Tuple[int, int],
                 seed: int) -> None:
        object.__setattr__(self, "model", model)  # a reference, not a submodule (the trainer owns it)
        super().__init__(base, budget, seed)
        self.stats, self.weight_decay = stats, weight_decay
        self.fractions, self.weight, self.gamma, self.layers = (entropy_frac, align_frac), weight, gamma, layers

    def adapted_parameters(self) -> List[torch.Tensor]:
        return [p for p in self.model.prompt_learner.parameters() if p.requires_grad]

    def _forward(self, x: torch.Tensor, params: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(x, functional_call(self.model.prompt_learner, params, ()))

    def adapt_and_predict(self, x: torch.Tensor, generators: List[torch.Generator]) -> torch.Tensor:
        names = [n for n, p in self.model.prompt_learner.named_parameters() if p.requires_grad]
        # clones: the seam restores the parameters in place before the next image, while an attack's graph of this
        # image still needs the values it was built from
        params = {n: p.clone() for n, p in self.model.prompt_learner.named_parameters() if p.requires_grad}
        views = resized_crop_views(x, self.budget.augmentations, generators[0])
        moments = {k: [m.detach() for m in v] for k, v in self.stats.items()}
        state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
        for step in range(self.budget.steps):
            keep = self.unrolled(step)
            current = {n: p if keep else p.detach().requires_grad_(True) for n, p in params.items()}
            with BlockInputs(self.model.backbone.clip.visual.transformer.resblocks) as layers:
                logits = self._forward(views if keep else views.detach(), current)
            loss = tapt_loss(logits, layers, moments["clean"], moments["adv"], *self.fractions,
                             self.weight, self.gamma, *self.layers)
            grads = self.grad(loss, [current[n] for n in names], step)
            for n, g in zip(names, grads):
                m, v = state[n]
                params[n], m, v = adamw_step(current[n], g, m, v, step + 1, self.budget.lr, self.weight_decay)
                state[n] = (m, v) if keep else (m.detach(), v.detach())
        return self._forward(x, params)


# ---------------------------------------------------------------------- the trainer
class FeatureStatistics(nn.Module):
    """The training images' per-layer token mean/variance (clean and adversarial), saved with the prompts."""

    def __init__(self, layers: int, tokens: int, width: int) -> None:
        super().__init__()
        shape = (layers, tokens, width)
        for name in ("clean_mean", "clean_var", "adv_mean", "adv_var"):
            setattr(self, name, nn.Parameter(torch.zeros(shape)))  # "learnable" only so that checkpoints hold them
        self.images = nn.Parameter(torch.zeros(()))

    def moments(self) -> Dict[str, Moments]:
        return {"clean": (self.clean_mean, self.clean_var), "adv": (self.adv_mean, self.adv_var)}


class RunningMoments:
    """Per-layer token sums over images, for the mean and the sample variance (the authors' n - 1)."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def add(self, layers: Sequence[torch.Tensor]) -> None:
        x = torch.stack([t.detach().double() for t in layers], dim=1)  # (T, L, B, D) -> sums over B
        self.n += x.shape[2]
        self.s = self.s + x.sum(dim=2)
        self.ss = self.ss + (x * x).sum(dim=2)

    def result(self) -> Moments:
        mean = self.s / self.n
        var = (self.ss - self.n * mean * mean) / max(self.n - 1, 1)
        return mean.permute(1, 0, 2).float(), var.clamp_min(0).permute(1, 0, 2).float()


class TestTimeTuned:
    """Mixed in before an adversarial prompt trainer: trains as it does, measures the training statistics at the end,
    and evaluates behind per-image prompt tuning (TAPT); evaluation is per image and slow by design."""

    test_time_node = "TAPT"  # TRAINER.TAPT.* are evaluation settings (a budget change retrains nothing)

    config_domains = {
        "TRAINER.TAPT.STEPS": Int(0),
        "TRAINER.TAPT.LR": Real(0),
        "TRAINER.TAPT.WEIGHT_DECAY": Real(0),
        "TRAINER.TAPT.VIEWS": Int(1, meaning="the image plus VIEWS - 1 augmented views"),
        "TRAINER.TAPT.ENTROPY_SELECT": Real(0, 1),
        "TRAINER.TAPT.ALIGN_SELECT": Real(0, 1),
        "TRAINER.TAPT.ALIGN_WEIGHT": Real(0),
        "TRAINER.TAPT.GAMMA": Real(0, 1),
        "TRAINER.TAPT.ALIGN_LAYER_FROM": Int(0),
        "TRAINER.TAPT.ALIGN_LAYER_TO": Int(2),
    }

    @staticmethod
    def extend_cfg(cfg) -> None:  # the prompts' keys are the base trainer's (TRAINER.IVLP.*, TRAINER.ADVMAPLE.*)
        cfg.TRAINER.TAPT = CN()
        cfg.TRAINER.TAPT.STEPS = 1  # test-time tuning steps per image (TTA_STEPS)
        cfg.TRAINER.TAPT.LR = 5e-4  # AdamW learning rate (the authors' TAPT configs)
        cfg.TRAINER.TAPT.WEIGHT_DECAY = 0.01  # AdamW's default, as the authors' optimiser
        cfg.TRAINER.TAPT.VIEWS = 64  # the image + 63 augmented views (TAPT.BATCH_SIZE)
        cfg.TRAINER.TAPT.ENTROPY_SELECT = 0.1  # the most confident 10% of the views enter the entropy
        cfg.TRAINER.TAPT.ALIGN_SELECT = 0.1  # ... and the statistics alignment
        cfg.TRAINER.TAPT.ALIGN_WEIGHT = 100.0  # DISTR_LOSS_W, divided by the number of aligned layers' span
        cfg.TRAINER.TAPT.GAMMA = 0.5  # 1 = align to the adversarial statistics only, 0 = to the clean ones only
        cfg.TRAINER.TAPT.ALIGN_LAYER_FROM = 0
        cfg.TRAINER.TAPT.ALIGN_LAYER_TO = 9  # blocks FROM..TO-2 are aligned (the authors' range(FROM, TO - 1))

    def build_model(self) -> None:
        super().build_model()
        backbone = self.backbone
        tokens = 1 + backbone.vision_grid ** 2 + self.model.spec.vision_n_ctx
        self.statistics = FeatureStatistics(backbone.vision_layers, tokens, backbone.vision_width).to(self.device)
        self.register_model("feature_statistics", self.statistics)  # no optimizer: measured, not trained

    def after_epoch(self) -> None:
        if self.epoch + 1 == self.max_epoch:  # before the last checkpoint is written
            self.measure_statistics()
        super().after_epoch()

    def prepare_defense(self) -> None:
        self.measure_statistics()

    def measure_statistics(self) -> None:
        """Token mean/variance per vision block on the training images, clean and under the training attack."""
        self.set_model_mode("eval")
        blocks = self.backbone.clip.visual.transformer.resblocks
        runs = {"clean": RunningMoments(), "adv": RunningMoments()}
        for self.batch_idx, batch in enumerate(self.dm.train_loader(self.epoch, int(self.cfg.SEED))):
            x, y = self.parse_batch_train(batch)
            bundle = self.model.prompts().detached()
            text = self.model.text_features(bundle).detach()
            for kind, images in (("clean", x), ("adv", self.adversarial(x, y, bundle, text))):
                with torch.no_grad(), BlockInputs(blocks) as layers:
                    self.model.image_features(images, bundle)
                runs[kind].add(layers)
        with torch.no_grad():
            for kind, run in runs.items():
                mean, var = run.result()
                getattr(self.statistics, f"{kind}_mean").copy_(mean)
                getattr(self.statistics, f"{kind}_var").copy_(var)
            self.statistics.images.fill_(runs["clean"].n)
        print(f"TAPT statistics measured on {runs['clean'].n} training images (clean and adversarial)")

    @staticmethod
    def defend(trainer, classifier: Forward) -> PromptTuning:
        """Per-image prompt tuning of a TAPT run's prompts (its training statistics are needed)."""
        stats = getattr(trainer, "statistics", None)
        if stats is None or float(stats.images.detach()) == 0:  # not a TAPT run, or not finished
            raise UserError("TAPT needs the training statistics a finished TAPT run saves with its prompts: evaluate "
                            "a TAPT run (its --trainer and --model-dir <its folder>), or choose another TEST.DEFENSE")
        c = trainer.cfg.TRAINER.TAPT
        first, last = int(c.ALIGN_LAYER_FROM), int(c.ALIGN_LAYER_TO)
        if not first < last - 1 <= trainer.backbone.vision_layers:
            raise UserError(f"TRAINER.TAPT.ALIGN_LAYER_FROM {first} / ALIGN_LAYER_TO {last}: blocks FROM..TO-2 are "
                            f"aligned, so need FROM < TO - 1 <= {trainer.backbone.vision_layers} (the vision blocks)")
        budget = Budget(steps=int(c.STEPS), lr=float(c.LR), augmentations=int(c.VIEWS) - 1)
        return PromptTuning(trainer.model, classifier, stats.moments(), budget, float(c.WEIGHT_DECAY),
                            float(c.ENTROPY_SELECT), float(c.ALIGN_SELECT), float(c.ALIGN_WEIGHT), float(c.GAMMA),
                            (first, last), seed=int(trainer.cfg.SEED))


@TRAINER_REGISTRY.register()
class TAPT(TestTimeTuned, AdvVLP):
    """TAPT on AdvVLP's independent text and vision prompts (the authors' TAPTVLI on AdvIVLP)."""

    script_folder, default_config = "tapt", "vit_b16"


@TRAINER_REGISTRY.register()
class TAPTMaPLe(TestTimeTuned, AdvMaPLe):
    """TAPT on AdvMaPLe's coupled prompts (the authors' TAPTVLJ on AdvMaPLe); all its prompt parameters are tuned."""

    script_folder, default_config = "taptmaple", "vit_b16"

    def trainer_precision(self) -> str:
        return self.cfg.TRAINER.ADVMAPLE.PREC
