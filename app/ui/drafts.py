"""Unsaved edits of a household, sealed in the database (store.put_secret) so that a crash or a
killed process loses at most a few seconds of typing and no personal data reaches the disk in plain
text. Names: ``draft:household:<household id>`` or ``draft:household:new-<random>``."""

from __future__ import annotations

import json
import time

PREFIX = "draft:household:"


def save(store, key: str, state: dict) -> None:
    state = {**state, "saved_at": time.time()}
    store.put_secret(PREFIX + key, json.dumps(state, ensure_ascii=False).encode("utf-8"))


def load(store, key: str) -> dict | None:
    blob = store.get_secret(PREFIX + key)
    if blob is None:
        return None
    try:
        state = json.loads(blob.decode("utf-8"))
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def delete(store, key: str) -> None:
    store.delete_secret(PREFIX + key)


def pending(store) -> list[tuple[str, dict]]:
    """(key, state) of every draft in the database, oldest first."""
    out = []
    for name in store.secret_names(PREFIX):
        key = name[len(PREFIX):]
        state = load(store, key)
        if state is not None:
            out.append((key, state))
    out.sort(key=lambda item: item[1].get("saved_at", 0))
    return out
