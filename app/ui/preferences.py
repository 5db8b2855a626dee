"""Window preferences kept beside the program settings (config_dir()/ui.json): recent databases,
the idle auto-lock time and how the household list was left (sort column and order, column widths,
the open village's code, the window size). Paths, codes and numbers only, never personal data.
Written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from app import fileio, settings
from app.store.locations import is_url, without_password

RECENT_MAX = 8


@dataclass
class Preferences:
    recent: list[str] = field(default_factory=list)
    auto_lock_minutes: float = 10.0  # 0: never lock on idle
    # the household list as it was left: {"sort": [column, 0|1], "widths": [...], "village": code,
    # "size": [width, height]}; numbers and a division code only
    main_list: dict = field(default_factory=dict)


def path():
    return settings.config_dir() / "ui.json"


def load() -> Preferences:
    try:
        raw = json.loads(path().read_text(encoding="utf-8"))
        recent = [str(p) for p in raw.get("recent", []) if isinstance(p, str)][:RECENT_MAX]
        minutes = float(raw.get("auto_lock_minutes", 10.0))
        main_list = raw.get("main_list") if isinstance(raw.get("main_list"), dict) else {}
        return Preferences(recent, max(0.0, minutes), main_list)
    except (OSError, ValueError, TypeError, AttributeError):
        return Preferences()


def save(prefs: Preferences) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(target, json.dumps(asdict(prefs), ensure_ascii=False, indent=1))  # recent paths: owner-only


def remember(db_path: str) -> None:
    """Put a database first in the recent list (and in settings.last_database)."""
    prefs = load()
    # a county on PostgreSQL: its address without the password (never written to disk)
    full = without_password(db_path) if is_url(db_path) else os.path.abspath(db_path)
    prefs.recent = [full] + [p for p in prefs.recent if p != full]
    prefs.recent = prefs.recent[:RECENT_MAX]
    try:
        save(prefs)
        conf = settings.load()
        conf.last_database = full
        settings.save(conf)
    except OSError:
        pass  # preferences are a convenience; never fail the open because of them
