"""Clean and robust evaluation on the same images, per-sample worst case over attacks.

The attacked model is whatever ``classifier()`` returns (the trained prompts by default: a white-box
attack). Text features are computed once per evaluation; no parameter gradients are taken.

An image counts as robust to an attack only if it is classified correctly on clean input AND the attack's own
verdict says it was not fooled (``attack_outcome``): the decision is never re-taken on another forward, and a weak
attack (``keep=last``, a KL loss) cannot turn a clean error into a robust success. The worst case over attacks is
the AND of those per-attack flags, starting from clean correctness.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import torch
from tqdm import tqdm

from ..attacks import AttackSpec, attack_outcome


def evaluate(
    classifier: Callable[[torch.Tensor], torch.Tensor],
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
        clean_ok = logits.argmax(1) == y  # (B,)
        out["index"].append(idx.cpu())
        out["label"].append(y.cpu())
        out["pred"].append(logits.argmax(1).cpu())
        for i, spec in enumerate(specs):
            _, fooled = attack_outcome(classifier, x, y, spec, clean_logits=logits, module=module,
                                       autocast=attack_autocast, sample_ids=idx)
            out[f"correct_{i}"].append((clean_ok & ~fooled).cpu())
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in out.items()}


def worst_case(per_sample: Dict[str, torch.Tensor], n_attacks: int) -> Optional[torch.Tensor]:
    """(N,) bool: correct on clean input and under every attack; None without attacks."""
    if n_attacks == 0:
        return None
    worst = per_sample["pred"] == per_sample["label"]
    for i in range(n_attacks):
        worst = worst & per_sample[f"correct_{i}"]
    return worst
