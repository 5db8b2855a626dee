"""The exclusive OS lock on a database's sidecar file (`DB.lock`), so two running programs never
share one database (Windows: msvcrt.locking; elsewhere: flock)."""

from __future__ import annotations

import sys
from pathlib import Path


class _FileLock:
    """An exclusive OS lock on a sidecar file, so two running programs never share one database."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self) -> bool:
        self._fh = open(self.path, "a+b")
        try:
            if sys.platform == "win32":
                import msvcrt

                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            self._fh = None
            return False
        return True

    def release(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


FileLock = _FileLock  # the public name: services.backup locks a restore target the same way
