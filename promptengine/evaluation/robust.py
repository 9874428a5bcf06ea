"""Clean and robust evaluation on the same images: per-sample verdicts, and the records built from them.

The attacked model is whatever ``classifier()`` returns (the trained prompts by default: a white-box
attack). Text features are computed once per evaluation; no parameter gradients are taken.

An image counts as robust to an attack only if it is classified correctly on clean input AND the attack's own
verdict says it was not fooled (``attack_outcome``): the decision is never re-taken on another forward, and a weak
attack (``keep=last``, a KL loss) cannot turn a clean error into a robust success. The worst case over attacks is
the AND of those per-attack flags, starting from clean correctness.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from tqdm import tqdm

from ..attacks import AttackSpec, attack, attack_outcome
from ..attacks.forward import Forward
from .metrics import accuracy
from .testtime import TestTimeDefense, attacked_through, defended_view


def robust_correct(classifier: Forward, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, clean_logits: torch.Tensor,
                   *, module: Optional[torch.nn.Module] = None, autocast: Optional[Callable] = None,
                   sample_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B,) bool on ``x``'s device: right on clean input (``clean_logits``) and not fooled by ``spec``, by the attack's
    own verdict. On a test-time defense the attack differentiates through the model ``spec.through`` names and the
    defense (which predicts) judges the examples."""
    if isinstance(classifier, TestTimeDefense):
        view = defended_view(classifier, spec)
        with classifier.attacked(spec.unroll):
            x_adv = attack(view, x, y, spec, clean_logits=clean_logits if view is classifier else None,
                           module=module, autocast=autocast, sample_ids=sample_ids)
        return (clean_logits.argmax(1) == y) & (classifier.predict(x_adv) == y)
    _, fooled = attack_outcome(classifier, x, y, spec, clean_logits=clean_logits, module=module, autocast=autocast,
                               sample_ids=sample_ids)
    return (clean_logits.argmax(1) == y) & ~fooled


def evaluate(
    classifier: Forward,
    loader,
    specs: Sequence[AttackSpec],
    device: torch.device,
    module: Optional[torch.nn.Module] = None,
    autocast: Optional[Callable] = None,
    desc: str = "eval",
    show_progress: bool = True,
    attack_autocast: Optional[Callable] = None,
) -> Dict[str, torch.Tensor]:
    """Returns per-sample tensors: ``index``, ``label``, ``pred`` and ``correct_<i>`` per attack.

    ``autocast`` wraps the clean forward (the training precision); ``attack_autocast`` the attacks' forwards
    (fp32 by default, see ``promptengine.engine.precision.attack_autocast``).
    """
    out: Dict[str, List[torch.Tensor]] = {"index": [], "label": [], "pred": []}
    for i in range(len(specs)):
        out[f"correct_{i}"] = []
    ctx = autocast or torch.no_grad
    for batch in tqdm(loader, desc=desc, disable=not show_progress, leave=False, dynamic_ncols=True):
        x = batch["img"].to(device, non_blocking=True)
        y = batch["label"].to(device)
        idx = batch["index"]
        with torch.no_grad(), ctx():
            logits = classifier(x).float()
        out["index"].append(idx.cpu())
        out["label"].append(y.cpu())
        out["pred"].append(logits.argmax(1).cpu())
        for i, spec in enumerate(specs):
            out[f"correct_{i}"].append(robust_correct(classifier, x, y, spec, logits, module=module,
                                                      autocast=attack_autocast, sample_ids=idx).cpu())
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in out.items()}


# ---------------------------------------------------------------------- reading ``evaluate``'s per-sample record
def clean_correct(per_sample: Dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) bool: right on clean input."""
    return per_sample["pred"] == per_sample["label"]


def attack_correct(per_sample: Dict[str, torch.Tensor], n_attacks: int) -> List[torch.Tensor]:
    """One (N,) bool vector per attack: robust to it (right on clean input and not fooled)."""
    return [per_sample[f"correct_{i}"] for i in range(n_attacks)]


def robust_results(per_sample: Dict[str, torch.Tensor], specs: Sequence[AttackSpec],
                   classifier: Forward) -> List[Dict[str, Any]]:
    """Per attack: its label, its fields, the model that generated its examples (``attack_model``: the evaluated
    model, or the named surrogate a test-time defense is attacked through), robust accuracy, correct and total (the
    ``robust`` list of results.json). ``classifier`` is the one ``evaluate`` was given."""
    out = []
    for spec, correct in zip(specs, attack_correct(per_sample, len(specs))):
        out.append({"name": spec.label(), "attack": spec.to_dict(), "attack_model": attacked_through(classifier, spec),
                    "accuracy": accuracy(correct), "correct": int(correct.sum()), "total": int(correct.numel())})
    return out
