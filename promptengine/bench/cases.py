"""What the benchmark times: the engine's paths, the same work as isolated primitives, and a reference-style step.

Floor of the CAPT training step with K PGD steps (sum of the medians of isolated primitives):
    K x pgd_input_grad   image forward with detached prompts + gradient w.r.t. the input (the attack's steps)
  + 2 x image_train      prompted image forward + backward into the prompts (the clean and adversarial passes)
  + 1 x text_train       text forward over all K classes + backward into the prompts
  + 1 x frozen_forward   the frozen CLIP's image forward under no_grad (CAPT's guide)
Floor of PGD-k evaluation over n batches:
    1 x text_forward + n x (clean_forward + k x pgd_input_grad + adv_forward)
The reference-style steps do the same math as the engine step (same adversarial examples, same loss: both written
out independently of the attack core and of ``trainers.capt_loss``) but rebuild prompts and text features inside
every PGD iteration and in each training forward, as code built around ``model(x)`` does: ``reference``
back-propagates each PGD loss with ``loss.backward()`` (through the text encoder too, as APT's trainer does),
``reference_textfwd`` only takes the input gradient, ``reference_full77`` is ``reference`` without the context cut
(all 77 tokens, as such code runs).
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from ..attacks import AttackSpec, parse_spec
from ..attacks.losses import per_sample_loss
from ..clip.backbone import PromptBundle
from ..evaluation.robust import evaluate
from .setup import BenchSetup

TextFn = Callable[[PromptBundle], torch.Tensor]


# ---------------------------------------------------------------------- text with or without truncation
def text_features_at(model, bundle: PromptBundle, full: bool) -> torch.Tensor:
    """(K, E) text features computed on K+1 rows: the extra row's EOT sits at the last position when ``full``, so
    the whole 77-token context runs; otherwise it copies row 0 and the context is cut to the longest prompt.
    Both variants do the same number of rows, so their times compare like for like."""
    cp = model.prompt_learner.class_prompts
    emb = cp.assemble(bundle.text_ctx)
    eot = cp.eot_index
    last = emb.shape[1] - 1 if full else int(eot[0])
    emb = torch.cat([emb, emb[:1]])
    eot = torch.cat([eot, eot.new_tensor([last])])
    deep = [torch.cat([d, d[:1]]) if d.dim() == 3 else d for d in bundle.text_deep]
    feats = model.backbone.encode_text_embeddings(emb, eot, deep)[:-1]
    return F.normalize(feats, dim=-1)


def text_lengths(model) -> tuple:
    """(tokens kept after the cut, full context length)."""
    cp = model.prompt_learner.class_prompts
    return int(cp.eot_index.max()) + 1, int(cp.embeddings.shape[1])


# ---------------------------------------------------------------------- primitives
class Primitives:
    """Isolated pieces of the step, each on the setup's batch, prompts and precision."""

    def __init__(self, s: BenchSetup) -> None:
        self.s = s
        self.model = s.model
        self.autocast = s.trainer.autocast
        with torch.no_grad(), self.autocast():
            self.det = self.model.prompts().detached()
            self.text_det = self.model.text_features(self.det)
            clean = self.model.logits_from_features(self.model.image_features(s.x, self.det), self.text_det)
        self.clean_logp = torch.log_softmax(clean.float(), dim=1)

    def _zero(self) -> None:
        self.s.trainer.model_zero_grad()

    def pgd_input_grad(self, loss: str) -> None:
        z = self.s.x.clone().requires_grad_(True)
        with self.autocast():
            logits = self.model.logits_from_features(self.model.image_features(z, self.det), self.text_det)
        value = per_sample_loss(loss, logits, self.s.y, self.clean_logp).sum()
        torch.autograd.grad(value, z)

    def image_train(self) -> None:
        with self.autocast():
            bundle = self.model.prompts()
            logits = self.model.logits_from_features(self.model.image_features(self.s.x, bundle), self.text_det)
        F.cross_entropy(logits.float(), self.s.y).backward()
        self._zero()

    def _text(self, bundle: PromptBundle, variant: str) -> torch.Tensor:
        """variant: 'engine' (the model's own path, K rows), 'cut' or 'full' (K+1 rows, see text_features_at)."""
        if variant == "engine":
            return self.model.text_features(bundle)
        return text_features_at(self.model, bundle, variant == "full")

    def text_train(self, variant: str = "engine") -> None:
        with self.autocast():
            text = self._text(self.model.prompts(), variant)
        text.float().sum().backward()
        self._zero()

    def text_forward(self, variant: str = "engine") -> None:
        with torch.no_grad(), self.autocast():
            self._text(self.det, variant)

    def frozen_forward(self) -> None:
        with torch.no_grad(), self.autocast():
            self.s.trainer.frozen(self.s.x)

    def image_forward(self) -> None:
        """A clean (or adversarial) evaluation forward with cached text features."""
        with torch.no_grad(), self.autocast():
            self.model.logits_from_features(self.model.image_features(self.s.x, self.det), self.text_det)


