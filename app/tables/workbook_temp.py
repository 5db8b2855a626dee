"""openpyxl's temporary files, kept private.

openpyxl writes each sheet's XML (member names, full ID numbers) to a temporary file while it saves a
workbook, `openpyxl.XXXX` in the system temp folder, readable by others under a umask of 022 and left
there forever when the program is killed mid-save. `saving()` puts them in a new owner-only folder
(`jiandang-xlsx-XXXX`, mode 0700; on Windows inside the user's own temp folder), removed when the save
ends however it ends; `clean_stale()` removes such folders a killed program left, at the next save and
at the window's start. A save outside `saving()` (another caller of openpyxl in the same process) writes
to one such folder of the process's own, removed when the process ends (it made a new folder for every
sheet, left empty in the temp folder until the next clean_stale).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from openpyxl.worksheet import _writer

PREFIX = "jiandang-xlsx-"
STALE_SECONDS = 15 * 60
_lock = threading.RLock()
_folder: str | None = None
_outside: str | None = None  # the folder of saves outside saving(), made at the first one


def _outside_folder() -> str:
    global _outside
    with _lock:
        if _outside is None or not os.path.isdir(_outside):
            _outside = tempfile.mkdtemp(prefix=PREFIX)
            atexit.register(shutil.rmtree, _outside, True)
        else:  # in use: not stale to another process's clean_stale
            os.utime(_outside)
        return _outside


def _create_temporary_file(suffix: str = "") -> str:
    """openpyxl's create_temporary_file, in the private folder of the save under way."""
    folder = _folder
    if folder is None:  # a save outside saving(): still private, removed at exit (or by the next clean_stale)
        folder = _outside_folder()
    fd, name = tempfile.mkstemp(prefix="openpyxl.", suffix=suffix, dir=folder)
    os.close(fd)
    _writer.ALL_TEMP_FILES.append(name)
    return name


_writer.create_temporary_file = _create_temporary_file  # the one place openpyxl makes them


def clean_stale(older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove private folders of saves that never finished (a killed program)."""
    removed = []
    root = Path(tempfile.gettempdir())
    try:
        entries = list(root.glob(PREFIX + "*"))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            if entry.is_symlink() or not entry.is_dir() or now - entry.stat().st_mtime < older_than:
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def saving():
    """Around `workbook.save(...)`: openpyxl's temporary files go to a new owner-only folder that is
    removed afterwards. Saves are serialised (the folder is process-wide state)."""
    global _folder
    with _lock:
        clean_stale()
        folder = tempfile.mkdtemp(prefix=PREFIX)
        previous, _folder = _folder, folder
        try:
            yield
        finally:
            _folder = previous
            shutil.rmtree(folder, ignore_errors=True)
