"""The one attack entry point (``attack``) and its PGD core (L-inf and L2, CE / KL / CW, restarts).

Threat model: ``x`` holds [0, 1] images, the model normalises inside ``forward``, ``spec.eps``/``spec.alpha`` are
in [0, 1] pixel units. Gradients are taken with respect to the input only (``torch.autograd.grad``), so parameter
``.grad`` and optimizer state are never touched. The global RNG is not used (random starts come from dedicated
generators), so running an attack does not change the training run's random stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import ContextManager, Iterator, Optional, Tuple

import torch
from torch import nn

from ..errors import UserError
from .autoattack import run_autoattack
from .forward import AutocastFactory, Forward, draw, logits_of
from .losses import REFERENCE_LOSSES, per_sample_loss
from .spec import AttackSpec

logger = logging.getLogger(__name__)


def attack(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: AttackSpec,
    *,
    clean_logits: Optional[torch.Tensor] = None,
    module: Optional[nn.Module] = None,
    autocast: Optional[AutocastFactory] = None,
    sample_ids: Optional[torch.Tensor] = None,
    target_embedding: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Adversarial examples for ``(x, y)`` under ``spec``; returns fp32 ``x_adv`` with the shape of ``x``.

    ``attack_outcome`` takes the same arguments and also returns the attack's own per-sample "fooled" decision.

    - ``forward(x) -> logits (B, K)``; ``module`` (default: ``forward`` itself when it is an ``nn.Module``) is put in
      eval mode during the attack and every submodule gets its previous mode back afterwards.
    - ``clean_logits``: logits of the unperturbed ``x`` (the KL target, and the clean point of the per-sample worst
      case); computed once under no_grad when not given.
    - ``autocast``: a context-manager factory (e.g. ``lambda: torch.autocast("cuda", torch.bfloat16)``) for the
      forward passes; inputs, perturbation and losses stay fp32.
    - ``sample_ids``: dataset indices; each sample's random start is then drawn from a generator seeded by
      (spec.seed, sample_id, restart), so results do not depend on batching. Without them one generator seeded by
      (spec.seed, restart) draws the whole batch's noise.
    - ``target_embedding`` (B, E): for ``spec.loss == "embed"``, ``forward`` returns embeddings and PGD
      maximises the squared L2 distance to this target (e.g. a frozen encoder's embedding of the clean image).
    Works under ``torch.no_grad()`` / ``inference_mode`` callers (e.g. a ``test()`` decorated with no_grad).
    """
    return _run(forward, x, y, spec, clean_logits, module, autocast, sample_ids, target_embedding, judge=False)[0]


def attack_outcome(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: AttackSpec,
    *,
    clean_logits: Optional[torch.Tensor] = None,
    module: Optional[nn.Module] = None,
    autocast: Optional[AutocastFactory] = None,
    sample_ids: Optional[torch.Tensor] = None,
    target_embedding: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(x_adv, fooled)``: ``attack``'s examples and, per sample, whether the forward pass that selected the
    returned example misclassified it (B,) bool. Evaluation counts these decisions instead of re-judging ``x_adv`` on
    another, differently batched forward, where a near-tie can flip. PGD judges the returned iterate inside its own
    loop (one extra forward of the last iterate); AutoAttack's examples are judged by one forward of the batch."""
    return _run(forward, x, y, spec, clean_logits, module, autocast, sample_ids, target_embedding, judge=True)


def _run(forward, x, y, spec, clean_logits, module, autocast, sample_ids, target_embedding, judge: bool):
    if not isinstance(spec, AttackSpec):
        raise TypeError(f"spec must be an AttackSpec (got {type(spec).__name__}); see promptengine.attacks.parse_spec")
    if module is None and isinstance(forward, nn.Module):
        module = forward
    # The caller's autocast (a training step's) must not reach the losses and steps: ``autocast`` alone decides the
    # forwards' precision.
    with torch.inference_mode(False), torch.enable_grad(), _no_autocast(x):
        x, y, sample_ids = _checked_inputs(x, y, sample_ids)
        if x.shape[0] == 0:
            return x.clone(), torch.zeros(0, dtype=torch.bool, device=x.device)
        with eval_mode(module):
            if spec.method == "autoattack":
                x_adv = run_autoattack(forward, x, y, spec, autocast=autocast)
                if not judge:
                    return x_adv, None
                with torch.no_grad():
                    return x_adv, logits_of(forward, x_adv, autocast).argmax(1) != y
            return _pgd(forward, x, y, spec, clean_logits, autocast, sample_ids, judge, target_embedding)


def _no_autocast(x) -> ContextManager:
    kind = x.device.type if isinstance(x, torch.Tensor) else "cpu"
    return torch.autocast(device_type=kind, enabled=False) if torch.is_autocast_enabled(kind) else contextlib.nullcontext()


@contextlib.contextmanager
def eval_mode(module: Optional[nn.Module]) -> Iterator[None]:
    """Put ``module`` in eval mode; restore each submodule's own previous ``training`` flag on exit."""
    if module is None:
        yield
        return
    previous = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in previous:
            m.training = flag


# ---------------------------------------------------------------------- inputs
def _checked_inputs(x, y, sample_ids):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise UserError("attack input x must be a floating tensor (B, C, H, W) of [0, 1] images")
    # A fresh fp32 copy: safe to use in autograd even when x is an inference tensor.
    x = x.detach().to(dtype=torch.float32, copy=True)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise UserError(f"attack input x must be [0, 1] images (got values in [{x.min().item():.3g}, "
                        f"{x.max().item():.3g}]); normalise inside the model, not in the data transforms")
    if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1] or y.is_floating_point():
        raise UserError(f"attack labels y must be an integer tensor of shape ({x.shape[0]},)")
    y = y.detach().to(device=x.device, dtype=torch.long)
    if sample_ids is not None:
        if not isinstance(sample_ids, torch.Tensor) or sample_ids.shape != x.shape[:1] or sample_ids.is_floating_point():
            raise UserError(f"sample_ids must be an integer tensor of shape ({x.shape[0]},) (dataset indices)")
        sample_ids = sample_ids.detach().cpu().long()
    return x, y, sample_ids


