"""One writer per run folder: an exclusive lock file created atomically for the whole run.

``<output>/.lock`` holds the pid, host and start time of its owner. A second process on the same folder stops at once
with one line. A lock left by a dead process on this host is taken over with a note; a lock of another host cannot
be checked from here and is reported with its owner so the user can decide. Under torchrun only rank 0 takes it.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from typing import Optional

from ..errors import UserError

LOCK_NAME = ".lock"


class RunFolderBusy(UserError):
    """Another live process writes into this output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """``acquire()`` before anything is written into the folder, ``release()`` when the run ends (also on errors).

    When the lock created the folder and the run leaves nothing else in it, ``release()`` removes the folder again,
    so a run that fails early leaves no partial output directory.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self.created_folder = False
        self.held = False

    def acquire(self) -> RunLock:
        if not os.path.isdir(self.folder):
            os.makedirs(self.folder, exist_ok=True)
            self.created_folder = True
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "start": datetime.datetime.now().isoformat(timespec="seconds")}
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            self.held = True
            return self
        raise RunFolderBusy(f"could not lock {self.folder}: another process keeps creating {self.path}")

    def _handle_existing(self) -> None:
        owner = _read(self.path)
        pid, host = owner.get("pid"), owner.get("host")
        since = owner.get("start", "an unknown time")
        if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
            print(f"Note: taking over the stale lock of process {pid} (started {since}, no longer running) in {self.folder}")
            os.remove(self.path)
            return
        if not owner:  # written by a process killed between create and write: its pid is unknown
            raise RunFolderBusy(f"output dir {self.folder} has an unreadable lock {self.path} (a run killed at start?); "
                                "delete it if no run uses this folder, or pass another --output-dir")
        where = "this host" if host == socket.gethostname() else f"host {host}"
        raise RunFolderBusy(
            f"output dir {self.folder} is in use by process {pid} on {where} since {since} (one run per folder: "
            f"wait for it, pass another --output-dir, or delete {self.path} if that run is gone)"
        )

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            if _read(self.path).get("pid") == os.getpid():
                os.remove(self.path)
        except OSError:
            pass
        if self.created_folder:
            try:
                os.rmdir(self.folder)  # only succeeds when the run wrote nothing else
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_run_lock(folder: str, enabled: bool = True) -> Optional[RunLock]:
    return RunLock(folder).acquire() if enabled else None
