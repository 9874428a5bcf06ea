"""One writer per run folder: an exclusive lock file created atomically for the whole run.

``<output>/.lock`` holds the pid, host and start time of its owner. A second process on the same folder stops at once
with one line. A lock left by a dead process on this host is taken over with a note; a lock of another host cannot
be checked from here and is reported with its owner so the user can decide. Under torchrun only rank 0 takes it.

The lock file appears complete (written to a private file, then hard-linked into place, which fails if a lock
exists). Taking over a stale lock is atomic: the taker holds ``flock`` on the stale file, checks that the path still
names that very file and that its owner is still dead, and only then removes it; every other taker waits on the same
``flock`` and then finds the path changed, so it looks again and meets the new owner's live lock.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
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


def read_owner(path: str) -> dict:
    """The JSON a lock file holds (pid, host, start), or {} when it is missing or unreadable."""
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
        for _ in range(3):  # a retry follows the removal of a stale lock (by us or by another taker)
            if self._create(record):
                self.held = True
                return self
            self._handle_existing()
        raise RunFolderBusy(f"could not lock {self.folder}: another process keeps creating {self.path}")

    def _create(self, record: dict) -> bool:
        """Put our complete lock file in place unless one exists (hard link of a private file: atomic)."""
        private = f"{self.path}.{os.getpid()}.new"
        with open(private, "w", encoding="utf-8") as f:
            json.dump(record, f)
        try:
            os.link(private, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links: exclusive create, then write
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                raise
            return self._create_exclusive(record)
        finally:
            os.remove(private)

    def _create_exclusive(self, record: dict) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        return True

    @staticmethod
    def _stale(owner: dict) -> bool:
        pid = owner.get("pid")
        return owner.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)

    def _handle_existing(self) -> None:
        """Return to try creating again (the lock is gone or was stale and is removed); else raise RunFolderBusy."""
        owner = read_owner(self.path)
        if self._stale(owner):
            self._take_over(owner)  # removed by us, or changed meanwhile: either way, look again
            return
        if not owner and not os.path.exists(self.path):
            return  # removed meanwhile (its run ended, or another process took it over): try again
        pid, host = owner.get("pid"), owner.get("host")
        since = owner.get("start", "an unknown time")
        if not owner:  # written by a process killed between create and write: its pid is unknown
            raise RunFolderBusy(f"output dir {self.folder} has an unreadable lock {self.path} (a run killed at start?); "
                                "delete it if no run uses this folder, or pass another --output-dir")
        where = "this host" if host == socket.gethostname() else f"host {host}"
        raise RunFolderBusy(
            f"output dir {self.folder} is in use by process {pid} on {where} since {since} (one run per folder: "
            f"wait for it, pass another --output-dir, or delete {self.path} if that run is gone)"
        )

    def _take_over(self, seen: dict) -> bool:
        """Remove the stale lock ``seen`` if the path still names it and its owner is still dead; True if we did,
        False if the path changed meanwhile (the caller then meets whoever holds it now)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # one taker at a time; released when the file is closed
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                return False
            mine = os.fstat(f.fileno())
            if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                return False  # another taker removed it and a new lock took its place
            owner = read_owner(self.path)
            if owner != seen or not self._stale(owner):
                return False
            print(f"Note: taking over the stale lock of process {owner['pid']} (started "
                  f"{owner.get('start', 'an unknown time')}, no longer running) in {self.folder}")
            os.remove(self.path)
        return True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            if read_owner(self.path).get("pid") == os.getpid():
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