# ---------------------------------------------------------------------- steps
def engine_step(s: BenchSetup) -> Dict[str, float]:
    """The CAPT training step as training runs it."""
    return s.trainer.forward_backward(s.batch_dict)


def _reference_pgd(s: BenchSetup, forward: Callable, x: torch.Tensor, y: torch.Tensor, clean_logits: torch.Tensor,
                   text_backward: bool) -> torch.Tensor:
    """The training attack written the way ``model(x)``-style trainers write it, independently of the attack core:
    prompts and text features are rebuilt inside every iteration, and each step is written out here (sign step,
    clip to the L-inf ball and the [0, 1] box). With ``text_backward`` the loss is back-propagated with
    ``loss.backward()``, so the gradient also runs through the text encoder into the prompts (and is thrown away by
    the next zero_grad), as in APT's trainer; without it only the input gradient is taken. It starts from the clean
    image: ``check_steps`` turns the engine's random start off, so both must reach the same ``x_adv``."""
    spec = s.trainer.train_attack
    if spec.norm != "linf" or spec.loss not in ("kl", "ce"):
        raise ValueError("the reference attack is written for L-inf PGD with a KL or CE loss")
    model, autocast = s.model, s.trainer.train_attack_autocast
    clean_logp = torch.log_softmax(clean_logits.detach().float(), dim=1)
    z = x.clone()
    for _ in range(spec.steps):
        z = z.detach().requires_grad_(True)
        with autocast():
            bundle = model.prompts()
            logits = forward(z, bundle if text_backward else bundle.detached())
        logp = torch.log_softmax(logits.float(), dim=1)
        if spec.loss == "kl":  # KL(p_clean || p_adv) per sample, summed
            loss = (clean_logp.exp() * (clean_logp - logp)).sum()
        else:
            loss = -logp.gather(1, y[:, None]).sum()
        if text_backward:
            loss.backward()
            grad = z.grad
        else:
            grad = torch.autograd.grad(loss, z)[0]
        z = z.detach() + spec.alpha * grad.sign()
        z = torch.min(torch.max(z, x - spec.eps), x + spec.eps).clamp(0.0, 1.0)
    s.trainer.model_zero_grad()
    return z.detach()


def _reference_capt_loss(s: BenchSetup, y: torch.Tensor, clean: torch.Tensor, adv: torch.Tensor,
                         frozen: torch.Tensor) -> Dict[str, torch.Tensor]:
    """CAPT's objective written from its equation for the default settings (confidence alpha per sample, detached,
    KL(target || adv)), independently of ``trainers.capt_loss``:
    L = CE(clean, y) + lambda * mean_i[(1 - a_i) KL(p_clean || p_adv) + a_i KL(p_frz || p_adv)],
    a_i = p_frz(y_i) / (p_frz(y_i) + p_clean(y_i))."""
    c = s.trainer.capt_cfg
    if (c.alpha_mode, c.alpha_reduction, c.alpha_detach, c.kl_direction, c.clean_detach) != (
            "confidence", "sample", True, "target_adv", False):
        raise ValueError("the reference CAPT loss is written for the default TRAINER.CAPT settings")
    lp_clean, lp_adv, lp_frz = (torch.log_softmax(t.float(), dim=1) for t in (clean, adv, frozen.detach()))
    cons_train = (lp_clean.exp() * (lp_clean - lp_adv)).sum(1)  # (B,)
    cons_frz = (lp_frz.exp() * (lp_frz - lp_adv)).sum(1)  # (B,)
    p_frz_y = lp_frz.exp().gather(1, y[:, None]).squeeze(1)
    p_clean_y = lp_clean.exp().gather(1, y[:, None]).squeeze(1).detach()
    a = p_frz_y / (p_frz_y + p_clean_y)
    ce = -lp_clean.gather(1, y[:, None]).mean()
    adv_cons = ((1 - a) * cons_train + a * cons_frz).mean()
    return {"loss": ce + c.lam * adv_cons, "ce": ce, "adv_cons": adv_cons}


