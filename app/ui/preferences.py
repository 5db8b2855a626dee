"""Window preferences kept beside the program settings (config_dir()/ui.json): recent databases
and the idle auto-lock time. Paths and numbers only, never personal data. Written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from app import fileio, settings

RECENT_MAX = 8


@dataclass
class Preferences:
    recent: list[str] = field(default_factory=list)
    auto_lock_minutes: float = 10.0  # 0: never lock on idle


def path():
    return settings.config_dir() / "ui.json"


def load() -> Preferences:
    try:
        raw = json.loads(path().read_text(encoding="utf-8"))
        recent = [str(p) for p in raw.get("recent", []) if isinstance(p, str)][:RECENT_MAX]
        minutes = float(raw.get("auto_lock_minutes", 10.0))
        return Preferences(recent, max(0.0, minutes))
    except (OSError, ValueError, TypeError, AttributeError):
        return Preferences()


def save(prefs: Preferences) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(target, json.dumps(asdict(prefs), ensure_ascii=False, indent=1))  # recent paths: owner-only


def remember(db_path: str) -> None:
    """Put a database first in the recent list (and in settings.last_database)."""
    prefs = load()
    full = os.path.abspath(db_path)
    prefs.recent = [full] + [p for p in prefs.recent if p != full]
    prefs.recent = prefs.recent[:RECENT_MAX]
    try:
        save(prefs)
        conf = settings.load()
        conf.last_database = full
        settings.save(conf)
    except OSError:
        pass  # preferences are a convenience; never fail the open because of them
