"""The test-time seam: a classifier that adapts to each test image before it predicts.

A test-time defense (``TestTimeDefense``) wraps the trained (or zero-shot) classifier. Its forward adapts, for every
image, from the same trained state: the parameters it adapts are snapshotted when the defense is built and restored
before each image and after the batch, so nothing learnt on one image reaches another. Its randomness (augmentations,
random starts) comes from a generator seeded by the run seed and the image's own content, so a prediction depends on
neither the batch it arrives in nor the test set's order.

The evaluator treats a defense like any classifier (clean accuracy is its forward); an attack picks which model it
differentiates through (``AttackSpec.through``, see ``defended_view``): the undefended model (the non-adaptive
evaluation test-time papers report) or the defense itself, unrolled for ``unroll`` adaptation steps (``0`` =
BPDA: every adaptation step is treated as constant, an input transform as the identity on the backward pass), with
``eot`` draws of the defense's randomness averaged by the attack core.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import ContextManager, Iterator, List, Optional

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..attacks import AttackSpec, mix_seed
from ..attacks.forward import Forward


@dataclass(frozen=True)
class Budget:
    """What a defense may spend per image: adaptation steps, step size / learning rate, augmented views."""

    steps: int
    lr: float
    augmentations: int = 0


def content_seed(seed: int, image: torch.Tensor, draw: int = 0) -> int:
    """A generator seed from the run seed, the image's bytes and the draw: the same image gets the same randomness
    wherever it appears (so reordering or rebatching the test set changes no prediction)."""
    digest = hashlib.blake2b(image.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=8).digest()
    return mix_seed(seed, int.from_bytes(digest, "little") >> 1, draw)


class TestTimeDefense(nn.Module):
    """Base class: subclasses implement ``adapt_and_predict`` and, if they adapt parameters, ``adapted_parameters``.

    ``per_image``: adapt one image at a time (parameter adaptation; the state is restored in between). A defense whose
    adaptation acts on each input separately (an input counterattack, losses summed over the batch) sets it False and
    adapts the whole batch at once.
    """

    __test__ = False  # not a pytest class
    per_image = True

    def __init__(self, base: Forward, budget: Budget, seed: int) -> None:
        super().__init__()
        self.base, self.budget, self.seed = base, budget, int(seed)
        self.unroll: Optional[int] = None  # None: predicting (no graph through adaptation); k: attacked, k unrolled
        self.draw = 0
        self._snapshot = [p.detach().clone() for p in self.adapted_parameters()]

    # ---------------------------------------------------------------- what subclasses provide
    def adapted_parameters(self) -> List[torch.Tensor]:
        """The tensors adaptation changes in place (restored to their trained values before every image)."""
        return []

    def adapt_and_predict(self, x: torch.Tensor, generators: List[torch.Generator]) -> torch.Tensor:
        """Logits (B, K) of ``x`` after adaptation; ``generators[i]`` is image i's randomness. Use ``self.grad``
        for adaptation gradients so that an adaptive attack can unroll them."""
        raise NotImplementedError

    # ---------------------------------------------------------------- the seam
    def grad(self, loss: torch.Tensor, wrt: List[torch.Tensor], step: int) -> List[torch.Tensor]:
        """Adaptation gradients of step ``step``: kept in the graph while an attack unrolls this step, else constant."""
        keep = self.unrolled(step)
        grads = torch.autograd.grad(loss, wrt, create_graph=keep, allow_unused=True)
        return [torch.zeros_like(w) if g is None else (g if keep else g.detach()) for g, w in zip(grads, wrt)]

    def unrolled(self, step: int) -> bool:
        """Whether an attack differentiates through adaptation step ``step`` (False while predicting)."""
        return self.unroll is not None and (self.unroll < 0 or step < self.unroll)

    def straight_through(self, x: torch.Tensor, transformed: torch.Tensor, step: int = 0) -> torch.Tensor:
        """An input transform as adaptation step ``step``: its own (possibly zero) gradient while an attack unrolls
        that step, else the identity on the backward pass (BPDA); the value is ``transformed`` either way."""
        return transformed if self.unrolled(step) else x + (transformed - x).detach()

    def restore(self) -> None:
        with torch.no_grad():
            for p, saved in zip(self.adapted_parameters(), self._snapshot):
                p.copy_(saved)

    def generators(self, x: torch.Tensor) -> List[torch.Generator]:
        return [torch.Generator(x.device).manual_seed(content_seed(self.seed, img, self.draw)) for img in x]

    @contextlib.contextmanager
    def _adaptable(self) -> Iterator[None]:
        """Adapted parameters take gradients during adaptation (trained prompts are frozen at evaluation)."""
        params = self.adapted_parameters()
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(True)
        try:
            yield
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad(), self._adaptable(), _double_backward(self.unroll):
            if x.is_inference():
                x = x.clone()  # usable by autograd outside inference mode
            if not self.per_image:
                self.restore()
                return self.adapt_and_predict(x, self.generators(x))
            out = []
            try:
                for i in range(x.shape[0]):
                    self.restore()
                    out.append(self.adapt_and_predict(x[i:i + 1], self.generators(x[i:i + 1])))
            finally:
                self.restore()
            return torch.cat(out)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels (B,) of the defended model (draw 0, nothing unrolled)."""
        with self.attacked(None):
            logits = self(x)
        return logits.detach().float().argmax(1)

    @contextlib.contextmanager
    def attacked(self, unroll: Optional[int]) -> Iterator[None]:
        """Run forwards with ``unroll`` adaptation steps in the graph (None: none, predicting)."""
        previous = self.unroll, self.draw
        self.unroll, self.draw = unroll, 0
        try:
            yield
        finally:
            self.unroll, self.draw = previous

    @contextlib.contextmanager
    def with_draw(self, n: int) -> Iterator[None]:
        """The n-th draw of the defense's randomness (EOT); draw 0 is what the defense predicts with."""
        previous, self.draw = self.draw, int(n)
        try:
            yield
        finally:
            self.draw = previous


def _double_backward(unroll: Optional[int]) -> ContextManager:
    """An attack that unrolls adaptation takes gradients of gradients: attention then runs as plain matrix products,
    since the fused attention kernels have no second derivative."""
    if unroll is None or unroll == 0:
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def defended_view(classifier: Forward, spec: AttackSpec) -> Forward:
    """The model ``spec`` differentiates through: a defense's undefended model for ``through="model"``, the defense
    itself otherwise (entered with ``attacked(spec.unroll)`` by the caller); any other classifier is its own."""
    if isinstance(classifier, TestTimeDefense) and spec.through == "model":
        return classifier.base
    return classifier


def attacked_through(classifier: Forward, spec: AttackSpec) -> str:
    """Which model ``spec`` differentiated through, in words (for reports and result files): the evaluated model
    itself (white-box), or for a test-time defense its undefended model (a named surrogate) or the defense."""
    if not isinstance(classifier, TestTimeDefense):
        return "the evaluated model (white-box)"
    if spec.through == "model":
        return "the undefended model (non-adaptive)"
    if spec.unroll == 0:
        return "the defense, adaptation straight-through (BPDA)"
    steps = "every adaptation step" if spec.unroll < 0 else f"{spec.unroll} adaptation step(s)"
    return f"the defense, unrolled through {steps}" + (f", EOT over {spec.eot} draws" if spec.eot > 1 else "")