# ---------------------------------------------------------------------- random start
def mix_seed(*parts: int) -> int:
    """A 63-bit generator seed from integers (stable across processes and platforms)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(int(p).to_bytes(16, "little", signed=True))
    return int.from_bytes(h.digest(), "little") >> 1


def _fill_noise(spec: AttackSpec, out: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Fill ``out`` (n, ...) in place with random starts from ``g``: uniform in the L-inf ball, or a uniform
    direction with radius U(0,1)*eps for L2."""
    if spec.norm == "linf":
        return out.uniform_(-spec.eps, spec.eps, generator=g)
    out.normal_(generator=g)
    view = (-1, *[1] * (out.dim() - 1))
    radius = torch.rand(out.shape[0], generator=g, device=out.device) * spec.eps
    return out.mul_((radius / out.flatten(1).norm(dim=1).clamp_min(1e-12)).view(view))


def _start(spec, x, idx, sample_ids, restart) -> torch.Tensor:
    """The starting point x + delta_0 for the rows ``idx`` of the batch, projected onto the feasible set.

    The noise is drawn on x's device from dedicated generators (per sample when ``sample_ids`` is given), so it
    is the same for any batching on a given device and never touches the global RNG.
    """
    if not spec.random_start or spec.eps == 0:
        return x[idx].clone()
    dev = x.device
    if sample_ids is not None:
        ids = sample_ids[idx.cpu()].tolist()
        noise = torch.empty((len(ids), *x.shape[1:]), device=dev)
        for row, i in enumerate(ids):
            _fill_noise(spec, noise[row:row + 1], torch.Generator(dev).manual_seed(mix_seed(spec.seed, 1, i, restart)))
    else:
        g = torch.Generator(dev).manual_seed(mix_seed(spec.seed, 0, restart))
        noise = _fill_noise(spec, torch.empty_like(x), g)[idx]
    xa = x[idx]
    return _project(xa + noise, xa, spec)


