"""Assemble a report (every part, every flag) and write ``report.json``, ``report.md`` and the PNG plots."""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict
from typing import Any, Dict, List

from ..errors import UserError
from .evaluate import evaluate_part
from .flags import masking_flags
from .markdown import render_markdown
from .plots import write_plots
from .settings import ReportSettings
from .target import Target

FORMAT = 1


def headline_eps(target: Target, s: ReportSettings) -> float:
    """The budget of the convergence, AutoAttack, transfer and per-class stages (/255)."""
    if s.headline_eps is not None:
        return s.headline_eps
    if target.test_eps:
        return target.test_eps
    return max(e for e in s.eps if e > 0) / 2


def build_report(target: Target, s: ReportSettings, progress: bool = True) -> Dict[str, Any]:
    headline = headline_eps(target, s)
    parts = {}
    for part in target.parts:
        result = evaluate_part(part, s, headline, progress=progress)
        result["flags"] = [f.to_dict() for f in masking_flags(result, s)]
        parts[part.name] = result
    return {
        "format": FORMAT,
        "target": target.name,
        "source": target.source,
        "info": target.info,
        "headline_eps": headline,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s).items()},
        "settings_text": s.describe(),
        "parts": parts,
        "flags_raised": sum(f["raised"] for p in parts.values() for f in p["flags"]),
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(report: Dict[str, Any], out_dir: str, plots: bool = True) -> List[str]:
    """Write the report files into ``out_dir``; returns their paths."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the report folder {out_dir} ({exc.strerror}); pass --out") from None
    written = []
    if plots:
        written += write_plots(report, out_dir)
    names = [os.path.basename(p) for p in written]
    for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", render_markdown(report, names))):
        path = os.path.join(out_dir, name)
        _atomic_write(path, text)
        written.append(path)
    return written
