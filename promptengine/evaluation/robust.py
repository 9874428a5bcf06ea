"""Clean and robust evaluation on the same images, per-sample worst case over attacks.

The attacked model is whatever ``classifier()`` returns (the trained prompts by default: a white-box
attack). Text features are computed once per evaluation; no parameter gradients are taken.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import torch
from tqdm import tqdm

from ..attacks import AttackSpec, attack


def evaluate(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    loader,
    specs: Sequence[AttackSpec],
    device: torch.device,
    module: Optional[torch.nn.Module] = None,
    autocast: Optional[Callable] = None,
    desc: str = "eval",
    show_progress: bool = True,
) -> Dict[str, torch.Tensor]:
    """Returns per-sample tensors: ``index``, ``label``, ``pred`` and ``correct_<i>`` per attack."""
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
            x_adv = attack(classifier, x, y, spec, clean_logits=logits, module=module, autocast=autocast,
                           sample_ids=idx)
            with torch.no_grad(), ctx():
                adv_pred = classifier(x_adv).float().argmax(1)
            out[f"correct_{i}"].append((adv_pred == y).cpu())
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in out.items()}
