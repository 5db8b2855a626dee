"""Reference data in enrollment packages and downstream bundles (docs/bundle-format.md).

The county sends each device the divisions of its area (the villages and townships its certificate
names, with the township and county above them) and every poverty line with its source note. A
device writes them inside the import's transaction: divisions are added or renamed, never removed;
poverty lines are replaced year by year. Payload keys (all optional for a reader, so older and newer
versions exchange bundles in both directions):

- ``divisions``: ``[[code, name, level, parent], ...]``
- ``poverty_lines``: ``{"2025": 4000.0, ...}`` (since the first version)
- ``poverty_line_sources``: ``{"2025": "县政府文件……", ...}``
- ``monitoring_criteria``: ``[{"year", "line", "min_months", "risk_days", "source"}, ...]`` (防返贫
  动态监测, issue #20: the monitoring income line and limits, replaced year by year)
"""

from __future__ import annotations

from app.core import divisions as codes
from app.store import Store

COUNTY_SOURCE = "县级"  # the source note of a line whose bundle did not carry one (older county versions)


def outgoing(store: Store, villages: list[str]) -> dict:
    """The reference data for a device whose certificate names `villages`."""
    rows = store.conn.execute("SELECT year, line, coalesce(source, '') FROM poverty_lines ORDER BY year").fetchall()
    return {
        "divisions": [[d["code"], d["name"], d["level"], d["parent"]] for d in codes.within(store.divisions(), villages)],
        "poverty_lines": {str(y): line for y, line, _ in rows},
        "poverty_line_sources": {str(y): source for y, _, source in rows},
        "monitoring_criteria": store.all_monitoring_criteria(),
    }


def install(store: Store, payload: dict) -> list[str]:
    """Write the reference data a package or bundle carries. The caller holds the transaction.
    Returns what changed, in Chinese (new or renamed divisions, new or changed poverty lines), so an
    import that brought no household changes still says what it did."""
    names = {code: name for code, name in store.conn.execute("SELECT code, name FROM divisions")}
    lines = dict(store.conn.execute("SELECT year, line FROM poverty_lines"))
    rows = []
    for entry in payload.get("divisions") or []:
        code, name, level, parent = (list(entry) + [None] * 4)[:4]
        if not code or not name or level not in codes.LEVELS:
            continue  # a malformed entry from a newer or damaged county: keep what we have
        rows.append((str(code), str(name), level, parent))
    if rows:
        store.conn.executemany("INSERT OR REPLACE INTO divisions(code, name, level, parent) VALUES (?,?,?,?)", rows)
    sources = payload.get("poverty_line_sources") or {}
    for year, line in (payload.get("poverty_lines") or {}).items():
        store.conn.execute("INSERT OR REPLACE INTO poverty_lines(year, line, source) VALUES (?,?,?)",
                           (int(year), line, sources.get(str(year)) or COUNTY_SOURCE))
    said = _install_monitoring(store, payload.get("monitoring_criteria") or [])
    added = [name for code, name, _, _ in rows if code not in names]
    renamed = [f"{names[code]}改为{name}" for code, name, _, _ in rows if code in names and names[code] != name]
    if added:
        said.append(f"新增区划 {len(added)} 个({'、'.join(added[:5])}{' 等' if len(added) > 5 else ''})")
    if renamed:
        said.append(f"区划更名 {'、'.join(renamed[:5])}{' 等' if len(renamed) > 5 else ''}")
    for year, line in sorted((payload.get("poverty_lines") or {}).items()):
        before = lines.get(int(year))
        if before is None:
            said.append(f"{year} 年贫困线 {line:g} 元")
        elif before != line:
            said.append(f"{year} 年贫困线由 {before:g} 元改为 {line:g} 元")
    return said


def _install_monitoring(store: Store, entries: list) -> list[str]:
    """The county's monitoring criteria (防返贫动态监测), year by year; malformed entries are skipped."""
    before = {c["year"]: c["line"] for c in store.all_monitoring_criteria()}
    said = []
    for entry in entries:
        try:
            year, line = int(entry["year"]), float(entry["line"])
            months, days = int(entry.get("min_months", 6)), int(entry.get("risk_days", 180))
        except (KeyError, TypeError, ValueError):
            continue
        store.conn.execute("INSERT OR REPLACE INTO monitoring_criteria(year, line, min_months, risk_days, source) "
                           "VALUES (?,?,?,?,?)", (year, line, months, days, str(entry.get("source") or COUNTY_SOURCE)))
        if before.get(year) != line:
            said.append(f"{year} 年监测收入标准 {line:g} 元")
    return said
