"""R-TPT: robust test-time prompt tuning (Sheng et al., CVPR 2025, "R-TPT: Improving Adversarial Robustness of
Vision-Language Models through Test-Time Prompt Tuning").

Per test image: the image plus N augmented views (random resized crops, flips); the CoOp text context, starting
from the evaluated model's (zero-shot "a photo of a" for the RTPT trainer; a trained CoOp run's under
``--trainer CoOp --eval-only --model-dir RUN TEST.DEFENSE RTPT``), takes AdamW steps that minimise
the *pointwise* entropy (the mean of the per-view entropies) of the most confident views: R-TPT splits TPT's marginal
entropy into that term and a divergence term, and drops the divergence, which conflicts under attack. The
prediction is a reliability-weighted ensemble of the tuned logits of every view: a view whose image embedding is
close to its nearest other views is reliable (weight = softmax over views of the mean cosine similarity to its
``NEIGHBOURS`` most similar other views, divided by ``TEMPERATURE``). Paper defaults: 63 views + the image, 1 step of
AdamW at lr 5e-3, the 10 % most confident views, 20 neighbours, temperature 0.01.
"""

from __future__ import annotations

from dataclasses import replace
from typing import List

import torch
from yacs.config import CfgNode as CN

from promptengine.attacks.forward import Forward
from promptengine.clip.couplings import COUPLINGS
from promptengine.clip.model import PromptedCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.config.domains import Int, Real
from promptengine.errors import UserError
from promptengine.evaluation.testtime import Budget, TestTimeDefense
from promptengine.evaluation.views import augmented_views
from promptengine.registry import TRAINER_REGISTRY

from .coop import CoOp, coop_spec

ADAMW_BETAS, ADAMW_EPS, ADAMW_DECAY = (0.9, 0.999), 1e-8, 0.01  # torch.optim.AdamW's defaults (the authors' optimiser)


def pointwise_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(N,) entropy of each view's softmax."""
    return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)