# ---------------------------------------------------------------------- steps and projection
def _project(z: torch.Tensor, x: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    """Project the point ``z`` onto {x + d : ||d|| <= eps} and then onto the [0, 1] box.

    The box step only shrinks |d| coordinate-wise (x is in [0, 1]), so the result stays in the ball.
    """
    d = z - x
    if spec.norm == "linf":
        d = d.clamp(-spec.eps, spec.eps)
    else:
        norm = d.flatten(1).norm(dim=1).view(-1, *[1] * (d.dim() - 1))
        d = d * torch.where(norm > spec.eps, spec.eps / norm.clamp_min(1e-30), torch.ones_like(norm))
    return (x + d).clamp(0.0, 1.0)


def _step(z: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    """One ascent step of size alpha (sign for L-inf, L2-normalised gradient for L2), then projection."""
    if spec.norm == "linf":
        z = z + spec.alpha * grad.sign()
    else:
        gnorm = grad.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (grad.dim() - 1))
        z = z + spec.alpha * grad / gnorm
    return _project(z, x, spec)


# ---------------------------------------------------------------------- PGD
def _pgd(forward, x, y, spec: AttackSpec, clean_logits, autocast, sample_ids, judge: bool = False,
         target_embedding: Optional[torch.Tensor] = None):
    """PGD with the per-sample worst case (``spec.keep``) over the clean point, iterates and restarts.

    Samples leave the working batch as soon as they are fooled ("fooled" mode), so later steps cost less; each
    sample's computation does not depend on the others (losses are summed, models are in eval mode).
    Returns ``(x_adv, fooled)``; ``fooled`` (B,) is the decision of the forward that selected each returned
    example when ``judge`` (the last iterate then gets its own forward), else None.
    """
    track = spec.keep == "fooled" and spec.loss not in REFERENCE_LOSSES
    clean_logp = _target(spec, x, target_embedding) if spec.loss == "embed" else None
    if track or spec.loss == "kl":
        if clean_logits is None:
            with torch.no_grad():
                clean_logits = logits_of(forward, x, autocast)
        clean_logits = clean_logits.detach().to(device=x.device, dtype=torch.float32, copy=True)
        if clean_logits.dim() != 2 or clean_logits.shape[0] != x.shape[0]:
            raise UserError(f"clean_logits must have shape (B, K) with B = {x.shape[0]} "
                            f"(got {tuple(clean_logits.shape)})")
        _check_logits(clean_logits)
        if spec.loss == "kl":
            clean_logp = torch.log_softmax(clean_logits, dim=1)

    batch = x.shape[0]
    x_best = x.clone()
    done = (clean_logits.argmax(1) != y) if track else torch.zeros(batch, dtype=torch.bool, device=x.device)
    best_loss = torch.full((batch,), float("-inf"), device=x.device)
    fooled_best = done.clone()  # (B,) the verdict on the example held in x_best
    # The last iterate needs its own forward only to compare restarts (and to see whether it fooled, so that a
    # later restart cannot replace a successful iterate) or to judge it; with one restart it is returned as is.
    final_forward = spec.restarts > 1 or judge

    for restart in range(spec.restarts):
        idx = (~done).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, ya = x[idx], y[idx]
        la = clean_logp[idx] if clean_logp is not None else None
        z = _start(spec, x, idx, sample_ids, restart)
        for t in range(spec.steps + 1):
            last = t == spec.steps
            if last and not final_forward:
                x_best[idx] = z
                break
            z.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                # EOT: the loss averaged over draws of the model's randomness; draw 0 (what the model predicts
                # with) gives the verdict
                draws = []
                for n in range(1 if last else spec.eot):
                    with draw(forward, n):
                        draws.append(logits_of(forward, z, autocast))
                logits = draws[0]
                losses = [per_sample_loss(spec.loss, out, ya, la) for out in draws]
                loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean(0)
            grad = None if last else torch.autograd.grad(loss.sum(), z)[0]
            z, loss = z.detach(), loss.detach()
            wrong = logits.detach().argmax(1) != ya  # (n,) this forward's verdict on each working sample
            if t == 0 and restart == 0:
                _check_logits(logits.detach())
                if grad is not None:
                    _warn_zero_gradients(grad)
            if track:
                fooled = wrong
                if fooled.any():
                    x_best[idx[fooled]] = z[fooled]
                    done[idx[fooled]] = True
                    fooled_best[idx[fooled]] = True
                    keep = ~fooled
                    idx, xa, ya, z, loss, wrong = idx[keep], xa[keep], ya[keep], z[keep], loss[keep], wrong[keep]
                    grad = grad[keep] if grad is not None else None
                    la = la[keep] if la is not None else None
                    if idx.numel() == 0:
                        break
            if last:
                better = loss > best_loss[idx]
                x_best[idx[better]] = z[better]
                best_loss[idx[better]] = loss[better]
                fooled_best[idx[better]] = wrong[better]
                break
            z = _step(z, grad, xa, spec)

    if not torch.isfinite(x_best).all():
        raise RuntimeError("the attack produced non-finite inputs: the model's input gradient is NaN/inf "
                           "(run the attack in fp32, or with a bf16 autocast instead of fp16)")
    return x_best, (fooled_best if judge else None)


def _target(spec: AttackSpec, x: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
    """The embedding loss's reference, checked: (B, E), fp32, detached, on x's device."""
    if target is None or target.dim() != 2 or target.shape[0] != x.shape[0]:
        got = "none" if target is None else str(tuple(target.shape))
        raise UserError(f"the '{spec.loss}' attack loss needs target_embedding of shape (B, E) with B = {x.shape[0]} "
                        f"(got {got}); it is a training attack, not an evaluation attack")
    return target.detach().to(device=x.device, dtype=torch.float32, copy=True)


_warned: set = set()


def _check_logits(logits: torch.Tensor) -> None:
    if logits.shape[1] < 2:
        raise UserError(f"an attack needs at least 2 classes (the model returns {logits.shape[1]})")
    if "probs" not in _warned and logits.min() >= 0 and logits.max() <= 1 and torch.allclose(
            logits.sum(1), torch.ones_like(logits[:, 0]), atol=1e-4):
        _warned.add("probs")
        logger.warning("the attacked model seems to return probabilities; attacks and AutoAttack expect logits")


def _warn_zero_gradients(grad: torch.Tensor) -> None:
    zero = int((grad.flatten(1).abs().amax(dim=1) == 0).sum())
    if zero:
        logger.warning("%d of %d samples have an all-zero input gradient at the first attack step (gradient masking, "
                       "or an fp16 underflow: attack in fp32 or bf16)", zero, grad.shape[0])
