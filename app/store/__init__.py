"""Encrypted SQLite store: keys, records, change log, blind index, migrations."""

from app.store.db import (  # noqa: F401
    Change,
    Record,
    Store,
    StoreError,
    StoreLocked,
    TooManyAttempts,
    UpgradeNeeded,
    WrongPassphrase,
)