def confident_views(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the ``fraction`` of views with the lowest entropy (at least one), most confident first."""
    count = max(1, int(logits.shape[0] * fraction))
    return pointwise_entropy(logits.detach()).argsort()[:count]


def rtpt_loss(logits: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """R-TPT's test-time loss: the mean pointwise entropy of the chosen ``views`` (indices; the confident ones), with
    no divergence term (TPT's marginal entropy is this mean plus the views' divergence from their mean)."""
    return pointwise_entropy(logits[views]).mean()


def reliability_weights(features: torch.Tensor, neighbours: int, temperature: float) -> torch.Tensor:
    """(N,) ensemble weights from L2-normalised view embeddings (N, E): softmax(score / temperature), the score being
    the mean cosine similarity of a view to its ``neighbours`` most similar *other* views."""
    if features.shape[0] == 1:  # the image alone (no views): nothing to compare with
        return features.new_ones(1)
    sim = features @ features.t()
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    sim = sim.masked_fill(eye, float("-inf"))
    k = min(neighbours, sim.shape[0] - 1)
    score = sim.topk(k, dim=-1).values.mean(-1)
    return torch.softmax(score / temperature, dim=0)


def adamw_steps(param: torch.Tensor, grads: List[torch.Tensor], lr: float) -> torch.Tensor:
    """The parameter after AdamW steps from a fresh optimiser state (the authors reset it for every image), written
    out so that an attack can differentiate through it. ``grads``: one gradient per step taken so far."""
    b1, b2 = ADAMW_BETAS
    m = v = torch.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        # the tiny offset keeps sqrt differentiable at a zero gradient (no effect on the value in fp32)
        param = param * (1 - lr * ADAMW_DECAY) - lr * m_hat / ((v_hat + 1e-30).sqrt() + ADAMW_EPS)
    return param


class ReliableTPT(TestTimeDefense):
    """R-TPT around a CoOp-style ``PromptedCLIP``: its text context is what adapts (functionally, never in place)."""

    def __init__(self, model: PromptedCLIP, budget: Budget, selection: float, neighbours: int, temperature: float,
                 seed: int) -> None:
        super().__init__(model, budget, seed)
        self.selection, self.neighbours, self.temperature = selection, neighbours, temperature

    def adapted_parameters(self) -> List[torch.Tensor]:
        return [self.base.prompt_learner.ctx]

    def adapt_and_predict(self, x: torch.Tensor, generators: List[torch.Generator]) -> torch.Tensor:
        model: PromptedCLIP = self.base
        bundle = model.prompts()
        views = augmented_views(x, self.budget.augmentations, generators[0])
        feats = model.image_features(views, bundle)  # (N, E): text prompts do not change them
        ctx, grads, keep = bundle.text_ctx, [], None
        for step in range(self.budget.steps):
            f = feats if self.unrolled(step) else feats.detach()
            logits = model.logits_from_features(f, model.text_features(replace(bundle, text_ctx=ctx)))
            keep = confident_views(logits, self.selection) if keep is None else keep  # chosen once, at the start
            grads.append(self.grad(rtpt_loss(logits, keep), [ctx], step)[0])
            ctx = adamw_steps(bundle.text_ctx, grads, self.budget.lr)
        tuned = model.logits_from_features(feats, model.text_features(replace(bundle, text_ctx=ctx)))
        weights = reliability_weights(feats, self.neighbours, self.temperature)
        return (weights @ tuned).unsqueeze(0)


def tuned_context_model(trainer) -> PromptedCLIP:
    """The model whose text context R-TPT tunes: the trainer's ``PromptedCLIP`` with a learned CoOp-style context
    (``N_CTX`` > 0) that no meta-net shifts and no other prompt derives from; anything else is a one-line refusal."""
    model = getattr(trainer, "model", None)
    spec = model.spec if isinstance(model, PromptedCLIP) else None
    if spec is None or not spec.text_n_ctx or spec.conditional or COUPLINGS[spec.coupling].coupled:
        raise UserError(f"TEST.DEFENSE RTPT tunes a CoOp-style text context per image, and the {type(trainer).__name__}"
                        " model has none (no learned text context, or one a meta-net shifts or vision prompts derive "
                        "from); evaluate a CoOp run: --trainer CoOp --eval-only --model-dir RUN TEST.DEFENSE RTPT")
    return model


@TRAINER_REGISTRY.register()
class RTPT(CoOp):
    """Zero-shot CoOp prompts ("a photo of a") defended by R-TPT at test time (nothing to train; evaluate with
    --eval-only); ``TEST.DEFENSE RTPT`` puts the same defense on a trained CoOp run."""

    script_folder, default_config = "rtpt", "vit_b16"
    test_time_node = "RTPT"  # TRAINER.RTPT.* are evaluation settings; TEST.DEFENSE RTPT defends a CoOp run
    training_free = True
    removed_keys = {key: (default, "evaluate the CoOp run behind R-TPT instead: --trainer CoOp --eval-only "
                                   "--model-dir RUN TEST.DEFENSE RTPT")
                    for key, default in (("TRAINER.RTPT.PROMPTS", ""), ("TRAINER.RTPT.PROMPTS_EPOCH", 0))}

    config_domains = {
        "TRAINER.RTPT.VIEWS": Int(0, meaning="augmented views besides the image itself"),
        "TRAINER.RTPT.STEPS": Int(0),
        "TRAINER.RTPT.LR": Real(0),
        "TRAINER.RTPT.SELECTION": Real(0, 1, low_open=True),
        "TRAINER.RTPT.NEIGHBOURS": Int(1),
        "TRAINER.RTPT.TEMPERATURE": Real(0, low_open=True),
    }

    @staticmethod
    def extend_cfg(cfg) -> None:  # the prompts' keys are CoOp's (TRAINER.COOP.*, declared by CoOp)
        cfg.TRAINER.RTPT = CN()
        cfg.TRAINER.RTPT.VIEWS = 63  # augmented views per image, plus the image itself
        cfg.TRAINER.RTPT.STEPS = 1  # AdamW steps on the text context per image
        cfg.TRAINER.RTPT.LR = 5e-3
        cfg.TRAINER.RTPT.SELECTION = 0.1  # the share of most confident views in the entropy loss
        cfg.TRAINER.RTPT.NEIGHBOURS = 20  # nearest other views in a view's reliability score
        cfg.TRAINER.RTPT.TEMPERATURE = 0.01  # softmax temperature of the reliability weights

    def prompt_spec(self) -> PromptSpec:
        spec = coop_spec(self.cfg.TRAINER.COOP)
        if not spec.text_n_ctx:
            raise UserError("RTPT tunes the text context: set TRAINER.COOP.N_CTX > 0 or TRAINER.COOP.CTX_INIT "
                            '(e.g. "a photo of a")')
        return spec

    @staticmethod
    def defend(trainer, classifier: Forward) -> ReliableTPT:
        """R-TPT on the text context of the trainer's model (its own zero-shot one, or a loaded CoOp run's); the
        defense predicts from that model itself, so ``classifier`` (its undefended logits) is not wrapped."""
        c = trainer.cfg.TRAINER.RTPT
        budget = Budget(steps=int(c.STEPS), lr=float(c.LR), augmentations=int(c.VIEWS))
        return ReliableTPT(tuned_context_model(trainer), budget, float(c.SELECTION), int(c.NEIGHBOURS),
                           float(c.TEMPERATURE), seed=int(trainer.cfg.SEED))

    def train(self) -> None:
        print("RTPT has nothing to train; evaluating")
        self.loaded_epoch = None
        self.test()
