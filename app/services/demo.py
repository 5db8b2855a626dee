"""Filling a database with the demo county (see app.core.demo)."""

from __future__ import annotations

from collections.abc import Callable

from app.core import demo
from app.services import households
from app.store import Store


def install_reference_data(store: Store) -> None:
    """The demo county's divisions and the poverty lines per year."""
    store.set_divisions(demo.divisions())
    for year, line in demo.POVERTY_LINES.items():
        store.set_poverty_line(year, line, demo.DEMO_LINE_SOURCE[year])


def fill(store: Store, per_village: int = 80, seed: int = 2026, progress: Callable[[int, int], None] | None = None,
         today=None) -> int:
    """Add the demo households (once: a database that already has households is left alone).
    Visits are dated in the 100 days before `today` (default: today). Returns how many were added."""
    install_reference_data(store)
    if store.count("household"):
        return 0
    docs = demo.households(per_village, seed, today=today)
    with store.transaction():
        for i, doc in enumerate(docs, 1):
            households.save(store, doc, allow_errors=True, reason="演示数据")
            if progress and i % 50 == 0:
                progress(i, len(docs))
    if progress:
        progress(len(docs), len(docs))
    return len(docs)
