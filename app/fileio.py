"""Writing files that matter: atomically, owner-only, and leaving nothing behind.

`write_atomic(path, data)` (or `build=` a function that writes the file at a path, as reportlab does)
writes a temporary file beside the target, flushes it to disk, renames it over the target and
flushes the folder: a pulled USB stick or a power cut leaves the old file or the new one, never half
of one. The temporary file is removed in every path (an error, Ctrl+C); a killed process leaves it
behind under a name only this program makes (`.NAME.XXXXXXXX.jdtmp`), which `clean_stale` removes at
the next run. Every file is created owner-only (0600 on POSIX; on Windows a new file inherits the
folder's permissions: a user's profile is readable by that user and administrators only).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".jdtmp"
STALE_SECONDS = 15 * 60  # a temporary file older than this belongs to no running program
OWNER_ONLY = 0o600


def fsync_file(path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(folder) -> None:
    """Flush a folder's entries (the rename) to disk. Windows cannot open a folder for this; NTFS
    journals the rename itself."""
    if sys.platform == "win32" or not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network shares, FAT on some kernels) refuse: not fatal
        pass
    finally:
        os.close(fd)


def temp_beside(path) -> Path:
    """A new empty owner-only file beside `path`, named so that `clean_stale` recognises it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)  # mode 0600
    os.close(fd)
    return Path(tmp)


def write_atomic(path, data: bytes | str | None = None, *, build: Callable[[Path], None] | None = None,
                 encoding: str = "utf-8") -> Path:
    """Write `data` (or let `build(tmp)` write the file) to `path` atomically, owner-only."""
    path = Path(path)
    clean_stale(path.parent, only=f".{path.name}.")  # what a killed write of this file left behind
    tmp = temp_beside(path)
    try:
        if build is not None:
            build(tmp)
        else:
            with open(tmp, "wb") as fh:
                fh.write(data.encode(encoding) if isinstance(data, str) else data)
        fsync_file(tmp)
        make_private(tmp)  # a builder may have recreated the file with the default mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return path


def make_private(path) -> None:
    """Owner-only on POSIX (no-op where there are no mode bits)."""
    if os.name == "posix":
        with contextlib.suppress(OSError):
            os.chmod(path, OWNER_ONLY)


def create_private(path, mode: str = "wb"):
    """Open a new file for writing, created owner-only (O_EXCL: never an existing file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, OWNER_ONLY), mode)


def is_own_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def clean_stale(folder, *, extra: Callable[[str], bool] | None = None, older_than: float = STALE_SECONDS,
                only: str = "") -> list[Path]:
    """Remove this program's leftover temporary files in a folder (killed writes): the names
    `temp_beside` makes (beginning with `only`), and those `extra(name)` says are ours, when older
    than `older_than` seconds (a younger one may belong to a program writing right now). Returns
    what was removed."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(only):
            continue
        if not (is_own_temp(entry.name) or (extra is not None and extra(entry.name))):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed
