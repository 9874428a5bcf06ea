"""Reading Dassl-style ``log.txt`` files: which log of a run counts, and the metric lines after the end signal.

A run directory can hold several logs: the first run writes ``log.txt`` and every rerun in the same directory writes
``log.txt-YYYY-MM-DD-HH-MM-SS``. The newest log that is *complete* counts: it holds the end signal followed by a
line of the requested metric. Logs are ordered by the timestamp in their name, ``log.txt`` being the oldest (a rerun
never writes ``log.txt`` while it exists). A crashed rerun therefore falls back to the previous complete log.

Metric lines follow the evaluation block of our engine::

    * accuracy: 51.42%
    * robust_accuracy (pgd100, linf, eps=1/255): 12.33%

The clean ``* accuracy:`` line and the robust lines are kept apart by name; the last match after the signal wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

LOG_NAME = "log.txt"
RERUN_LOG = re.compile(r"^log\.txt-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})$")

#: End of training; Dassl < 0.6.1 (and MaPLe's parser) used "Finished training".
TRAIN_END_SIGNALS: Tuple[str, ...] = ("Finish training", "Finished training")
#: Start of an evaluation block, the only signal in eval-only logs (``--test-log``).
TEST_END_SIGNALS: Tuple[str, ...] = ("=> result",)

ROBUST_KEYWORD = "robust_accuracy"
_NUMBER = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_ROBUST_LINE = re.compile(r"\* robust_accuracy(?: \((.*)\))?: " + _NUMBER + "%")


def robust_key(attack_name: str) -> str:
    """The display key of one robust line, e.g. ``robust_accuracy (pgd100, linf, eps=1/255)``."""
    return f"{ROBUST_KEYWORD} ({attack_name})" if attack_name else ROBUST_KEYWORD


def metric_line(keyword: str) -> re.Pattern[str]:
    """``* <keyword>: X%`` exactly as CoOp's parser matches it (``* accuracy:`` never matches a robust line)."""
    return re.compile(r"\* " + re.escape(keyword) + r": " + _NUMBER + "%")


def list_logs(run_dir: Path) -> List[Path]:
    """The logs of one run directory, newest first (timestamped reruns by their stamp, then ``log.txt``)."""
    if not run_dir.is_dir():
        return []
    stamped = []
    for entry in run_dir.iterdir():
        match = RERUN_LOG.match(entry.name)
        if match and entry.is_file():
            stamped.append((match.group(1), entry))
    logs = [path for _, path in sorted(stamped, reverse=True)]
    plain = run_dir / LOG_NAME
    if plain.is_file():
        logs.append(plain)
    return logs


@dataclass
class LogResult:
    """The metrics of one log, in order of first appearance: the keyword first, then robust lines."""

    path: Path
    values: Dict[str, float] = field(default_factory=dict)


def parse_log(
    path: Path, keyword: str = "accuracy", end_signals: Sequence[str] = TRAIN_END_SIGNALS, robust: bool = True
) -> Optional[LogResult]:
    """Metrics after the first end signal of ``path``; None unless the signal and a ``keyword`` line appear.

    With ``keyword == "robust_accuracy"`` only robust lines are read, each under its own key. Otherwise the keyword
    line is read and, with ``robust``, every robust line too. The last match of each key wins (as in CoOp).
    """
    only_robust = keyword == ROBUST_KEYWORD
    main = None if only_robust else metric_line(keyword)
    started = False
    found: Dict[str, float] = {}
    robust_found: Dict[str, float] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not started:
                started = line in end_signals
                if not started:
                    continue
            if main is not None:
                match = main.search(line)
                if match:
                    found[keyword] = float(match.group(1))
                    continue
            if robust or only_robust:
                match = _ROBUST_LINE.search(line)
                if match:
                    robust_found[robust_key(match.group(1) or "")] = float(match.group(2))
    if only_robust:
        found = robust_found
    elif keyword in found:
        found.update(robust_found)
    else:
        found = {}
    return LogResult(path, found) if found else None


def read_run(
    run_dir: Path, keyword: str = "accuracy", end_signals: Sequence[str] = TRAIN_END_SIGNALS, robust: bool = True
) -> Optional[LogResult]:
    """The metrics of the newest complete log of ``run_dir``, or None when no log is complete."""
    for path in list_logs(run_dir):
        result = parse_log(path, keyword, end_signals, robust)
        if result is not None:
            return result
    return None