def reference_step(s: BenchSetup, full_context: bool = False, text_backward: bool = True) -> Dict[str, float]:
    """The engine step's math (same x_adv, same loss, both written independently here) with the text encoder run
    inside every PGD iteration and in every training forward, as code built around ``model(x)`` does;
    ``full_context`` also keeps all 77 tokens."""
    trainer, model, x, y = s.trainer, s.model, s.x, s.y
    text_fn: TextFn = lambda b: text_features_at(model, b, True) if full_context else model.text_features(b)
    forward = lambda z, b: model.logits_from_features(model.image_features(z, b), text_fn(b))
    with trainer.autocast():
        logits_clean = forward(x, model.prompts())
    x_adv = _reference_pgd(s, forward, x, y, logits_clean, text_backward)
    with trainer.autocast():
        logits_adv = forward(x_adv, model.prompts())
        with torch.no_grad():
            logits_frz = trainer.frozen(x)
        terms = _reference_capt_loss(s, y, logits_clean, logits_adv, logits_frz)
    out = {k: v.item() for k, v in terms.items()}
    trainer.model_backward_and_update(terms["loss"], terms=out)
    return out


REFERENCES = {  # name -> (full_context, text_backward)
    "reference": (False, True),
    "reference_full77": (True, True),
    "reference_textfwd": (False, False),
}


def eval_spec(steps: int) -> AttackSpec:
    """PGD-k, L-inf eps 4/255, alpha 1/255; ``keep=last`` so every sample runs all k steps (with random weights
    almost every image is misclassified already, and the default 'fooled' mode would stop at once)."""
    return parse_spec(f"pgd:steps={steps},eps=4,alpha=1,keep=last")


def eval_batches(s: BenchSetup, n: int) -> List[dict]:
    b = s.x.shape[0]
    return [{"img": s.x, "label": s.y, "index": torch.arange(i * b, (i + 1) * b)} for i in range(n)]


def engine_eval(s: BenchSetup, spec: AttackSpec, batches: List[dict]) -> Dict[str, torch.Tensor]:
    """The trainer's evaluation path: ``evaluated_target()`` (text once) + ``evaluate`` over the batches."""
    s.trainer.set_model_mode("eval")
    try:
        return evaluate(s.trainer.evaluated_target(), batches, [spec], s.device, module=s.model,
                        autocast=s.trainer.autocast, show_progress=False,
                        attack_autocast=s.trainer.test_attack_autocast)
    finally:
        s.trainer.set_model_mode("train")


# ---------------------------------------------------------------------- exactness checks
def _snapshot(s: BenchSetup) -> tuple:
    learner = s.model.prompt_learner
    optim = s.trainer._optims["prompt_learner"]
    return copy.deepcopy(learner.state_dict()), copy.deepcopy(optim.state_dict())


def _restore(s: BenchSetup, snap: tuple) -> None:
    s.model.prompt_learner.load_state_dict(snap[0])
    s.trainer._optims["prompt_learner"].load_state_dict(copy.deepcopy(snap[1]))


def _params(s: BenchSetup) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float() for p in s.model.prompt_learner.parameters()])


def check_steps(s: BenchSetup) -> Dict[str, float]:
    """Loss and updated-prompt differences between the engine step and the reference-style steps, both started
    from the clean image: for the check the engine's random start is off and the training attack maximises CE (a KL
    attack from the clean point starts at a zero gradient, whose sign is rounding noise)."""
    snap = _snapshot(s)
    out: Dict[str, float] = {}
    cfg = s.trainer.cfg
    cfg.defrost()
    saved = cfg.ATTACK.TRAIN.RANDOM_START, cfg.ATTACK.TRAIN.LOSS
    cfg.ATTACK.TRAIN.RANDOM_START, cfg.ATTACK.TRAIN.LOSS = False, "ce"
    try:
        base = engine_step(s)
        p_base = _params(s)
        for name, (full, text_backward) in REFERENCES.items():
            _restore(s, snap)
            terms = reference_step(s, full_context=full, text_backward=text_backward)
            out[f"{name}_loss_diff"] = abs(terms["loss"] - base["loss"])
            out[f"{name}_param_diff"] = float((_params(s) - p_base).abs().max())
    finally:
        cfg.ATTACK.TRAIN.RANDOM_START, cfg.ATTACK.TRAIN.LOSS = saved
        cfg.freeze()
        _restore(s, snap)
    return out


def check_truncation(s: BenchSetup) -> Dict[str, float]:
    """How far the cut context's text features are from the full 77-token ones (current prompts)."""
    with torch.no_grad(), s.trainer.autocast():
        bundle = s.model.prompts()
        cut = s.model.text_features(bundle).float()
        full = text_features_at(s.model, bundle, True).float()
    kept, total = text_lengths(s.model)
    cos = F.cosine_similarity(cut, full, dim=-1)
    return {"tokens_kept": kept, "tokens_full": total, "max_abs_diff": float((cut - full).abs().max()),
            "min_cosine": float(cos.min())}
