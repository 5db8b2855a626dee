"""Encrypted store: keys, records, change log, blind index, migrations; a SQLite file, or a county
database on PostgreSQL named by a postgresql:// URL (`location(text)` tells them apart)."""

from app.store.db import (  # noqa: F401
    Change,
    Record,
    Store,
    StoreError,
    StoreLocked,
    TooManyAttempts,
    WrongPassphrase,
)
from app.store.locations import PgLocation, is_url, location  # noqa: F401
