"""The defense stage of a report: on a test-time defense, the non-adaptive attack and the adaptive ones side by side.

Test-time defenses are usually reported under attacks crafted on the model they protect (non-adaptive); the
adaptive-attack literature (Athalye et al. 2018, BPDA/EOT; Tramer et al. 2020) asks for attacks that see the model
that actually predicts. Each row records which model its attack differentiated through; the masking flag
(``flags.adaptive_gap_flag``) compares the worst adaptive row with the non-adaptive one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..attacks.spec import AttackSpec
from ..evaluation.imageset import ImageSetEvaluator
from ..evaluation.metrics import accuracy, worst_case
from ..evaluation.testtime import TestTimeDefense, attacked_through
from .settings import ReportSettings
from .stages import pgd


def defense_specs(headline: float, s: ReportSettings) -> Dict[str, AttackSpec]:
    """Non-adaptive PGD (on the undefended model), then through the defense (every step unrolled), BPDA, EOT."""
    base = pgd(headline, s.curve_steps, seed=s.seed)
    return {"non-adaptive": base,
            "through the defense": replace(base, through="defense", unroll=-1),
            "BPDA": replace(base, through="defense", unroll=0),
            f"EOT ({s.eot_samples} draws)": replace(base, through="defense", unroll=-1, eot=s.eot_samples)}


def evaluate_defense(ev: ImageSetEvaluator, headline: float, s: ReportSettings,
                     specs: Optional[Dict[str, AttackSpec]] = None
                     ) -> Tuple[Optional[Dict[str, Any]], List[torch.Tensor]]:
    """(None, []) when the classifier is no test-time defense; else each attack's row and the two numbers compared,
    and the adaptive per-sample vectors (for the report's worst case). ``specs`` (default ``defense_specs``) names
    the non-adaptive attack "non-adaptive"; every other one is adaptive."""
    defense = ev.classifier
    if not isinstance(defense, TestTimeDefense):
        return None, []
    specs = specs or defense_specs(headline, s)
    vectors = ev.sweep("defense", specs)
    rows = [{"attack": name, "label": spec.label(), "through": attacked_through(defense, spec),
             "accuracy": accuracy(vectors[name])} for name, spec in specs.items()]
    adaptive = [vectors[n] for n in specs if n != "non-adaptive"]
    return {"attacks": rows, "non_adaptive": accuracy(vectors["non-adaptive"]),
            "adaptive_worst": accuracy(worst_case(adaptive))}, adaptive
