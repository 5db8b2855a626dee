"""Filling a database with the demo county (see app.core.demo)."""

from __future__ import annotations

from collections.abc import Callable

from app.core import demo, procedures
from app.core.dictionary import default
from app.services import households
from app.store import Store


def install_reference_data(store: Store) -> None:
    """The demo county's divisions, the poverty lines and the monitoring criteria per year."""
    store.set_divisions(demo.divisions())
    for year, line in demo.POVERTY_LINES.items():
        store.set_poverty_line(year, line, demo.DEMO_LINE_SOURCE[year])
    for year, line in demo.MONITORING_LINES.items():
        store.set_monitoring_criteria(year, line, source=demo.MONITORING_SOURCE)


class DemoRefused(Exception):
    """The database takes part in county sync: demo households would travel as real ones."""


def refusal(store: Store) -> str | None:
    """None when demo data may go into this database, else why not (Chinese). A county database and a
    laptop or township office enrolled with a county exchange their records through sync, so demo
    households there would reach the county's (and every device's) real data; their divisions and
    poverty lines are the county's too."""
    if store.role == "county" or store.meta("county_site_id") or store.meta("certificate"):
        where = "县级数据库" if store.role == "county" else "已在县扶贫办登记的工作数据库"
        return (f"{store.path.name} 是{where},演示数据只能放进单独的演示数据库"
                "(否则虚构的贫困户会随同步进入县里的真实数据)。"
                "请给一个新的文件名,例如 jiandang demo 演示.db")
    return None


def fill(store: Store, per_village: int = 80, seed: int = 2026, progress: Callable[[int, int], None] | None = None,
         today=None) -> int:
    """Add the demo households (once: a database that already has households is left alone).
    Visits are dated in the 100 days before `today` (default: today). Returns how many were added.
    Raises DemoRefused, writing nothing, on a database that takes part in county sync (`refusal`)."""
    reason = refusal(store)
    if reason:
        raise DemoRefused(reason)
    install_reference_data(store)
    if store.count("household"):
        return 0
    total = per_village * len(demo.village_codes())
    added = 0
    with store.transaction():  # households generated one at a time: memory stays flat
        for added, doc in enumerate(demo.iter_households(per_village, seed, today=today, monitoring=True), 1):
            _save(store, doc)
            if progress and added % 50 == 0:
                progress(added, total)
    if progress:
        progress(added, added)
    return added


def _save(store: Store, doc: dict) -> None:
    """One demo household as the county's ledger has it. Its risks already eliminated are written
    beside `households.save`, which records a risk 已消除 only through the county's 风险消除 decision:
    the demo database takes part in no procedure (it is never enrolled, see `refusal`)."""
    eliminated = [r for r in doc.get("risks", []) if r.get("state") == procedures.RISK_ELIMINATED]
    doc["risks"] = [r for r in doc.get("risks", []) if r not in eliminated]
    result = households.save(store, doc, allow_errors=True, reason="演示数据")
    fields = default().kinds["risk"].fields
    for risk in eliminated:
        store.put("risk", {k: risk.get(k) for k in fields}, village_code=doc["village_code"],
                  parent_id=result.household_id, reason="演示数据")
