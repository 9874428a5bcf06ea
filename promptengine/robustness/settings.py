"""What a robustness report evaluates: budgets, step and restart schedules, image count, flag thresholds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

from ..attacks.autoattack import SQUARE_QUERIES_PER_ITER
from ..errors import UserError

DEFAULT_EPS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # L-inf budgets in /255 units
DEFAULT_L2_EPS = (0.0, 16.0, 32.0, 64.0, 128.0)  # L2 budgets in /255 units (0.5 in [0, 1] units = 127.5)


@dataclass(frozen=True)
class ReportSettings:
    """Budgets are in /255 pixel units, as everywhere in the toolbox; ``headline_eps`` None = the run's test eps."""

    images_per_class: int = 10
    max_images: int = 200
    eps: Tuple[float, ...] = DEFAULT_EPS
    l2_eps: Tuple[float, ...] = ()
    headline_eps: Optional[float] = None
    curve_steps: int = 10
    steps: Tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)
    restarts: Tuple[int, ...] = (1, 2, 4)
    restart_steps: int = 10
    large_eps: float = 64.0
    large_eps_steps: int = 20
    aa_iters: int = 0  # 0 = the library's 100 iterations (and 5000 Square queries)
    transfer_steps: int = 20
    batch_size: int = 100
    seed: int = 0
    # flag thresholds (percentage points, fractions)
    tolerance: float = 2.0  # allowed rise of accuracy along a curve, and margin of black-box/transfer over white-box
    aa_gap: float = 5.0  # AutoAttack this far below PGD = PGD is weak or gradients are masked
    large_eps_max: float = 5.0  # accuracy allowed at the very large eps
    zero_grad_max: float = 0.1  # fraction of samples with an all-zero input gradient
    adaptive_gap: float = 5.0  # adaptive attacks this far below the non-adaptive one = the defense masks gradients
    eot_samples: int = 4  # draws of a test-time defense's randomness per EOT step
    reduced: bool = False  # built by quick()

    @classmethod
    def quick(cls, **overrides) -> ReportSettings:
        """A reduced report (fewer images, steps and AutoAttack iterations): minutes on a 2-core CPU."""
        base = cls(images_per_class=5, max_images=50, steps=(1, 2, 5, 10, 20, 50), restarts=(1, 2, 4), aa_iters=20,
                   transfer_steps=10, reduced=True)
        return replace(base, **overrides)

    def describe(self) -> str:
        """One line of what was run, for the report."""
        aa = f"{self.aa_iters} iterations, {SQUARE_QUERIES_PER_ITER * self.aa_iters} Square queries" if self.aa_iters else (
            "100 iterations, 5000 Square queries")
        return (f"{'quick mode: ' if self.reduced else ''}up to {self.max_images} images (at most {self.images_per_class} per "
                f"class), PGD steps {'/'.join(map(str, self.steps))}, restarts {'/'.join(map(str, self.restarts))}, "
                f"AutoAttack {aa}, transfer PGD-{self.transfer_steps}")

    def __post_init__(self) -> None:
        if self.images_per_class < 1 or self.max_images < 2:
            raise UserError("--images-per-class must be >= 1 and --images >= 2")
        for name in ("eps", "l2_eps"):
            values = getattr(self, name)
            if any(e < 0 for e in values) or list(values) != sorted(set(values)):
                raise UserError(f"--{name.replace('_', '-')} must list distinct budgets >= 0 in increasing order "
                                f"(/255 units), e.g. 0 1 2 4 8; got {' '.join(map(str, values))}")
        if not self.eps or self.eps[-1] <= 0:
            raise UserError("--eps needs at least one budget > 0 (/255 units), e.g. 0 1 2 4 8")
        for name in ("steps", "restarts"):
            values = getattr(self, name)
            if not values or any(v < 1 for v in values) or list(values) != sorted(set(values)):
                raise UserError(f"--{name} must list distinct integers >= 1 in increasing order (got {values})")
        if self.headline_eps is not None and self.headline_eps <= 0:
            raise UserError(f"--headline-eps must be > 0 in /255 units (got {self.headline_eps})")
