"""A run folder belongs to one run identity: checked before anything is written, recorded when the run starts.

``<output>/identity.json`` holds the identity of the run that owns the folder (written at start, next to
``config.yaml``). A run whose identity differs stops with one line naming the first differing field, unless the user
passes ``--override-identity``: then the earlier run's ``identity.json``, ``config.yaml`` and ``results.json`` (and the
checkpoints of another training run, which are never resumed) are kept under a timestamped name, never overwritten.
``results.json`` is only ever written by a run that finished.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
from typing import Any, Dict, Optional, Sequence

from ..errors import UserError
from . import identity as ident
from .logging import close_logger

IDENTITY_NAME = "identity.json"
CONFIG_NAME = "config.yaml"
RESULTS_NAME = "results.json"
OVERRIDE_HINT = "pass another --output-dir, or --override-identity if you really mean to reuse this folder"


class IdentityMismatch(UserError):
    """A folder, checkpoint or result belongs to a run with another identity."""


def read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_json_atomic(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def has_checkpoint(folder: str) -> bool:
    return any(glob.glob(os.path.join(glob.escape(folder), "*", "checkpoint")))


def has_run_files(folder: str) -> bool:
    """Whether the folder holds anything of a run (config, results, checkpoints, logs)."""
    if not os.path.isdir(folder):
        return False
    names = set(os.listdir(folder))
    if names & {IDENTITY_NAME, CONFIG_NAME, RESULTS_NAME, "log.txt"}:
        return True
    return has_checkpoint(folder)


class FreshFolderGuard:
    """A run that fails on bad input (a ``UserError``: an unreadable image met mid-evaluation, a non-finite loss) in a
    folder that held no run, before it wrote a checkpoint or a result, removes what it wrote there (``config.yaml``,
    ``identity.json``, ``log.txt``, ...): no partial output folder; the error line says what went wrong. A folder
    with a checkpoint keeps everything (a rerun resumes), and a folder of an earlier run is never touched."""

    def __init__(self, folder: str, enabled: bool = True) -> None:
        self.folder = folder
        self.active = enabled and not has_run_files(folder)
        self.before = set(os.listdir(folder)) if self.active and os.path.isdir(folder) else set()

    def rollback(self, keep: tuple = (".lock",)) -> None:
        """Undo the failed run's writes (called while its lock is still held; the lock itself is kept)."""
        if not self.active or not os.path.isdir(self.folder) or has_checkpoint(self.folder) \
                or os.path.exists(os.path.join(self.folder, RESULTS_NAME)):
            return
        close_logger()  # the log file is among what goes
        for name in sorted(set(os.listdir(self.folder)) - self.before - set(keep)):
            path = os.path.join(self.folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass


def check_folder(folder: str, identity: Dict[str, Any], override: bool) -> None:
    """Stop unless the folder is new or holds a run of the same identity (or ``override``)."""
    path = os.path.join(folder, IDENTITY_NAME)
    recorded = read_json(path)
    if recorded is None:
        if os.path.exists(path) and not override:  # not "without an identity": it has one nobody can read
            raise IdentityMismatch(f"output dir {folder} holds an unreadable {IDENTITY_NAME} (truncated or corrupt, "
                                   f"not a JSON object), so the run it belongs to cannot be told; {OVERRIDE_HINT}")
        if has_run_files(folder) and not override:
            raise IdentityMismatch(f"output dir {folder} holds files of a run without a recorded identity (an older "
                                   f"version, or a run killed at start); {OVERRIDE_HINT}")
        return
    old = recorded.get("identity", {})
    diff = ident.first_difference(old, identity)
    if diff is None:
        return
    if override:
        print(f"Note: --override-identity: {folder} belonged to another run ({ident.describe_difference(diff, 'it')})")
        return
    raise IdentityMismatch(f"output dir {folder} belongs to another run: {ident.describe_difference(diff, 'that run')}; "
                           f"{OVERRIDE_HINT}")


def archive_previous(folder: str, identity: Dict[str, Any], checkpoint_folders: Sequence[str] = ()) -> None:
    """Keep an earlier run's records under ``<name>-<timestamp>`` when a run of another identity takes the folder,
    and its checkpoint folders (``<model name>/``) when this run trains from scratch instead of resuming them."""
    recorded = read_json(os.path.join(folder, IDENTITY_NAME))
    same = recorded is not None and recorded.get("fingerprint") == ident.fingerprint(identity)
    names = [*(() if same else (IDENTITY_NAME, CONFIG_NAME, RESULTS_NAME)), *checkpoint_folders]
    first = time.strftime("%Y-%m-%d-%H-%M-%S")
    stamp, n = first, 1
    while any(os.path.exists(os.path.join(folder, f"{name}-{stamp}")) for name in names):  # twice in one second
        n += 1
        stamp = f"{first}.{n}"
    for name in names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.replace(path, f"{path}-{stamp}")
            print(f"Kept the earlier run's {name} as {name}-{stamp}")


def record_start(folder: str, identity: Dict[str, Any], config_text: str) -> None:
    """Write identity.json and config.yaml (with the fingerprints as a comment header), atomically."""
    summary = ident.summary(identity)
    write_json_atomic(summary, os.path.join(folder, IDENTITY_NAME))
    header = (f"# run identity: {summary['fingerprint']} (training {summary['training']}, seed group "
              f"{summary['group']}); the full identity is in {IDENTITY_NAME}\n")
    path = os.path.join(folder, CONFIG_NAME)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(header + config_text)
    os.replace(tmp, path)


def finished_result(folder: str, identity: Dict[str, Any]) -> Optional[str]:
    """The path of results.json when it records exactly this identity, else None."""
    path = os.path.join(folder, RESULTS_NAME)
    record = read_json(path)
    if record is None:
        return None
    recorded = (record.get("identity") or {}).get("fingerprint")
    return path if recorded == ident.fingerprint(identity) else None


def sweep_temporary_files(folder: str) -> int:
    """Remove ``*.tmp<pid>`` files a killed run left behind (we hold the folder's lock, so none is in use)."""
    removed = 0
    for pattern in ("*.tmp*", os.path.join("*", "*.tmp*")):
        for path in glob.glob(os.path.join(folder, pattern)):
            if os.path.isfile(path):
                os.remove(path)
                removed += 1
    if removed:
        print(f"Removed {removed} temporary file(s) left by an interrupted run in {folder}")
    return removed
