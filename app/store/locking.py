"""The exclusive OS lock on a database's sidecar file (`DB.lock`), so two running programs never
share one database (Windows: msvcrt.locking; elsewhere: flock)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path


class _FileLock:
    """An exclusive OS lock on a sidecar file, so two running programs never write one database at
    once (each keeps counters and the search index in memory). Both kinds are released by the OS
    when the process ends, however it ends. Reading commands take no lock (WAL readers)."""

    POLL = 0.2

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self, wait: float = 0, on_wait: Callable[[float], None] | None = None) -> bool:
        """Take the lock, waiting up to `wait` seconds for another program to let it go (`on_wait`
        is called once, with the limit, when waiting starts)."""
        if self._try():
            return True
        if wait <= 0:
            return False
        if on_wait:
            on_wait(wait)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(self.POLL)
            if self._try():
                return True
        return False

    def _try(self) -> bool:
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
