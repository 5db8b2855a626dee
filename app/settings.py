"""Program settings and logs, in the platform's per-user folders (platformdirs):

- settings: `user_config_dir("jiandang")/settings.json` (Windows: %LOCALAPPDATA%\\jiandang\\...)
- data (default backup folder): `user_data_dir("jiandang")`
- logs: `user_log_dir("jiandang")/jiandang-<program>.log`, one file per program (window, cli, serve),
  rotated (3 files of 1 MB) by a handler that survives other processes writing the same file

`JIANDANG_HOME` overrides all three with one folder (a portable install on a USB stick, tests).

Logs never contain personal data. Code logs record ids, counts and file names only; as a second
line of defence every log record passes a filter that masks anything shaped like an ID number or
a mobile phone number before it is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import logging.handlers
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "jiandang"
PROGRAMS = ("window", "cli", "serve")  # each writes its own log file: jiandang-window.log, ...
RETRY_ROLLOVER_SECONDS = 60.0


def log_file_name(program: str) -> str:
    return f"{APP}-{program}.log"


def _home() -> Path | None:
    value = os.environ.get("JIANDANG_HOME")
    return Path(value) if value else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def log_dir() -> Path:
    home = _home()
    return home / "logs" if home else Path(platformdirs.user_log_dir(APP, appauthor=False))


def settings_path() -> Path:
    return config_dir() / "settings.json"


@dataclass
class Settings:
    auto_backup: bool = True  # a backup each day the database is unlocked or closed
    backup_folder: str | None = None  # None: <data_dir>/backups
    backup_keep: int = 14  # how many daily backups of each database to keep
    log_level: str = "INFO"
    last_database: str | None = None
    photo_max_side: int = 1600  # attachments: longest side in pixels after resizing (app/services/attachments.py)
    photo_quality: int = 80  # attachments: JPEG quality of the re-encoded image (1-95)


def load() -> Settings:
    """The saved settings; defaults for a missing or unreadable file (never raises)."""
    try:
        raw = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    values = {k: v for k, v in raw.items() if k in known} if isinstance(raw, dict) else {}
    try:
        conf = Settings(**values)
        conf.backup_keep = max(1, int(conf.backup_keep))
    except (TypeError, ValueError):
        return Settings()
    return conf


def save(conf: Settings) -> Path:
    """Write the settings atomically (temporary file, fsync, os.replace)."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    from app import fileio  # noqa: PLC0415

    return fileio.write_atomic(path, json.dumps(dataclasses.asdict(conf), ensure_ascii=False, indent=2))


def backup_folder(conf: Settings | None = None) -> Path:
    conf = conf or load()
    return Path(conf.backup_folder) if conf.backup_folder else data_dir() / "backups"


# ---------------------------------------------------------------------- logs

# 18-character ID numbers (also with a lower-case x), 15-digit old ones, 11-digit mobile numbers.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def redact(text: str) -> str:
    """Mask ID-number-shaped and phone-shaped digit runs."""
    text = _ID_NUMBER.sub(lambda m: m.group(0)[:6] + "*" * (len(m.group(0)) - 6), text)
    return _PHONE.sub(lambda m: m.group(0)[:3] + "********", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that more than one process may write (two CLI commands at once, or a backup
    while the window runs):

    - when another process has rotated the file away, the next record reopens the current file
      instead of writing on into the rotated one;
    - when the rollover cannot rename the file (Windows refuses while another process holds it open),
      the record is still written to the current file and the rollover is tried again a minute later,
      instead of losing the record and printing a logging error."""

    def __init__(self, filename, **kw):
        super().__init__(filename, **kw)
        self._retry_at = 0.0

    def _open(self):
        """Each log file (also after a rollover) owner-only on POSIX."""
        stream = super()._open()
        from app import fileio  # noqa: PLC0415

        fileio.make_private(self.baseFilename)
        return stream

    def _replaced(self) -> bool:
        """True when the name no longer refers to the file this handler has open."""
        try:
            named = os.stat(self.baseFilename)
            held = os.fstat(self.stream.fileno())
        except FileNotFoundError:
            return True
        except (OSError, ValueError):
            return False
        return (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino)

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None and self._replaced():
            self.acquire()
            try:
                self.stream.close()
                self.stream = None  # reopened (the current file) by the emit below
            finally:
                self.release()
        super().emit(record)

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - logging's name
        if time.monotonic() < self._retry_at:
            return False
        return bool(super().shouldRollover(record))

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        try:
            super().doRollover()
        except OSError:  # another process holds the file (Windows): keep appending, try again later
            self._retry_at = time.monotonic() + RETRY_ROLLOVER_SECONDS
            if self.stream is None:
                self.stream = self._open()


_HANDLER: logging.Handler | None = None
_LEVEL_BEFORE: int | None = None


def setup_logging(level: str | None = None, program: str = "cli") -> Path:
    """Send the program's log records to its rotating log file, `jiandang-<program>.log` (idempotent).
    Returns the file."""
    global _HANDLER, _LEVEL_BEFORE
    if program not in PROGRAMS:
        raise ValueError(f"unknown program {program!r}")
    folder = log_dir()
    path = folder / log_file_name(program)
    root = logging.getLogger()
    if _HANDLER is not None and getattr(_HANDLER, "baseFilename", None) == str(path):
        return path
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
        _HANDLER.close()
    folder.mkdir(parents=True, exist_ok=True)
    handler = SharedRotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    if _LEVEL_BEFORE is None:
        _LEVEL_BEFORE = root.level
    root.setLevel(getattr(logging, (level or load().log_level).upper(), logging.INFO))
    _HANDLER = handler
    return path


def close_logging() -> None:
    """Stop writing the log file and restore the root logger's level."""
    global _HANDLER, _LEVEL_BEFORE
    if _HANDLER is not None:
        logging.getLogger().removeHandler(_HANDLER)
        _HANDLER.close()
        _HANDLER = None
    if _LEVEL_BEFORE is not None:
        logging.getLogger().setLevel(_LEVEL_BEFORE)
        _LEVEL_BEFORE = None
